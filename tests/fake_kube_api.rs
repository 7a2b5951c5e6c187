//! The fake Kubernetes API server's wire protocol, checked with plain HTTP and with kube's Api.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use masakari_hostmonitor::fake::kube_api::{FakeKubeApi, FakeKubeSettings, NodeFixture};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn fake_with(names: &[&str]) -> FakeKubeApi {
    let api = FakeKubeApi::start_with(FakeKubeSettings {
        bookmark_interval: Duration::from_millis(200),
        history_limit: 5,
    })
    .await
    .unwrap();
    for name in names {
        api.apply_node(NodeFixture::ready(name).to_json()).unwrap();
    }
    api
}

async fn get_json(api: &FakeKubeApi, path_and_query: &str) -> (u16, Value) {
    let url = format!("http://{}{path_and_query}", api.addr());
    let response = reqwest::get(&url).await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// Reads watch events until the server ends the stream.
async fn watch_events(api: &FakeKubeApi, query: &str) -> Vec<Value> {
    let url = format!("http://{}/api/v1/nodes?watch=true&{query}", api.addr());
    let body = tokio::time::timeout(WAIT, async {
        reqwest::get(&url).await.unwrap().text().await.unwrap()
    })
    .await
    .expect("stream ended");
    body.lines()
        .map(|l| serde_json::from_str(l).expect("event is JSON"))
        .collect()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn list_pages_with_continue() {
    let api = fake_with(&["n1", "n2", "n3", "n4", "n5"]).await;
    let (status, page1) = get_json(&api, "/api/v1/nodes?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(names(&page1), ["n1", "n2"]);
    let rv = page1["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = page1["metadata"]["continue"].as_str().unwrap().to_owned();

    // Later pages show the list's snapshot, not changes made since.
    api.delete_node("n3").unwrap();
    api.apply_node(NodeFixture::ready("n35").to_json()).unwrap();
    let (_, page2) = get_json(&api, &format!("/api/v1/nodes?limit=2&continue={token}")).await;
    assert_eq!(names(&page2), ["n3", "n4"]);
    assert_eq!(page2["metadata"]["resourceVersion"], rv);
    let token = page2["metadata"]["continue"].as_str().unwrap().to_owned();
    let (_, page3) = get_json(&api, &format!("/api/v1/nodes?limit=2&continue={token}")).await;
    assert_eq!(names(&page3), ["n5"]);
    assert!(page3["metadata"].get("continue").is_none());
    assert_eq!(api.stats().list_requests, 3);

    let (_, fresh) = get_json(&api, "/api/v1/nodes").await;
    assert_eq!(names(&fresh), ["n1", "n2", "n35", "n4", "n5"]);
}

#[tokio::test]
async fn list_continue_expires_after_compaction() {
    let api = fake_with(&["n1", "n2", "n3"]).await;
    let (_, page1) = get_json(&api, "/api/v1/nodes?limit=1").await;
    let token = page1["metadata"]["continue"].as_str().unwrap().to_owned();
    api.apply_node(NodeFixture::ready("n4").to_json()).unwrap();
    api.compact();
    let (status, body) = get_json(&api, &format!("/api/v1/nodes?limit=1&continue={token}")).await;
    assert_eq!(status, 410);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "Expired");
    assert_eq!(body["code"], 410);
}

#[tokio::test]
async fn list_with_label_selector() {
    let api = fake_with(&[]).await;
    for (name, role, zone) in [
        ("a", "compute", "z1"),
        ("b", "compute", "z2"),
        ("c", "control", "z1"),
    ] {
        let node = NodeFixture::ready(name)
            .label("role", role)
            .label("zone", zone);
        api.apply_node(node.to_json()).unwrap();
    }
    let cases = [
        ("role%3Dcompute", vec!["a", "b"]),
        ("role%3D%3Dcompute%2Czone%3Dz1", vec!["a"]),
        ("role!%3Dcompute", vec!["c"]),
        ("zone%20in%20(z2%2Cz3)", vec!["b"]),
        ("zone%20notin%20(z2)", vec!["a", "c"]),
        ("role", vec!["a", "b", "c"]),
        ("!role", vec![]),
    ];
    for (selector, expected) in cases {
        let (status, list) =
            get_json(&api, &format!("/api/v1/nodes?labelSelector={selector}")).await;
        assert_eq!(status, 200, "{selector}");
        assert_eq!(names(&list), expected, "{selector}");
    }
    let (status, body) = get_json(&api, "/api/v1/nodes?labelSelector=a%20in%201").await;
    assert_eq!(status, 400);
    assert_eq!(body["reason"], "BadRequest");
}

#[tokio::test]
async fn list_accepts_any_resource_version() {
    let api = fake_with(&["n1"]).await;
    let (status, list) = get_json(
        &api,
        "/api/v1/nodes?resourceVersion=0&resourceVersionMatch=NotOlderThan",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(names(&list), ["n1"]);
}

#[tokio::test]
async fn get_node_by_name() {
    let api = fake_with(&["n1"]).await;
    let (status, node) = get_json(&api, "/api/v1/nodes/n1").await;
    assert_eq!(status, 200);
    assert_eq!(node["metadata"]["name"], "n1");
    assert!(node["metadata"]["resourceVersion"].is_string());
    let (status, body) = get_json(&api, "/api/v1/nodes/missing").await;
    assert_eq!(status, 404);
    assert_eq!(body["reason"], "NotFound");
    assert_eq!(api.stats().get_requests, 2);
}

#[tokio::test]
async fn watch_streams_changes_from_resource_version() {
    let api = fake_with(&["n1", "n2"]).await;
    let rv = api.resource_version();
    api.set_ready("n1", "False", "KubeletNotReady").unwrap();
    api.delete_node("n2").unwrap();
    let events = watch_events(
        &api,
        &format!("resourceVersion={rv}&timeoutSeconds=1&allowWatchBookmarks=true"),
    )
    .await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..2], ["MODIFIED", "DELETED"]);
    assert_eq!(
        events[0]["object"]["status"]["conditions"][3]["status"],
        "False"
    );
    let last = events.last().unwrap();
    assert_eq!(last["type"], "BOOKMARK", "stream ends with a bookmark");
    assert_eq!(
        last["object"]["metadata"]["resourceVersion"],
        api.resource_version().to_string()
    );
    assert!(last["object"]["status"].is_null());
}

#[tokio::test]
async fn watch_without_bookmarks_sends_none() {
    let api = fake_with(&["n1"]).await;
    let rv = api.resource_version();
    let events = watch_events(&api, &format!("resourceVersion={rv}&timeoutSeconds=1")).await;
    assert!(events.is_empty(), "{events:?}");
}

#[tokio::test]
async fn watch_too_old_is_gone() {
    let api = fake_with(&["n1"]).await;
    let rv = api.resource_version();
    for i in 0..6 {
        api.apply_node(NodeFixture::ready(&format!("m{i}")).to_json())
            .unwrap();
    }
    let events = watch_events(&api, &format!("resourceVersion={rv}&timeoutSeconds=1")).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");

    let rv = api.resource_version();
    api.compact();
    let events = watch_events(&api, &format!("resourceVersion={rv}&timeoutSeconds=1")).await;
    assert!(events.iter().all(|e| e["type"] != "ERROR"), "{events:?}");
    let events = watch_events(
        &api,
        &format!("resourceVersion={}&timeoutSeconds=1", rv - 1),
    )
    .await;
    assert_eq!(events[0]["object"]["code"], 410);
}

#[tokio::test]
async fn watch_selector_turns_relabel_into_delete() {
    let api = fake_with(&[]).await;
    api.apply_node(NodeFixture::ready("n1").label("role", "compute").to_json())
        .unwrap();
    api.apply_node(NodeFixture::ready("n2").to_json()).unwrap();
    let rv = api.resource_version();
    api.apply_node(NodeFixture::ready("n1").label("role", "other").to_json())
        .unwrap();
    api.apply_node(NodeFixture::ready("n2").label("role", "compute").to_json())
        .unwrap();
    api.apply_node(NodeFixture::ready("n3").to_json()).unwrap();
    let events = watch_events(
        &api,
        &format!("resourceVersion={rv}&timeoutSeconds=1&labelSelector=role%3Dcompute"),
    )
    .await;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["object"]["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("DELETED".to_owned(), "n1".to_owned()),
            ("ADDED".to_owned(), "n2".to_owned())
        ]
    );
}

#[tokio::test]
async fn watch_resource_version_zero_starts_with_current_state() {
    let api = fake_with(&["n1", "n2"]).await;
    let events = watch_events(&api, "resourceVersion=0&timeoutSeconds=1").await;
    let added: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "ADDED")
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["n1", "n2"]);
}

