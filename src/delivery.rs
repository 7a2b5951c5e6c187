//! Delivery queue: at most one pending notification per host, sent concurrently, retried until
//! delivered, cancelled when the host recovers, held while sending is not permitted.

mod task;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, trace, warn};

use crate::config::{Config, HostSection};
use crate::metrics::Metrics;
use task::{Delivery, Shared, deliver};

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
        // Without the send permit nothing pending can be sent: a standby never sends, and the
        // breaker no longer changes once ticking has stopped. Waiting would only delay the exit.
        let permit = &self.shared.permit;
        let may_send = *permit.leader.borrow() && *permit.breaker_closed.borrow();
        let wait = if may_send {
            self.shared.settings.shutdown_timeout
        } else {
            Duration::ZERO
        };
        let deadline = Instant::now() + wait;
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
