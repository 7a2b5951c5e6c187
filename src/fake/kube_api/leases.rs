//! `coordination.k8s.io/v1` Lease handlers with resourceVersion optimistic concurrency.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{Shared, State, status_response};

const GROUP: &str = "coordination.k8s.io";
const COLLECTION: &str = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases";
const ITEM: &str = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}";

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(COLLECTION, get(list).post(create))
        .route(ITEM, get(read).put(replace).delete(delete).patch(patch))
}

async fn list(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(namespace): Path<String>,
) -> Response {
    shared.counters.lease.fetch_add(1, Ordering::Relaxed);
    let state = shared.lock();
    let items: Vec<&Value> = state
        .leases
        .iter()
        .filter(|((ns, _), _)| *ns == namespace)
        .map(|(_, lease)| lease)
        .collect();
    let body = json!({
        "kind": "LeaseList", "apiVersion": "coordination.k8s.io/v1",
        "metadata": {"resourceVersion": state.resource_version.to_string()},
        "items": items,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn create(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(namespace): Path<String>,
    body: Bytes,
) -> Response {
    shared.counters.lease.fetch_add(1, Ordering::Relaxed);
    let mut lease = match parse_body(&body) {
        Ok(lease) => lease,
        Err(response) => return *response,
    };
    let Some(name) = lease.pointer("/metadata/name").and_then(Value::as_str) else {
        return invalid("metadata.name: Required value: name or generateName is required");
    };
    let name = name.to_owned();
    let mut state = shared.lock();
    let key = (namespace.clone(), name.clone());
    if state.leases.contains_key(&key) {
        return status_response(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("leases.{GROUP} \"{name}\" already exists"),
            Some(details(&name)),
        );
    }
    let rv = shared.next_resource_version(&mut state);
    state.next_uid += 1;
    let uid = format!("00000000-0000-4000-8000-{:012x}", state.next_uid);
    let created = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_default()
        .to_string();
    set_metadata(&mut lease, &namespace, rv, Some((&uid, &created)));
    state.leases.insert(key, lease.clone());
    (StatusCode::CREATED, axum::Json(lease)).into_response()
}

async fn read(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    shared.counters.lease.fetch_add(1, Ordering::Relaxed);
    match shared.lock().leases.get(&(namespace, name.clone())) {
        Some(lease) => (StatusCode::OK, axum::Json(lease.clone())).into_response(),
        None => not_found(&name),
    }
}

async fn replace(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    shared.counters.lease.fetch_add(1, Ordering::Relaxed);
    let lease = match parse_body(&body) {
        Ok(lease) => lease,
        Err(response) => return *response,
    };
    if lease.pointer("/metadata/name").and_then(Value::as_str) != Some(name.as_str()) {
        return status_response(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the name of the object does not match the name on the URL".to_owned(),
            None,
        );
    }
    let mut state = shared.lock();
    store_update(&shared, &mut state, &namespace, &name, lease)
}

async fn patch(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.counters.lease.fetch_add(1, Ordering::Relaxed);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/merge-patch+json")
        && !content_type.starts_with("application/strategic-merge-patch+json")
    {
        return status_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format: {content_type}"),
            None,
        );
    }
    let patch = match parse_body(&body) {
        Ok(patch) => patch,
        Err(response) => return *response,
    };
    let mut state = shared.lock();
    let Some(current) = state.leases.get(&(namespace.clone(), name.clone())) else {
        return not_found(&name);
    };
    let mut lease = current.clone();
    merge_patch(&mut lease, &patch);
    store_update(&shared, &mut state, &namespace, &name, lease)
}

async fn delete(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    shared.counters.lease.fetch_add(1, Ordering::Relaxed);
    let mut state = shared.lock();
    if state.leases.remove(&(namespace, name.clone())).is_none() {
        return not_found(&name);
    }
    shared.next_resource_version(&mut state);
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": details(&name),
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Replaces a stored Lease, rejecting a stale `metadata.resourceVersion` with 409 Conflict.
/// An update without a resourceVersion is unconditional, as the API server allows for Leases.
fn store_update(
    shared: &Shared,
    state: &mut State,
    namespace: &str,
    name: &str,
    mut lease: Value,
) -> Response {
    let key = (namespace.to_owned(), name.to_owned());
    let Some(current) = state.leases.get(&key) else {
        return not_found(name);
    };
    let sent_rv = lease
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty());
    let stored_rv = current
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    if sent_rv.is_some() && sent_rv != stored_rv {
        return status_response(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on leases.{GROUP} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            Some(details(name)),
        );
    }
    let uid = current
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let created = current
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let rv = shared.next_resource_version(state);
    set_metadata(&mut lease, namespace, rv, Some((&uid, &created)));
    state.leases.insert(key, lease.clone());
    (StatusCode::OK, axum::Json(lease)).into_response()
}

fn set_metadata(lease: &mut Value, namespace: &str, rv: u64, ids: Option<(&str, &str)>) {
    lease["apiVersion"] = json!("coordination.k8s.io/v1");
    lease["kind"] = json!("Lease");
    if !lease["metadata"].is_object() {
        lease["metadata"] = json!({});
    }
    let metadata = &mut lease["metadata"];
    metadata["namespace"] = json!(namespace);
    metadata["resourceVersion"] = json!(rv.to_string());
    if let Some((uid, created)) = ids {
        metadata["uid"] = json!(uid);
        metadata["creationTimestamp"] = json!(created);
    }
}

/// JSON merge patch (RFC 7386): objects merge recursively, `null` removes a key, anything
/// else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Some(target_map) = target.as_object_mut() {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

fn parse_body(body: &[u8]) -> Result<Value, Box<Response>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if value.is_object() => Ok(value),
        Ok(_) => Err(Box::new(invalid("the request body is not a JSON object"))),
        Err(error) => Err(Box::new(status_response(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("invalid JSON: {error}"),
            None,
        ))),
    }
}

fn invalid(message: &str) -> Response {
    status_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        message.to_owned(),
        None,
    )
}

fn not_found(name: &str) -> Response {
    status_response(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("leases.{GROUP} \"{name}\" not found"),
        Some(details(name)),
    )
}

fn details(name: &str) -> Value {
    json!({"name": name, "group": GROUP, "kind": "leases"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_rules() {
        let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut target, &json!({"a": null, "b": {"c": 4}, "e": [1]}));
        assert_eq!(target, json!({"b": {"c": 4, "d": 3}, "e": [1]}));
    }
}
