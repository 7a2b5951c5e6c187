//! Delivery queue: at most one pending notification per host, sent concurrently, retried until
//! delivered, cancelled when the host recovers, held while sending is not permitted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, trace, warn};

use crate::config::{Config, HostSection};
use crate::metrics::Metrics;

/// A COMPUTE_HOST STOPPED notification the monitor decided to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub host: String,
    /// When the host became `Failed` (Masakari's `generated_time`).
    pub generated_time: Timestamp,
}

/// A request from the monitor loop to the delivery queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send this notification; replaces nothing if one is already pending for the host.
    Submit(Notification),
    /// The host recovered: drop its pending notification, if any.
    Cancel { host: String },
}

/// The monitor loop's end of the queue. Sending never blocks.
#[derive(Debug, Clone)]
pub struct DeliveryHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl DeliveryHandle {
    pub fn submit(&self, notification: Notification) {
        // The queue outlives the loop; a closed channel only happens during shutdown.
        let _ = self.tx.send(Command::Submit(notification));
    }

    pub fn cancel(&self, host: &str) {
        let _ = self.tx.send(Command::Cancel {
            host: host.to_owned(),
        });
    }
}

/// Creates the handle and the receiving end the queue task reads.
pub fn channel() -> (DeliveryHandle, mpsc::UnboundedReceiver<Command>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (DeliveryHandle { tx }, rx)
}

/// Whether this replica may send notifications now: the circuit breaker is closed and this
/// replica leads. The monitor loop writes `breaker_closed`; leader election writes `leader`.
#[derive(Debug, Clone)]
pub struct SendPermit {
    pub breaker_closed: watch::Receiver<bool>,
    pub leader: watch::Receiver<bool>,
}

/// The classified result of one attempt to send a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Masakari accepted it (202).
    Delivered { notification_uuid: Option<String> },
    /// Masakari already has it (409): a duplicate, or the host is on maintenance. Done.
    AlreadyKnown { message: String },
    /// Masakari rejected it (400), usually because the host is in no failover segment. Done.
    Rejected { message: String },
    /// A configuration problem (403, 404, Keystone credentials or catalog) that retrying will
    /// not fix by itself. The notification stays pending on the slow retry cadence.
    ConfigError { reason: String },
    /// A failure that may pass: 5xx, timeout, connection or TLS error.
    Retryable { reason: String },
    /// Dry run: logged, not sent. Done.
    DryRun,
}

/// Sends one notification and classifies the result. Implemented by
/// [`crate::masakari::MasakariClient`] and by [`DryRunNotifier`].
pub trait Notifier: Send + Sync + 'static {
    fn send<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Outcome>;
}

/// A notifier that logs each notification and sends nothing (`--dry-run`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DryRunNotifier;

impl Notifier for DryRunNotifier {
    fn send<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Outcome> {
        let body = crate::masakari::NotificationBody::new(notification);
        info!(
            host = %body.hostname,
            notification_type = body.notification_type,
            generated_time = %body.generated_time,
            event = body.payload.event,
            cluster_status = body.payload.cluster_status,
            host_status = body.payload.host_status,
            "Notification not sent (dry run)"
        );
        Box::pin(std::future::ready(Outcome::DryRun))
    }
}

/// Queue settings, from `[host]` and `[DEFAULT] graceful_shutdown_timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Fast retries after the first attempt (`api_retry_max`).
    pub retry_max: u32,
    /// Delay between fast retries (`api_retry_interval`).
    pub retry_interval: Duration,
    /// Delay between retries once the fast ones are used up (`api_slow_retry_interval`).
    pub slow_retry_interval: Duration,
    /// Notifications sent at the same time (`max_concurrent_deliveries`, at least 1).
    pub max_concurrent: usize,
    /// Time pending deliveries get after shutdown starts (`graceful_shutdown_timeout`).
    pub shutdown_timeout: Duration,
}

