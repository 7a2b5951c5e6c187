//! The fake Keystone and Masakari over real HTTP.

use std::time::Duration;

use masakari_hostmonitor::fake::openstack::{Endpoint, FakeOpenStack};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Builds a client without a connection pool. A pooled connection starts an idle timer, which a
/// paused clock would jump to while a request waits for its response.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

fn password_auth(password: &str) -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "masakari", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}
    }})
}

fn stopped(host: &str) -> Value {
    json!({"notification": {
        "type": "COMPUTE_HOST",
        "hostname": host,
        "generated_time": "2026-12-04T21:00:00.000000",
        "payload": {"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "OFFLINE"}
    }})
}

/// Authenticates and returns the token and the catalog's public instance-ha URL.
async fn authenticate(fake: &FakeOpenStack, password: &str) -> (String, String) {
    let response = client()
        .post(format!("{}/auth/tokens", fake.auth_url()))
        .json(&password_auth(password))
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 201);
    let token = response
        .headers()
        .get("x-subject-token")
        .and_then(|value| value.to_str().ok())
        .expect("X-Subject-Token")
        .to_owned();
    let body: Value = response.json().await.expect("token body");
    let endpoints = body["token"]["catalog"]
        .as_array()
        .and_then(|services| services.iter().find(|s| s["type"] == "instance-ha"))
        .and_then(|service| service["endpoints"].as_array())
        .expect("instance-ha in the catalog")
        .clone();
    let public = endpoints
        .iter()
        .find(|endpoint| endpoint["interface"] == "public")
        .and_then(|endpoint| endpoint["url"].as_str())
        .expect("public endpoint")
        .to_owned();
    (token, public)
}

async fn notify(url: &str, token: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{url}/notifications"))
        .header("X-Auth-Token", token)
        .json(body)
        .send()
        .await
        .expect("notification request")
}

#[tokio::test]
async fn catalog_points_at_same_server() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (_, url) = authenticate(&fake, "any").await;
    assert_eq!(url, fake.masakari_url());
    assert!(url.starts_with(&format!("http://{}/masakari/v1/", fake.addr())));
    assert!(url.ends_with(fake.project_id()));
    assert_eq!(fake.tokens_issued(), 1);
}

#[tokio::test]
async fn discovery_documents_served() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let root = client()
        .get(format!("http://{}/", fake.addr()))
        .send()
        .await
        .expect("root");
    assert_eq!(root.status(), 300);
    let root: Value = root.json().await.expect("root body");
    let href = root["versions"]["values"][0]["links"][0]["href"].as_str();
    assert_eq!(href, Some(format!("{}/", fake.auth_url()).as_str()));

    let v3 = client().get(fake.auth_url()).send().await.expect("v3");
    assert_eq!(v3.status(), 200);
    let v3: Value = v3.json().await.expect("v3 body");
    assert_eq!(v3["version"]["status"], "stable");
    assert_eq!(fake.requests(Endpoint::KeystoneDiscovery), 2);
}

#[tokio::test]
async fn keystone_rejects_wrong_password() {
    let fake = FakeOpenStack::builder()
        .secret("right")
        .start()
        .await
        .expect("fake");
    let response = client()
        .post(format!("{}/auth/tokens", fake.auth_url()))
        .json(&password_auth("wrong"))
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("x-subject-token").is_none());
    assert_eq!(fake.tokens_issued(), 0);
    assert_eq!(fake.requests(Endpoint::KeystoneTokens), 1);
}

#[tokio::test]
async fn notification_accepted_and_recorded() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (token, url) = authenticate(&fake, "any").await;

    let response = notify(&url, &token, &stopped("compute-0")).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("body");
    let uuid = body["notification"]["notification_uuid"]
        .as_str()
        .expect("uuid");
    assert_eq!(uuid.len(), 36);

    let received = fake.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].hostname, "compute-0");
    assert_eq!(received[0].kind, "COMPUTE_HOST");
    assert_eq!(received[0].payload["event"], "STOPPED");
    assert_eq!(received[0].status, 202);
    assert_eq!(received[0].notification_uuid.as_deref(), Some(uuid));
    assert_eq!(fake.requests(Endpoint::MasakariNotifications), 1);
}

#[tokio::test]
async fn notification_without_project_in_path_accepted() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (token, _) = authenticate(&fake, "any").await;
    let url = format!("http://{}/masakari/v1", fake.addr());
    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        202
    );
}

#[tokio::test]
async fn notification_invalid_body_rejected() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (token, url) = authenticate(&fake, "any").await;
    let mut body = stopped("compute-0");
    body["notification"]["payload"]["event"] = json!("stopped");

    let response = notify(&url, &token, &body).await;
    assert_eq!(response.status(), 400);
    let fault: Value = response.json().await.expect("fault");
    assert_eq!(fault["badRequest"]["code"], 400);
    assert_eq!(fake.received()[0].status, 400);
}

