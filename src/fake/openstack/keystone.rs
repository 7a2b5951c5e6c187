//! The fake's Keystone: version discovery and token requests.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Endpoint, Shared, TOKEN_LIFETIME, random_hex, validate};

fn version_document(state: &Shared) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/v3/", state.base_url)}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json"
        }]
    })
}

/// Waits out the latency and returns a 503 while Keystone is down.
async fn keystone_gate(state: &Shared, endpoint: Endpoint) -> Option<Response> {
    tokio::time::sleep(state.count(endpoint)).await;
    if state.lock().keystone_down {
        return Some(keystone_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
        ));
    }
    None
}

pub(super) async fn root(State(state): State<Arc<Shared>>) -> Response {
    if let Some(response) = keystone_gate(&state, Endpoint::KeystoneDiscovery).await {
        return response;
    }
    let body = json!({"versions": {"values": [version_document(&state)]}});
    (StatusCode::MULTIPLE_CHOICES, axum::Json(body)).into_response()
}

pub(super) async fn v3(State(state): State<Arc<Shared>>) -> Response {
    if let Some(response) = keystone_gate(&state, Endpoint::KeystoneDiscovery).await {
        return response;
    }
    axum::Json(json!({"version": version_document(&state)})).into_response()
}

pub(super) async fn tokens(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    if let Some(response) = keystone_gate(&state, Endpoint::KeystoneTokens).await {
        return response;
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(_) => return keystone_error(StatusCode::BAD_REQUEST, "Malformed JSON body."),
    };
    if let Err(message) = validate::auth_request(&request, state.secret.as_deref()) {
        return keystone_error(message.status(), message.text());
    }

    let token = format!("fake-token-{}", random_hex(16));
    {
        let mut mutable = state.lock();
        mutable.tokens.insert(token.clone());
        mutable.tokens_issued += 1;
    }
    let body = token_body(&state);
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(value) = token.parse() {
        response.headers_mut().insert("x-subject-token", value);
    }
    response
}

fn token_body(state: &Shared) -> Value {
    let now = jiff::Timestamp::now();
    let expires = now.saturating_add(TOKEN_LIFETIME).unwrap_or(now);
    let url = state.masakari_url();
    let endpoints: Vec<Value> = ["public", "internal", "admin"]
        .iter()
        .map(|interface| {
            json!({
                "id": random_hex(16),
                "interface": interface,
                "region": state.region,
                "region_id": state.region,
                "url": url,
            })
        })
        .collect();
    json!({"token": {
        "methods": ["password"],
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ").to_string(),
        "issued_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ").to_string(),
        "audit_ids": [random_hex(11)],
        "user": {"id": "fake-user", "name": "masakari-monitor",
                 "domain": {"id": "default", "name": "Default"}},
        "project": {"id": state.project_id, "name": state.project_name,
                    "domain": {"id": "default", "name": "Default"}},
        "roles": [{"id": "fake-admin-role", "name": "admin"}],
        "is_domain": false,
        "catalog": [{
            "type": "instance-ha",
            "name": "masakari",
            "id": "fake-masakari-service",
            "endpoints": endpoints,
        }],
    }})
}

/// Builds a Keystone error reply: `{"error": {"code", "message", "title"}}`.
fn keystone_error(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = json!({"error": {"code": status.as_u16(), "message": message, "title": title}});
    (status, axum::Json(body)).into_response()
}
