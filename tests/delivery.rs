//! Delivery queue behaviour against a scripted notifier, on tokio's paused clock.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use masakari_hostmonitor::config::Config;
use masakari_hostmonitor::delivery::{
    self, DeliveryHandle, DeliverySettings, DryRunNotifier, Notification, Notifier, Outcome,
    SendPermit,
};
use masakari_hostmonitor::metrics::{Metrics, OutcomeLabel};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

type Script = Box<dyn Fn(&Notification, Duration, usize) -> Outcome + Send + Sync>;

/// A notifier whose outcome is a function of the host, the time since the test started and the
/// number of earlier calls for that host.
struct FakeNotifier {
    script: Script,
    latency: Duration,
    start: Instant,
    calls: Mutex<Vec<(String, Duration)>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl FakeNotifier {
    fn new(
        latency: Duration,
        script: impl Fn(&Notification, Duration, usize) -> Outcome + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(FakeNotifier {
            script: Box::new(script),
            latency,
            start: Instant::now(),
            calls: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> Vec<(String, Duration)> {
        self.calls.lock().unwrap().clone()
    }

    fn calls_for(&self, host: &str) -> Vec<Duration> {
        self.calls()
            .into_iter()
            .filter(|(h, _)| h == host)
            .map(|(_, at)| at)
            .collect()
    }
}

impl Notifier for FakeNotifier {
    fn send<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let now = self.start.elapsed();
            let earlier = {
                let mut calls = self.calls.lock().unwrap();
                let earlier = calls
                    .iter()
                    .filter(|(h, _)| *h == notification.host)
                    .count();
                calls.push((notification.host.clone(), now));
                earlier
            };
            let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
            sleep(self.latency).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            (self.script)(notification, now, earlier)
        })
    }
}

fn delivered() -> Outcome {
    Outcome::Delivered {
        notification_uuid: Some("uuid-1".into()),
    }
}

fn retryable() -> Outcome {
    Outcome::Retryable {
        reason: "Masakari returned 503".into(),
    }
}

fn notification(host: &str) -> Notification {
    Notification {
        host: host.to_owned(),
        generated_time: Timestamp::now(),
    }
}

fn settings() -> DeliverySettings {
    let mut config = Config::default();
    config.host.api_retry_max = 3;
    config.host.api_retry_interval = Duration::from_secs(10);
    config.host.api_slow_retry_interval = Duration::from_secs(60);
    config.default.graceful_shutdown_timeout = Duration::from_secs(5);
    DeliverySettings::from_config(&config)
}

/// A running queue with the senders of its permit.
struct Harness {
    handle: DeliveryHandle,
    breaker: watch::Sender<bool>,
    leader: watch::Sender<bool>,
    metrics: Metrics,
    registry: Registry,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Harness {
    fn start(notifier: Arc<dyn Notifier>, settings: DeliverySettings) -> Self {
        let (handle, rx) = delivery::channel();
        let (breaker, breaker_closed) = watch::channel(true);
        let (leader, leader_rx) = watch::channel(true);
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        let shutdown = CancellationToken::new();
        let permit = SendPermit {
            breaker_closed,
            leader: leader_rx,
        };
        let task = delivery::spawn(
            rx,
            notifier,
            permit,
            settings,
            metrics.clone(),
            shutdown.clone(),
        );
        Harness {
            handle,
            breaker,
            leader,
            metrics,
            registry,
            shutdown,
            task,
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

    /// Returns the value of one line of the Prometheus text output.
    fn exported(&self, name: &str) -> f64 {
        let mut text = String::new();
        encode(&mut text, &self.registry).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} not exported"))
    }

    fn pending(&self) -> i64 {
        self.metrics.notifications_pending.get()
    }
}

/// Log output captured in memory.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Returns the log output of every test in this binary.
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

#[tokio::test(start_paused = true)]
async fn outage_of_ten_minutes_notifies_once() {
    let outage = Duration::from_secs(600);
    let fake = FakeNotifier::new(Duration::from_millis(50), move |_, at, _| {
        if at < outage {
            retryable()
        } else {
            delivered()
        }
    });
    let queue = Harness::start(fake.clone(), settings());

    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(300)).await;
    queue.handle.submit(notification("compute-b"));
    sleep(Duration::from_secs(200)).await;
    assert_eq!(queue.count("delivered"), 0);
    assert_eq!(queue.pending(), 2);

    sleep(Duration::from_secs(300)).await;
    assert_eq!(queue.count("delivered"), 2);
    assert_eq!(queue.pending(), 0);
    for host in ["compute-a", "compute-b"] {
        let after_outage: Vec<_> = fake
            .calls_for(host)
            .into_iter()
            .filter(|at| *at >= outage)
            .collect();
        assert_eq!(
            after_outage.len(),
            1,
            "{host} must be sent once after the outage"
        );
        assert!(
            after_outage[0] < outage + Duration::from_secs(61),
            "{host} waited past one slow retry"
        );
    }
    assert!(queue.metrics.slow_retries.get() > 0);
    let prefix = "masakari_hostmonitor_failed_to_delivered_seconds";
    assert_eq!(queue.exported(&format!("{prefix}_count")), 2.0);
    // compute-a waited at least 600 s and compute-b at least 300 s.
    assert!(queue.exported(&format!("{prefix}_sum")) >= 900.0);
    assert!(queue.exported(&format!("{prefix}_sum")) < 1100.0);

    sleep(Duration::from_secs(3600)).await;
    assert_eq!(queue.count("delivered"), 2, "no more sends once delivered");
}

#[tokio::test(start_paused = true)]
async fn failing_host_does_not_delay_others() {
    let fake = FakeNotifier::new(Duration::from_millis(50), |n, _, _| {
        if n.host == "compute-bad" {
            retryable()
        } else {
            delivered()
        }
    });
    let queue = Harness::start(fake.clone(), settings());

    let before = Instant::now();
    queue.handle.submit(notification("compute-bad"));
    for i in 0..10 {
        queue.handle.submit(notification(&format!("compute-{i}")));
    }
    assert_eq!(before.elapsed(), Duration::ZERO, "submit must not wait");

    sleep(Duration::from_millis(200)).await;
    assert_eq!(queue.count("delivered"), 10);
    assert_eq!(queue.pending(), 1);
}

#[tokio::test(start_paused = true)]
async fn fast_then_slow_retries() {
    let fake = FakeNotifier::new(Duration::ZERO, |_, _, _| retryable());
    let queue = Harness::start(fake.clone(), settings());

    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(155)).await;