impl DeliverySettings {
    pub fn new(host: &HostSection, graceful_shutdown_timeout: Duration) -> Self {
        DeliverySettings {
            retry_max: host.api_retry_max,
            retry_interval: host.api_retry_interval,
            slow_retry_interval: host.api_slow_retry_interval,
            max_concurrent: host.max_concurrent_deliveries.max(1),
            shutdown_timeout: graceful_shutdown_timeout,
        }
    }

    pub fn from_config(config: &Config) -> Self {
        Self::new(&config.host, config.default.graceful_shutdown_timeout)
    }
}

/// Starts the queue task.
///
/// The task reads `commands` until `shutdown` is cancelled or every [`DeliveryHandle`] is
/// dropped. Then it stops accepting commands, gives pending deliveries
/// `settings.shutdown_timeout` to finish, and gives up on the rest with a WARN naming their hosts.
pub fn spawn(
    commands: mpsc::UnboundedReceiver<Command>,
    notifier: Arc<dyn Notifier>,
    permit: SendPermit,
    settings: DeliverySettings,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let shared = Arc::new(Shared {
        notifier,
        semaphore: Arc::new(Semaphore::new(settings.max_concurrent)),
        permit,
        settings,
        metrics,
    });
    let queue = Queue {
        shared,
        pending: HashMap::new(),
        tasks: JoinSet::new(),
        next_id: 0,
    };
    tokio::spawn(
        queue
            .run(commands, shutdown)
            .instrument(info_span!("delivery_queue")),
    )
}

/// State shared by every delivery task.
struct Shared {
    notifier: Arc<dyn Notifier>,
    semaphore: Arc<Semaphore>,
    permit: SendPermit,
    settings: DeliverySettings,
    metrics: Metrics,
}

/// The queue task's state: one pending delivery per host.
struct Queue {
    shared: Arc<Shared>,
    pending: HashMap<String, Pending>,
    tasks: JoinSet<(String, u64)>,
    next_id: u64,
}

struct Pending {
    id: u64,
    cancel: CancellationToken,
}

/// A notification on its way, with the clock readings the metrics need.
struct Delivery {
    notification: Notification,
    /// Time between the host failing and the submit, read from the wall clock at submit.
    age_at_submit: Duration,
    submitted: Instant,
    cancel: CancellationToken,
}

/// Reason a delivery task stopped waiting without sending.
enum Stop {
    Cancelled,
}

impl Queue {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,

                command = commands.recv() => match command {
                    Some(Command::Submit(notification)) => self.submit(notification),
                    Some(Command::Cancel { host }) => self.cancel(&host),
                    None => break,
                },

