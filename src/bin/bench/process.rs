//! The monitor under test: its configuration files, the child process, and what the benchmark
//! reads from it (`/proc/<pid>`, `/metrics` and the JSON log).

use std::collections::HashMap;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::BenchError;

/// Configuration options the benchmark varies.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// `[host] monitoring_interval`, seconds.
    pub interval_secs: u64,
    /// `[host] monitoring_samples`.
    pub samples: usize,
    /// `[circuit_breaker] threshold`, as written in the file.
    pub breaker_threshold: String,
    /// `[kubernetes] monitoring_node_labels`.
    pub node_labels: String,
}

/// Addresses of the fakes the monitor talks to.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub kube_api: SocketAddr,
    /// Keystone URL for `[api] auth_url`.
    pub auth_url: String,
}

/// A running `masakari-hostmonitor` and its working directory. Dropping it kills the process and
/// removes the directory.
pub struct MonitorProcess {
    child: Child,
    dir: PathBuf,
    metrics_url: String,
    log_path: PathBuf,
}

/// Resident memory of the process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS` in KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak resident set) in KiB.
    pub hwm_kib: u64,
}

/// One `/metrics` response: every sample by its full name with labels, e.g.
/// `masakari_hostmonitor_notifications_total{outcome="delivered"}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSample {
    values: HashMap<String, f64>,
}

/// One line of the monitor's JSON log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub timestamp: Timestamp,
    pub message: String,
    pub host: Option<String>,
}

