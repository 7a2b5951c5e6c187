//! Delivery queue: at most one pending notification per host, sent concurrently, retried until
//! delivered, cancelled when the host recovers, held while sending is not permitted.

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};

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