                Some(finished) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    self.finished(finished);
                }
            }
        }

        commands.close();
        self.drain().await;
    }

    fn submit(&mut self, notification: Notification) {
        if self.pending.contains_key(&notification.host) {
            debug!(host = %notification.host, "Notification already pending");
            return;
        }

        self.next_id += 1;
        let id = self.next_id;
        let cancel = CancellationToken::new();
        let host = notification.host.clone();
        let age = Timestamp::now().duration_since(notification.generated_time);
        let delivery = Delivery {
            notification,
            age_at_submit: Duration::try_from(age).unwrap_or(Duration::ZERO),
            submitted: Instant::now(),
            cancel: cancel.clone(),
        };
        trace!(host = %host, "Notification queued");
        self.pending.insert(host.clone(), Pending { id, cancel });
        self.shared
            .metrics
            .notifications_pending
            .set(self.pending.len() as i64);

        let shared = self.shared.clone();
        let span = info_span!("delivery", host = %host);
        self.tasks.spawn(
            async move {
                deliver(&shared, delivery).await;
                (host, id)
            }
            .instrument(span),
        );
    }

    fn cancel(&mut self, host: &str) {
        let Some(pending) = self.pending.remove(host) else {
            trace!(host = %host, "No pending notification to cancel");
            return;
        };
        // The task logs and counts the cancellation; an attempt already in flight finishes.
        pending.cancel.cancel();
        self.shared
            .metrics
            .notifications_pending
            .set(self.pending.len() as i64);
    }

    fn finished(&mut self, result: Result<(String, u64), tokio::task::JoinError>) {
        let (host, id) = match result {
            Ok(finished) => finished,
            Err(error) => {
                error!(error = %error, "Delivery task failed");
                return;
            }
        };
        if self.pending.get(&host).is_some_and(|p| p.id == id) {
            self.pending.remove(&host);
            self.shared
                .metrics
                .notifications_pending
                .set(self.pending.len() as i64);
        }
    }

    /// Waits up to the shutdown timeout for pending deliveries, then abandons the rest.
    async fn drain(&mut self) {
        if !self.pending.is_empty() {
            info!(
                pending = self.pending.len(),
                timeout_seconds = self.shared.settings.shutdown_timeout.as_secs_f64(),
                "Waiting for pending notifications"
            );
        }
        let deadline = Instant::now() + self.shared.settings.shutdown_timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(finished)) => self.finished(finished),
                Ok(None) => break,
                Err(_) => break,
            }
        }

        let mut hosts: Vec<String> = self.pending.drain().map(|(host, _)| host).collect();
        self.tasks.abort_all();
        if !hosts.is_empty() {
            hosts.sort();
            for _ in &hosts {
                self.shared.metrics.count_notification("abandoned");
            }
            warn!(
                hosts = %hosts.join(","),
                count = hosts.len(),
                "Notifications not delivered before shutdown"
            );
        }
        self.shared.metrics.notifications_pending.set(0);
        info!("Delivery queue stopped");
    }
}

/// Delivers one notification: waits for the permit and a concurrency slot, sends, and retries
/// until an outcome closes it or it is cancelled.
async fn deliver(shared: &Shared, delivery: Delivery) {
    let settings = &shared.settings;
    let host = delivery.notification.host.as_str();
    let mut attempt: u32 = 0;
    let mut fast_retries: u32 = 0;
    // After a failed attempt the request may still have reached Masakari, so a later 409
    // means this notification arrived.
    let mut maybe_arrived = false;

    loop {
        let slot = match acquire_slot(shared, &delivery.cancel).await {
            Ok(slot) => slot,
            Err(Stop::Cancelled) => return cancelled(shared, host, attempt),
        };

        attempt += 1;
        let started = Instant::now();
        let outcome = shared.notifier.send(&delivery.notification).await;
        drop(slot);
        shared
            .metrics
            .delivery_attempt_seconds
            .observe(started.elapsed().as_secs_f64());

        let delay = match outcome {
            Outcome::Delivered { notification_uuid } => {
                let uuid = notification_uuid.unwrap_or_default();
                info!(host, notification = %uuid, outcome = "delivered", attempt, "Notification delivered");
                return delivered(shared, &delivery);
            }
            Outcome::AlreadyKnown { message } if maybe_arrived => {
                info!(
                    host,
                    outcome = "delivered",
                    attempt,
                    message = %message,
                    "Notification delivered by an earlier attempt"
                );
                return delivered(shared, &delivery);
            }
            Outcome::AlreadyKnown { message } => {
                info!(host, outcome = "already_known", attempt, message = %message, "Notification already known to Masakari");
                return shared.metrics.count_notification("already_known");
            }
            Outcome::Rejected { message } => {
                error!(
                    host,
                    outcome = "rejected",
                    attempt,
                    message = %message,
                    hint = "check that the host belongs to a failover segment under this name, \
                            and the [kubernetes] host_name_* options",
                    "Notification rejected by Masakari"
                );
                return shared.metrics.count_notification("rejected");
            }
            Outcome::DryRun => return shared.metrics.count_notification("dry_run"),
            Outcome::ConfigError { reason } => {
                shared.metrics.count_notification("config_error");
                error!(
                    host,
                    outcome = "config_error",
                    attempt,
                    reason = %reason,
                    retry_in_seconds = settings.slow_retry_interval.as_secs_f64(),
                    "Notification failed, configuration error"
                );
                settings.slow_retry_interval
            }
            Outcome::Retryable { reason } => {
                maybe_arrived = true;
                shared.metrics.count_notification("retried");
                retry_delay(shared, host, attempt, &mut fast_retries, &reason)
            }
        };

        tokio::select! {
            _ = delivery.cancel.cancelled() => return cancelled(shared, host, attempt),
            _ = sleep(delay) => {}
        }
    }
}

