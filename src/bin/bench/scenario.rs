//! One measurement run at one fleet size: start-up, steady state, churn, detection latency and a
//! mass failure, against one monitor process.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use masakari_hostmonitor::fake::kube_api::{ApiStats, FakeKubeApi, FakeKubeSettings};
use masakari_hostmonitor::fake::openstack::{FakeOpenStack, ReceivedNotification};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::BenchError;
use crate::fleet;
use crate::process::{Endpoints, LogLine, Memory, MetricsSample, MonitorProcess, MonitorSettings};

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// `[host] monitoring_interval`, seconds.
    pub interval_secs: u64,
    /// Length of the steady-state window and of the churn window.
    pub window: Duration,
    /// Nodes whose heartbeat changes per minute during the churn window, in percent of the fleet.
    pub churn_percent_per_minute: f64,
    /// Hosts failed one per tick to measure detection latency.
    pub detections: usize,
    /// Hosts failed in one tick for the mass-failure measurement.
    pub mass_failures: usize,
    /// Delay of Masakari's responses during the mass failure.
    pub masakari_latency: Duration,
    /// Interval between BOOKMARK events on the fake API server's watches.
    pub bookmark_interval: Duration,
    /// Maximum wait for the monitor to list every Node and tick.
    pub startup_timeout: Duration,
}

