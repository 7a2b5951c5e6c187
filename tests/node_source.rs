//! The node store against the real Node shapes in tests/fixtures/nodes.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use kube::core::ObjectList;
use masakari_hostmonitor::config::Config;
use masakari_hostmonitor::node_source::partial::PartialNode;
use masakari_hostmonitor::node_source::record::{NodeRecord, Projection, Shape};
use masakari_hostmonitor::node_source::store::NodeStore;
use masakari_hostmonitor::node_source::{HostSample, Reading};
use serde_json::Value;
use tokio::time::Instant;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/nodes/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn store() -> NodeStore {
    let cfg = Config::default().kubernetes;
    NodeStore::new(Projection::from_config(&cfg), cfg.cache_freshness_limit)
}

fn node(json: &str) -> PartialNode {
    serde_json::from_str(json).expect("fixture parses")
}

fn list(store: &NodeStore, json: &str) -> Vec<NodeRecord> {
    let list: ObjectList<PartialNode> = serde_json::from_str(json).expect("list parses");
    list.items
        .into_iter()
        .filter_map(|n| store.project(n))
        .collect()
}

fn sample<'a>(samples: &'a [HostSample], host: &str) -> &'a HostSample {
    samples
        .iter()
        .find(|s| s.host == host)
        .unwrap_or_else(|| panic!("no sample for {host}"))
}

/// Log lines written while `f` runs.
fn logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (result, text)
}

fn edit(json: &str, f: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(json).unwrap();
    f(&mut value);
    value.to_string()
}

#[test]
fn missing_ready_list_reads_no_data() {
    let text = fixture("nodelist-missing-ready.json");
    let mut store = store();
    let records = list(&store, &text);
    let ((), log) = logs(|| store.replace_all(records));
    let snapshot = store.snapshot(Instant::now());

    assert!(snapshot.synced);
    assert_eq!(snapshot.hosts.len(), 6);
    let up: Vec<&str> = snapshot
        .hosts
        .iter()
        .filter(|s| s.reading == Reading::Up)
        .map(|s| s.host.as_str())
        .collect();
    assert_eq!(up, ["compute-0", "compute-5"]);
    for host in ["compute-1", "compute-2", "compute-3", "compute-4"] {
        assert_eq!(
            sample(&snapshot.hosts, host).reading,
            Reading::NoData,
            "{host}"
        );
    }
    assert_eq!(
        store.record("compute-1").unwrap().shape,
        Shape::NoConditionsKey
    );
    assert_eq!(
        store.record("compute-2").unwrap().shape,
        Shape::NullConditions
    );
    assert_eq!(
        store.record("compute-3").unwrap().shape,
        Shape::EmptyConditions
    );
    assert_eq!(
        store.record("compute-4").unwrap().shape,
        Shape::NoReadyCondition
    );
    assert_eq!(store.shape_reports(), 4);
    for (host, shape) in [
        ("compute-1", "no_conditions_key"),
        ("compute-2", "null_conditions"),
        ("compute-3", "empty_conditions"),
        ("compute-4", "no_ready_condition"),
    ] {
        let line = format!("node={host} shape={shape}");
        assert_eq!(log.matches(&line).count(), 1, "{line} in {log}");
    }
}

#[test]
fn missing_ready_logged_once_per_change() {
    let text = fixture("nodelist-missing-ready.json");
    let mut store = store();
    let records = list(&store, &text);
    store.replace_all(records);
    assert_eq!(store.shape_reports(), 4);

    let records = list(&store, &text);
    let ((), log) = logs(|| store.replace_all(records));
    assert_eq!(store.shape_reports(), 4, "repeat list logged again: {log}");
    assert!(!log.contains("shape="), "{log}");

    let list_json: Value = serde_json::from_str(&text).unwrap();
    let items = list_json["items"].as_array().unwrap();
    let mut healthy = items[0].clone();
    healthy["metadata"]["name"] = "compute-1".into();
    healthy["metadata"]["uid"] = items[1]["metadata"]["uid"].clone();
    store.apply(node(&healthy.to_string()));
    assert_eq!(store.shape_reports(), 4);

    let ((), log) = logs(|| store.apply(node(&items[1].to_string())));
    assert_eq!(store.shape_reports(), 5);
    assert_eq!(
        log.matches("node=compute-1 shape=no_conditions_key")
            .count(),
        1
    );
}

