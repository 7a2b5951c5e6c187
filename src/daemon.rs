//! The daemon: wires every component together, the same way in production and in the simulator.
//!
//! Tasks: one Node watch, one tick loop, one delivery queue (with bounded concurrent sends), one
//! leader elector and one admin server. Shutdown stops ticking first, then gives pending
//! deliveries a bounded time while this replica still leads, then releases the Lease.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::admin::{self, AdminError, Health};
use crate::config::{Config, ConfigWarning};
use crate::delivery::{self, DeliverySettings, DryRunNotifier, Notifier, SendPermit};
use crate::keystone::{self, KeystoneClient, KeystoneError};
use crate::leader::{LeaderElector, LeaderSettings};
use crate::masakari::MasakariClient;
use crate::metrics::Metrics;
use crate::monitor::{self, LoopContext, Monitor, TickHook, TickReport, WallClock};
use crate::node_source::{self, NodeCache, SourceError, WatchOptions};
use crate::shutdown::{Shutdown, ShutdownError, Signal};
use crate::telemetry::error_chain;

/// Options of the `run` command line that are not configuration options.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Log each notification that would be sent and send nothing.
    pub dry_run: bool,
    /// Configuration warnings, logged once logging is set up.
    pub warnings: Vec<ConfigWarning>,
}

/// Observers of the running monitor, for the simulator.
#[derive(Default)]
pub struct Hooks {
    /// Called after every tick with its report.
    pub on_tick: Option<TickHook>,
}

