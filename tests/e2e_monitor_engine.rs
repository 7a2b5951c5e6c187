//! With masakari-engine and RabbitMQ: the monitor's notification is processed to
//! `finished`, the engine puts the host on maintenance, and the host's next failure gets
//! 409, which the monitor treats as already known without retrying. Starts the engine,
//! so it runs in its own test binary; skips when RabbitMQ is unavailable.

mod support;

use std::time::Duration;

use jiff::{Timestamp, ToSpan};

use support::e2e_stack::Stack;
use support::monitor::{MonitorProcess, fail_node, fake_cluster, password_api, recover_node};

/// Time the engine gets to process one notification; about 3 s against the Nova stand-in.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn engine_finishes_then_maintenance_known() {
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
    let kube = fake_cluster(std::slice::from_ref(&host)).await;
    let api = password_api(&stack, "v3password", &stack.auth_url);
    let mut monitor = MonitorProcess::start(&kube, &api, "");
    monitor.wait_ready().await;
    let since = Timestamp::now() - 1.second();

    fail_node(&kube, &host);
    let attempts = monitor.wait_for_attempts(&host, 1, DELIVERY_TIMEOUT).await;
    assert_eq!(monitor.outcomes(&host), ["delivered"], "{}", monitor.tail());
    let uuid = attempts[0]["notification"]
        .as_str()
        .expect("delivered line has the notification uuid")
        .to_owned();
    let status = stack
        .wait_for_status(&uuid, "finished", RECOVERY_TIMEOUT)
        .await;
    assert_eq!(status, "finished");
    let record = stack
        .list_hosts()
        .await
        .into_iter()
        .find(|record| record["name"] == host.as_str())
        .expect("claimed host is listed");
    assert_eq!(record["on_maintenance"], true);

    recover_node(&kube, &host);
    monitor
        .wait_for_message(&host, "Host recovered", DELIVERY_TIMEOUT)
        .await;
    fail_node(&kube, &host);
    let attempts = monitor.wait_for_attempts(&host, 2, DELIVERY_TIMEOUT).await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    assert_eq!(
        monitor.outcomes(&host),
        ["delivered", "already_known"],
        "{}",
        monitor.tail()
    );
    let second = &attempts[1];
    assert_eq!(second["attempt"], 1);
    let reply = second["masakari_message"].as_str().unwrap_or_default();
    assert!(reply.contains("maintenance"), "409 message: {second}");
    let retried = monitor
        .metric("masakari_hostmonitor_notifications_total{outcome=\"retried\"}")
        .await
        .unwrap_or(0.0);
    assert_eq!(retried, 0.0);
    let stored = stack.notifications_since(&host, since).await;
    assert_eq!(stored.len(), 1, "stored: {stored:?}");
}