    let seconds: Vec<u64> = fake
        .calls_for("compute-a")
        .iter()
        .map(|at| at.as_secs())
        .collect();
    assert_eq!(seconds, vec![0, 10, 20, 30, 90, 150]);
    assert_eq!(queue.count("retried"), 6);
    assert_eq!(queue.metrics.slow_retries.get(), 3);
    assert_eq!(queue.pending(), 1);
}

#[tokio::test(start_paused = true)]
async fn final_outcomes_are_not_retried() {
    let fake = FakeNotifier::new(Duration::ZERO, |n, _, _| match n.host.as_str() {
        "compute-known" => Outcome::AlreadyKnown {
            message: "duplicate".into(),
        },
        "compute-unknown" => Outcome::Rejected {
            message: "Host with name compute-unknown could not be found.".into(),
        },
        _ => delivered(),
    });
    let queue = Harness::start(fake.clone(), settings());

    queue.handle.submit(notification("compute-known"));
    queue.handle.submit(notification("compute-unknown"));
    queue.handle.submit(notification("compute-ok"));
    sleep(Duration::from_secs(3600)).await;

    assert_eq!(fake.calls().len(), 3);
    assert_eq!(queue.count("already_known"), 1);
    assert_eq!(queue.count("rejected"), 1);
    assert_eq!(queue.count("delivered"), 1);
    assert_eq!(queue.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn config_error_stays_on_slow_cadence() {
    let fake = FakeNotifier::new(Duration::ZERO, |_, _, earlier| {
        if earlier < 2 {
            Outcome::ConfigError {
                reason: "Masakari returned 403".into(),
            }
        } else {
            delivered()
        }
    });
    let queue = Harness::start(fake.clone(), settings());

    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(200)).await;

    let seconds: Vec<u64> = fake
        .calls_for("compute-a")
        .iter()
        .map(|at| at.as_secs())
        .collect();
    assert_eq!(seconds, vec![0, 60, 120]);
    assert_eq!(queue.count("config_error"), 2);
    assert_eq!(queue.count("delivered"), 1);
}

#[tokio::test(start_paused = true)]
async fn conflict_after_failure_counts_as_delivered() {
    let fake = FakeNotifier::new(Duration::ZERO, |_, _, earlier| {
        if earlier == 0 {
            Outcome::Retryable {
                reason: "notification request timed out".into(),
            }
        } else {
            Outcome::AlreadyKnown {
                message: "duplicate".into(),
            }
        }
    });
    let queue = Harness::start(fake.clone(), settings());

    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(30)).await;

    assert_eq!(fake.calls().len(), 2);
    assert_eq!(queue.count("delivered"), 1);
    assert_eq!(queue.count("already_known"), 0);
}

#[tokio::test(start_paused = true)]
async fn duplicate_submit_keeps_one() {
    let fake = FakeNotifier::new(Duration::from_secs(1), |_, _, _| delivered());
    let queue = Harness::start(fake.clone(), settings());

    queue.handle.submit(notification("compute-a"));
    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_millis(10)).await;
    assert_eq!(queue.pending(), 1);
    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(10)).await;

    assert_eq!(fake.calls().len(), 1);
    assert_eq!(queue.count("delivered"), 1);
}

