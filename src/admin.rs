//! Admin HTTP server: liveness (`/healthz`), readiness (`/readyz`) and Prometheus metrics
//! (`/metrics`).
//!
//! Components report progress through a shared [`Health`]; the server only reads it.

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Content type of the OpenMetrics text that `prometheus_client` encodes. Prometheus selects its
/// OpenMetrics parser from this header.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Lines of the `/readyz` body, one per unmet condition.
pub const REASON_SHUTTING_DOWN: &str = "shutdown started";
pub const REASON_NOT_SYNCED: &str = "initial node list not done";
pub const REASON_NO_TICK: &str = "first tick not done";
pub const REASON_NO_TOKEN: &str = "no keystone token yet";

/// Ticks may be this many monitoring intervals apart before liveness fails.
const LIVENESS_INTERVALS: u32 = 3;

/// Added to the liveness deadline for a slow tick or a scheduling delay.
const LIVENESS_MARGIN: Duration = Duration::from_secs(30);

/// Errors of the admin server. None is retried: the caller decides whether the process can run
/// without the server.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("failed to bind the admin server to {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the admin server's local address")]
    LocalAddress(#[source] std::io::Error),
    #[error("admin server failed")]
    Serve(#[source] std::io::Error),
}

/// Shared health state. Cloning shares it; every method takes `&self` and never blocks on I/O.
///
/// Readiness must be earned: the initial Node list done ([`Health::mark_synced`]), the first tick
/// evaluated ([`Health::mark_ticked`]) and a Keystone token obtained once
/// ([`Health::mark_authenticated`], not required after [`Health::set_dry_run`]). Readiness is
/// withdrawn for good by [`Health::mark_shutting_down`].
#[derive(Debug, Clone)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Debug)]
struct HealthInner {
    synced: AtomicBool,
    ticked: AtomicBool,
    authenticated: AtomicBool,
    dry_run: AtomicBool,
    shutting_down: AtomicBool,
    /// Set while `/healthz` fails, so that the failure is logged once per outage.
    liveness_failing: AtomicBool,
    /// The last tick, or the creation time until the first tick, so that start-up gets one full
    /// deadline before liveness fails.
    last_tick: Mutex<Instant>,
    liveness_deadline: Duration,
}

/// Reasons the process is not ready, in a fixed order; empty when ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub reasons: Vec<&'static str>,
}

/// Liveness at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Time since the last tick (or since [`Health`] was created, before the first tick).
    pub since_last_tick: Duration,
    pub deadline: Duration,
}

impl Health {
    /// Creates the state; liveness fails when no tick was seen for `liveness_deadline`.
    pub fn new(liveness_deadline: Duration) -> Self {
        Health {
            inner: Arc::new(HealthInner {
                synced: AtomicBool::new(false),
                ticked: AtomicBool::new(false),
                authenticated: AtomicBool::new(false),
                dry_run: AtomicBool::new(false),
                shutting_down: AtomicBool::new(false),
                liveness_failing: AtomicBool::new(false),
                last_tick: Mutex::new(Instant::now()),
                liveness_deadline,
            }),
        }
    }

    /// Creates the state with the liveness deadline for this monitoring interval:
    /// 3 x `monitoring_interval` + 30 s.
    pub fn for_interval(monitoring_interval: Duration) -> Self {
        Self::new(liveness_deadline(monitoring_interval))
    }

    /// Records that the node source finished its initial list.
    pub fn mark_synced(&self) {
        self.inner.synced.store(true, Ordering::Release);
    }

    /// Records a finished tick at `now`.
    pub fn mark_ticked(&self, now: Instant) {
        *lock(&self.inner.last_tick) = now;
        self.inner.ticked.store(true, Ordering::Release);
    }

    /// Records that a Keystone token was obtained.
    pub fn mark_authenticated(&self) {
        self.inner.authenticated.store(true, Ordering::Release);
    }

    /// Withdraws readiness: the process is draining and should get no new traffic.
    pub fn mark_shutting_down(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
    }

