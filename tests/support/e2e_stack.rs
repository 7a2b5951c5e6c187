//! Access to the loopback Keystone and masakari-api that `e2e/stack.sh start` runs.
//!
//! The stack writes its URLs, credentials and PIDs to a state file of `KEY=VALUE` lines;
//! `MASAKARI_E2E_STACK` contains that file's path. Without it the end-to-end tests skip.
//!
//! Masakari offers no way to delete notifications, and it returns 409 for a notification
//! for the same host and payload whose `generated_time` lies within 180 s of an earlier one.
//! Tests therefore claim their own hosts with [`Stack::claim_hosts`], which hands out the
//! least recently claimed of the registered hosts across all test processes, and query
//! notifications generated since the test began.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Environment variable holding the path of the stack's state file (`stack.env`).
pub const STACK_ENV_VAR: &str = "MASAKARI_E2E_STACK";

/// Window in which masakari-api treats an equal notification for the same host as a
/// duplicate (`duplicate_notification_detection_interval`, default 180 s in masakari 22).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(180);

/// Exit code of `e2e/stack.sh start-engine` when RabbitMQ cannot be installed or started.
const RABBIT_UNAVAILABLE_EXIT_CODE: i32 = 3;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A user name and password with the project they scope to, all in the `Default` domain.
#[derive(Clone)]
pub struct PasswordUser {
    pub username: String,
    pub password: String,
    pub project_name: String,
    pub project_id: String,
}

/// The running stack as its state file describes it.
pub struct Stack {
    /// Keystone root, `http://127.0.0.1:PORT`.
    pub keystone_url: String,
    /// Keystone identity API, `http://127.0.0.1:PORT/v3`; the `auth_url` a client uses.
    pub auth_url: String,
    /// masakari-api root, `http://127.0.0.1:PORT`.
    pub masakari_url: String,
    /// Catalog URL of the instance-ha service, `http://127.0.0.1:PORT/v1/<project id>`.
    pub masakari_endpoint: String,
    pub region_name: String,
    /// Domain name of every user and project (`Default`, with that case).
    pub domain_name: String,
    /// Keystone's bootstrap administrator, scoped to project `admin`.
    pub admin: PasswordUser,
    /// The `masakari` service user, admin on project `service`; the monitor's identity.
    pub masakari_user: PasswordUser,
    /// Application credential of the `masakari` user.
    pub app_cred_id: String,
    pub app_cred_secret: String,
    pub segment_uuid: String,
    /// Host names registered in the segment, in registration order.
    pub hosts: Vec<String>,
    /// Keystone `[token] expiration` in seconds when the state file was read.
    pub token_expiration_secs: u64,
    /// masakari-api `notification_delay_max` in seconds when the state file was read.
    pub notification_delay_max_secs: u64,
    /// Whether masakari-engine runs, so notifications move past `new`.
    pub engine: bool,
    state_path: PathBuf,
    values: HashMap<String, String>,
    client: reqwest::Client,
}

impl Stack {
    /// Reads the stack from the state file named by `MASAKARI_E2E_STACK`.
    ///
    /// Returns `None`, after printing why, when the variable is unset, so a test can
    /// `let Some(stack) = Stack::from_env() else { return };`. Panics when the variable is
    /// set but the file is unreadable or incomplete: that is a broken setup, not a skip.
    pub fn from_env() -> Option<Stack> {
        let Some(path) = std::env::var_os(STACK_ENV_VAR) else {
            report_skip(&format!("{STACK_ENV_VAR} not set (run e2e/stack.sh start)"));
            return None;
        };
        Some(Stack::from_file(Path::new(&path)))
    }

