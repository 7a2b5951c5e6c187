//! The admin server on a real listener: readiness, liveness on a paused clock, metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use masakari_hostmonitor::admin::{
    self, AdminError, Health, METRICS_CONTENT_TYPE, REASON_NO_TICK, REASON_NO_TOKEN,
    REASON_NOT_SYNCED, REASON_SHUTTING_DOWN,
};
use masakari_hostmonitor::metrics::Metrics;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(30);

struct Response {
    status: u16,
    head: String,
    body: String,
}

/// Sends one HTTP/1.1 GET over a fresh connection. A hand-written client keeps timers out of the
/// runtime, so the paused clock moves only when a test advances it.
async fn get(addr: SocketAddr, path: &str) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");

    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

struct Server {
    addr: SocketAddr,
    health: Health,
    metrics: Metrics,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), AdminError>>,
}

async fn start() -> Server {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let health = Health::new(DEADLINE);
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let (addr, task) = admin::serve(listen, Arc::new(registry), health.clone(), shutdown)
        .await
        .expect("serve");
    Server {
        addr,
        health,
        metrics,
        stop: Some(stop),
        task,
    }
}

#[tokio::test(start_paused = true)]
async fn readiness_needs_all_three_conditions() {
    let server = start().await;

    let response = get(server.addr, "/readyz").await;
    assert_eq!(response.status, 503);
    assert!(
        response.body.contains(REASON_NOT_SYNCED),
        "{}",
        response.body
    );
    assert!(response.body.contains(REASON_NO_TICK), "{}", response.body);
    assert!(response.body.contains(REASON_NO_TOKEN), "{}", response.body);

    server.health.mark_synced();
    let response = get(server.addr, "/readyz").await;
    assert_eq!(response.status, 503);
    assert!(
        !response.body.contains(REASON_NOT_SYNCED),
        "{}",
        response.body
    );

    server.health.mark_ticked(Instant::now());
    let response = get(server.addr, "/readyz").await;
    assert_eq!(response.status, 503);
    assert!(response.body.contains(REASON_NO_TOKEN), "{}", response.body);
    assert!(!response.body.contains(REASON_NO_TICK), "{}", response.body);

    server.health.mark_authenticated();
    let response = get(server.addr, "/readyz").await;
    assert_eq!(response.status, 200, "{}", response.body);
}

#[tokio::test(start_paused = true)]
async fn readiness_withdrawn_when_shutdown_starts() {
    let server = start().await;
    server.health.mark_synced();
    server.health.mark_ticked(Instant::now());
    server.health.mark_authenticated();
    assert_eq!(get(server.addr, "/readyz").await.status, 200);

    server.health.mark_shutting_down();
    let response = get(server.addr, "/readyz").await;
    assert_eq!(response.status, 503);
    assert!(
        response.body.contains(REASON_SHUTTING_DOWN),
        "{}",
        response.body
    );
}

#[tokio::test(start_paused = true)]
async fn readiness_in_dry_run_skips_keystone() {
    let server = start().await;
    server.health.set_dry_run();
    server.health.mark_synced();
    server.health.mark_ticked(Instant::now());
    assert_eq!(get(server.addr, "/readyz").await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn liveness_fails_when_ticks_stop() {
    let server = start().await;
    server.health.mark_ticked(Instant::now());
    assert_eq!(get(server.addr, "/healthz").await.status, 200);

    tokio::time::advance(DEADLINE).await;
    assert_eq!(get(server.addr, "/healthz").await.status, 200);

    tokio::time::advance(Duration::from_secs(1)).await;
    let response = get(server.addr, "/healthz").await;
    assert_eq!(response.status, 503);

    server.health.mark_ticked(Instant::now());
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn liveness_gives_startup_one_deadline() {
    let server = start().await;
    assert_eq!(get(server.addr, "/healthz").await.status, 200);

    tokio::time::advance(DEADLINE + Duration::from_secs(1)).await;
    assert_eq!(get(server.addr, "/healthz").await.status, 503);
}

#[tokio::test]
async fn metrics_lists_registered_metrics() {
    let server = start().await;
    let response = get(server.addr, "/metrics").await;
    assert_eq!(response.status, 200);
    let content_type = format!("content-type: {METRICS_CONTENT_TYPE}");
    assert!(
        response.head.to_lowercase().contains(&content_type),
        "{}",
        response.head
    );
    for name in [
        "masakari_hostmonitor_hosts_monitored",
        "masakari_hostmonitor_breaker_open",
        "masakari_hostmonitor_ticks_total",
        "masakari_hostmonitor_slow_retries_total",
        "masakari_hostmonitor_leader",
    ] {
        assert!(response.body.contains(name), "{name} missing");
    }
    assert!(response.body.ends_with("# EOF\n"), "{}", response.body);
}

#[tokio::test]
async fn metrics_show_counter_increments() {
    let server = start().await;
    server.metrics.ticks.inc_by(3);
    server.metrics.count_notification("delivered");

    let body = get(server.addr, "/metrics").await.body;
    assert!(
        body.contains("masakari_hostmonitor_ticks_total 3\n"),
        "{body}"
    );
    assert!(
        body.contains("masakari_hostmonitor_notifications_total{outcome=\"delivered\"} 1\n"),
        "{body}"
    );
}

#[tokio::test]
async fn serve_stops_on_shutdown() {
    let mut server = start().await;
    let _ = server.stop.take().expect("sender").send(());
    let result = tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("server stopped in time")
        .expect("task joined");
    assert!(result.is_ok());
}

#[tokio::test]
async fn serve_names_address_on_bind_error() {
    let server = start().await;
    let error = admin::serve(
        server.addr,
        Arc::new(Registry::default()),
        Health::new(DEADLINE),
        std::future::pending(),
    )
    .await
    .expect_err("port already bound");
    assert!(matches!(error, AdminError::Bind { .. }));
    assert!(error.to_string().contains(&server.addr.to_string()));
}