    /// Drops the Keystone condition from readiness: a dry run never authenticates.
    pub fn set_dry_run(&self) {
        self.inner.dry_run.store(true, Ordering::Release);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Returns why the process is not ready; an empty list means ready.
    pub fn readiness(&self) -> Readiness {
        let inner = &self.inner;
        let mut reasons = Vec::new();
        if inner.shutting_down.load(Ordering::Acquire) {
            reasons.push(REASON_SHUTTING_DOWN);
        }
        if !inner.synced.load(Ordering::Acquire) {
            reasons.push(REASON_NOT_SYNCED);
        }
        if !inner.ticked.load(Ordering::Acquire) {
            reasons.push(REASON_NO_TICK);
        }
        let needs_token = !inner.dry_run.load(Ordering::Acquire);
        if needs_token && !inner.authenticated.load(Ordering::Acquire) {
            reasons.push(REASON_NO_TOKEN);
        }
        Readiness { reasons }
    }

    /// Returns the time since the last tick and the deadline it is held to.
    pub fn liveness(&self, now: Instant) -> Liveness {
        let last_tick = *lock(&self.inner.last_tick);
        Liveness {
            since_last_tick: now.saturating_duration_since(last_tick),
            deadline: self.inner.liveness_deadline,
        }
    }
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.reasons.is_empty()
    }
}

impl Liveness {
    pub fn is_alive(&self) -> bool {
        self.since_last_tick <= self.deadline
    }
}

/// Returns the liveness deadline for a monitoring interval: 3 intervals plus a 30 s margin.
pub fn liveness_deadline(monitoring_interval: Duration) -> Duration {
    monitoring_interval.saturating_mul(LIVENESS_INTERVALS) + LIVENESS_MARGIN
}

/// Locks `mutex`, recovering from poisoning: a panic elsewhere cannot leave an `Instant`
/// half-written.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    health: Health,
}

/// Binds `addr` and serves the admin endpoints until `shutdown` completes.
///
/// Returns the bound address (useful with port 0) and the server task. Bind errors name the
/// address.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, JoinHandle<Result<(), AdminError>>), AdminError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AdminError::Bind {
            address: addr,
            source,
        })?;
    let local = listener.local_addr().map_err(AdminError::LocalAddress)?;

    let app = router(AppState { registry, health });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(AdminError::Serve)
    });
    tracing::info!(address = %local, "Admin server listening");
    Ok((local, task))
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    let liveness = state.health.liveness(Instant::now());
    let since = liveness.since_last_tick.as_secs_f64();
    let deadline = liveness.deadline.as_secs_f64();
    let failing = &state.health.inner.liveness_failing;
    if liveness.is_alive() {
        if failing.swap(false, Ordering::AcqRel) {
            tracing::info!(since_last_tick_seconds = since, "Liveness restored");
        }
        let body = format!("ok: last tick {since:.1} s ago, deadline {deadline:.0} s\n");
        (StatusCode::OK, body).into_response()
    } else {
        if !failing.swap(true, Ordering::AcqRel) {
            tracing::error!(
                since_last_tick_seconds = since,
                deadline_seconds = deadline,
                "Liveness failed, monitor loop not ticking"
            );
        }
        let body = format!("no tick for {since:.1} s, deadline {deadline:.0} s\n");
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    let readiness = state.health.readiness();
    if readiness.is_ready() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let mut body = String::from("not ready:\n");
    for reason in &readiness.reasons {
        let _ = writeln!(body, "- {reason}");
    }
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        tracing::error!(error = %error, "Failed to encode metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready_health() -> Health {
        let health = Health::new(Duration::from_secs(10));
        health.mark_synced();
        health.mark_ticked(Instant::now());
        health.mark_authenticated();
        health
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_lists_unmet_conditions() {
        let health = Health::new(Duration::from_secs(10));
        let expected = vec![REASON_NOT_SYNCED, REASON_NO_TICK, REASON_NO_TOKEN];
        assert_eq!(health.readiness().reasons, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_ready_after_all_conditions() {
        assert!(ready_health().readiness().is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_dry_run_needs_no_token() {
        let health = Health::new(Duration::from_secs(10));
        health.set_dry_run();
        health.mark_synced();
        health.mark_ticked(Instant::now());
        assert!(health.readiness().is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_withdrawn_on_shutdown() {
        let health = ready_health();
        health.mark_shutting_down();
        assert_eq!(health.readiness().reasons, vec![REASON_SHUTTING_DOWN]);
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_counts_from_creation_before_first_tick() {
        let health = Health::new(Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(health.liveness(Instant::now()).is_alive());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!health.liveness(Instant::now()).is_alive());
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_restored_by_tick() {
        let health = Health::new(Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(20)).await;
        health.mark_ticked(Instant::now());
        let liveness = health.liveness(Instant::now());
        assert!(liveness.is_alive());
        assert_eq!(liveness.since_last_tick, Duration::ZERO);
    }

    #[test]
    fn liveness_deadline_default_interval() {
        let deadline = liveness_deadline(Duration::from_secs(60));
        assert_eq!(deadline, Duration::from_secs(210));
    }
}
