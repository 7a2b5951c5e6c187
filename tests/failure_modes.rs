//! Failure modes that would evacuate a running host, miss a dead one, or load the API server:
//! each test drives one through the public API and checks the safe outcome.

use std::sync::Arc;
use std::time::Duration;

use masakari_hostmonitor::config::{AuthType, Config};
use masakari_hostmonitor::delivery::{Notification, Outcome};
use masakari_hostmonitor::detector::HostEvent;
use masakari_hostmonitor::masakari::MasakariClient;
use masakari_hostmonitor::metrics::Metrics;
use masakari_hostmonitor::monitor::{Decision, Monitor};
use masakari_hostmonitor::node_source::{HostSample, Reading, Snapshot};
use masakari_hostmonitor::secret::Secret;
use serde_json::json;
use tokio::time::Instant;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sample(uid: &str, reading: Reading) -> Snapshot {
    let now = jiff::Timestamp::now();
    Snapshot {
        synced: true,
        hosts: vec![HostSample {
            host: "compute-0".into(),
            uid: uid.into(),
            reading,
            ready_since: Some(now),
            never_updated: false,
        }],
    }
}

/// A failed host whose Node is re-created under the same name (new uid) and reads Up must
/// produce `Recovered`, which cancels its pending notification.
#[test]
fn recreated_node_up_cancels_pending() {
    let mut config = Config::default();
    config.host.monitoring_samples = 2;
    let mut monitor = Monitor::new(&config);
    let start = Instant::now();
    let wall = jiff::Timestamp::now();
    let mut all = Vec::new();
    for (i, (uid, reading)) in [
        ("uid-old", Reading::Up),
        ("uid-old", Reading::Down),
        ("uid-old", Reading::Down), // Failed: notification submitted
        ("uid-new", Reading::Up),   // kubelet re-registered the Node: host running again
        ("uid-new", Reading::Up),
    ]
    .into_iter()
    .enumerate()
    {
        let report = monitor.tick(
            &sample(uid, reading),
            start + Duration::from_secs(10 * i as u64),
            wall,
        );
        all.extend(report.decisions);
    }
    eprintln!("{all:#?}");
    assert!(all.iter().any(|d| matches!(
        d,
        Decision::Host {
            event: HostEvent::Failed { .. },
            ..
        }
    )));
    assert!(
        all.iter().any(|d| matches!(
            d,
            Decision::Host {
                event: HostEvent::Recovered,
                ..
            } | Decision::Forgotten { .. }
        )),
        "host read Up under a new uid, yet nothing cancels its pending notification: {all:?}"
    );
}

/// A POST that receives a 302 (an http->https ingress redirect, an OpenShift route) is not
/// followed: following it would turn the POST into a GET whose 200 reads as delivered.
#[tokio::test]
async fn redirect_is_not_delivered() {
    let server = MockServer::start().await;
    let mut api = Config::default().api;
    api.auth.auth_type = AuthType::V3Password;
    api.auth.auth_url = format!("{}/identity/v3", server.uri());
    api.auth.username = Some("masakari".into());
    api.auth.user_domain_name = Some("Default".into());
    api.auth.password = Some(Secret::new("pw"));
    api.auth.project_name = Some("service".into());
    api.auth.project_domain_name = Some("Default".into());
    api.timeout = Duration::from_secs(5);
    let expires_at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let url = format!("{}/instance-ha/v1/p1", server.uri());
    Mock::given(method("POST"))
        .and(path("/identity/v3/auth/tokens"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("X-Subject-Token", "tok")
                .set_body_json(json!({"token": {
                    "expires_at": expires_at.to_string(),
                    "catalog": [{"type": "instance-ha", "endpoints": [
                        {"interface": "public", "region_id": "RegionOne", "url": url}]}]
                }})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/instance-ha/v1/p1/notifications"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("Location", format!("{}/moved/notifications", server.uri())),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/moved/notifications"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"notifications": []})))
        .mount(&server)
        .await;
    let client = MasakariClient::from_config(&api, Metrics::new(&mut Default::default())).unwrap();
    let _ = Arc::new(());
    let outcome = client
        .notify(&Notification {
            host: "compute-0".into(),
            generated_time: jiff::Timestamp::now(),
        })
        .await;
    let received = server.received_requests().await.unwrap();
    for r in &received {
        eprintln!("{} {}", r.method, r.url);
    }
    assert!(
        !matches!(outcome, Outcome::Delivered { .. }),
        "no notification was created, yet the outcome is {outcome:?}"
    );
}

/// Records when the first lease PUT reached the server (the moment the renewal took effect
/// for every other replica) and responds to it late; later PUTs fail.
struct SlowRenewal {
    arrived: Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
    lease: serde_json::Value,
}

