//! The whole daemon against the fake Kubernetes API and the fake Keystone and Masakari.

mod support;

use std::time::{Duration, Instant};

use masakari_hostmonitor::daemon::{self, Hooks, RunOptions};
use masakari_hostmonitor::monitor::WallClock;
use support::cluster::{Cluster, admin_get, eventually, free_address};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

/// Reads one sample value from Prometheus text, by its full series name and labels.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line[series.len()..].trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_host_is_delivered_and_metrics_move() {
    let cluster = Cluster::start(4).await;
    let admin = free_address();
    let mut config = cluster.config(2);
    config.admin.enabled = true;
    config.admin.listen_address = admin;

    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(daemon::run_with(
        config,
        RunOptions::default(),
        cluster.kube.client(),
        WallClock::System,
        Hooks::default(),
        shutdown.clone(),
    ));

    let mut ready = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ready && tokio::time::Instant::now() < deadline {
        ready = matches!(admin_get(admin, "/readyz").await, Some((200, _)));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "readiness earned: synced, ticked, authenticated");

    let (_, before) = admin_get(admin, "/metrics").await.expect("metrics served");
    assert_eq!(
        sample(&before, "masakari_hostmonitor_hosts_monitored"),
        Some(4.0)
    );
    assert_eq!(
        sample(&before, "masakari_hostmonitor_hosts_failed"),
        Some(0.0)
    );

    cluster
        .kube
        .set_ready("compute-1", "Unknown", "NodeStatusUnknown")
        .expect("node updated");
    let delivered = eventually(WAIT, || cluster.statuses("compute-1") == [202]).await;
    assert!(delivered, "statuses: {:?}", cluster.statuses("compute-1"));

    let (_, after) = admin_get(admin, "/metrics").await.expect("metrics served");
    assert_eq!(
        sample(&after, "masakari_hostmonitor_hosts_failed"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &after,
            r#"masakari_hostmonitor_notifications_total{outcome="delivered"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, r#"masakari_hostmonitor_hosts{reading="down"}"#),
        Some(1.0)
    );
    let ticks = sample(&after, "masakari_hostmonitor_ticks_total").expect("ticks counted");
    assert!(ticks >= 3.0, "ticks: {ticks}");
    let events = sample(&after, "masakari_hostmonitor_watch_events_total").expect("events");
    assert!(events >= 1.0, "watch events: {events}");

    shutdown.cancel();
    let result = tokio::time::timeout(WAIT, daemon).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "clean stop: {result:?}");
    assert_eq!(
        cluster.statuses("compute-1"),
        [202],
        "exactly one notification"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_sends_nothing() {
    let cluster = Cluster::start(3).await;
    let config = cluster.config(1);
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = reports.clone();
    let hooks = Hooks {
        on_tick: Some(Box::new(move |report| {
            recorded.lock().expect("lock").push(report.clone());
        })),
    };
    let shutdown = CancellationToken::new();
    let options = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let daemon = tokio::spawn(daemon::run_with(
        config,
        options,
        cluster.kube.client(),
        WallClock::System,
        hooks,
        shutdown.clone(),
    ));
    cluster
        .kube
        .set_ready("compute-2", "False", "KubeletNotReady")
        .expect("node updated");
    let failed = eventually(WAIT, || {
        reports.lock().expect("lock").iter().any(|report| {
            report.decisions.iter().any(|d| {
                matches!(d, masakari_hostmonitor::monitor::Decision::Host { host, .. } if host == "compute-2")
            })
        })
    })
    .await;
    assert!(failed, "compute-2 decided Failed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();
    let _ = tokio::time::timeout(WAIT, daemon).await;
    assert!(cluster.openstack.received().is_empty());
    assert_eq!(
        cluster.openstack.tokens_issued(),
        0,
        "a dry run never authenticates"
    );
}

/// Runs a daemon on its own runtime and thread, so that dropping the runtime stops every task
/// at once, as a crash would: the Lease is not released.
struct Replica {
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: CancellationToken,
}

impl Replica {
    fn start(config: masakari_hostmonitor::config::Config, kube: kube::Client) -> Replica {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let shutdown = CancellationToken::new();
        runtime.spawn(daemon::run_with(
            config,
            RunOptions::default(),
            kube,
            WallClock::System,
            Hooks::default(),
            shutdown.clone(),
        ));
        Replica {
            runtime: Some(runtime),
            shutdown,
        }
    }

    fn crash(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.crash();
    }
}

fn holder(cluster: &Cluster) -> Option<String> {
    cluster
        .kube
        .lease("masakari", "masakari-hostmonitor")
        .and_then(|lease| {
            lease
                .pointer("/spec/holderIdentity")?
                .as_str()
                .map(str::to_owned)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_and_notifies_once() {
    let cluster = Cluster::start(6).await;
    let lease_duration = Duration::from_secs(3);
    let replica_config = |identity: &str, admin| {
        let mut config = cluster.config(3);
        config.leader_election.enabled = true;
        config.leader_election.namespace = Some("masakari".to_owned());
        config.leader_election.identity = Some(identity.to_owned());
        config.leader_election.lease_duration = lease_duration;
        config.leader_election.renew_deadline = Duration::from_secs(2);
        config.leader_election.retry_period = Duration::from_millis(500);
        config.admin.enabled = true;
        config.admin.listen_address = admin;
        config
    };
    let (admin_a, admin_b) = (free_address(), free_address());
    let mut replica_a = Replica::start(replica_config("replica-a", admin_a), cluster.kube.client());
    let a_leads = eventually(WAIT, || holder(&cluster).as_deref() == Some("replica-a")).await;
    assert!(a_leads, "replica-a acquires the Lease");
    let _replica_b = Replica::start(replica_config("replica-b", admin_b), cluster.kube.client());

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        holder(&cluster).as_deref(),
        Some("replica-a"),
        "exactly one leader"
    );
    let (_, metrics_b) = admin_get(admin_b, "/metrics")
        .await
        .expect("replica-b metrics");
    assert_eq!(sample(&metrics_b, "masakari_hostmonitor_leader"), Some(0.0));
    let (_, metrics_a) = admin_get(admin_a, "/metrics")
        .await
        .expect("replica-a metrics");
    assert_eq!(sample(&metrics_a, "masakari_hostmonitor_leader"), Some(1.0));

    // A failure in progress: one Down reading, then the leader dies before its window fills.
    cluster
        .kube
        .set_ready("compute-4", "Unknown", "NodeStatusUnknown")
        .expect("node updated");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let crashed = Instant::now();
    replica_a.crash();

    let b_leads = eventually(WAIT, || holder(&cluster).as_deref() == Some("replica-b")).await;
    assert!(b_leads, "replica-b takes over");
    let takeover = crashed.elapsed();
    // The standby waits for the Lease to expire from when it last saw it change, plus at most
    // one jittered retry period (2.2 x 500 ms).
    assert!(
        takeover <= lease_duration + Duration::from_millis(1_100 + 500),
        "takeover after {takeover:?}"
    );

    let delivered = eventually(WAIT, || !cluster.statuses("compute-4").is_empty()).await;
    assert!(delivered, "the failure is notified after the takeover");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        cluster.statuses("compute-4"),
        [202],
        "notified exactly once"
    );
}
