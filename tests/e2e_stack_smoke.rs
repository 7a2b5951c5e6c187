//! Checks the end-to-end stack and its harness without the monitor: a notification sent
//! the way the monitor sends it is stored by the real masakari-api.

mod support;

use jiff::{Timestamp, ToSpan};
use reqwest::StatusCode;

use support::e2e_stack::Stack;

#[tokio::test]
async fn notification_roundtrip() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let host = stack.claim_hosts(1).await.remove(0);
    let since = Timestamp::now() - 1.second();

    let (status, body) = stack.post_notification(&host, Timestamp::now()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "first notification: {body}");
    let uuid = body["notification"]["notification_uuid"]
        .as_str()
        .expect("notification_uuid")
        .to_owned();
    assert_eq!(body["notification"]["status"], "new");

    let stored = stack.notifications_since(&host, since).await;
    let uuids: Vec<&str> = stored
        .iter()
        .filter_map(|n| n["notification_uuid"].as_str())
        .collect();
    assert_eq!(uuids, [uuid.as_str()]);
    assert_eq!(stored[0]["type"], "COMPUTE_HOST");
    assert_eq!(stored[0]["payload"]["event"], "STOPPED");
}

#[tokio::test]
async fn repeat_within_window_is_duplicate() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let host = stack.claim_hosts(1).await.remove(0);

    let (first, body) = stack.post_notification(&host, Timestamp::now()).await;
    assert_eq!(first, StatusCode::ACCEPTED, "first notification: {body}");
    let (second, body) = stack.post_notification(&host, Timestamp::now()).await;
    assert_eq!(second, StatusCode::CONFLICT, "repeat: {body}");
}

#[tokio::test]
async fn unknown_host_is_rejected() {
    let Some(stack) = Stack::from_env() else {
        return;
    };

    let (status, body) = stack
        .post_notification("not-registered-host", Timestamp::now())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn app_cred_token_is_accepted() {
    let Some(stack) = Stack::from_env() else {
        return;
    };

    let token = stack.app_cred_token().await;
    let response = stack
        .client()
        .get(format!("{}/notifications", stack.masakari_endpoint))
        .header("X-Auth-Token", token)
        .send()
        .await
        .expect("request is sent");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn catalog_lists_instance_ha() {
    let Some(stack) = Stack::from_env() else {
        return;
    };

    let token = stack.token().await;
    let response = stack
        .client()
        .get(format!("{}/auth/catalog", stack.auth_url))
        .header("X-Auth-Token", token)
        .send()
        .await
        .expect("catalog request is sent");
    assert_eq!(response.status(), StatusCode::OK);
    let catalog: serde_json::Value = response.json().await.expect("catalog is JSON");
    let public_urls: Vec<&str> = catalog["catalog"]
        .as_array()
        .expect("catalog array")
        .iter()
        .filter(|service| service["type"] == "instance-ha")
        .flat_map(|service| service["endpoints"].as_array().into_iter().flatten())
        .filter(|endpoint| endpoint["interface"] == "public")
        .filter_map(|endpoint| endpoint["url"].as_str())
        .collect();
    assert_eq!(public_urls, [stack.masakari_endpoint.as_str()]);
}

#[tokio::test]
async fn catalog_identity_is_this_keystone() {
    let Some(stack) = Stack::from_env() else {
        return;
    };

    // masakari-api validates tokens at the catalog's identity endpoint, so after a warm
    // start on other ports it must name this Keystone, not the snapshot's.
    let token = stack.token().await;
    let response = stack
        .client()
        .get(format!("{}/auth/catalog", stack.auth_url))
        .header("X-Auth-Token", token)
        .send()
        .await
        .expect("catalog request is sent");
    assert_eq!(response.status(), StatusCode::OK);
    let catalog: serde_json::Value = response.json().await.expect("catalog is JSON");
    let urls: Vec<&str> = catalog["catalog"]
        .as_array()
        .expect("catalog array")
        .iter()
        .filter(|service| service["type"] == "identity")
        .flat_map(|service| service["endpoints"].as_array().into_iter().flatten())
        .filter_map(|endpoint| endpoint["url"].as_str())
        .collect();
    assert_eq!(urls.len(), 3, "identity endpoints: {urls:?}");
    for url in urls {
        assert_eq!(
            url.trim_end_matches('/'),
            stack.auth_url,
            "identity endpoint"
        );
    }
}