#[tokio::test]
async fn notification_unknown_host_rejected() {
    let fake = FakeOpenStack::builder()
        .hosts(Some(vec!["compute-0".to_owned()]))
        .start()
        .await
        .expect("fake");
    let (token, url) = authenticate(&fake, "any").await;

    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        202
    );
    let response = notify(&url, &token, &stopped("compute-9")).await;
    assert_eq!(response.status(), 400);
    let fault: Value = response.json().await.expect("fault");
    let message = fault["badRequest"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("compute-9"), "{message}");
}

#[tokio::test]
async fn notification_wrong_token_unauthorized() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (token, url) = authenticate(&fake, "any").await;

    assert_eq!(
        notify(&url, "bogus", &stopped("compute-0")).await.status(),
        401
    );
    fake.expire_tokens();
    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        401
    );
    assert!(
        fake.received().is_empty(),
        "unauthenticated requests recorded"
    );
    assert_eq!(fake.requests(Endpoint::MasakariNotifications), 2);
}

#[tokio::test(start_paused = true)]
async fn duplicate_within_window_conflicts() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (token, url) = authenticate(&fake, "any").await;

    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        202
    );
    tokio::time::advance(Duration::from_secs(179)).await;
    let response = notify(&url, &token, &stopped("compute-0")).await;
    assert_eq!(response.status(), 409);
    let fault: Value = response.json().await.expect("fault");
    assert_eq!(fault["conflictingRequest"]["code"], 409);

    assert_eq!(
        notify(&url, &token, &stopped("compute-1")).await.status(),
        202
    );

    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        202
    );
}

#[tokio::test(start_paused = true)]
async fn duplicate_needs_equal_payload() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (token, url) = authenticate(&fake, "any").await;
    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        202
    );

    let mut other = stopped("compute-0");
    other["notification"]["payload"]["host_status"] = json!("UNKNOWN");
    assert_eq!(notify(&url, &token, &other).await.status(), 202);
}

#[tokio::test]
async fn masakari_down_and_up() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (token, url) = authenticate(&fake, "any").await;

    fake.set_masakari_down(true);
    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        503
    );
    fake.set_masakari_down(false);
    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        202
    );
}

#[tokio::test]
async fn masakari_status_forced() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (token, url) = authenticate(&fake, "any").await;

    fake.set_masakari_status(Some(500));
    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        500
    );
    fake.set_masakari_status(Some(403));
    let response = notify(&url, &token, &stopped("compute-0")).await;
    assert_eq!(response.status(), 403);
    let fault: Value = response.json().await.expect("fault");
    assert_eq!(fault["forbidden"]["code"], 403);

    fake.set_masakari_status(None);
    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        202
    );
    let statuses: Vec<u16> = fake.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 403, 202]);
}

#[tokio::test]
async fn keystone_down_and_up() {
    let fake = FakeOpenStack::start().await.expect("fake");
    fake.set_keystone_down(true);
    let response = client()
        .post(format!("{}/auth/tokens", fake.auth_url()))
        .json(&password_auth("any"))
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 503);
    assert_eq!(fake.tokens_issued(), 0);

    fake.set_keystone_down(false);
    authenticate(&fake, "any").await;
    assert_eq!(fake.tokens_issued(), 1);
}

#[tokio::test(start_paused = true)]
async fn latency_on_tokio_clock() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (token, url) = authenticate(&fake, "any").await;
    fake.set_latency(Duration::from_secs(5));

    let started = Instant::now();
    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        202
    );
    let received_at = fake.received()[0].received_at;
    assert_eq!(received_at.duration_since(started), Duration::from_secs(5));
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let url = fake.auth_url();
    fake.shutdown().await;
    let result = client().get(url).send().await;
    assert!(result.is_err(), "server still answers");
}

#[tokio::test]
async fn notification_other_project_not_found() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (token, _) = authenticate(&fake, "any").await;
    let url = format!("http://{}/masakari/v1/0123456789abcdef", fake.addr());

    let response = notify(&url, &token, &stopped("compute-0")).await;
    assert_eq!(response.status(), 404);
    assert!(fake.received().is_empty());
    assert_eq!(fake.requests(Endpoint::MasakariNotifications), 1);
}

#[tokio::test(start_paused = true)]
async fn hosts_and_window_changed_at_run_time() {
    let fake = FakeOpenStack::start().await.expect("fake");
    let (token, url) = authenticate(&fake, "any").await;

    fake.set_hosts(Some(vec!["compute-1".to_owned()]));
    assert_eq!(
        notify(&url, &token, &stopped("compute-0")).await.status(),
        400
    );
    assert_eq!(
        notify(&url, &token, &stopped("compute-1")).await.status(),
        202
    );

    fake.set_duplicate_window(Duration::from_secs(10));
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(
        notify(&url, &token, &stopped("compute-1")).await.status(),
        202
    );
}
