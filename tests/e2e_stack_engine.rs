//! Checks the stack with masakari-engine: a host notification is processed to `finished`
//! and the host is then on maintenance, so masakari-api rejects the next notification.
//! Starts RabbitMQ and the engine when they are not running yet, and skips when RabbitMQ
//! is unavailable.

mod support;

use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use reqwest::StatusCode;

use support::e2e_stack::Stack;

/// Time the engine gets to process one notification; about 2-3 s against the Nova stand-in.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn engine_finishes_and_sets_maintenance() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    if !stack.engine
        && let Err(reason) = stack.start_engine().await
    {
        eprintln!("skipped: masakari-engine unavailable: {reason}");
        return;
    }
    let host = stack.claim_hosts(1).await.remove(0);

    let (status, body) = stack.post_notification(&host, Timestamp::now()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "first notification: {body}");
    let uuid = body["notification"]["notification_uuid"]
        .as_str()
        .expect("notification_uuid");
    let final_status = stack
        .wait_for_status(uuid, "finished", RECOVERY_TIMEOUT)
        .await;
    assert_eq!(final_status, "finished");

    let hosts = stack.list_hosts().await;
    let record = hosts
        .iter()
        .find(|h| h["name"] == host.as_str())
        .expect("claimed host is listed");
    assert_eq!(record["on_maintenance"], true);

    // masakari-api checks the maintenance flag before it looks for duplicates.
    let later = Timestamp::now() + 1.second();
    let (status, body) = stack.post_notification(&host, later).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "notification for a host on maintenance: {body}"
    );
    let message = body["conflictingRequest"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("maintenance"), "409 message: {message}");
}
