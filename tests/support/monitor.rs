//! Runs the built `masakari-hostmonitor` binary as a child process for the end-to-end tests.
//!
//! [`MonitorProcess::start`] writes a `masakarimonitors.conf` into a temporary directory,
//! pointing at the fake Kubernetes API and at the `[api]` section the test passes, starts the
//! binary with `--config-file`, and captures its output to files there. The monitor logs one
//! JSON object per line at DEBUG, so every delivery attempt leaves exactly one line with the
//! fields `host`, `outcome` and `attempt`. The first failure logs at WARN, later fast retries at
//! DEBUG, slow retries at ERROR and final outcomes at INFO or ERROR. Dropping the value kills
//! the process.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use masakari_hostmonitor::fake::kube_api::{FakeKubeApi, NodeFixture};
use serde_json::Value;
use tempfile::TempDir;

use super::cluster::{admin_get, free_address, write_kubeconfig};
use super::e2e_stack::Stack;

/// Time the monitor gets to sync its watch, tick once and obtain a first token.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Lines of the monitor's output shown in a failure message.
const TAIL_LINES: usize = 40;

/// A running `masakari-hostmonitor` process, killed on drop.
pub struct MonitorProcess {
    child: Child,
    /// Holds the configuration, the kubeconfig and the captured output.
    dir: TempDir,
    config_path: PathBuf,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    admin: SocketAddr,
}

impl MonitorProcess {
    /// Starts the binary against `kube` with the `[api]` section `api` (see [`password_api`]
    /// and [`application_credential_api`]) and `extra` appended to the configuration.
    ///
    /// The base configuration ticks every second and fails a host after two `Down` readings.
    /// It retries a failed notification 3 times at 1 s and then every 5 s. It disables leader
    /// election and the circuit breaker, and serves `/readyz` and `/metrics` on a free
    /// loopback port. `extra` may repeat a section: within one file the last assignment wins.
    pub fn start(kube: &FakeKubeApi, api: &str, extra: &str) -> MonitorProcess {
        let dir = tempfile::tempdir().expect("temporary directory");
        let kubeconfig = write_kubeconfig(kube.addr(), dir.path());
        let admin = free_address();
        let config = format!(
            "[DEFAULT]\n\
             use_json = true\n\
             debug = true\n\
             hostname = e2e-monitor\n\
             graceful_shutdown_timeout = 0\n\
             \n\
             [host]\n\
             monitoring_interval = 1\n\
             monitoring_samples = 2\n\
             api_retry_max = 3\n\
             api_retry_interval = 1\n\
             api_slow_retry_interval = 5\n\
             \n\
             [kubernetes]\n\
             kubeconfig = {kubeconfig}\n\
             \n\
             [leader_election]\n\
             enabled = false\n\
             \n\
             [circuit_breaker]\n\
             enabled = false\n\
             \n\
             [admin]\n\
             listen_address = {admin}\n\
             \n\
             {api}\n\
             {extra}\n",
            kubeconfig = kubeconfig.display(),
        );
        let config_path = dir.path().join("masakarimonitors.conf");
        std::fs::write(&config_path, config).expect("configuration written");

        let stdout_path = dir.path().join("stdout.log");
        let stderr_path = dir.path().join("stderr.log");
        let stdout = File::create(&stdout_path).expect("stdout file created");
        let stderr = File::create(&stderr_path).expect("stderr file created");
        let child = Command::new(env!("CARGO_BIN_EXE_masakari-hostmonitor"))
            .arg("--config-file")
            .arg(&config_path)
            .env_remove("RUST_LOG")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("masakari-hostmonitor starts");
        MonitorProcess {
            child,
            dir,
            config_path,
            stdout_path,
            stderr_path,
            admin,
        }
    }

