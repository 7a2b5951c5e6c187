//! Checks that restarting masakari-api through the harness keeps its database and brings
//! the API back, which the "masakari-api stopped then restarted" scenario relies on.

mod support;

use jiff::{Timestamp, ToSpan};
use reqwest::StatusCode;

use support::e2e_stack::Stack;

#[tokio::test]
async fn masakari_restart_keeps_notifications() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let hosts = stack.claim_hosts(2).await;
    let since = Timestamp::now() - 1.second();
    let pid_before = stack.value("MASAKARI_PID").map(str::to_owned);

    let (status, body) = stack.post_notification(&hosts[0], Timestamp::now()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "before restart: {body}");

    stack.restart_masakari().await;

    let restarted = Stack::from_env().expect("state file is still set");
    assert_ne!(
        restarted.value("MASAKARI_PID").map(str::to_owned),
        pid_before
    );
    assert_eq!(
        restarted.notifications_since(&hosts[0], since).await.len(),
        1
    );
    let (status, body) = restarted
        .post_notification(&hosts[1], Timestamp::now())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "after restart: {body}");
}