/// Errors that stop the daemon from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("signal handlers could not be installed")]
    Signals(#[source] ShutdownError),
    #[error("Kubernetes client could not be created")]
    KubernetesClient(#[source] SourceError),
    #[error("Masakari client could not be created")]
    MasakariClient(#[source] KeystoneError),
    #[error("admin server could not start")]
    AdminServer(#[source] AdminError),
    /// A second signal arrived during the graceful shutdown.
    #[error("aborted by a second {} signal", .0.as_str())]
    Aborted(Signal),
}

impl DaemonError {
    /// Returns the process exit code: 128 plus the signal number after an abort, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Aborted(signal) => signal.exit_code(),
            _ => 1,
        }
    }
}

/// Runs the monitor with the Kubernetes client from the configuration until SIGTERM or SIGINT.
pub async fn run(config: Config, options: RunOptions) -> Result<(), DaemonError> {
    let shutdown = Shutdown::install().map_err(DaemonError::Signals)?;
    let kube = node_source::client(&config.kubernetes)
        .await
        .map_err(DaemonError::KubernetesClient)?;
    let graceful = run_with(
        config,
        options,
        kube,
        WallClock::System,
        Hooks::default(),
        shutdown.token(),
    );
    tokio::select! {
        result = graceful => result,
        signal = shutdown.aborted() => Err(DaemonError::Aborted(signal)),
    }
}

/// Runs every component against `kube` until `shutdown` is cancelled, then drains.
pub async fn run_with(
    config: Config,
    options: RunOptions,
    kube: kube::Client,
    wall: WallClock,
    hooks: Hooks,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let registry = Arc::new(registry);
    let health = Health::for_interval(config.host.monitoring_interval);
    for warning in &options.warnings {
        warn!(warning = %warning, "Configuration warning");
    }
    info!(
        version = env!("CARGO_PKG_VERSION"),
        dry_run = options.dry_run,
        interval_secs = config.host.monitoring_interval.as_secs(),
        samples = config.host.monitoring_samples,
        "Starting masakari-hostmonitor"
    );

    let admin_stop = CancellationToken::new();
    if config.admin.enabled {
        admin::serve(
            config.admin.listen_address,
            registry.clone(),
            health.clone(),
            admin_stop.clone().cancelled_owned(),
        )
        .await
        .map_err(DaemonError::AdminServer)?;
    }

    let notifier = build_notifier(&config, options.dry_run, &metrics, &health, &shutdown)?;

    let watch_stop = CancellationToken::new();
    let (cache, watch_task) = NodeCache::spawn_with(
        kube.clone(),
        &config.kubernetes,
        metrics.clone(),
        WatchOptions {
            shutdown: watch_stop.clone(),
            ..WatchOptions::default()
        },
    );
    let synced_health = health.clone();
    let synced_cache = cache.clone();
    tokio::spawn(async move {
        synced_cache.wait_synced().await;
        synced_health.mark_synced();
    });

    let leader_stop = CancellationToken::new();
    let (leader_tx, leader_rx) = watch::channel(!config.leader_election.enabled);
    let leader_task = if config.leader_election.enabled {
        let settings = LeaderSettings::resolve(&config.leader_election, &config.default.hostname);
        let elector = LeaderElector::new(kube, settings, leader_tx, metrics.clone());
        Some(tokio::spawn(
            elector.run(leader_stop.clone().cancelled_owned()),
        ))
    } else {
        info!("Leader election disabled");
        metrics.leader.set(1);
        None
    };

    let (handle, commands) = delivery::channel();
    let (breaker_tx, breaker_rx) = watch::channel(true);
    let delivery_stop = CancellationToken::new();
    let delivery_task = delivery::spawn(
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

    let tick_health = health.clone();
    let mut on_tick = hooks.on_tick;
    let context = LoopContext {
        interval: config.host.monitoring_interval,
        delivery: handle,
        breaker_closed: breaker_tx,
        metrics: metrics.clone(),
        wall,
        on_tick: Box::new(move |report: &TickReport| {
            if report.evaluated {
                tick_health.mark_ticked(Instant::now());
            }
            if let Some(hook) = on_tick.as_mut() {
                hook(report);
            }
        }),
    };
    monitor::run(
        Arc::new(cache),
        Monitor::new(&config),
        context,
        shutdown.clone().cancelled_owned(),
    )
    .await;

    info!("Shutting down: ticking stopped, draining deliveries");
    health.mark_shutting_down();
    delivery_stop.cancel();
    if let Err(error) = delivery_task.await {
        error!(error = %error, "Delivery queue task failed");
    }
    leader_stop.cancel();
    if let Some(task) = leader_task {
        let _ = task.await;
    }
    watch_stop.cancel();
    let _ = watch_task.await;
    admin_stop.cancel();
    info!("Stopped");
    Ok(())
}

/// Builds the Masakari client (or the dry-run notifier) and starts obtaining a first token in
/// the background, so readiness and configuration errors show at start-up, not at the first
/// failure.
fn build_notifier(
    config: &Config,
    dry_run: bool,
    metrics: &Metrics,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<Arc<dyn Notifier>, DaemonError> {
    if dry_run {
        health.set_dry_run();
        info!("Dry run: notifications are logged, not sent");
        return Ok(Arc::new(DryRunNotifier));
    }
    let http = keystone::build_http_client(&config.api).map_err(DaemonError::MasakariClient)?;
    let keystone = Arc::new(
        KeystoneClient::new(&config.api, http.clone(), metrics.clone())
            .map_err(DaemonError::MasakariClient)?,
    );
    tokio::spawn(first_token(
        keystone.clone(),
        health.clone(),
        config.host.api_retry_interval,
        shutdown.clone(),
    ));
    Ok(Arc::new(MasakariClient::new(
        http,
        keystone,
        config.api.timeout,
    )))
}

/// Requests a token until one arrives, then marks readiness.
async fn first_token(
    keystone: Arc<KeystoneClient>,
    health: Health,
    retry_interval: Duration,
    shutdown: CancellationToken,
) {
    let retry_interval = retry_interval.max(Duration::from_secs(1));
    loop {
        match keystone.session().await {
            Ok(session) => {
                info!(endpoint = %session.endpoint, "Keystone token obtained");
                health.mark_authenticated();
                return;
            }
            Err(error) => error!(
                error = %error_chain(&error),
                retry_in_secs = retry_interval.as_secs(),
                "Keystone authentication failed"
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry_interval) => {}
        }
    }
}
