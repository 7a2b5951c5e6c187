//! The node cache against the fake Kubernetes API server.
//!
//! These tests run on the real clock because they do network I/O; every wait is bounded.

use std::time::Duration;

use masakari_hostmonitor::config::{Config, KubernetesSection};
use masakari_hostmonitor::fake::kube_api::{FakeKubeApi, FakeKubeSettings, NodeFixture};
use masakari_hostmonitor::metrics::Metrics;
use masakari_hostmonitor::node_source::{NodeCache, NodeSource, Reading, Snapshot, WatchOptions};
use serde_json::json;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);

struct Harness {
    api: FakeKubeApi,
    cache: NodeCache,
    metrics: Metrics,
    task: JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn kubernetes() -> KubernetesSection {
    let mut cfg = Config::default().kubernetes;
    cfg.cache_freshness_limit = Duration::from_millis(500);
    cfg
}

fn options() -> WatchOptions {
    WatchOptions {
        watch_timeout: Duration::from_secs(1),
        page_size: 500,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..WatchOptions::default()
    }
}

async fn fake() -> FakeKubeApi {
    FakeKubeApi::start_with(FakeKubeSettings {
        bookmark_interval: Duration::from_millis(200),
        ..FakeKubeSettings::default()
    })
    .await
    .expect("fake API starts")
}

async fn start(api: FakeKubeApi, cfg: &KubernetesSection, options: WatchOptions) -> Harness {
    let metrics = Metrics::unregistered();
    let (cache, task) = NodeCache::spawn_with(api.client(), cfg, metrics.clone(), options);
    tokio::time::timeout(WAIT, cache.wait_synced())
        .await
        .expect("cache synced");
    Harness {
        api,
        cache,
        metrics,
        task,
    }
}

/// Polls the cache's snapshot until `check` holds, failing after a bounded wait.
async fn eventually(cache: &NodeCache, what: &str, check: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let snapshot = cache.snapshot();
        if check(&snapshot) {
            return snapshot;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {snapshot:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn reading(snapshot: &Snapshot, host: &str) -> Option<Reading> {
    snapshot
        .hosts
        .iter()
        .find(|s| s.host == host)
        .map(|s| s.reading)
}

fn apply(api: &FakeKubeApi, fixture: NodeFixture) {
    api.apply_node(fixture.to_json()).expect("node applied");
}

async fn three_nodes() -> Harness {
    let api = fake().await;
    for name in ["compute-0", "compute-1", "compute-2"] {
        apply(&api, NodeFixture::ready(name));
    }
    start(api, &kubernetes(), options()).await
}

#[tokio::test]
async fn cache_initial_list() {
    let h = three_nodes().await;
    let snapshot = h.cache.snapshot();
    assert!(snapshot.synced);
    let hosts: Vec<&str> = snapshot.hosts.iter().map(|s| s.host.as_str()).collect();
    assert_eq!(hosts, ["compute-0", "compute-1", "compute-2"]);
    assert!(snapshot.hosts.iter().all(|s| s.reading == Reading::Up));
    assert_eq!(h.api.stats().list_requests, 1);
    assert_eq!(h.metrics.watch_relists.get(), 1);
}

#[tokio::test]
async fn cache_sees_live_changes() {
    let h = three_nodes().await;
    h.api
        .set_ready("compute-1", "False", "KubeletNotReady")
        .unwrap();
    let snapshot = eventually(&h.cache, "compute-1 down", |s| {
        reading(s, "compute-1") == Some(Reading::Down)
    })
    .await;
    assert_eq!(reading(&snapshot, "compute-0"), Some(Reading::Up));

    apply(&h.api, NodeFixture::ready("compute-3").never_updated());
    let snapshot = eventually(&h.cache, "compute-3 added", |s| s.hosts.len() == 4).await;
    let added = snapshot
        .hosts
        .iter()
        .find(|s| s.host == "compute-3")
        .unwrap();
    assert!(added.never_updated);

    h.api.delete_node("compute-0").unwrap();
    eventually(&h.cache, "compute-0 deleted", |s| {
        reading(s, "compute-0").is_none()
    })
    .await;
    assert!(h.metrics.watch_events.get() >= 3);
    assert_eq!(h.api.stats().list_requests, 1);
}

#[tokio::test]
async fn cache_recreated_node_has_new_uid() {
    let h = three_nodes().await;
    let old_uid = h.cache.snapshot().hosts[0].uid.clone();
    h.api.delete_node("compute-0").unwrap();
    apply(
        &h.api,
        NodeFixture::ready("compute-0").uid("second-life").unknown(),
    );
    let snapshot = eventually(&h.cache, "new uid", |s| {
        s.hosts.first().is_some_and(|h| h.uid == "second-life")
    })
    .await;
    assert_ne!(old_uid, "second-life");
    assert_eq!(snapshot.hosts[0].reading, Reading::Down);
}

#[tokio::test]
async fn cache_resumes_closed_stream_without_list() {
    let h = three_nodes().await;
    let watches_before = h.api.stats().watch_requests;
    tokio::time::timeout(WAIT, async {
        while h.api.close_watches() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a watch was open");
    h.api
        .set_ready("compute-2", "Unknown", "NodeStatusUnknown")
        .unwrap();
    eventually(&h.cache, "compute-2 down", |s| {
        reading(s, "compute-2") == Some(Reading::Down)
    })
    .await;
    assert!(h.api.stats().watch_requests > watches_before);
    assert_eq!(h.api.stats().list_requests, 1);
    assert_eq!(h.metrics.watch_relists.get(), 1);
}

#[tokio::test]
async fn cache_relists_after_gone() {
    let h = three_nodes().await;
    // A change made while the client is cut off and then compacted away is only visible
    // through a new list.
    h.api.set_unavailable(true);
    h.api
        .set_ready("compute-0", "False", "KubeletNotReady")
        .unwrap();
    h.api.compact();
    h.api.set_unavailable(false);
    let snapshot = eventually(&h.cache, "compute-0 down", |s| {
        reading(s, "compute-0") == Some(Reading::Down)
    })
    .await;
    assert_eq!(h.metrics.watch_relists.get(), 2);
    assert_eq!(h.api.stats().list_requests, 2);
    assert_eq!(snapshot.hosts.len(), 3);

    tokio::time::timeout(WAIT, async {
        while h.api.inject_watch_error(410) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a watch was open");
    tokio::time::timeout(WAIT, async {
        while h.metrics.watch_relists.get() < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("relisted after the injected 410");
    assert_eq!(h.api.stats().list_requests, 3);
}

#[tokio::test]
async fn cache_goes_stale_when_api_unreachable() {
    let h = three_nodes().await;
    h.api.set_unavailable(true);
    let snapshot = eventually(&h.cache, "all no data", |s| {
        s.hosts.iter().all(|h| h.reading == Reading::NoData)
    })
    .await;
    assert_eq!(snapshot.hosts.len(), 3, "hosts are kept while stale");
    assert!(h.metrics.watch_restarts.get() >= 1);

    h.api
        .set_ready("compute-1", "False", "KubeletNotReady")
        .unwrap();
    h.api.set_unavailable(false);
    let snapshot = eventually(&h.cache, "real readings", |s| {
        reading(s, "compute-1") == Some(Reading::Down)
    })
    .await;
    assert_eq!(reading(&snapshot, "compute-0"), Some(Reading::Up));
    assert_eq!(h.api.stats().list_requests, 1, "resumed without a list");
}

#[tokio::test]
async fn cache_applies_label_selector() {
    let api = fake().await;
    apply(
        &api,
        NodeFixture::ready("compute-0").label("openstack-compute-node", "enabled"),
    );
    apply(
        &api,
        NodeFixture::ready("compute-1").label("openstack-compute-node", "enabled"),
    );
    apply(&api, NodeFixture::ready("control-0"));
    let mut cfg = kubernetes();
    cfg.monitoring_node_labels = "openstack-compute-node=enabled".to_owned();
    let h = start(api, &cfg, options()).await;
    let hosts: Vec<String> = h
        .cache
        .snapshot()
        .hosts
        .into_iter()
        .map(|s| s.host)
        .collect();
    assert_eq!(hosts, ["compute-0", "compute-1"]);

    apply(
        &h.api,
        NodeFixture::ready("compute-1").label("openstack-compute-node", "disabled"),
    );
    apply(
        &h.api,
        NodeFixture::ready("control-0").label("openstack-compute-node", "enabled"),
    );
    let snapshot = eventually(&h.cache, "relabelled hosts", |s| {
        reading(s, "compute-1").is_none() && reading(s, "control-0").is_some()
    })
    .await;
    assert_eq!(snapshot.hosts.len(), 2);
}

#[tokio::test]
async fn cache_pages_through_large_list() {
    let api = fake().await;
    for i in 0..2_000 {
        apply(&api, NodeFixture::ready(&format!("compute-{i:04}")));
    }
    let h = start(api, &kubernetes(), options()).await;
    let snapshot = h.cache.snapshot();
    assert_eq!(snapshot.hosts.len(), 2_000);
    assert_eq!(snapshot.hosts[0].host, "compute-0000");
    assert_eq!(snapshot.hosts[1_999].host, "compute-1999");
    assert_eq!(h.api.stats().list_requests, 4);
}

#[tokio::test]
async fn cache_steady_state_makes_no_lists() {
    let h = three_nodes().await;
    let watches_before = h.api.stats().watch_requests;
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let stats = h.api.stats();
    assert!(
        stats.watch_requests >= watches_before + 2,
        "watch timeouts did not re-watch: {stats:?}"
    );
    assert_eq!(stats.list_requests, 1);
    assert_eq!(h.metrics.watch_restarts.get(), 0);
    let snapshot = h.cache.snapshot();
    assert!(snapshot.hosts.iter().all(|s| s.reading == Reading::Up));
}

#[tokio::test]
async fn cache_survives_malformed_node() {
    let api = fake().await;
    apply(&api, NodeFixture::ready("compute-0"));
    api.apply_node(json!({
        "metadata": {"name": "compute-bad", "labels": 5, "uid": ["x"]},
        "status": {"conditions": [{"type": "Ready", "status": 1,
                                   "lastTransitionTime": "yesterday"}, "junk"]}
    }))
    .unwrap();
    let h = start(api, &kubernetes(), options()).await;
    let snapshot = h.cache.snapshot();
    assert_eq!(reading(&snapshot, "compute-0"), Some(Reading::Up));
    assert_eq!(reading(&snapshot, "compute-bad"), Some(Reading::NoData));

    h.api
        .apply_node(json!({"metadata": {"name": "compute-worse"}, "status": "broken"}))
        .unwrap();
    h.api
        .set_ready("compute-0", "False", "KubeletNotReady")
        .unwrap();
    let snapshot = eventually(&h.cache, "watch still applies changes", |s| {
        reading(s, "compute-0") == Some(Reading::Down)
    })
    .await;
    assert_eq!(reading(&snapshot, "compute-worse"), Some(Reading::NoData));
}

#[tokio::test]
async fn cache_task_stops_on_shutdown() {
    let api = fake().await;
    apply(&api, NodeFixture::ready("compute-0"));
    let options = options();
    let shutdown = options.shutdown.clone();
    let (cache, task) = NodeCache::spawn_with(
        api.client(),
        &kubernetes(),
        Metrics::unregistered(),
        options,
    );
    tokio::time::timeout(WAIT, cache.wait_synced())
        .await
        .unwrap();
    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("task stopped")
        .expect("task did not panic");
}

#[tokio::test]
async fn cache_stale_when_watches_keep_failing() {
    let h = three_nodes().await;
    tokio::time::timeout(WAIT, async {
        while h.api.stats().open_watches == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a watch was open");
    h.api.fail_new_watches(Some(500));
    assert_eq!(h.api.close_watches(), 1);
    let snapshot = eventually(&h.cache, "all no data", |s| {
        s.hosts.iter().all(|h| h.reading == Reading::NoData)
    })
    .await;
    assert_eq!(snapshot.hosts.len(), 3);
    assert!(h.metrics.watch_restarts.get() >= 2);

    h.api.fail_new_watches(None);
    eventually(&h.cache, "real readings", |s| {
        s.hosts.iter().all(|h| h.reading == Reading::Up)
    })
    .await;
    assert_eq!(h.api.stats().list_requests, 1);
}