#[tokio::test]
async fn watch_live_events_and_injected_error() {
    let api = fake_with(&["n1"]).await;
    let nodes: Api<Node> = Api::all(api.client());
    let rv = api.resource_version().to_string();
    let params = kube::api::WatchParams::default().timeout(30);
    let mut stream = Box::pin(nodes.watch(&params, &rv).await.unwrap());
    tokio::time::timeout(WAIT, async {
        while api.stats().open_watches == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    api.set_ready("n1", "Unknown", "NodeStatusUnknown").unwrap();
    let event = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(event, kube::api::WatchEvent::Modified(_)));
    assert_eq!(api.inject_watch_error(500), 1);
    let event = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let kube::api::WatchEvent::Error(status) = event else {
        panic!("expected an error event, got {event:?}");
    };
    assert_eq!(status.code, 500);
    assert!(
        tokio::time::timeout(WAIT, stream.next())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn kube_list_pages_through_fake() {
    let api = fake_with(&[]).await;
    for i in 0..25 {
        api.apply_node(NodeFixture::ready(&format!("n{i:02}")).to_json())
            .unwrap();
    }
    let nodes: Api<Node> = Api::all(api.client());
    let mut params = ListParams::default().limit(10);
    let mut seen = Vec::new();
    loop {
        let page = nodes.list(&params).await.unwrap();
        seen.extend(page.items.into_iter().map(|n| n.metadata.name.unwrap()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(api.stats().list_requests, 3);
    assert!(api.stats().bytes_served > 25 * 1_000);
}

#[tokio::test]
async fn unavailable_refuses_connections_then_recovers() {
    let api = fake_with(&["n1"]).await;
    api.set_unavailable(true);
    let url = format!("http://{}/api/v1/nodes", api.addr());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match reqwest::get(&url).await {
            Err(error) => {
                assert!(error.is_connect(), "{error}");
                break;
            }
            Ok(_) => {
                assert!(tokio::time::Instant::now() < deadline, "still accepting");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    api.set_unavailable(false);
    let response = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(response) = reqwest::get(&url).await {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("server back");
    assert_eq!(response.status(), 200);
}

fn lease(name: &str, holder: &str) -> Lease {
    serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
    }))
    .unwrap()
}

#[tokio::test]
async fn lease_create_get_replace_delete() {
    let api = fake_with(&[]).await;
    let leases: Api<Lease> = Api::namespaced(api.client(), "openstack");
    let pp = PostParams::default();

    let missing = leases.get("leader").await.unwrap_err();
    assert!(
        matches!(&missing, kube::Error::Api(s) if s.code == 404),
        "{missing}"
    );

    let created = leases.create(&pp, &lease("leader", "a")).await.unwrap();
    let rv1 = created.metadata.resource_version.clone().unwrap();
    assert_eq!(created.metadata.namespace.as_deref(), Some("openstack"));
    assert!(created.metadata.uid.is_some());

    let again = leases.create(&pp, &lease("leader", "b")).await.unwrap_err();
    assert!(
        matches!(&again, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{again}"
    );

    let mut update = leases.get("leader").await.unwrap();
    update.spec.as_mut().unwrap().holder_identity = Some("b".to_owned());
    let replaced = leases.replace("leader", &pp, &update).await.unwrap();
    assert_ne!(
        replaced.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    assert_eq!(replaced.metadata.uid, created.metadata.uid);

    // A writer holding the first version loses.
    let mut stale = created.clone();
    stale.spec.as_mut().unwrap().holder_identity = Some("c".to_owned());
    let conflict = leases.replace("leader", &pp, &stale).await.unwrap_err();
    assert!(
        matches!(&conflict, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"),
        "{conflict}"
    );
    let stored = api.lease("openstack", "leader").unwrap();
    assert_eq!(stored["spec"]["holderIdentity"], "b");

    let patched = leases
        .patch(
            "leader",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"leaseTransitions": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.as_ref().unwrap().lease_transitions, Some(3));
    assert_eq!(
        patched.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("b")
    );

    let listed = leases.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    leases
        .delete("leader", &DeleteParams::default())
        .await
        .unwrap();
    let gone = leases.get("leader").await.unwrap_err();
    assert!(
        matches!(&gone, kube::Error::Api(s) if s.code == 404),
        "{gone}"
    );
    let gone = leases
        .delete("leader", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&gone, kube::Error::Api(s) if s.code == 404),
        "{gone}"
    );
    assert_eq!(api.stats().lease_requests, 11);
}

#[tokio::test]
async fn lease_namespaces_are_separate() {
    let api = fake_with(&[]).await;
    let a: Api<Lease> = Api::namespaced(api.client(), "a");
    let b: Api<Lease> = Api::namespaced(api.client(), "b");
    a.create(&PostParams::default(), &lease("x", "one"))
        .await
        .unwrap();
    assert!(b.get("x").await.is_err());
    b.create(&PostParams::default(), &lease("x", "two"))
        .await
        .unwrap();
    assert_eq!(
        api.lease("a", "x").unwrap()["spec"]["holderIdentity"],
        "one"
    );
}
