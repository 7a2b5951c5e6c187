//! masakari-api with its default `notification_delay_max` of 5 s sleeps up to 5 s before
//! it stores a notification: the monitor's request timeout allows for it, so every host is
//! delivered on the first attempt. Restarts masakari-api, so it runs in its own test binary.

mod support;

use std::time::Duration;

use jiff::{Timestamp, ToSpan};

use support::e2e_stack::Stack;
use support::monitor::{MonitorProcess, fail_node, fake_cluster, password_api};

/// masakari's own default `notification_delay_max`, seconds.
const MASAKARI_DEFAULT_DELAY_MAX_SECS: u64 = 5;

const HOSTS: usize = 4;

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(40);

#[tokio::test]
async fn default_delay_delivers_first_time() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let previous_delay = stack.notification_delay_max_secs;
    stack
        .restart_masakari_with_delay_max(MASAKARI_DEFAULT_DELAY_MAX_SECS)
        .await;
    let restarted = Stack::from_env().expect("state file is still set");
    assert_eq!(
        restarted.notification_delay_max_secs,
        MASAKARI_DEFAULT_DELAY_MAX_SECS
    );

    let hosts = stack.claim_hosts(HOSTS).await;
    let kube = fake_cluster(&hosts).await;
    let api = password_api(&stack, "v3password", &stack.auth_url);
    let mut monitor = MonitorProcess::start(&kube, &api, "");
    monitor.wait_ready().await;
    let since = Timestamp::now() - 1.second();

    for host in &hosts {
        fail_node(&kube, host);
    }
    for host in &hosts {
        monitor.wait_for_attempts(host, 1, DELIVERY_TIMEOUT).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    for host in &hosts {
        let attempts = monitor.attempts(host);
        assert_eq!(
            monitor.outcomes(host),
            ["delivered"],
            "{host}\n{}",
            monitor.tail()
        );
        assert_eq!(attempts[0]["attempt"], 1);
        let stored = stack.notifications_since(host, since).await;
        assert_eq!(stored.len(), 1, "stored for {host}: {stored:?}");
        assert_eq!(stored[0]["notification_uuid"], attempts[0]["notification"]);
    }
    let delivered = monitor
        .metric("masakari_hostmonitor_notifications_total{outcome=\"delivered\"}")
        .await;
    assert_eq!(delivered, Some(HOSTS as f64));
    let attempt_seconds = monitor
        .metric("masakari_hostmonitor_delivery_attempt_seconds_sum")
        .await
        .unwrap_or(0.0);
    eprintln!("{HOSTS} attempts took {attempt_seconds:.1} s together");

    stack.restart_masakari_with_delay_max(previous_delay).await;
}