/// Everything measured in one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFigures {
    pub nodes: usize,
    pub node_bytes: usize,
    pub startup: Startup,
    /// After the initial sync and the steady-state window.
    pub memory_steady: MemoryFigures,
    pub steady: Window,
    pub churn: Window,
    /// Node updates applied during the churn window.
    pub churn_updates: u64,
    pub detection: Detection,
    pub mass_failure: MassFailure,
    pub rewatch: Rewatch,
    /// At the end of the run, after the mass failure.
    pub memory_end: MemoryFigures,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Startup {
    /// From spawning the process to its first watch request, which follows the initial list.
    #[serde(default)]
    pub list_seconds: f64,
    /// From spawning the process to the first tick that monitors every Node.
    pub seconds: f64,
    pub list_requests: u64,
    pub watch_requests: u64,
    /// Response body bytes served by the fake API server.
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct MemoryFigures {
    pub rss_mib: f64,
    pub hwm_mib: f64,
}

/// Figures of one measurement window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Window {
    pub seconds: f64,
    pub ticks: f64,
    /// Process CPU time (user + system, every thread) per tick, from `/proc/<pid>/stat`.
    pub cpu_per_tick_ms: f64,
    /// The same from the process's CPU-time clock, with nanosecond resolution.
    pub cpu_clock_per_tick_ms: f64,
    /// Mean of the tick duration histogram over the window.
    pub tick_eval_ms: f64,
    pub list_requests: u64,
    pub watch_requests: u64,
    pub bytes: u64,
    /// Watch events the monitor applied (its `watch_events` counter).
    pub watch_events: f64,
    pub relists: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detection {
    /// Per host: Masakari receive time minus the time of the monitor's `Host failed` log line.
    pub after_log_ms: Vec<f64>,
    /// Per host: Masakari receive time minus the notification's `generated_time` (the start of
    /// the tick that completed the window).
    pub after_tick_start_ms: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MassFailure {
    pub hosts: usize,
    /// Hosts whose notification Masakari accepted (202).
    pub accepted: usize,
    /// Distinct `generated_time` values among them: 1 when every host failed in the same tick.
    pub ticks_spanned: usize,
    /// From the first `Host failed` log line to Masakari's response to the last notification.
    pub seconds_after_log: f64,
    /// From the failing tick's start (`generated_time`) to the last response.
    pub seconds_after_tick_start: f64,
}

/// API server load of one watch restart: the server ends every watch stream, as it does at the
/// watch's `timeoutSeconds`, and the monitor watches again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rewatch {
    pub list_requests: u64,
    pub watch_requests: u64,
    /// Bytes served from the end of the old stream (its final BOOKMARK) to the new stream
    /// being open.
    pub bytes: u64,
}

/// A reading of every counter at one moment.
struct Mark {
    at: tokio::time::Instant,
    cpu: Duration,
    cpu_clock: Duration,
    stats: ApiStats,
    metrics: MetricsSample,
}

/// Maps tokio instants of this process to wall-clock time.
#[derive(Clone, Copy)]
struct ClockAnchor {
    instant: tokio::time::Instant,
    wall: Timestamp,
}

/// Runs every phase against a new fake cluster, fake OpenStack and monitor process.
pub async fn run(
    binary: &Path,
    fleet_nodes: &[Value],
    settings: &RunSettings,
) -> Result<RunFigures, BenchError> {
    let nodes = fleet_nodes.len();
    let kube = FakeKubeApi::start_with(FakeKubeSettings {
        bookmark_interval: settings.bookmark_interval,
        ..FakeKubeSettings::default()
    })
    .await
    .map_err(BenchError::FakeKube)?;
    for node in fleet_nodes {
        kube.apply_node(node.clone())
            .map_err(BenchError::FakeKube)?;
    }
    let openstack = FakeOpenStack::start()
        .await
        .map_err(BenchError::FakeOpenStack)?;

    let endpoints = Endpoints {
        kube_api: kube.addr(),
        auth_url: openstack.auth_url(),
    };
    let monitor_settings = MonitorSettings {
        interval_secs: settings.interval_secs,
        samples: 1,
        // Above every down count of this run, so the breaker stays closed.
        breaker_threshold: nodes.to_string(),
        node_labels: fleet::label_selector(),
    };
    let http = reqwest::Client::new();
    let mut monitor = MonitorProcess::spawn(binary, &endpoints, &monitor_settings)?;
    let mut bench = Bench {
        kube: &kube,
        openstack: &openstack,
        monitor: &mut monitor,
        http: &http,
        settings,
        nodes,
    };

    let startup = bench.startup().await?;
    bench.wait_ticks(2).await?;
    let steady = bench.steady_window().await?;
    let memory_steady = mib(bench.monitor.memory()?);
    let (churn, churn_updates) = bench.churn_window().await?;
    let detection = bench.detection().await?;
    let mass_failure = bench.mass_failure().await?;
    let rewatch = bench.rewatch().await?;
    let memory_end = mib(bench.monitor.memory()?);

    Ok(RunFigures {
        nodes,
        node_bytes: fleet_nodes.first().map_or(0, fleet::json_size),
        startup,
        memory_steady,
        steady,
        churn,
        churn_updates,
        detection,
        mass_failure,
        rewatch,
        memory_end,
    })
}

/// The parts of one run every phase uses.
struct Bench<'a> {
    kube: &'a FakeKubeApi,
    openstack: &'a FakeOpenStack,
    monitor: &'a mut MonitorProcess,
    http: &'a reqwest::Client,
    settings: &'a RunSettings,
    nodes: usize,
}