#[test]
fn duplicate_ready_reads_down_and_warns_once() {
    let text = fixture("node-duplicate-ready.json");
    let mut store = store();
    let ((), log) = logs(|| store.apply(node(&text)));
    let snapshot = store.snapshot(Instant::now());
    let s = sample(&snapshot.hosts, "compute-2");
    assert_eq!(s.reading, Reading::Down);
    assert_eq!(s.ready_since, Some("2026-12-04T09:59:20Z".parse().unwrap()));
    assert_eq!(log.matches("WARN").count(), 1, "{log}");
    assert!(
        log.contains("node=compute-2 shape=duplicate_ready"),
        "{log}"
    );

    let ((), log) = logs(|| store.apply(node(&text)));
    assert!(
        !log.contains("duplicate_ready"),
        "same episode warned again: {log}"
    );

    let single = edit(&text, |v| {
        v["status"]["conditions"].as_array_mut().unwrap().remove(3);
    });
    store.apply(node(&single));
    let ((), log) = logs(|| store.apply(node(&text)));
    assert_eq!(log.matches("shape=duplicate_ready").count(), 1, "{log}");
}

#[test]
fn huge_node_reads_up_with_small_record() {
    let text = fixture("node-huge.json");
    assert!(text.len() > 150_000);
    let mut store = store();
    store.apply(node(&text));
    let snapshot = store.snapshot(Instant::now());
    assert_eq!(snapshot.hosts.len(), 1);
    assert_eq!(snapshot.hosts[0].reading, Reading::Up);

    let trimmed = edit(&text, |v| {
        let status = v["status"].as_object_mut().unwrap();
        status.remove("images");
        status.remove("volumesInUse");
        status.remove("volumesAttached");
        v["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        v["metadata"].as_object_mut().unwrap().remove("annotations");
    });
    assert!(trimmed.len() < text.len() / 10);
    let huge = store.record("compute-12").unwrap().clone();
    store.apply(node(&trimmed));
    let small = store.record("compute-12").unwrap();
    assert_eq!(&huge, small);
    assert!(
        record_heap_bytes(&huge) < 256,
        "{}",
        record_heap_bytes(&huge)
    );
}

fn record_heap_bytes(record: &NodeRecord) -> usize {
    record.name.capacity()
        + record.uid.capacity()
        + record.host.capacity()
        + record
            .ready
            .as_ref()
            .and_then(|r| r.reason.as_ref())
            .map_or(0, String::capacity)
}

#[test]
fn never_updated_node_reads_down() {
    let mut store = store();
    store.apply(node(&fixture("node-never-updated.json")));
    let snapshot = store.snapshot(Instant::now());
    let s = sample(&snapshot.hosts, "compute-11");
    assert_eq!(s.reading, Reading::Down);
    assert!(s.never_updated);
}

#[test]
fn down_for_days_node_keeps_transition_time() {
    let mut store = store();
    store.apply(node(&fixture("node-down-for-days.json")));
    let snapshot = store.snapshot(Instant::now());
    let s = sample(&snapshot.hosts, "compute-3");
    assert_eq!(s.reading, Reading::Down);
    assert!(!s.never_updated);
    let since = s.ready_since.expect("transition time");
    assert_eq!(since, "2026-11-29T22:14:47Z".parse::<Timestamp>().unwrap());
    let reference: Timestamp = "2026-12-04T10:00:00Z".parse().unwrap();
    assert!(reference.duration_since(since) > jiff::SignedDuration::from_hours(72));
}

#[test]
fn deleted_node_disappears() {
    let mut store = store();
    let text = fixture("node-down-for-days.json");
    store.apply(node(&text));
    store.delete(&node(&text));
    assert!(store.snapshot(Instant::now()).hosts.is_empty());
}

#[test]
fn recreated_node_starts_fresh() {
    let mut store = store();
    let text = fixture("node-duplicate-ready.json");
    store.apply(node(&text));
    assert_eq!(store.shape_reports(), 1);
    let recreated = edit(&text, |v| v["metadata"]["uid"] = "new-uid".into());
    let ((), log) = logs(|| store.apply(node(&recreated)));
    let snapshot = store.snapshot(Instant::now());
    assert_eq!(snapshot.hosts[0].uid, "new-uid");
    assert_eq!(store.shape_reports(), 2, "{log}");
    assert!(log.contains("Node re-created"), "{log}");
}

#[test]
fn snapshot_sorted_by_host() {
    let mut store = store();
    let text = fixture("nodelist-missing-ready.json");
    let mut records = list(&store, &text);
    records.reverse();
    store.replace_all(records);
    let hosts: Vec<String> = store
        .snapshot(Instant::now())
        .hosts
        .into_iter()
        .map(|s| s.host)
        .collect();
    let mut sorted = hosts.clone();
    sorted.sort();
    assert_eq!(hosts, sorted);
}

#[tokio::test(start_paused = true)]
async fn stale_cache_reads_no_data() {
    let mut store = store();
    store.apply(node(&fixture("node-huge.json")));
    let limit = Config::default().kubernetes.cache_freshness_limit;

    store.mark_broken(Instant::now());
    tokio::time::advance(limit).await;
    assert_eq!(store.snapshot(Instant::now()).hosts[0].reading, Reading::Up);

    tokio::time::advance(Duration::from_millis(1)).await;
    store.mark_broken(Instant::now());
    let snapshot = store.snapshot(Instant::now());
    assert_eq!(snapshot.hosts[0].reading, Reading::NoData);
    assert!(!snapshot.synced, "no list was applied");

    store.mark_working();
    assert_eq!(store.snapshot(Instant::now()).hosts[0].reading, Reading::Up);
}

#[tokio::test(start_paused = true)]
async fn short_break_keeps_readings() {
    let mut store = store();
    store.apply(node(&fixture("node-huge.json")));
    store.mark_broken(Instant::now());
    tokio::time::advance(Duration::from_secs(10)).await;
    store.mark_working();
    store.mark_broken(Instant::now());
    tokio::time::advance(Duration::from_secs(25)).await;
    assert_eq!(store.snapshot(Instant::now()).hosts[0].reading, Reading::Up);
}

#[test]
fn snapshot_of_ten_thousand_nodes_is_fast() {
    use masakari_hostmonitor::fake::kube_api::NodeFixture;

    let mut store = store();
    let template = NodeFixture::ready("compute-00000").to_json();
    for i in 0..10_000 {
        let mut json = template.clone();
        json["metadata"]["name"] = format!("compute-{i:05}").into();
        json["metadata"]["uid"] = format!("uid-{i:05}").into();
        store.apply(serde_json::from_value(json).unwrap());
    }
    assert_eq!(store.len(), 10_000);

    let started = std::time::Instant::now();
    let snapshot = store.snapshot(Instant::now());
    let elapsed = started.elapsed();
    assert_eq!(snapshot.hosts.len(), 10_000);
    assert_eq!(snapshot.hosts[0].host, "compute-00000");
    // The target is 10 ms in a release build; debug builds get a wide margin.
    assert!(elapsed < Duration::from_millis(200), "{elapsed:?}");
}

#[test]
fn host_name_collision_gives_one_sample() {
    use masakari_hostmonitor::config::HostNameSource;
    use masakari_hostmonitor::fake::kube_api::NodeFixture;

    let mut cfg = Config::default().kubernetes;
    cfg.host_name_source = HostNameSource::Label("masakari-host".to_owned());
    let mut store = NodeStore::new(Projection::from_config(&cfg), cfg.cache_freshness_limit);
    let a = NodeFixture::ready("node-a").label("masakari-host", "compute-0");
    let b = NodeFixture::ready("node-b")
        .label("masakari-host", "compute-0")
        .not_ready();
    store.apply(serde_json::from_value(a.to_json()).unwrap());
    let ((), log) = logs(|| store.apply(serde_json::from_value(b.to_json()).unwrap()));
    assert_eq!(
        log.matches("Two Nodes map to the same host name").count(),
        1,
        "{log}"
    );
    assert!(log.contains("host=compute-0 node=node-b"), "{log}");

    let snapshot = store.snapshot(Instant::now());
    assert_eq!(snapshot.hosts.len(), 1);
    assert_eq!(snapshot.hosts[0].reading, Reading::Up, "node-a is sampled");

    let ((), log) = logs(|| store.apply(serde_json::from_value(b.to_json()).unwrap()));
    assert!(!log.contains("same host name"), "warned again: {log}");

    store.delete(&serde_json::from_value(a.to_json()).unwrap());
    let snapshot = store.snapshot(Instant::now());
    assert_eq!(snapshot.hosts.len(), 1);
    assert_eq!(
        snapshot.hosts[0].reading,
        Reading::Down,
        "node-b is sampled"
    );
}
