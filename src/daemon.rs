//! PLACEHOLDER, replaced at merge by the real daemon: the monitor's run path, everything
//! `masakari-hostmonitor` starts after the configuration loaded.
//!
//! [`run_with`] here composes the node cache, the monitor loop, the delivery queue and the
//! Masakari client just enough for the simulator to run end to end. It has no leader election
//! and no admin server.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Config, ConfigWarning};
use crate::delivery::{self, DeliverySettings, DryRunNotifier, Notifier, SendPermit};
use crate::keystone::KeystoneError;
use crate::masakari::MasakariClient;
use crate::metrics::Metrics;
use crate::monitor::{self, LoopContext, Monitor, TickReport, WallClock};
use crate::node_source::{NodeCache, WatchOptions};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Monitor and log decisions without sending notifications.
    pub dry_run: bool,
    /// Configuration warnings, logged once logging is set up.
    pub warnings: Vec<ConfigWarning>,
}

/// Called after every tick with its report.
pub type TickHook = Box<dyn FnMut(&TickReport) + Send>;

/// Callbacks for embedders such as the simulator.
#[derive(Default)]
pub struct Hooks {
    pub on_tick: Option<TickHook>,
}

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("daemon not implemented")]
    NotImplemented,
    #[error("failed to set up the Masakari client")]
    MasakariClient(#[source] KeystoneError),
}

/// Runs the monitor until shutdown.
pub async fn run(config: Config, options: RunOptions) -> Result<(), DaemonError> {
    for warning in &options.warnings {
        warn!(warning = %warning, "Configuration warning");
    }
    info!(hostname = %config.default.hostname, dry_run = options.dry_run, "Daemon not implemented");
    Ok(())
}

/// Runs the monitor against `kube` until `shutdown` is cancelled.
pub async fn run_with(
    config: Config,
    options: RunOptions,
    kube: kube::Client,
    wall: WallClock,
    hooks: Hooks,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let metrics = Metrics::unregistered();
    let notifier: Arc<dyn Notifier> = if options.dry_run {
        Arc::new(DryRunNotifier)
    } else {
        let client = MasakariClient::from_config(&config.api, metrics.clone())
            .map_err(DaemonError::MasakariClient)?;
        Arc::new(client)
    };

    let watch_options = WatchOptions {
        shutdown: shutdown.clone(),
        ..WatchOptions::default()
    };
    let (cache, watch_task) =
        NodeCache::spawn_with(kube, &config.kubernetes, metrics.clone(), watch_options);

    let (breaker_tx, breaker_rx) = watch::channel(true);
    let (_leader_tx, leader_rx) = watch::channel(true);
    let (handle, commands) = delivery::channel();
    let delivery_stop = CancellationToken::new();
    let queue = delivery::spawn(
        commands,
        notifier,
        SendPermit {
            breaker_closed: breaker_rx,
            leader: leader_rx,
        },
        DeliverySettings::from_config(&config),
        metrics.clone(),
        delivery_stop.clone(),
    );

    let context = LoopContext {
        interval: config.host.monitoring_interval,
        delivery: handle,
        breaker_closed: breaker_tx,
        metrics,
        wall,
        on_tick: hooks.on_tick.unwrap_or_else(|| Box::new(|_| {})),
    };
    monitor::run(
        Arc::new(cache),
        Monitor::new(&config),
        context,
        shutdown.cancelled(),
    )
    .await;

    delivery_stop.cancel();
    let _ = queue.await;
    watch_task.abort();
    Ok(())
}
