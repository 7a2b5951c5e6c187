//! masakari-api is down when a host fails and comes back two minutes later: the monitor
//! keeps the notification through its fast and slow retries and delivers it exactly once.
//! Stops masakari-api, so it runs in its own test binary.

mod support;

use std::time::Duration;

use jiff::{Timestamp, ToSpan};

use support::e2e_stack::Stack;
use support::monitor::{MonitorProcess, fail_node, fake_cluster, password_api};

/// How long masakari-api stays down after the host failed.
const OUTAGE: Duration = Duration::from_secs(120);

/// Two fast retries 2 s apart, then a retry every 10 s.
const RETRIES: &str =
    "[host]\napi_retry_max = 2\napi_retry_interval = 2\napi_slow_retry_interval = 10\n";

/// Time for the first attempt after the Node goes `Unknown`, and for the first slow retry
/// after masakari-api is back (one slow interval plus start-up).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn outage_then_delivered_once() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let host = stack.claim_hosts(1).await.remove(0);
    let kube = fake_cluster(std::slice::from_ref(&host)).await;
    let api = password_api(&stack, "v3password", &stack.auth_url);
    let mut monitor = MonitorProcess::start(&kube, &api, RETRIES);
    monitor.wait_ready().await;
    let since = Timestamp::now() - 1.second();

    let mut stopped = stack.stop_masakari().await;
    let outage_started = std::time::Instant::now();
    fail_node(&kube, &host);
    monitor.wait_for_attempts(&host, 1, ATTEMPT_TIMEOUT).await;
    tokio::time::sleep(OUTAGE.saturating_sub(outage_started.elapsed())).await;
    let during_outage = monitor.outcomes(&host);
    stack.start_masakari(&mut stopped).await;

    monitor
        .wait_for(ATTEMPT_TIMEOUT, "delivery after the outage", |monitor| {
            monitor
                .outcomes(&host)
                .contains(&"delivered".to_owned())
                .then_some(())
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 0, 2, 4 s fast, then every 10 s: about 14 attempts in two minutes.
    assert!(
        during_outage.len() >= 10,
        "attempts during the outage: {during_outage:?}\n{}",
        monitor.tail()
    );
    assert!(
        during_outage.iter().all(|outcome| outcome == "retried"),
        "outcomes during the outage: {during_outage:?}"
    );
    let outcomes = monitor.outcomes(&host);
    assert_eq!(outcomes.last().map(String::as_str), Some("delivered"));
    let finals = outcomes
        .iter()
        .filter(|outcome| *outcome != "retried")
        .count();
    assert_eq!(finals, 1, "outcomes: {outcomes:?}");
    let slow = monitor.lines_with_message(&host, "Notification still not delivered, retrying");
    assert!(slow.len() >= 8, "slow retries: {}", slow.len());
    assert!(slow.iter().all(|line| line["level"] == "ERROR"));
    let slow_metric = monitor
        .metric("masakari_hostmonitor_slow_retries_total")
        .await
        .unwrap_or(0.0);
    assert_eq!(slow_metric, slow.len() as f64);

    let stored = stack.notifications_since(&host, since).await;
    assert_eq!(stored.len(), 1, "stored: {stored:?}");
    let attempts = monitor.attempts(&host);
    let last = attempts.last().expect("attempts");
    if last["message"] == "Notification delivered" {
        assert_eq!(stored[0]["notification_uuid"], last["notification"]);
    }
}
