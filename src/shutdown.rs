//! Two-stage shutdown: the first SIGTERM or SIGINT starts a graceful drain, a second one requests
//! an immediate abort.
//!
//! Components await [`Shutdown::signalled`] (or a clone of [`Shutdown::token`]) and stop taking
//! new work. `main` awaits [`Shutdown::aborted`] next to the drain and exits at once with
//! [`Signal::exit_code`] (130 for SIGINT, 143 for SIGTERM: 128 plus the signal number, as shells
//! report a process killed by that signal). Tests drive the same state machine through a
//! [`Trigger`] without sending signals.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The signals that stop the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (what the kubelet sends first).
    Terminate,
}

/// Shutdown progress of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Running,
    /// The first signal arrived: finish pending work, take no new work.
    Draining(Signal),
    /// A second signal arrived: stop now. Carries the latest signal.
    Aborting(Signal),
}

/// Errors of [`Shutdown::install`]. Not retried: without signal handlers the process cannot
/// drain, so `main` should stop.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    #[error("failed to install the {signal} handler")]
    InstallHandler {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The components' view of shutdown. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    token: CancellationToken,
    stage: watch::Receiver<Stage>,
}

/// Feeds signals into a [`Shutdown`]: the signal handler task in production, tests directly.
#[derive(Debug, Clone)]
pub struct Trigger {
    token: CancellationToken,
    stage: Arc<watch::Sender<Stage>>,
}

impl Signal {
    /// Returns the conventional exit status of a process stopped by this signal.
    pub fn exit_code(self) -> i32 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

impl Stage {
    /// Returns the stage after `signal`: the first signal drains, any later one aborts.
    pub fn next(self, signal: Signal) -> Stage {
        match self {
            Stage::Running => Stage::Draining(signal),
            Stage::Draining(_) | Stage::Aborting(_) => Stage::Aborting(signal),
        }
    }
}

impl Shutdown {
    /// Installs SIGTERM and SIGINT handlers on the current tokio runtime and returns the
    /// shutdown they drive.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` and `tokio::signal` do.
    pub fn install() -> Result<Shutdown, ShutdownError> {
        use tokio::signal::unix::{SignalKind, signal};

        let install = |kind: SignalKind, name: &'static str| {
            signal(kind).map_err(|source| ShutdownError::InstallHandler {
                signal: name,
                source,
            })
        };
        let mut terminate = install(SignalKind::terminate(), "SIGTERM")?;
        let mut interrupt = install(SignalKind::interrupt(), "SIGINT")?;

        let (shutdown, trigger) = Shutdown::manual();
        tokio::spawn(async move {
            loop {
                let signal = tokio::select! {
                    Some(()) = terminate.recv() => Signal::Terminate,

                    Some(()) = interrupt.recv() => Signal::Interrupt,

                    else => return,
                };
                trigger.signal(signal);
            }
        });
        Ok(shutdown)
    }

    /// Returns a shutdown driven only by the returned [`Trigger`], for tests and the simulator.
    pub fn manual() -> (Shutdown, Trigger) {
        let token = CancellationToken::new();
        let (sender, receiver) = watch::channel(Stage::Running);
        let shutdown = Shutdown {
            token: token.clone(),
            stage: receiver,
        };
        let trigger = Trigger {
            token,
            stage: Arc::new(sender),
        };
        (shutdown, trigger)
    }

    /// Returns the token cancelled when the drain starts. Clones are cheap; pass
    /// `token.cancelled_owned()` where a `'static` future is needed.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Completes when the first signal arrives (immediately if it already has).
    pub async fn signalled(&self) {
        self.token.cancelled().await;
    }

    /// Completes with the latest signal once a second signal requests an abort.
    pub async fn aborted(&self) -> Signal {
        let mut stage = self.stage.clone();
        let result = stage
            .wait_for(|stage| matches!(stage, Stage::Aborting(_)))
            .await
            .map(|stage| *stage);
        match result {
            Ok(Stage::Aborting(signal)) => signal,
            // The trigger is gone (signal task ended), so no abort can come.
            _ => std::future::pending().await,
        }
    }

    pub fn stage(&self) -> Stage {
        *self.stage.borrow()
    }
}

impl Trigger {
    /// Feeds one signal into the state machine and returns the new stage.
    pub fn signal(&self, signal: Signal) -> Stage {
        let mut next = Stage::Running;
        self.stage.send_modify(|stage| {
            *stage = stage.next(signal);
            next = *stage;
        });

        match next {
            Stage::Draining(_) => {
                tracing::info!(signal = signal.as_str(), "Shutdown started, draining");
                self.token.cancel();
            }
            Stage::Aborting(_) => {
                tracing::warn!(
                    signal = signal.as_str(),
                    exit_code = signal.exit_code(),
                    "Second signal, aborting"
                );
            }
            Stage::Running => {}
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_first_signal_drains() {
        assert_eq!(
            Stage::Running.next(Signal::Terminate),
            Stage::Draining(Signal::Terminate)
        );
    }

    #[test]
    fn stage_second_signal_aborts() {
        let draining = Stage::Draining(Signal::Terminate);
        assert_eq!(
            draining.next(Signal::Interrupt),
            Stage::Aborting(Signal::Interrupt)
        );
    }

    #[test]
    fn stage_later_signals_stay_aborting() {
        let aborting = Stage::Aborting(Signal::Interrupt);
        assert_eq!(
            aborting.next(Signal::Terminate),
            Stage::Aborting(Signal::Terminate)
        );
    }

    #[test]
    fn exit_codes_follow_signal_numbers() {
        assert_eq!(Signal::Interrupt.exit_code(), 130);
        assert_eq!(Signal::Terminate.exit_code(), 143);
    }

    #[tokio::test]
    async fn trigger_first_signal_cancels_token() {
        let (shutdown, trigger) = Shutdown::manual();
        let token = shutdown.token();
        assert!(!token.is_cancelled());

        assert_eq!(
            trigger.signal(Signal::Terminate),
            Stage::Draining(Signal::Terminate)
        );
        assert!(token.is_cancelled());
        assert_eq!(shutdown.stage(), Stage::Draining(Signal::Terminate));
        tokio::time::timeout(std::time::Duration::from_secs(1), shutdown.signalled())
            .await
            .expect("signalled completes");
    }

    #[tokio::test(start_paused = true)]
    async fn aborted_waits_for_second_signal() {
        let (shutdown, trigger) = Shutdown::manual();
        trigger.signal(Signal::Terminate);
        let pending =
            tokio::time::timeout(std::time::Duration::from_secs(1), shutdown.aborted()).await;
        assert!(pending.is_err(), "aborted after one signal");

        let waiter = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.aborted().await }
        });
        tokio::task::yield_now().await;
        trigger.signal(Signal::Interrupt);
        let signal = waiter.await.expect("waiter joined");
        assert_eq!(signal, Signal::Interrupt);
        assert_eq!(signal.exit_code(), 130);
    }

    #[tokio::test]
    async fn install_starts_running() {
        let shutdown = Shutdown::install().expect("handlers installed");
        assert_eq!(shutdown.stage(), Stage::Running);
        assert!(!shutdown.token().is_cancelled());
    }
}