#[tokio::test(start_paused = true)]
async fn recovered_host_is_never_sent() {
    let fake = FakeNotifier::new(Duration::ZERO, |_, _, _| delivered());
    let queue = Harness::start(fake.clone(), settings());
    queue.breaker.send_replace(false);

    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(30)).await;
    queue.handle.cancel("compute-a");
    sleep(Duration::from_millis(10)).await;
    queue.breaker.send_replace(true);
    sleep(Duration::from_secs(3600)).await;

    assert!(fake.calls().is_empty());
    assert_eq!(queue.count("cancelled"), 1);
    assert_eq!(queue.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_retries() {
    let fake = FakeNotifier::new(Duration::ZERO, |_, _, _| retryable());
    let queue = Harness::start(fake.clone(), settings());

    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(15)).await;
    assert_eq!(fake.calls().len(), 2);
    queue.handle.cancel("compute-a");
    sleep(Duration::from_secs(3600)).await;

    assert_eq!(fake.calls().len(), 2);
    assert_eq!(queue.count("cancelled"), 1);
    assert_eq!(queue.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_while_waiting_for_slot() {
    let fake = FakeNotifier::new(Duration::from_secs(10), |_, _, _| delivered());
    let mut settings = settings();
    settings.max_concurrent = 1;
    let queue = Harness::start(fake.clone(), settings);

    queue.handle.submit(notification("compute-a"));
    queue.handle.submit(notification("compute-b"));
    sleep(Duration::from_secs(1)).await;
    queue.handle.cancel("compute-b");
    sleep(Duration::from_secs(60)).await;

    assert_eq!(fake.calls_for("compute-b").len(), 0);
    assert_eq!(queue.count("delivered"), 1);
    assert_eq!(queue.count("cancelled"), 1);
}

#[tokio::test(start_paused = true)]
async fn cancel_during_attempt_prevents_next() {
    let fake = FakeNotifier::new(Duration::from_secs(5), |_, _, _| retryable());
    let queue = Harness::start(fake.clone(), settings());

    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(1)).await;
    queue.handle.cancel("compute-a");
    sleep(Duration::from_secs(600)).await;

    assert_eq!(fake.calls().len(), 1);
    assert_eq!(queue.count("cancelled"), 1);
}

#[tokio::test(start_paused = true)]
async fn resubmit_after_cancel_is_sent() {
    let fake = FakeNotifier::new(Duration::ZERO, |_, _, _| delivered());
    let queue = Harness::start(fake.clone(), settings());
    queue.leader.send_replace(false);

    queue.handle.submit(notification("compute-a"));
    queue.handle.cancel("compute-a");
    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(queue.pending(), 1);
    queue.leader.send_replace(true);
    sleep(Duration::from_secs(1)).await;

    assert_eq!(fake.calls().len(), 1);
    assert_eq!(queue.count("cancelled"), 1);
    assert_eq!(queue.count("delivered"), 1);
}

#[tokio::test(start_paused = true)]
async fn held_until_permitted() {
    let fake = FakeNotifier::new(Duration::ZERO, |_, _, _| delivered());
    let queue = Harness::start(fake.clone(), settings());
    queue.leader.send_replace(false);
    queue.breaker.send_replace(false);

    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(3600)).await;
    assert!(fake.calls().is_empty());

    queue.leader.send_replace(true);
    sleep(Duration::from_secs(3600)).await;
    assert!(fake.calls().is_empty(), "the open breaker still holds it");

    queue.breaker.send_replace(true);
    sleep(Duration::from_millis(1)).await;
    assert_eq!(fake.calls().len(), 1);
    assert_eq!(queue.count("delivered"), 1);
}