/// Picks the next delay: a fast retry while any remain, else a slow one with an ERROR log.
fn retry_delay(
    shared: &Shared,
    host: &str,
    attempt: u32,
    fast_retries: &mut u32,
    reason: &str,
) -> Duration {
    let settings = &shared.settings;
    if *fast_retries < settings.retry_max {
        *fast_retries += 1;
        if attempt == 1 {
            warn!(
                host,
                outcome = "retried",
                attempt,
                reason,
                "Notification failed, retrying"
            );
        } else {
            debug!(
                host,
                outcome = "retried",
                attempt,
                reason,
                "Notification failed, retrying"
            );
        }
        return settings.retry_interval;
    }
    shared.metrics.slow_retries.inc();
    error!(
        host,
        outcome = "retried",
        attempt,
        reason,
        retry_in_seconds = settings.slow_retry_interval.as_secs_f64(),
        "Notification still not delivered, retrying"
    );
    settings.slow_retry_interval
}

/// Waits until sending is permitted and a concurrency slot is free.
async fn acquire_slot(
    shared: &Shared,
    cancel: &CancellationToken,
) -> Result<OwnedSemaphorePermit, Stop> {
    let mut breaker = shared.permit.breaker_closed.clone();
    let mut leader = shared.permit.leader.clone();
    let mut held_logged = false;
    loop {
        if cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        if !(*breaker.borrow_and_update() && *leader.borrow_and_update()) {
            if !held_logged {
                debug!("Notification held, sending not permitted");
                held_logged = true;
            }
            wait_for_change(&mut breaker, &mut leader, cancel).await?;
            continue;
        }

        let slot = tokio::select! {
            _ = cancel.cancelled() => return Err(Stop::Cancelled),
            slot = shared.semaphore.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else {
            // The semaphore is never closed; treat a closed one as a stopped queue.
            return Err(Stop::Cancelled);
        };
        // The permit may have changed while this task waited for the slot.
        if *breaker.borrow() && *leader.borrow() {
            return Ok(slot);
        }
    }
}

async fn wait_for_change(
    breaker: &mut watch::Receiver<bool>,
    leader: &mut watch::Receiver<bool>,
    cancel: &CancellationToken,
) -> Result<(), Stop> {
    tokio::select! {
        _ = cancel.cancelled() => Err(Stop::Cancelled),
        changed = breaker.changed() => match changed {
            Ok(()) => Ok(()),
            // A dropped sender keeps its last value forever: wait for cancel only.
            Err(_) => { cancel.cancelled().await; Err(Stop::Cancelled) }
        },
        changed = leader.changed() => match changed {
            Ok(()) => Ok(()),
            Err(_) => { cancel.cancelled().await; Err(Stop::Cancelled) }
        },
    }
}

fn delivered(shared: &Shared, delivery: &Delivery) {
    shared.metrics.count_notification("delivered");
    let total = delivery.age_at_submit + delivery.submitted.elapsed();
    shared
        .metrics
        .failed_to_delivered_seconds
        .observe(total.as_secs_f64());
}

fn cancelled(shared: &Shared, host: &str, attempts: u32) {
    shared.metrics.count_notification("cancelled");
    warn!(
        host,
        outcome = "cancelled",
        attempts,
        "Notification cancelled, host recovered"
    );
}