impl Bench<'_> {
    /// Waits for the first tick that monitors every Node.
    async fn startup(&mut self) -> Result<Startup, BenchError> {
        let started = tokio::time::Instant::now();
        let mut list_seconds = None;
        let mut next_scrape = started;
        loop {
            self.monitor.check_running()?;
            if list_seconds.is_none() && self.kube.stats().watch_requests > 0 {
                list_seconds = Some(started.elapsed().as_secs_f64());
            }
            if tokio::time::Instant::now() >= next_scrape {
                next_scrape += Duration::from_millis(50);
                if let Ok(metrics) = self.monitor.scrape(self.http).await
                    && metrics.hosts_monitored() as usize == self.nodes
                {
                    break;
                }
            }
            if started.elapsed() > self.settings.startup_timeout {
                return Err(BenchError::Timeout(
                    "the first tick that monitors every Node",
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let stats = self.kube.stats();
        Ok(Startup {
            list_seconds: list_seconds.unwrap_or(seconds),
            seconds,
            list_requests: stats.list_requests,
            watch_requests: stats.watch_requests,
            bytes: stats.bytes_served,
        })
    }

    async fn steady_window(&mut self) -> Result<Window, BenchError> {
        let start = self.mark().await?;
        tokio::time::sleep(self.settings.window).await;
        let end = self.mark().await?;
        Ok(window(&start, &end))
    }

    /// Updates the heartbeat of `churn_percent_per_minute` of the Nodes per minute, spread over
    /// the window in one batch per second. No update changes a reading.
    async fn churn_window(&mut self) -> Result<(Window, u64), BenchError> {
        let per_second = self.nodes as f64 * self.settings.churn_percent_per_minute / 100.0 / 60.0;
        let start = self.mark().await?;
        let mut applied: u64 = 0;
        let mut next_node = 0usize;
        let mut second = tokio::time::interval(Duration::from_secs(1));
        while start.at.elapsed() < self.settings.window {
            second.tick().await;
            let due = (per_second * start.at.elapsed().as_secs_f64()).floor() as u64;
            let now = Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or_default();
            while applied < due {
                let name = fleet::node_name(next_node % self.nodes);
                next_node += 1;
                let Some(mut node) = self.kube.node(&name) else {
                    continue;
                };
                fleet::touch_heartbeat(&mut node, &now.to_string());
                self.kube.apply_node(node).map_err(BenchError::FakeKube)?;
                applied += 1;
            }
        }
        let end = self.mark().await?;
        Ok((window(&start, &end), applied))
    }

    /// Fails `detections` hosts, one right after each tick, and waits for each notification.
    async fn detection(&mut self) -> Result<Detection, BenchError> {
        let anchor = ClockAnchor::now();
        let hosts: Vec<String> = (0..self.settings.detections)
            .map(fleet::node_name)
            .collect();
        for host in &hosts {
            self.wait_ticks(1).await?;
            self.kube
                .set_ready(host, "False", "KubeletNotReady")
                .map_err(BenchError::FakeKube)?;
            self.wait_received(std::slice::from_ref(host)).await?;
        }
        let received = self.openstack.received();
        let logs = self.monitor.log_lines()?;
        let mut detection = Detection {
            after_log_ms: Vec::new(),
            after_tick_start_ms: Vec::new(),
        };
        for host in &hosts {
            let notification = first_received(&received, host)?;
            let arrived = anchor.wall_time(notification.received_at);
            let failed = host_failed_time(&logs, host)?;
            let generated = parse_generated_time(&notification.generated_time)?;
            detection
                .after_log_ms
                .push(millis(arrived.duration_since(failed)));
            detection
                .after_tick_start_ms
                .push(millis(arrived.duration_since(generated)));
        }
        Ok(detection)
    }

    /// Fails `mass_failures` hosts right after one tick, with Masakari responding after
    /// `masakari_latency`, and waits until Masakari has responded to every notification.
    async fn mass_failure(&mut self) -> Result<MassFailure, BenchError> {
        let first = self.settings.detections;
        let count = self.settings.mass_failures;
        let hosts: Vec<String> = (first..first + count).map(fleet::node_name).collect();
        self.openstack.set_latency(self.settings.masakari_latency);
        let anchor = ClockAnchor::now();
        self.wait_ticks(1).await?;
        for host in &hosts {
            self.kube
                .set_ready(host, "False", "KubeletNotReady")
                .map_err(BenchError::FakeKube)?;
        }
        self.wait_received(&hosts).await?;
        self.openstack.set_latency(Duration::ZERO);

        let received = self.openstack.received();
        let logs = self.monitor.log_lines()?;
        let mut first_failed: Option<Timestamp> = None;
        let mut first_generated: Option<Timestamp> = None;
        let mut last_answer: Option<Timestamp> = None;
        let mut generated_times = BTreeSet::new();
        let mut accepted = 0;
        for host in &hosts {
            let notification = first_received(&received, host)?;
            accepted += usize::from(notification.status == 202);
            generated_times.insert(notification.generated_time.clone());
            let generated = parse_generated_time(&notification.generated_time)?;
            let failed = host_failed_time(&logs, host)?;
            let answered = anchor.wall_time(notification.received_at);
            first_failed = Some(first_failed.map_or(failed, |t| t.min(failed)));
            first_generated = Some(first_generated.map_or(generated, |t| t.min(generated)));
            last_answer = Some(last_answer.map_or(answered, |t| t.max(answered)));
        }
        let seconds_after = |start: Option<Timestamp>| match (start, last_answer) {
            (Some(start), Some(end)) => end.duration_since(start).as_secs_f64(),
            _ => 0.0,
        };
        Ok(MassFailure {
            hosts: count,
            accepted,
            ticks_spanned: generated_times.len(),
            seconds_after_log: seconds_after(first_failed),
            seconds_after_tick_start: seconds_after(first_generated),
        })
    }

    /// Ends the watch stream and measures what watching again costs.
    async fn rewatch(&mut self) -> Result<Rewatch, BenchError> {
        let before = self.kube.stats();
        if self.kube.close_watches() == 0 {
            return Err(BenchError::Missing("an open watch to close".into()));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.kube.stats();
            if now.watch_requests > before.watch_requests && now.open_watches > 0 {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                self.monitor.check_running()?;
                return Err(BenchError::Timeout("the monitor to watch again"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Lets a list, if the monitor wrongly started one, show in the counters.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = self.kube.stats();
        Ok(Rewatch {
            list_requests: after.list_requests - before.list_requests,
            watch_requests: after.watch_requests - before.watch_requests,
            bytes: after.bytes_served - before.bytes_served,
        })
    }

    /// Reads the counters: `/metrics` first, then CPU time and the API server's counters.
    async fn mark(&mut self) -> Result<Mark, BenchError> {
        self.monitor.check_running()?;
        let metrics = self.monitor.scrape(self.http).await?;
        Ok(Mark {
            at: tokio::time::Instant::now(),
            cpu: self.monitor.cpu_time()?,
            cpu_clock: self.monitor.cpu_clock()?,
            stats: self.kube.stats(),
            metrics,
        })
    }

    /// Waits until the monitor has evaluated `count` more ticks, polling `/metrics`.
    async fn wait_ticks(&mut self, count: u32) -> Result<(), BenchError> {
        let target = self.monitor.scrape(self.http).await?.ticks() + f64::from(count);
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(self.settings.interval_secs * u64::from(count) + 30);
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if self.monitor.scrape(self.http).await?.ticks() >= target {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                self.monitor.check_running()?;
                return Err(BenchError::Timeout("the next tick"));
            }
        }
    }

    /// Waits until Masakari has responded to a notification for each of `hosts`.
    async fn wait_received(&mut self, hosts: &[String]) -> Result<(), BenchError> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.settings.interval_secs * 3 + 60);
        loop {
            let received = self.openstack.received();
            let names: BTreeSet<&str> = received.iter().map(|r| r.hostname.as_str()).collect();
            if hosts.iter().all(|host| names.contains(host.as_str())) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                self.monitor.check_running()?;
                return Err(BenchError::Timeout("a notification at Masakari"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl ClockAnchor {
    fn now() -> ClockAnchor {
        ClockAnchor {
            instant: tokio::time::Instant::now(),
            wall: Timestamp::now(),
        }
    }

    /// Converts `instant` to wall-clock time, measured from this anchor on the monotonic clock.
    fn wall_time(&self, instant: tokio::time::Instant) -> Timestamp {
        let offset = if instant >= self.instant {
            SignedDuration::try_from(instant - self.instant).unwrap_or(SignedDuration::MAX)
        } else {
            -SignedDuration::try_from(self.instant - instant).unwrap_or(SignedDuration::MAX)
        };
        self.wall.saturating_add(offset).unwrap_or(self.wall)
    }
}

fn window(start: &Mark, end: &Mark) -> Window {
    let ticks = end.metrics.ticks() - start.metrics.ticks();
    let cpu = end.cpu.saturating_sub(start.cpu);
    let cpu_clock = end.cpu_clock.saturating_sub(start.cpu_clock);
    let per_tick = |cpu: Duration| {
        if ticks > 0.0 {
            cpu.as_secs_f64() * 1000.0 / ticks
        } else {
            0.0
        }
    };
    let (sum_end, count_end) = end.metrics.tick_seconds();
    let (sum_start, count_start) = start.metrics.tick_seconds();
    let observations = count_end - count_start;
    Window {
        seconds: (end.at - start.at).as_secs_f64(),
        ticks,
        cpu_per_tick_ms: per_tick(cpu),
        cpu_clock_per_tick_ms: per_tick(cpu_clock),
        tick_eval_ms: if observations > 0.0 {
            (sum_end - sum_start) * 1000.0 / observations
        } else {
            0.0
        },
        list_requests: end.stats.list_requests - start.stats.list_requests,
        watch_requests: end.stats.watch_requests - start.stats.watch_requests,
        bytes: end.stats.bytes_served - start.stats.bytes_served,
        watch_events: end.metrics.watch_events() - start.metrics.watch_events(),
        relists: end.metrics.watch_relists() - start.metrics.watch_relists(),
    }
}

fn mib(memory: Memory) -> MemoryFigures {
    MemoryFigures {
        rss_mib: memory.rss_kib as f64 / 1024.0,
        hwm_mib: memory.hwm_kib as f64 / 1024.0,
    }
}

fn millis(duration: SignedDuration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn first_received<'a>(
    received: &'a [ReceivedNotification],
    host: &str,
) -> Result<&'a ReceivedNotification, BenchError> {
    received
        .iter()
        .find(|r| r.hostname == host)
        .ok_or_else(|| BenchError::Missing(format!("notification for {host} at Masakari")))
}

fn host_failed_time(logs: &[LogLine], host: &str) -> Result<Timestamp, BenchError> {
    logs.iter()
        .find(|line| line.message == "Host failed" && line.host.as_deref() == Some(host))
        .map(|line| line.timestamp)
        .ok_or_else(|| BenchError::Missing(format!("\"Host failed\" log line for {host}")))
}

/// Parses `generated_time` as the monitor sends it: UTC without a zone designator.
fn parse_generated_time(text: &str) -> Result<Timestamp, BenchError> {
    let invalid = || BenchError::Missing(format!("valid generated_time (got {text:?})"));
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Ok(timestamp);
    }
    let civil: jiff::civil::DateTime = text.parse().map_err(|_| invalid())?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|zoned| zoned.timestamp())
        .map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_time_read_as_utc() {
        let expected: Timestamp = "2026-12-04T21:30:00.123456Z".parse().unwrap();
        assert_eq!(
            parse_generated_time("2026-12-04T21:30:00.123456").unwrap(),
            expected
        );
        assert_eq!(
            parse_generated_time("2026-12-04T21:30:00.123456Z").unwrap(),
            expected
        );
        assert!(parse_generated_time("yesterday").is_err());
    }

    #[test]
    fn anchor_maps_instants_both_ways() {
        let anchor = ClockAnchor {
            instant: tokio::time::Instant::now(),
            wall: "2026-12-04T21:30:00Z".parse().unwrap(),
        };
        let later = anchor.instant + Duration::from_millis(250);
        assert_eq!(
            anchor.wall_time(later),
            "2026-12-04T21:30:00.25Z".parse::<Timestamp>().unwrap()
        );
        let earlier = anchor.instant - Duration::from_millis(250);
        assert_eq!(
            anchor.wall_time(earlier),
            "2026-12-04T21:29:59.75Z".parse::<Timestamp>().unwrap()
        );
    }
}
