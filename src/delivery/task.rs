//! One host's delivery: wait for the send permit and a concurrency slot, send, classify,
//! retry, and stop when an outcome closes the notification or the host recovers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::{DeliverySettings, Notification, Notifier, Outcome, SendPermit};
use crate::metrics::Metrics;

/// State shared by every delivery task.
pub(super) struct Shared {
    pub(super) notifier: Arc<dyn Notifier>,
    pub(super) semaphore: Arc<Semaphore>,
    pub(super) permit: SendPermit,
    pub(super) settings: DeliverySettings,
    pub(super) metrics: Metrics,
}

/// A notification on its way, with the clock readings the metrics need.
pub(super) struct Delivery {
    pub(super) notification: Notification,
    /// Time between the host failing and the submit, read from the wall clock at submit.
    pub(super) age_at_submit: Duration,
    pub(super) submitted: Instant,
    pub(super) cancel: CancellationToken,
}

/// Reason a delivery task stopped waiting without sending.
enum Stop {
    Cancelled,
}

/// Counters of one notification's attempts.
#[derive(Default)]
struct Attempts {
    /// Attempts made so far, the current one included.
    count: u32,
    fast_retries: u32,
    /// Set after a failed attempt: its request may still have reached Masakari, so a later 409
    /// means this notification arrived.
    maybe_arrived: bool,
}

/// Delivers one notification: waits for the permit and a concurrency slot, sends, and retries
/// until an outcome closes it or it is cancelled.
pub(super) async fn deliver(shared: &Shared, delivery: Delivery) {
    let host = delivery.notification.host.as_str();
    let mut attempts = Attempts::default();

    loop {
        let slot = match acquire_slot(shared, &delivery.cancel).await {
            Ok(slot) => slot,
            Err(Stop::Cancelled) => return cancelled(shared, host, attempts.count),
        };

        attempts.count += 1;
        let started = Instant::now();
        // Leadership can be lost while the attempt waits for a token or a connection: stop
        // it then, so a replica that stepped down sends nothing more.
        let mut leader = shared.permit.leader.clone();
        let outcome = tokio::select! {
            outcome = shared.notifier.send(&delivery.notification) => outcome,
            _ = async {
                // A dropped sender keeps its last value: wait forever then.
                if leader.wait_for(|leads| !*leads).await.is_err() {
                    std::future::pending::<()>().await;
                }
            } => {
                warn!(host, attempt = attempts.count, "Leadership lost, notification attempt stopped");
                drop(slot);
                continue;
            }
        };
        drop(slot);
        shared
            .metrics
            .delivery_attempt_seconds
            .observe(started.elapsed().as_secs_f64());

        let Some(delay) = next_step(shared, &delivery, outcome, &mut attempts) else {
            return;
        };

        tokio::select! {
            _ = delivery.cancel.cancelled() => return cancelled(shared, host, attempts.count),
            _ = sleep(delay) => {}
        }
    }
}

/// Logs and counts an outcome. Returns the delay before the next attempt, or `None` when the
/// outcome closes the notification.
fn next_step(
    shared: &Shared,
    delivery: &Delivery,
    outcome: Outcome,
    attempts: &mut Attempts,
) -> Option<Duration> {
    let host = delivery.notification.host.as_str();
    let attempt = attempts.count;
    match outcome {
        Outcome::Delivered { notification_uuid } => {
            let uuid = notification_uuid.unwrap_or_default();
            info!(host, notification = %uuid, outcome = "delivered", attempt, "Notification delivered");
            delivered(shared, delivery);
            None
        }
        Outcome::AlreadyKnown { message } if attempts.maybe_arrived => {
            info!(
                host,
                outcome = "delivered",
                attempt,
                masakari_message = %message,
                "Notification delivered by an earlier attempt"
            );
            delivered(shared, delivery);
            None
        }
        Outcome::AlreadyKnown { message } => {
            info!(host, outcome = "already_known", attempt, masakari_message = %message, "Notification already known to Masakari");
            shared.metrics.count_notification("already_known");
            None
        }
        Outcome::Rejected { message } => {
            error!(
                host,
                outcome = "rejected",
                attempt,
                masakari_message = %message,
                hint = "check that the host belongs to a failover segment under this name, \
                        and the [kubernetes] host_name_* options",
                "Notification rejected by Masakari"
            );
            shared.metrics.count_notification("rejected");
            None
        }
        Outcome::DryRun => {
            shared.metrics.count_notification("dry_run");
            None
        }
        Outcome::ConfigError { reason } => {
            shared.metrics.count_notification("config_error");
            error!(
                host,
                outcome = "config_error",
                attempt,
                reason = %reason,
                retry_in_seconds = shared.settings.slow_retry_interval.as_secs_f64(),
                "Notification failed, configuration error"
            );
            Some(shared.settings.slow_retry_interval)
        }
        Outcome::Retryable { reason } => {
            attempts.maybe_arrived = true;
            shared.metrics.count_notification("retried");
            Some(retry_delay(
                shared,
                host,
                attempt,
                &mut attempts.fast_retries,
                &reason,
            ))
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

/// Waits until either permit channel changes. A channel whose sender is gone keeps its last
/// value forever, so only the other one is watched after that.
async fn wait_for_change(
    breaker: &mut watch::Receiver<bool>,
    leader: &mut watch::Receiver<bool>,
    cancel: &CancellationToken,
) -> Result<(), Stop> {
    let mut breaker_open = true;
    let mut leader_open = true;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Err(Stop::Cancelled),

            changed = breaker.changed(), if breaker_open => match changed {
                Ok(()) => return Ok(()),
                Err(_) => breaker_open = false,
            },

            changed = leader.changed(), if leader_open => match changed {
                Ok(()) => return Ok(()),
                Err(_) => leader_open = false,
            },
        }
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