impl MonitorProcess {
    /// Writes a kubeconfig and a `masakarimonitors.conf` into a new directory under the system
    /// temporary directory and starts `binary --config-file <conf>` with its standard output (the
    /// JSON log) in `monitor.log` there.
    pub fn spawn(
        binary: &Path,
        endpoints: &Endpoints,
        settings: &MonitorSettings,
    ) -> Result<MonitorProcess, BenchError> {
        let dir = std::env::temp_dir().join(format!(
            "masakari-bench-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&dir).map_err(|source| BenchError::io(&dir, source))?;
        let admin = free_loopback_port()?;

        let kubeconfig = dir.join("kubeconfig");
        write(&kubeconfig, &kubeconfig_text(endpoints.kube_api))?;
        let config = dir.join("masakarimonitors.conf");
        write(
            &config,
            &config_text(&kubeconfig, endpoints, settings, admin),
        )?;

        let log_path = dir.join("monitor.log");
        let stdout = File::create(&log_path).map_err(|source| BenchError::io(&log_path, source))?;
        let stderr_path = dir.join("monitor.stderr");
        let stderr =
            File::create(&stderr_path).map_err(|source| BenchError::io(&stderr_path, source))?;
        let mut command = Command::new(binary);
        // SAFETY: prctl only sets a flag of the new process; it allocates nothing and is
        // async-signal-safe, as pre_exec requires.
        unsafe {
            command.pre_exec(|| {
                // The monitor dies with the benchmark, even when the benchmark is killed.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .arg("--config-file")
            .arg(&config)
            .env_remove("RUST_LOG")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| BenchError::Spawn {
                binary: binary.to_owned(),
                source,
            })?;
        Ok(MonitorProcess {
            child,
            dir,
            metrics_url: format!("http://{admin}/metrics"),
            log_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the process has exited, with its exit status and the end of its output.
    pub fn check_running(&mut self) -> Result<(), BenchError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(BenchError::MonitorExited {
                status: status.to_string(),
                output: self.output_tail(),
            }),
            Err(source) => Err(BenchError::io(&self.dir, source)),
        }
    }

    /// Returns the last lines of the process's standard error and standard output.
    fn output_tail(&self) -> String {
        let mut text = String::new();
        for name in ["monitor.stderr", "monitor.log"] {
            let content = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let start = lines.len().saturating_sub(10);
            for line in &lines[start..] {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    pub fn memory(&self) -> Result<Memory, BenchError> {
        let path = PathBuf::from(format!("/proc/{}/status", self.pid()));
        let text =
            std::fs::read_to_string(&path).map_err(|source| BenchError::io(&path, source))?;
        parse_memory(&text).ok_or(BenchError::ProcFormat { path })
    }

    /// User plus system CPU time of the process so far (all threads, from `/proc/<pid>/stat`).
    pub fn cpu_time(&self) -> Result<Duration, BenchError> {
        let path = PathBuf::from(format!("/proc/{}/stat", self.pid()));
        let text =
            std::fs::read_to_string(&path).map_err(|source| BenchError::io(&path, source))?;
        let ticks = parse_cpu_ticks(&text).ok_or(BenchError::ProcFormat { path })?;
        Ok(ticks_to_duration(ticks, clock_ticks_per_second()))
    }

    /// CPU time of the process so far from its CPU-time clock (`clock_getcpuclockid`), with
    /// nanosecond resolution where `/proc/<pid>/stat` has clock ticks (10 ms on most systems).
    pub fn cpu_clock(&self) -> Result<Duration, BenchError> {
        let pid = libc::pid_t::try_from(self.pid()).map_err(|_| BenchError::CpuClock(0))?;
        let mut clock: libc::clockid_t = 0;
        // SAFETY: both calls only write into the locals passed by pointer.
        let code = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
        if code != 0 {
            return Err(BenchError::CpuClock(code));
        }
        let mut time = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: see above.
        if unsafe { libc::clock_gettime(clock, &mut time) } != 0 {
            return Err(BenchError::CpuClock(
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            ));
        }
        let seconds = u64::try_from(time.tv_sec).unwrap_or(0);
        let nanos = u32::try_from(time.tv_nsec).unwrap_or(0);
        Ok(Duration::new(seconds, nanos))
    }

    pub async fn scrape(&self, http: &reqwest::Client) -> Result<MetricsSample, BenchError> {
        let scrape_failed = |source| BenchError::ScrapeFailed {
            url: self.metrics_url.clone(),
            source,
        };
        let text = http
            .get(&self.metrics_url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(scrape_failed)?
            .text()
            .await
            .map_err(scrape_failed)?;
        Ok(MetricsSample::parse(&text))
    }

    /// Reads every JSON line of the log so far and skips lines that are not JSON.
    pub fn log_lines(&self) -> Result<Vec<LogLine>, BenchError> {
        let text = std::fs::read_to_string(&self.log_path)
            .map_err(|source| BenchError::io(&self.log_path, source))?;
        Ok(text.lines().filter_map(parse_log_line).collect())
    }
}

impl Drop for MonitorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl MetricsSample {
    /// Parses the Prometheus or OpenMetrics text format and skips comments and malformed
    /// lines.
    pub fn parse(text: &str) -> MetricsSample {
        let values = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                Some((name.trim().to_owned(), value.trim().parse::<f64>().ok()?))
            })
            .collect();
        MetricsSample { values }
    }

    /// Returns the sample with this exact name (labels included), or 0 when it is absent.
    pub fn value(&self, name: &str) -> f64 {
        self.values.get(name).copied().unwrap_or(0.0)
    }

    /// Ticks evaluated so far.
    pub fn ticks(&self) -> f64 {
        self.value("masakari_hostmonitor_ticks_total")
    }

    /// Sum and count of the tick duration histogram, in seconds and observations.
    pub fn tick_seconds(&self) -> (f64, f64) {
        (
            self.value("masakari_hostmonitor_tick_duration_seconds_sum"),
            self.value("masakari_hostmonitor_tick_duration_seconds_count"),
        )
    }

    pub fn hosts_monitored(&self) -> f64 {
        self.value("masakari_hostmonitor_hosts_monitored")
    }

    pub fn watch_events(&self) -> f64 {
        self.value("masakari_hostmonitor_watch_events_total")
    }

    pub fn watch_relists(&self) -> f64 {
        self.value("masakari_hostmonitor_watch_relists_total")
    }
}

/// Reserves a free loopback port by binding port 0 and releasing it.
fn free_loopback_port() -> Result<SocketAddr, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(BenchError::NoFreePort)?;
    listener.local_addr().map_err(BenchError::NoFreePort)
}

fn write(path: &Path, content: &str) -> Result<(), BenchError> {
    std::fs::write(path, content).map_err(|source| BenchError::io(path, source))
}

fn kubeconfig_text(api: SocketAddr) -> String {
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         current-context: bench\n\
         clusters:\n\
         - name: bench\n  cluster:\n    server: http://{api}\n\
         contexts:\n\
         - name: bench\n  context:\n    cluster: bench\n    user: bench\n\
         users:\n\
         - name: bench\n  user: {{}}\n"
    )
}

fn config_text(
    kubeconfig: &Path,
    endpoints: &Endpoints,
    settings: &MonitorSettings,
    admin: SocketAddr,
) -> String {
    format!(
        "[DEFAULT]\n\
         use_json = true\n\
         hostname = masakari-bench\n\
         \n\
         [host]\n\
         monitoring_interval = {interval}\n\
         monitoring_samples = {samples}\n\
         \n\
         [api]\n\
         auth_url = {auth_url}\n\
         auth_type = password\n\
         username = masakari\n\
         password = bench-password\n\
         project_name = admin\n\
         user_domain_name = Default\n\
         project_domain_name = Default\n\
         \n\
         [kubernetes]\n\
         kubeconfig = {kubeconfig}\n\
         monitoring_node_labels = {labels}\n\
         \n\
         [circuit_breaker]\n\
         threshold = {threshold}\n\
         \n\
         [leader_election]\n\
         enabled = false\n\
         \n\
         [admin]\n\
         listen_address = {admin}\n",
        interval = settings.interval_secs,
        samples = settings.samples,
        auth_url = endpoints.auth_url,
        kubeconfig = kubeconfig.display(),
        labels = settings.node_labels,
        threshold = settings.breaker_threshold,
    )
}

fn parse_memory(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// Returns `utime + stime` in clock ticks. The command name in field 2 may contain spaces, so
/// fields are counted after its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command name, field 3 (state) has index 0, so utime (14) and stime (15) have
    // indices 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second.max(1))
}

fn parse_log_line(line: &str) -> Option<LogLine> {
    let value: Value = serde_json::from_str(line).ok()?;
    let timestamp = value.get("timestamp")?.as_str()?.parse().ok()?;
    let message = value.get("message")?.as_str()?.to_owned();
    let host = value.get("host").and_then(Value::as_str).map(str::to_owned);
    Some(LogLine {
        timestamp,
        message,
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_from_proc_status() {
        let status = "Name:\tmasakari-hostmo\nVmPeak:\t  300000 kB\nVmHWM:\t   41234 kB\nVmRSS:\t   30012 kB\n";
        let memory = parse_memory(status).unwrap();
        assert_eq!(memory.rss_kib, 30_012);
        assert_eq!(memory.hwm_kib, 41_234);
        assert_eq!(parse_memory("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_ticks_from_proc_stat() {
        let stat =
            "4242 (masakari host) S 1 4242 4242 0 -1 4194560 900 0 0 0 125 37 0 0 20 0 5 0 123 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(162));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn ticks_convert_to_duration() {
        assert_eq!(ticks_to_duration(162, 100), Duration::from_millis(1_620));
        assert_eq!(ticks_to_duration(3, 0), Duration::from_secs(3));
    }

    #[test]
    fn metrics_text_parsed() {
        let text = "# HELP masakari_hostmonitor_ticks Ticks evaluated.\n\
                    # TYPE masakari_hostmonitor_ticks counter\n\
                    masakari_hostmonitor_ticks_total 42\n\
                    masakari_hostmonitor_tick_duration_seconds_sum 0.0125\n\
                    masakari_hostmonitor_tick_duration_seconds_count 40\n\
                    masakari_hostmonitor_notifications_total{outcome=\"delivered\"} 3\n\
                    # EOF\n";
        let sample = MetricsSample::parse(text);
        assert_eq!(sample.ticks(), 42.0);
        assert_eq!(sample.tick_seconds(), (0.0125, 40.0));
        assert_eq!(
            sample.value("masakari_hostmonitor_notifications_total{outcome=\"delivered\"}"),
            3.0
        );
        assert_eq!(sample.hosts_monitored(), 0.0);
    }

    #[test]
    fn log_line_parsed() {
        let line = r#"{"timestamp":"2026-12-04T21:30:00.123456Z","level":"INFO","message":"Host failed","host":"compute-00001","target":"masakari_hostmonitor::monitor"}"#;
        let parsed = parse_log_line(line).unwrap();
        assert_eq!(parsed.message, "Host failed");
        assert_eq!(parsed.host.as_deref(), Some("compute-00001"));
        assert_eq!(
            parsed.timestamp,
            "2026-12-04T21:30:00.123456Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(parse_log_line("2026-12-04 plain text"), None);
    }

    #[test]
    fn config_names_every_endpoint() {
        let endpoints = Endpoints {
            kube_api: "127.0.0.1:6443".parse().unwrap(),
            auth_url: "http://127.0.0.1:5000/v3".to_owned(),
        };
        let settings = MonitorSettings {
            interval_secs: 1,
            samples: 2,
            breaker_threshold: "600".to_owned(),
            node_labels: "a=b".to_owned(),
        };
        let text = config_text(
            Path::new("/tmp/k"),
            &endpoints,
            &settings,
            "127.0.0.1:9797".parse().unwrap(),
        );
        for expected in [
            "auth_url = http://127.0.0.1:5000/v3",
            "kubeconfig = /tmp/k",
            "monitoring_interval = 1",
            "monitoring_samples = 2",
            "threshold = 600",
            "enabled = false",
            "listen_address = 127.0.0.1:9797",
            "use_json = true",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(
            kubeconfig_text("127.0.0.1:6443".parse().unwrap())
                .contains("server: http://127.0.0.1:6443")
        );
    }
}