    /// Address of the admin server (`/readyz`, `/metrics`).
    pub fn admin_address(&self) -> SocketAddr {
        self.admin
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Waits until `/readyz` returns 200: the watch is synced, a tick ran and a first token
    /// arrived. Panics with the monitor's output otherwise.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some((200, _)) = admin_get(self.admin, "/readyz").await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("masakari-hostmonitor exited with {status}\n{}", self.tail());
            }
            assert!(
                Instant::now() < deadline,
                "masakari-hostmonitor not ready after {READY_TIMEOUT:?}\n{}",
                self.tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Returns every JSON log line written so far; lines that are not JSON are skipped.
    pub fn log_lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Log lines about `host` with the given message.
    pub fn lines_with_message(&self, host: &str, message: &str) -> Vec<Value> {
        self.log_lines()
            .into_iter()
            .filter(|line| line["host"] == host && line["message"] == message)
            .collect()
    }

    /// Returns the delivery attempts made for `host`, one log line each, in order.
    pub fn attempts(&self, host: &str) -> Vec<Value> {
        self.log_lines()
            .into_iter()
            .filter(|line| line["host"] == host && line.get("attempt").is_some())
            .collect()
    }

    /// Outcomes of the delivery attempts for `host`, in order.
    pub fn outcomes(&self, host: &str) -> Vec<String> {
        self.attempts(host)
            .iter()
            .map(|line| line["outcome"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until `host` has at least `count` delivery attempts, and returns them. Panics
    /// with the monitor's output after `timeout`.
    pub async fn wait_for_attempts(
        &mut self,
        host: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        self.wait_for(
            timeout,
            &format!("{count} attempts for {host}"),
            |monitor| {
                let attempts = monitor.attempts(host);
                (attempts.len() >= count).then_some(attempts)
            },
        )
        .await
    }

    /// Waits until a log line about `host` has `message`, and returns the first such line.
    pub async fn wait_for_message(
        &mut self,
        host: &str,
        message: &str,
        timeout: Duration,
    ) -> Value {
        self.wait_for(timeout, &format!("{message:?} for {host}"), |monitor| {
            monitor.lines_with_message(host, message).into_iter().next()
        })
        .await
    }

    /// Waits until `check` returns a value, polling every 100 ms. Panics with `what` and the
    /// monitor's output after `timeout` or when the process exits.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&MonitorProcess) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "masakari-hostmonitor exited with {status} while waiting for {what}\n{}",
                    self.tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} after {timeout:?}\n{}",
                self.tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads one sample from `/metrics`, such as
    /// `masakari_hostmonitor_notifications_total{outcome="delivered"}`; `None` when absent.
    pub async fn metric(&self, sample: &str) -> Option<f64> {
        let (status, body) = admin_get(self.admin, "/metrics").await?;
        assert_eq!(status, 200, "GET /metrics: {body}");
        metric_value(&body, sample)
    }

    /// Returns the last lines of the monitor's output, for failure messages.
    pub fn tail(&self) -> String {
        let stdout = std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = stdout.lines().collect();
        let start = lines.len().saturating_sub(TAIL_LINES);
        format!(
            "--- last {} lines of output ({}):\n{}\n--- stderr:\n{stderr}",
            lines.len() - start,
            self.dir.path().display(),
            lines[start..].join("\n")
        )
    }
}

impl Drop for MonitorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the value of `sample` (metric name with its labels, as exposed) in a Prometheus
/// text exposition.
pub fn metric_value(exposition: &str, sample: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == sample)
        .and_then(|(_, value)| value.parse().ok())
}

/// Starts the fake Kubernetes API with a Ready Node for each name.
pub async fn fake_cluster(nodes: &[String]) -> FakeKubeApi {
    let kube = FakeKubeApi::start().await;
    for name in nodes {
        kube.apply_node(NodeFixture::ready(name).to_json())
            .expect("node applied");
    }
    kube
}

/// Sets the Node's Ready condition to `Unknown`, as the node lifecycle controller does when
/// the kubelet stops posting status.
pub fn fail_node(kube: &FakeKubeApi, name: &str) {
    kube.set_ready(name, "Unknown", "NodeStatusUnknown")
        .expect("node marked Unknown");
}

/// Sets the Node's Ready condition back to `True`.
pub fn recover_node(kube: &FakeKubeApi, name: &str) {
    kube.set_ready(name, "True", "KubeletReady")
        .expect("node marked Ready");
}

/// Builds the `[api]` section for the `masakari` user's password with `auth_type` and `auth_url`.
pub fn password_api(stack: &Stack, auth_type: &str, auth_url: &str) -> String {
    let user = &stack.masakari_user;
    format!(
        "[api]\n\
         auth_type = {auth_type}\n\
         auth_url = {auth_url}\n\
         username = {username}\n\
         password = {password}\n\
         project_name = {project}\n\
         user_domain_name = {domain}\n\
         project_domain_name = {domain}\n\
         region = {region}\n\
         timeout = 30\n",
        username = user.username,
        password = user.password.replace('$', "$$"),
        project = user.project_name,
        domain = stack.domain_name,
        region = stack.region_name,
    )
}

/// Builds the `[api]` section for the `masakari` user's application credential (`/v3` URL).
pub fn application_credential_api(stack: &Stack) -> String {
    format!(
        "[api]\n\
         auth_type = v3applicationcredential\n\
         auth_url = {auth_url}\n\
         application_credential_id = {id}\n\
         application_credential_secret = {secret}\n\
         region = {region}\n\
         timeout = 30\n",
        auth_url = stack.auth_url,
        id = stack.app_cred_id,
        secret = stack.app_cred_secret.replace('$', "$$"),
        region = stack.region_name,
    )
}

#[cfg(test)]
mod tests {
    use super::metric_value;

    #[test]
    fn metric_value_finds_labelled_sample() {
        let text = "# HELP x y\nm_total{outcome=\"delivered\"} 2\nm_total{outcome=\"retried\"} 5\n";
        assert_eq!(
            metric_value(text, "m_total{outcome=\"retried\"}"),
            Some(5.0)
        );
        assert_eq!(metric_value(text, "m_total{outcome=\"rejected\"}"), None);
    }
}
