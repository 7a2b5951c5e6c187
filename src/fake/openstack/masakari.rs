//! The fake's Masakari: `POST .../notifications` with masakari's checks and replies.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::time::Instant;

use super::{Endpoint, Mutable, ReceivedNotification, Shared, random_uuid, validate};

pub(super) async fn project_notifications(
    State(state): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if project != state.project_id {
        state.count(Endpoint::MasakariNotifications);
        return masakari_fault(StatusCode::NOT_FOUND, "The resource could not be found.");
    }
    notifications(State(state), headers, body).await
}

pub(super) async fn notifications(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tokio::time::sleep(state.count(Endpoint::MasakariNotifications)).await;
    let received_at = Instant::now();

    let mut mutable = state.lock();
    if mutable.masakari_down {
        return masakari_fault(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }
    let token = headers
        .get("x-auth-token")
        .and_then(|value| value.to_str().ok());
    if !token.is_some_and(|token| mutable.tokens.contains(token)) {
        return masakari_fault(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        );
    }

    let parsed = validate::notification(&body);
    let mut record = ReceivedNotification {
        kind: parsed.kind.clone(),
        hostname: parsed.hostname.clone(),
        generated_time: parsed.generated_time.clone(),
        payload: parsed.payload.clone(),
        received_at,
        status: 0,
        notification_uuid: None,
    };
    let response = reply(&mutable, &parsed, &mut record);
    mutable.received.push(record);
    response
}

/// Builds the reply in masakari's order: forced status, schema, host, duplicate, accept.
fn reply(
    mutable: &Mutable,
    parsed: &validate::Parsed,
    record: &mut ReceivedNotification,
) -> Response {
    let (status, message) = if let Some(code) = mutable.masakari_status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, "Status forced by the fake.".to_owned())
    } else if let Some(error) = &parsed.error {
        (StatusCode::BAD_REQUEST, error.clone())
    } else if !host_registered(mutable, &parsed.hostname) {
        let message = format!("Host with name {} could not be found.", parsed.hostname);
        (StatusCode::BAD_REQUEST, message)
    } else if is_duplicate(mutable, record) {
        let message = format!(
            "Notification received from host {} of type {} is duplicate.",
            parsed.hostname, parsed.kind
        );
        (StatusCode::CONFLICT, message)
    } else {
        (StatusCode::ACCEPTED, String::new())
    };

    record.status = status.as_u16();
    if status != StatusCode::ACCEPTED {
        return masakari_fault(status, &message);
    }
    let uuid = random_uuid();
    record.notification_uuid = Some(uuid.clone());
    let body = json!({"notification": {
        "notification_uuid": uuid,
        "status": "new",
        "source_host_uuid": random_uuid(),
        "type": parsed.kind,
        "generated_time": parsed.generated_time,
        "payload": parsed.payload,
        "deleted": false,
        "id": mutable.received.len() + 1,
    }});
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

fn host_registered(mutable: &Mutable, hostname: &str) -> bool {
    mutable
        .hosts
        .as_ref()
        .is_none_or(|hosts| hosts.contains(hostname))
}

/// Masakari's rule: an earlier notification of the same type and host with an equal payload,
/// within the window. This fake measures the window from the earlier receive time.
fn is_duplicate(mutable: &Mutable, record: &ReceivedNotification) -> bool {
    mutable.received.iter().any(|earlier| {
        earlier.status == StatusCode::ACCEPTED.as_u16()
            && earlier.kind == record.kind
            && earlier.hostname == record.hostname
            && earlier.payload == record.payload
            && record.received_at.duration_since(earlier.received_at) <= mutable.duplicate_window
    })
}

/// Builds a masakari fault reply: `{"<faultName>": {"code": <int>, "message": "<text>"}}`.
fn masakari_fault(status: StatusCode, message: &str) -> Response {
    let name = match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        409 => "conflictingRequest",
        _ => "masakariFault",
    };
    let body = json!({name: {"code": status.as_u16(), "message": message}});
    (status, axum::Json(body)).into_response()
}