impl wiremock::Respond for SlowRenewal {
    fn respond(&self, _request: &wiremock::Request) -> ResponseTemplate {
        let mut arrived = self.arrived.lock().unwrap();
        arrived.push(std::time::Instant::now());
        if arrived.len() == 1 {
            ResponseTemplate::new(200)
                .set_body_json(self.lease.clone())
                .set_delay(Duration::from_millis(1800))
        } else {
            ResponseTemplate::new(500).set_body_json(json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500}))
        }
    }
}

/// A leader must stop sending before another replica can take over. Another replica takes
/// over `lease_duration` after it saw the renewal, which it can see as soon as the PUT reaches
/// the API server, so the renew deadline counts from when the PUT was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_stops_within_lease_after_slow_renewal() {
    use masakari_hostmonitor::leader::{LeaderElector, LeaderSettings};
    let server = MockServer::start().await;
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "mh", "namespace": "default", "resourceVersion": "1"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 3,
                 "renewTime": "2026-12-04T22:00:00.000000Z", "leaseTransitions": 0}
    });
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/default/leases/mh";
    Mock::given(method("GET"))
        .and(path(lease_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(lease.clone()))
        .mount(&server)
        .await;
    let arrived = Arc::new(std::sync::Mutex::new(Vec::new()));
    Mock::given(method("PUT"))
        .and(path(lease_path))
        .respond_with(SlowRenewal {
            arrived: arrived.clone(),
            lease: lease.clone(),
        })
        .mount(&server)
        .await;

    let config = kube::Config::new(server.uri().parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let settings = LeaderSettings {
        namespace: "default".into(),
        lease_name: "mh".into(),
        identity: "a".into(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    };
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let elector = LeaderElector::new(client, settings, tx, Metrics::new(&mut Default::default()));
    tokio::spawn(elector.run(std::future::pending()));
    rx.wait_for(|l| *l).await.unwrap();
    rx.wait_for(|l| !*l).await.unwrap();
    let stepped_down = std::time::Instant::now();
    let first_put = arrived.lock().unwrap()[0];
    let led_for = stepped_down - first_put;
    eprintln!("stopped sending {led_for:?} after its last successful write reached the API server");
    assert!(
        led_for <= Duration::from_secs(3),
        "still leader {led_for:?} after the write; another replica could take over after 3 s"
    );
}

/// A watch to which the server (or a proxy in front of it) responds with 200 and an empty body is
/// retried with backoff, not in a tight loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_watch_streams_back_off() {
    use masakari_hostmonitor::node_source::{NodeCache, WatchOptions};
    use wiremock::matchers::query_param;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/nodes"))
        .and(query_param("watch", "true"))
        .respond_with(ResponseTemplate::new(200).insert_header("Content-Type", "application/json"))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/nodes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "apiVersion": "v1", "kind": "NodeList",
            "metadata": {"resourceVersion": "7"}, "items": []})))
        .with_priority(2)
        .mount(&server)
        .await;
    let client = kube::Client::try_from(kube::Config::new(server.uri().parse().unwrap())).unwrap();
    let config = Config::default();
    let (cache, task) = NodeCache::spawn_with(
        client,
        &config.kubernetes,
        Metrics::new(&mut Default::default()),
        WatchOptions::default(),
    );
    cache.wait_synced().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    task.abort();
    let watches = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.query().is_some_and(|q| q.contains("watch=true")))
        .count();
    eprintln!("{watches} watch requests in 2 s");
    assert!(watches < 10, "{watches} watch requests in 2 s");
}

fn node(
    name: &str,
    uid: &str,
    status: &str,
) -> masakari_hostmonitor::node_source::partial::PartialNode {
    serde_json::from_value(json!({
        "metadata": {"name": name, "uid": uid},
        "status": {"conditions": [{"type": "Ready", "status": status,
            "lastTransitionTime": "2026-12-04T22:00:00Z"}]}
    }))
    .unwrap()
}

/// Two Nodes mapped to one Masakari host (strip_domain: a host re-registered under its FQDN
/// next to its stale short-named Node): one Ready Node means the host runs, so it reads Up.
#[test]
fn host_name_collision_prefers_up() {
    use masakari_hostmonitor::node_source::record::Projection;
    use masakari_hostmonitor::node_source::store::NodeStore;
    let mut config = Config::default();
    config.kubernetes.host_name_strip_domain = true;
    let mut store = NodeStore::new(
        Projection::from_config(&config.kubernetes),
        Duration::from_secs(30),
    );
    store.apply(node("compute-0", "old", "Unknown"));
    store.apply(node("compute-0.example.org", "new", "True"));
    store.replace_all(vec![]); // reset, then list as the cache does
    let records: Vec<_> = [
        node("compute-0", "old", "Unknown"),
        node("compute-0.example.org", "new", "True"),
    ]
    .into_iter()
    .filter_map(|n| store.project(n))
    .collect();
    store.replace_all(records);
    let snapshot = store.snapshot(Instant::now());
    eprintln!("{snapshot:?}");
    assert_eq!(snapshot.hosts.len(), 1);
    assert_ne!(
        snapshot.hosts[0].reading,
        Reading::Down,
        "one of the host's Nodes is Ready, yet the host reads Down"
    );
}