#[tokio::test(start_paused = true)]
async fn dropped_breaker_sender_keeps_last_value() {
    let fake = FakeNotifier::new(Duration::ZERO, |_, _, _| delivered());
    let mut queue = Harness::start(fake.clone(), settings());
    queue.leader.send_replace(false);
    drop(std::mem::replace(
        &mut queue.breaker,
        watch::channel(true).0,
    ));

    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(3600)).await;
    assert!(fake.calls().is_empty());

    queue.leader.send_replace(true);
    sleep(Duration::from_millis(1)).await;
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn five_hundred_hosts_concurrently() {
    let fake = FakeNotifier::new(Duration::from_millis(50), |_, _, _| delivered());
    let settings = settings();
    let bound = settings.max_concurrent;
    assert_eq!(bound, 32);
    let queue = Harness::start(fake.clone(), settings);

    let start = Instant::now();
    for i in 0..500 {
        queue.handle.submit(notification(&format!("compute-{i}")));
    }
    while queue.count("delivered") < 500 {
        sleep(Duration::from_millis(10)).await;
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "500 deliveries took too long"
        );
    }

    // 500 / 32 rounds of 50 ms each.
    assert!(start.elapsed() <= Duration::from_millis(16 * 50 + 20));
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), bound);
    assert_eq!(fake.calls().len(), 500);
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_attempt_in_flight() {
    let fake = FakeNotifier::new(Duration::from_secs(2), |_, _, _| delivered());
    let mut queue = Harness::start(fake.clone(), settings());

    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_millis(100)).await;
    queue.shutdown.cancel();
    (&mut queue.task).await.unwrap();

    assert_eq!(queue.count("delivered"), 1);
    assert_eq!(queue.count("abandoned"), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_up_after_timeout() {
    let logs = captured_logs();
    let fake = FakeNotifier::new(Duration::ZERO, |_, _, _| retryable());
    let mut queue = Harness::start(fake.clone(), settings());

    queue.handle.submit(notification("compute-a"));
    queue.handle.submit(notification("compute-b"));
    sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    queue.shutdown.cancel();
    (&mut queue.task).await.unwrap();

    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(queue.count("abandoned"), 2);
    assert_eq!(queue.pending(), 0);
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| {
            line.contains("Notifications not delivered before shutdown")
                && line.contains("compute-a,compute-b")
        })
        .expect("shutdown warning naming both hosts missing");
    assert!(line.contains("WARN"));
}

#[tokio::test(start_paused = true)]
async fn dry_run_logs_and_sends_nothing() {
    let logs = captured_logs();
    let queue = Harness::start(Arc::new(DryRunNotifier), settings());

    queue.handle.submit(notification("compute-a"));
    sleep(Duration::from_secs(1)).await;

    assert_eq!(queue.count("dry_run"), 1);
    assert_eq!(queue.count("delivered"), 0);
    assert_eq!(queue.pending(), 0);
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains("Notification not sent (dry run)"))
        .expect("dry-run line missing");
    assert!(line.contains("compute-a"));
    assert!(line.contains("STOPPED"));
}

#[tokio::test(start_paused = true)]
async fn final_outcomes_log_masakari_message_apart() {
    let logs = captured_logs();
    let fake = FakeNotifier::new(Duration::ZERO, |n, _, _| match n.host.as_str() {
        "compute-logged-known" => Outcome::AlreadyKnown {
            message: "Host compute-logged-known is on maintenance".into(),
        },
        _ => Outcome::Rejected {
            message: "Host with name compute-logged-unknown could not be found.".into(),
        },
    });
    let queue = Harness::start(fake, settings());

    queue.handle.submit(notification("compute-logged-known"));
    queue.handle.submit(notification("compute-logged-unknown"));
    sleep(Duration::from_secs(1)).await;

    // A field named `message` would replace the event's own message in JSON output.
    let text = logs.text();
    let known = text
        .lines()
        .find(|line| {
            line.contains("Notification already known to Masakari")
                && line.contains("compute-logged-known")
        })
        .expect("already-known line missing");
    assert!(
        known.contains("masakari_message=Host compute-logged-known is on maintenance"),
        "{known}"
    );
    let rejected = text
        .lines()
        .find(|line| {
            line.contains("Notification rejected by Masakari")
                && line.contains("compute-logged-unknown")
        })
        .expect("rejected line missing");
    assert!(
        rejected
            .contains("masakari_message=Host with name compute-logged-unknown could not be found."),
        "{rejected}"
    );
}

#[tokio::test(start_paused = true)]
async fn standby_shutdown_does_not_wait() {
    let fake = FakeNotifier::new(Duration::ZERO, |_, _, _| delivered());
    let mut queue = Harness::start(fake.clone(), settings());
    queue.leader.send_replace(false);

    queue.handle.submit(notification("compute-standby"));
    sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    queue.shutdown.cancel();
    (&mut queue.task).await.unwrap();

    assert_eq!(start.elapsed(), Duration::ZERO, "nothing could be sent");
    assert!(fake.calls().is_empty());
    assert_eq!(queue.count("abandoned"), 1);
}

#[tokio::test(start_paused = true)]
async fn open_breaker_shutdown_does_not_wait() {
    let fake = FakeNotifier::new(Duration::ZERO, |_, _, _| delivered());
    let mut queue = Harness::start(fake.clone(), settings());
    queue.breaker.send_replace(false);

    queue.handle.submit(notification("compute-held"));
    sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    queue.shutdown.cancel();
    (&mut queue.task).await.unwrap();

    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(fake.calls().is_empty());
}