    /// Reads the stack from a state file.
    pub fn from_file(path: &Path) -> Stack {
        let text = std::fs::read_to_string(path).unwrap_or_else(|error| {
            panic!("cannot read stack state file {}: {error}", path.display())
        });
        let values = parse_state(&text);
        let get = |key: &str| -> String {
            values.get(key).cloned().unwrap_or_else(|| {
                panic!(
                    "stack state file {} has no {key}; restart the stack with e2e/stack.sh start",
                    path.display()
                )
            })
        };
        let number = |key: &str| -> u64 {
            get(key).parse().unwrap_or_else(|error| {
                panic!("{key} in {} is not a number: {error}", path.display())
            })
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("reqwest client builds");

        Stack {
            keystone_url: get("KEYSTONE_URL"),
            auth_url: get("KEYSTONE_AUTH_URL"),
            masakari_url: get("MASAKARI_URL"),
            masakari_endpoint: get("MASAKARI_ENDPOINT"),
            region_name: get("REGION_NAME"),
            domain_name: get("USER_DOMAIN_NAME"),
            admin: PasswordUser {
                username: get("ADMIN_USERNAME"),
                password: get("ADMIN_PASSWORD"),
                project_name: get("ADMIN_PROJECT_NAME"),
                project_id: get("ADMIN_PROJECT_ID"),
            },
            masakari_user: PasswordUser {
                username: get("MASAKARI_USERNAME"),
                password: get("MASAKARI_PASSWORD"),
                project_name: get("SERVICE_PROJECT_NAME"),
                project_id: get("SERVICE_PROJECT_ID"),
            },
            app_cred_id: get("APP_CRED_ID"),
            app_cred_secret: get("APP_CRED_SECRET"),
            segment_uuid: get("SEGMENT_UUID"),
            hosts: get("HOSTS").split(',').map(str::to_owned).collect(),
            token_expiration_secs: number("TOKEN_EXPIRATION"),
            notification_delay_max_secs: number("NOTIFICATION_DELAY_MAX"),
            engine: values.get("ENGINE").is_some_and(|value| value == "1"),
            state_path: path.to_owned(),
            values,
            client,
        }
    }

    /// Returns any value of the state file, such as `KEYSTONE_PID` or `RABBIT_PORT`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Returns an HTTP client that never goes through a proxy.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Requests a token for the `masakari` user by password, scoped to project `service`.
    /// The user has role admin there, which masakari's notification policy requires.
    pub async fn token(&self) -> String {
        let user = &self.masakari_user;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user.username,
                "domain": {"name": self.domain_name},
                "password": user.password,
            }}},
            "scope": {"project": {"name": user.project_name, "domain": {"name": self.domain_name}}},
        }});
        self.request_token(&body).await
    }

    /// Requests a token with the application credential.
    pub async fn app_cred_token(&self) -> String {
        let body = json!({"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": self.app_cred_id, "secret": self.app_cred_secret},
        }}});
        self.request_token(&body).await
    }

    async fn request_token(&self, body: &Value) -> String {
        let response = self
            .client
            .post(format!("{}/auth/tokens", self.auth_url))
            .json(body)
            .send()
            .await
            .expect("Keystone token request is sent");
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "Keystone token request"
        );
        response
            .headers()
            .get("X-Subject-Token")
            .expect("Keystone returns X-Subject-Token")
            .to_str()
            .expect("token is ASCII")
            .to_owned()
    }

    /// Sends a COMPUTE_HOST notification the way the monitor does (host stopped,
    /// `host_status` NORMAL, `cluster_status` OFFLINE) and returns the status and body.
    pub async fn post_notification(
        &self,
        host: &str,
        generated_time: Timestamp,
    ) -> (StatusCode, Value) {
        let body = json!({"notification": {
            "type": "COMPUTE_HOST",
            "hostname": host,
            "generated_time": generated_time.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            "payload": {"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "OFFLINE"},
        }});
        let response = self
            .client
            .post(format!("{}/notifications", self.masakari_endpoint))
            .header("X-Auth-Token", self.token().await)
            .json(&body)
            .send()
            .await
            .expect("notification request is sent");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Maps each registered host name to its Masakari host UUID.
    pub async fn host_uuids(&self) -> HashMap<String, String> {
        self.list_hosts()
            .await
            .iter()
            .map(|host| {
                let name = host["name"].as_str().expect("host has a name");
                let uuid = host["uuid"].as_str().expect("host has a uuid");
                (name.to_owned(), uuid.to_owned())
            })
            .collect()
    }

    /// Lists the segment's hosts as masakari-api returns them (`name`, `uuid`,
    /// `on_maintenance`, ...).
    pub async fn list_hosts(&self) -> Vec<Value> {
        let url = format!(
            "{}/segments/{}/hosts",
            self.masakari_endpoint, self.segment_uuid
        );
        let body = self.get_json(&url, &[]).await;
        body["hosts"]
            .as_array()
            .cloned()
            .expect("host list has a hosts array")
    }

    /// Lists every notification Masakari stored for `host`, newest first.
    pub async fn notifications(&self, host: &str) -> Vec<Value> {
        self.list_notifications(host, None).await
    }

    /// Lists the notifications for `host` whose `generated_time` is at or after `since`.
    pub async fn notifications_since(&self, host: &str, since: Timestamp) -> Vec<Value> {
        self.list_notifications(host, Some(since)).await
    }

    /// Polls the notifications for `host` generated at or after `since` until there are at
    /// least `count` or `timeout` passes, and returns the last list seen.
    pub async fn wait_for_notifications(
        &self,
        host: &str,
        since: Timestamp,
        count: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let notifications = self.notifications_since(host, since).await;
            if notifications.len() >= count || std::time::Instant::now() >= deadline {
                return notifications;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn list_notifications(&self, host: &str, since: Option<Timestamp>) -> Vec<Value> {
        let uuids = self.host_uuids().await;
        let uuid = uuids
            .get(host)
            .unwrap_or_else(|| panic!("host {host} is not registered in the segment"));
        let mut query = vec![("source_host_uuid", uuid.clone())];
        if let Some(since) = since {
            query.push((
                "generated-since",
                since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ));
        }
        // No microversion header: with 1.1 or later masakari-api also fetches the recovery
        // workflow details, which fails while no engine runs.
        let url = format!("{}/notifications", self.masakari_endpoint);
        let body = self.get_json(&url, &query).await;
        body["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls a notification until its status is `status` or `timeout` passes, and returns
    /// the last status seen.
    pub async fn wait_for_status(
        &self,
        notification_uuid: &str,
        status: &str,
        timeout: Duration,
    ) -> String {
        let url = format!(
            "{}/notifications/{notification_uuid}",
            self.masakari_endpoint
        );
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let body = self.get_json(&url, &[]).await;
            let current = body["notification"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if current == status || std::time::Instant::now() >= deadline {
                return current;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Sets or clears `on_maintenance` on hosts. The engine sets it after recovering a host,
    /// and masakari-api then returns 409 for every notification for that host.
    ///
    /// Writes masakari's database through `e2e/stack.sh set-maintenance`: masakari-api
    /// returns 409 for every host update while any notification of the segment is `new`,
    /// `running` or `error`, and without the engine notifications stay `new`.
    pub async fn set_maintenance(&self, hosts: &[String], on_maintenance: bool) {
        if hosts.is_empty() {
            return;
        }
        let mut args = vec![on_maintenance.to_string()];
        args.extend(hosts.iter().cloned());
        if let Err((code, output)) = self.run_script("set-maintenance", &args, &[]).await {
            panic!("e2e/stack.sh set-maintenance failed ({code:?}): {output}");
        }
    }

    /// Clears `on_maintenance` on the given hosts. Notifications stay: masakari-api cannot
    /// delete them, so tests filter by host and by `generated-since` instead.
    pub async fn clear_maintenance(&self, hosts: &[String]) {
        self.set_maintenance(hosts, false).await;
    }

    /// Claims `count` hosts for one test and clears their maintenance flag.
    ///
    /// Hands out the least recently claimed hosts, coordinated across test processes through
    /// a ledger file next to the state file (`e2e/stack.sh start` empties it). Panics when
    /// one of them was claimed less than [`DUPLICATE_WINDOW`] ago, because masakari-api
    /// would reject the test's notifications as duplicates; more hosts fix that
    /// (`E2E_HOSTS`).
    pub async fn claim_hosts(&self, count: usize) -> Vec<String> {
        let claimed = self.claim_from_ledger(count);
        self.clear_maintenance(&claimed).await;
        claimed
    }

    fn claim_from_ledger(&self, count: usize) -> Vec<String> {
        assert!(
            count <= self.hosts.len(),
            "{count} hosts requested, {} registered",
            self.hosts.len()
        );
        let path = self.state_path.with_file_name("host-claims");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()));
        file.lock().expect("host ledger lock");

        let mut ledger = read_ledger(&mut file);
        let now = Timestamp::now();
        let mut candidates: Vec<(i64, usize, &String)> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(index, host)| (ledger.get(host).copied().unwrap_or(i64::MIN), index, host))
            .collect();
        candidates.sort();
        let claimed: Vec<String> = candidates[..count]
            .iter()
            .map(|(_, _, host)| (*host).clone())
            .collect();

        for (last, _, host) in &candidates[..count] {
            let age = now.as_second().saturating_sub(*last);
            assert!(
                age >= DUPLICATE_WINDOW.as_secs() as i64,
                "host {host} was claimed {age} s ago, within masakari's {} s duplicate window; \
                 register more hosts with E2E_HOSTS",
                DUPLICATE_WINDOW.as_secs()
            );
        }
        for host in &claimed {
            ledger.insert(host.clone(), now.as_second());
        }
        write_ledger(&mut file, &ledger);
        claimed
    }

    /// Restarts masakari-api, keeping its database and configuration.
    pub async fn restart_masakari(&self) {
        self.run_script("restart-masakari", &[], &[])
            .await
            .expect("restart-masakari");
    }

    /// Stops masakari-api, keeping its database; [`Stack::start_masakari`] brings it back.
    /// The returned guard starts it again when dropped, so a failing test does not leave
    /// the stack without masakari-api.
    pub async fn stop_masakari(&self) -> MasakariStopped {
        self.run_script("stop-masakari", &[], &[])
            .await
            .expect("stop-masakari");
        MasakariStopped {
            env: self.script_env(&[]),
            running: false,
        }
    }

    /// Starts masakari-api after [`Stack::stop_masakari`], with the same configuration.
    pub async fn start_masakari(&self, stopped: &mut MasakariStopped) {
        self.run_script("start-masakari", &[], &[])
            .await
            .expect("start-masakari");
        stopped.running = true;
    }

    /// Restarts masakari-api with another `notification_delay_max` (seconds). The value
    /// stays in force for later tests until changed again.
    pub async fn restart_masakari_with_delay_max(&self, seconds: u64) {
        let value = seconds.to_string();
        self.run_script(
            "restart-masakari",
            &[],
            &[("E2E_NOTIFICATION_DELAY_MAX", &value)],
        )
        .await
        .expect("restart-masakari");
    }

    /// Restarts Keystone with another token lifetime (seconds). Tokens issued before keep
    /// their expiry. The value stays in force for later tests until changed again.
    pub async fn restart_keystone_with_token_expiration(&self, seconds: u64) {
        let value = seconds.to_string();
        self.run_script("restart-keystone", &[], &[("E2E_TOKEN_EXPIRATION", &value)])
            .await
            .expect("restart-keystone");
    }

    /// Starts RabbitMQ and masakari-engine. Returns the reason as `Err` when RabbitMQ is
    /// unavailable, so the test can print it and skip; panics on any other failure.
    pub async fn start_engine(&self) -> Result<(), String> {
        match self.run_script("start-engine", &[], &[]).await {
            Ok(()) => Ok(()),
            Err((Some(RABBIT_UNAVAILABLE_EXIT_CODE), output)) => Err(output),
            Err((code, output)) => panic!("e2e/stack.sh start-engine failed ({code:?}): {output}"),
        }
    }

    /// Runs `e2e/stack.sh COMMAND` against this stack's state file.
    async fn run_script(
        &self,
        command: &str,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<(), (Option<i32>, String)> {
        let mut process = tokio::process::Command::new("bash");
        process.arg(stack_script()).arg(command).args(args);
        process.envs(self.script_env(env));
        let output = process.output().await.expect("e2e/stack.sh runs");
        if output.status.success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&output.stderr).into_owned();
            Err((output.status.code(), text))
        }
    }

    /// Environment for `e2e/stack.sh`: this stack's `E2E_HOME` and `E2E_VENV`, then `env`.
    fn script_env(&self, env: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = ["E2E_HOME", "E2E_VENV"]
            .into_iter()
            .filter_map(|key| Some((key.to_owned(), self.value(key)?.to_owned())))
            .collect();
        pairs.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        pairs
    }

    async fn get_json(&self, url: &str, query: &[(&str, String)]) -> Value {
        let response = self
            .client
            .get(url)
            .query(query)
            .header("X-Auth-Token", self.token().await)
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {url} failed: {error}"));
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "GET {url}: {body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("GET {url} returned invalid JSON: {error}"))
    }
}

/// masakari-api stopped by [`Stack::stop_masakari`]. Dropped before
/// [`Stack::start_masakari`] ran, it starts masakari-api again, blocking.
pub struct MasakariStopped {
    env: Vec<(String, String)>,
    running: bool,
}

impl Drop for MasakariStopped {
    fn drop(&mut self) {
        if self.running {
            return;
        }
        let status = std::process::Command::new("bash")
            .arg(stack_script())
            .arg("start-masakari")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status();
        if !matches!(status, Ok(status) if status.success()) {
            eprintln!("e2e/stack.sh start-masakari failed ({status:?}); restart the stack");
        }
    }
}

fn stack_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/stack.sh")
}

/// Parses `KEY=VALUE` lines; blank lines, comments and lines without `=` are skipped, and
/// one pair of surrounding quotes is removed from a value.
fn parse_state(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value
                .strip_prefix('"')
                .and_then(|inner| inner.strip_suffix('"'))
                .or_else(|| {
                    value
                        .strip_prefix('\'')
                        .and_then(|inner| inner.strip_suffix('\''))
                })
                .unwrap_or(value);
            (key.trim().to_owned(), value.to_owned())
        })
        .collect()
}

/// Reads the host ledger: one `HOST UNIX_SECONDS` line per claimed host.
fn read_ledger(file: &mut File) -> HashMap<String, i64> {
    let mut text = String::new();
    file.read_to_string(&mut text)
        .expect("host ledger is readable");
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .filter_map(|(host, seconds)| Some((host.to_owned(), seconds.parse().ok()?)))
        .collect()
}

fn write_ledger(file: &mut File, ledger: &HashMap<String, i64>) {
    let text: String = ledger
        .iter()
        .map(|(host, seconds)| format!("{host} {seconds}\n"))
        .collect();
    file.set_len(0).expect("host ledger truncates");
    file.rewind().expect("host ledger rewinds");
    file.write_all(text.as_bytes())
        .expect("host ledger is writable");
}

/// Prints why a test is skipped where the test runner does not capture it: libtest captures
/// `eprintln!` of passing tests, and a silent skip would read as a pass.
pub fn report_skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "skipped: {reason}");
}

#[cfg(test)]
mod tests {
    use super::parse_state;

    #[test]
    fn parse_state_reads_pairs() {
        let values = parse_state("# comment\nA=1\n\nB=\"two\"\nC=x=y\nnot a pair\n");
        assert_eq!(values.get("A").map(String::as_str), Some("1"));
        assert_eq!(values.get("B").map(String::as_str), Some("two"));
        assert_eq!(values.get("C").map(String::as_str), Some("x=y"));
        assert_eq!(values.len(), 3);
    }
}