/// An attempt fetches a Keystone token (up to `[api] timeout`) before it posts; a replica that
/// loses leadership meanwhile must not post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_post_after_step_down() {
    use masakari_hostmonitor::delivery::{self, DeliverySettings, SendPermit};
    let server = MockServer::start().await;
    let mut api = Config::default().api;
    api.auth.auth_type = AuthType::V3Password;
    api.auth.auth_url = format!("{}/identity/v3", server.uri());
    api.auth.username = Some("masakari".into());
    api.auth.user_domain_name = Some("Default".into());
    api.auth.password = Some(Secret::new("pw"));
    api.auth.project_name = Some("service".into());
    api.auth.project_domain_name = Some("Default".into());
    api.timeout = Duration::from_secs(10);
    let expires_at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let url = format!("{}/instance-ha/v1/p1", server.uri());
    Mock::given(method("POST"))
        .and(path("/identity/v3/auth/tokens"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("X-Subject-Token", "tok")
                .set_body_json(json!({"token": {
                    "expires_at": expires_at.to_string(),
                    "catalog": [{"type": "instance-ha", "endpoints": [
                        {"interface": "public", "region_id": "RegionOne", "url": url}]}]
                }}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/instance-ha/v1/p1/notifications"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(json!({"notification": {"notification_uuid": "u-1"}})),
        )
        .mount(&server)
        .await;
    let metrics = Metrics::new(&mut Default::default());
    let client = MasakariClient::from_config(&api, metrics.clone()).unwrap();
    let (leader_tx, leader_rx) = tokio::sync::watch::channel(true);
    let (_breaker_tx, breaker_rx) = tokio::sync::watch::channel(true);
    let (handle, commands) = delivery::channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let _task = delivery::spawn(
        commands,
        Arc::new(client),
        SendPermit {
            breaker_closed: breaker_rx,
            leader: leader_rx,
        },
        DeliverySettings {
            retry_max: 1,
            retry_interval: Duration::from_secs(1),
            slow_retry_interval: Duration::from_secs(1),
            max_concurrent: 2,
            shutdown_timeout: Duration::from_secs(1),
        },
        metrics,
        stop.clone(),
    );
    handle.submit(Notification {
        host: "compute-0".into(),
        generated_time: jiff::Timestamp::now(),
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    leader_tx.send_replace(false); // renew deadline passed: this replica must stop sending
    tokio::time::sleep(Duration::from_secs(4)).await;
    let posts = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/notifications"))
        .count();
    assert_eq!(
        posts, 0,
        "{posts} notification(s) posted after this replica stopped leading"
    );
}

/// An API server (or proxy) that accepts watch requests and then sends nothing: the silent
/// stream ends at the idle limit and marks the cache broken, so readings turn NoData instead
/// of staying frozen at their last value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_watch_makes_cache_stale() {
    use masakari_hostmonitor::node_source::{NodeCache, NodeSource, WatchOptions};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let watches = Arc::new(AtomicUsize::new(0));
    let counter = watches.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                loop {
                    let mut buf = vec![0u8; 8192];
                    let n = match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    if head.contains("watch=true") {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").await;
                        // Hung: never a byte more, never closed.
                        std::future::pending::<()>().await;
                    }
                    let body = json!({"apiVersion": "v1", "kind": "NodeList",
                        "metadata": {"resourceVersion": "7"},
                        "items": [{"metadata": {"name": "compute-0", "uid": "u0", "resourceVersion": "7"},
                            "status": {"conditions": [{"type": "Ready", "status": "True",
                                "lastTransitionTime": "2026-12-04T20:00:00Z"}]}}]}).to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                        body.len(),
                        body
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                }
            });
        }
    });
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://{addr}").parse().unwrap()))
            .unwrap();
    let mut config = Config::default();
    config.kubernetes.cache_freshness_limit = Duration::from_secs(1);
    let (cache, task) = NodeCache::spawn_with(
        client,
        &config.kubernetes,
        Metrics::new(&mut Default::default()),
        WatchOptions {
            watch_timeout: Duration::from_secs(1),
            ..WatchOptions::default()
        },
    );
    cache.wait_synced().await;
    tokio::time::sleep(Duration::from_secs(14)).await;
    let snapshot = cache.snapshot();
    task.abort();
    let watch_requests = watches.load(Ordering::SeqCst);
    eprintln!(
        "{watch_requests} silent watches; reading after 14 s: {:?}",
        snapshot.hosts[0].reading
    );
    assert!(
        watch_requests >= 2,
        "the silent watch was resumed {watch_requests} times"
    );
    assert_eq!(
        snapshot.hosts[0].reading,
        Reading::NoData,
        "no event for 14 s with a 1 s freshness limit, yet the reading is not NoData"
    );
}
