//! Masakari client against wiremock Keystone and Masakari on 127.0.0.1, on the real clock
//! (wiremock serves real sockets, which a paused clock would race against the request timeout).

use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use masakari_hostmonitor::config::{ApiSection, AuthType, Config};
use masakari_hostmonitor::delivery::{self, DeliverySettings, Notification, Outcome, SendPermit};
use masakari_hostmonitor::masakari::MasakariClient;
use masakari_hostmonitor::metrics::{Metrics, OutcomeLabel};
use masakari_hostmonitor::secret::Secret;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PASSWORD: &str = "pw-Zq8!secret";
const NOTIFICATIONS: &str = "/instance-ha/v1/p1/notifications";

fn api(server: &MockServer) -> ApiSection {
    captured_logs();
    let mut api = Config::default().api;
    api.auth.auth_type = AuthType::V3Password;
    api.auth.auth_url = format!("{}/identity/v3", server.uri());
    api.auth.username = Some("masakari".into());
    api.auth.user_domain_name = Some("Default".into());
    api.auth.password = Some(Secret::new(PASSWORD));
    api.auth.project_name = Some("service".into());
    api.auth.project_domain_name = Some("Default".into());
    api.timeout = Duration::from_secs(5);
    api
}

fn token_reply(server: &MockServer, token: &str) -> ResponseTemplate {
    let expires_at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    // The catalog URL ends in `/`, which the client must not double.
    let url = format!("{}/instance-ha/v1/p1/", server.uri());
    ResponseTemplate::new(201)
        .insert_header("X-Subject-Token", token)
        .set_body_json(json!({"token": {
            "expires_at": expires_at.to_string(),
            "catalog": [{"type": "instance-ha", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": url}]}]
        }}))
}

async fn mount_keystone(server: &MockServer, tokens: &[&str]) {
    for (i, token) in tokens.iter().enumerate() {
        Mock::given(method("POST"))
            .and(path("/identity/v3/auth/tokens"))
            .respond_with(token_reply(server, token))
            .up_to_n_times(1)
            .expect(1)
            .with_priority(i as u8 + 1)
            .mount(server)
            .await;
    }
}

fn notification() -> Notification {
    Notification {
        host: "compute-0".into(),
        generated_time: "2026-08-01T12:00:03.250Z".parse().unwrap(),
    }
}

fn expected_body() -> Value {
    json!({"notification": {
        "type": "COMPUTE_HOST",
        "hostname": "compute-0",
        "generated_time": "2026-08-01T12:00:03.250000",
        "payload": {"event": "STOPPED", "cluster_status": "OFFLINE", "host_status": "NORMAL"}
    }})
}

/// A predicate on the outcome a response must produce.
type OutcomeCheck = fn(&Outcome) -> bool;

fn fault(name: &str, code: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({name: {"code": code, "message": message}}))
}

#[tokio::test]
async fn posts_exact_body_with_token() {
    let server = MockServer::start().await;
    mount_keystone(&server, &["tok-1"]).await;
    Mock::given(method("POST"))
        .and(path(NOTIFICATIONS))
        .and(header("x-auth-token", "tok-1"))
        .and(body_json(expected_body()))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(
                json!({"notification": {"notification_uuid": "n-1", "status": "new"}}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;

    let client = MasakariClient::from_config(&api(&server), Metrics::unregistered()).unwrap();
    let outcome = client.notify(&notification()).await;

    assert_eq!(
        outcome,
        Outcome::Delivered {
            notification_uuid: Some("n-1".into())
        }
    );
    let requests = server.received_requests().await.unwrap();
    let post = requests
        .iter()
        .find(|r| r.url.path() == NOTIFICATIONS)
        .unwrap();
    assert!(post.headers.get("openstack-api-version").is_none());
}

#[tokio::test]
async fn each_status_has_its_outcome() {
    let cases: Vec<(ResponseTemplate, OutcomeCheck)> = vec![
        (
            fault(
                "conflictingRequest",
                409,
                "Notification received from host compute-0 of type COMPUTE_HOST is duplicate.",
            ),
            |o| matches!(o, Outcome::AlreadyKnown { message } if message.contains("is duplicate")),
        ),
        (
            fault(
                "badRequest",
                400,
                "Host with name compute-0 could not be found.",
            ),
            |o| matches!(o, Outcome::Rejected { message } if message.contains("could not be found")),
        ),
        (
            fault(
                "forbidden",
                403,
                "Policy doesn't allow os_masakari_api:notifications:create to be performed.",
            ),
            |o| matches!(o, Outcome::ConfigError { reason } if reason.contains("403") && reason.contains("Policy")),
        ),
        (
            ResponseTemplate::new(404),
            |o| matches!(o, Outcome::ConfigError { reason } if reason.contains("404")),
        ),
        (
            fault("masakariFault", 500, "Unexpected API Error."),
            |o| matches!(o, Outcome::Retryable { reason } if reason.contains("500")),
        ),
        (ResponseTemplate::new(503), |o| {
            matches!(o, Outcome::Retryable { .. })
        }),
    ];
    for (reply, check) in cases {
        let server = MockServer::start().await;
        mount_keystone(&server, &["tok-1"]).await;
        Mock::given(method("POST"))
            .and(path(NOTIFICATIONS))
            .respond_with(reply)
            .expect(1)
            .mount(&server)
            .await;
        let client = MasakariClient::from_config(&api(&server), Metrics::unregistered()).unwrap();
        let outcome = client.notify(&notification()).await;
        assert!(check(&outcome), "unexpected {outcome:?}");
    }
}

#[tokio::test]
async fn timeout_and_connection_errors_are_retryable() {
    let server = MockServer::start().await;
    mount_keystone(&server, &["tok-1", "tok-2"]).await;
    Mock::given(method("POST"))
        .and(path(NOTIFICATIONS))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;
    let mut api = api(&server);
    api.timeout = Duration::from_millis(300);
    let client = MasakariClient::from_config(&api, Metrics::unregistered()).unwrap();
    let outcome = client.notify(&notification()).await;
    assert!(
        matches!(&outcome, Outcome::Retryable { reason } if reason.contains("timed out")),
        "{outcome:?}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    api.endpoint_override = Some(format!("http://{closed}/v1"));
    api.timeout = Duration::from_secs(5);
    let client = MasakariClient::from_config(&api, Metrics::unregistered()).unwrap();
    let outcome = client.notify(&notification()).await;
    assert!(matches!(outcome, Outcome::Retryable { .. }), "{outcome:?}");
}

#[tokio::test]
async fn unauthorized_reauthenticates_once() {
    let server = MockServer::start().await;
    mount_keystone(&server, &["tok-1", "tok-2"]).await;
    Mock::given(method("POST"))
        .and(path(NOTIFICATIONS))
        .and(header("x-auth-token", "tok-1"))
        .respond_with(fault(
            "error",
            401,
            "The request you have made requires authentication.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(NOTIFICATIONS))
        .and(header("x-auth-token", "tok-2"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(json!({"notification": {"notification_uuid": "n-2"}})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let client = MasakariClient::from_config(&api(&server), Metrics::unregistered()).unwrap();
    let outcome = client.notify(&notification()).await;
    assert_eq!(
        outcome,
        Outcome::Delivered {
            notification_uuid: Some("n-2".into())
        }
    );
}

#[tokio::test]
async fn second_unauthorized_is_an_error() {
    let server = MockServer::start().await;
    mount_keystone(&server, &["tok-1", "tok-2"]).await;
    Mock::given(method("POST"))
        .and(path(NOTIFICATIONS))
        .respond_with(fault(
            "error",
            401,
            "The request you have made requires authentication.",
        ))
        .expect(2)
        .mount(&server)
        .await;

    let client = MasakariClient::from_config(&api(&server), Metrics::unregistered()).unwrap();
    let outcome = client.notify(&notification()).await;
    assert!(
        matches!(&outcome, Outcome::ConfigError { reason } if reason.contains("401")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn keystone_failure_keeps_notification_pending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/identity/v3/auth/tokens"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let client = MasakariClient::from_config(&api(&server), Metrics::unregistered()).unwrap();
    assert!(matches!(
        client.notify(&notification()).await,
        Outcome::Retryable { .. }
    ));

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/identity/v3/auth/tokens"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    let client = MasakariClient::from_config(&api(&server), Metrics::unregistered()).unwrap();
    assert!(matches!(
        client.notify(&notification()).await,
        Outcome::ConfigError { .. }
    ));
}

/// The first POST reaches Masakari but times out on the client side; the retry gets 409.
#[tokio::test]
async fn conflict_after_timeout_counts_as_delivered() {
    let server = MockServer::start().await;
    mount_keystone(&server, &["tok-1"]).await;
    Mock::given(method("POST"))
        .and(path(NOTIFICATIONS))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(2)))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(NOTIFICATIONS))
        .respond_with(fault(
            "conflictingRequest",
            409,
            "Notification received from host compute-0 of type COMPUTE_HOST is duplicate.",
        ))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;

    let mut api = api(&server);
    api.timeout = Duration::from_millis(300);
    let mut queue = RealQueue::start(&api, watch::channel(true).1);

    queue.handle.submit(notification());
    queue.wait_for("delivered").await;
    queue.stop().await;

    assert_eq!(queue.count("delivered"), 1);
    assert_eq!(queue.count("already_known"), 0);
    assert_eq!(queue.count("retried"), 1);
}

#[tokio::test]
async fn outage_then_notified_once() {
    let server = MockServer::start().await;
    mount_keystone(&server, &["tok-1"]).await;
    Mock::given(method("POST"))
        .and(path(NOTIFICATIONS))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .expect(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(NOTIFICATIONS))
        .and(body_json(expected_body()))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(json!({"notification": {"notification_uuid": "n-1"}})),
        )
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;

    let mut queue = RealQueue::start(&api(&server), watch::channel(true).1);
    queue.handle.submit(notification());
    queue.wait_for("delivered").await;
    queue.stop().await;

    assert_eq!(queue.count("retried"), 3);
    assert_eq!(queue.count("delivered"), 1);
}

#[tokio::test]
async fn recovered_host_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;

    let (breaker, breaker_closed) = watch::channel(false);
    let mut queue = RealQueue::start(&api(&server), breaker_closed);
    queue.handle.submit(notification());
    tokio::time::sleep(Duration::from_millis(50)).await;
    queue.handle.cancel("compute-0");
    tokio::time::sleep(Duration::from_millis(50)).await;
    breaker.send_replace(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    queue.stop().await;

    assert_eq!(queue.count("cancelled"), 1);
}

/// A delivery queue around a real [`MasakariClient`], with fast retries.
struct RealQueue {
    handle: delivery::DeliveryHandle,
    metrics: Metrics,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _leader: watch::Sender<bool>,
}

impl RealQueue {
    fn start(api: &ApiSection, breaker_closed: watch::Receiver<bool>) -> Self {
        let client = MasakariClient::from_config(api, Metrics::unregistered()).unwrap();
        let mut config = Config::default();
        config.host.api_retry_interval = Duration::from_millis(20);
        let metrics = Metrics::unregistered();
        let (handle, rx) = delivery::channel();
        let (leader_sender, leader) = watch::channel(true);
        let shutdown = CancellationToken::new();
        let task = delivery::spawn(
            rx,
            Arc::new(client),
            SendPermit {
                breaker_closed,
                leader,
            },
            DeliverySettings::from_config(&config),
            metrics.clone(),
            shutdown.clone(),
        );
        RealQueue {
            handle,
            metrics,
            shutdown,
            task,
            _leader: leader_sender,
        }
    }

    fn count(&self, outcome: &str) -> u64 {
        self.metrics
            .notifications
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .get()
    }

    /// Polls the outcome counter for up to five seconds of real time.
    async fn wait_for(&self, outcome: &str) {
        for _ in 0..100 {
            if self.count(outcome) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(&mut self) {
        self.shutdown.cancel();
        (&mut self.task).await.unwrap();
    }
}

/// Log output captured in memory.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Returns the log output of every test in this binary, so the secrets test also checks the
/// other tests' logs.
///
/// One global subscriber, because a thread-local one misses events whose callsites other test
/// threads registered first.
fn captured_logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    })
}

#[tokio::test]
async fn secrets_never_in_logs_errors_or_debug() {
    const APP_SECRET: &str = "ac-Vv93secret";
    const TOKENS: [&str; 2] = ["gAAAAAtok-first", "gAAAAAtok-second"];

    let logs = captured_logs();
    let mut seen = Vec::new();

    // Password flow with a 401 from Masakari, a re-authentication and a 403.
    let server = MockServer::start().await;
    mount_keystone(&server, &TOKENS).await;
    Mock::given(method("POST"))
        .and(path(NOTIFICATIONS))
        .respond_with(fault(
            "error",
            401,
            "The request you have made requires authentication.",
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(NOTIFICATIONS))
        .respond_with(fault("forbidden", 403, "Policy doesn't allow it."))
        .with_priority(2)
        .mount(&server)
        .await;
    let api = api(&server);
    let client = MasakariClient::from_config(&api, Metrics::unregistered()).unwrap();
    seen.push(format!("{:?}", client.notify(&notification()).await));
    seen.push(format!("{client:?}"));
    seen.push(format!("{api:?}"));

    // Application credential rejected by Keystone, and a Keystone timeout.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_delay(Duration::from_millis(50)))
        .mount(&server)
        .await;
    let mut api = api.clone();
    api.auth.auth_type = AuthType::V3ApplicationCredential;
    api.auth.auth_url = server.uri();
    api.auth.application_credential_id = Some("ac-1".into());
    api.auth.application_credential_secret = Some(Secret::new(APP_SECRET));
    let client = MasakariClient::from_config(&api, Metrics::unregistered()).unwrap();
    seen.push(format!("{:?}", client.notify(&notification()).await));
    let keystone = masakari_hostmonitor::keystone::KeystoneClient::new(
        &api,
        masakari_hostmonitor::keystone::build_http_client(&api).unwrap(),
        Metrics::unregistered(),
    )
    .unwrap();
    let error = keystone.session().await.unwrap_err();
    seen.push(error.to_string());
    seen.push(format!("{error:?}"));
    api.timeout = Duration::from_millis(10);
    let client = MasakariClient::from_config(&api, Metrics::unregistered()).unwrap();
    seen.push(format!("{:?}", client.notify(&notification()).await));

    let log_text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        log_text.contains("Keystone token issued"),
        "logs were not captured"
    );
    seen.push(log_text);
    for text in &seen {
        for secret in [PASSWORD, APP_SECRET, TOKENS[0], TOKENS[1]] {
            assert!(!text.contains(secret), "secret found in: {text}");
        }
    }
}
