//! Runs the built `masakari-hostmonitor` binary against the real Keystone and masakari-api
//! of `e2e/stack.sh` and the project's fake Kubernetes API, and checks what Masakari
//! stored. The tests here change nothing in the stack, so they run in parallel, each with
//! its own hosts, fake cluster and monitor process.

mod support;

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde_json::Value;

use support::e2e_stack::Stack;
use support::monitor::{
    MonitorProcess, application_credential_api, fail_node, fake_cluster, password_api, recover_node,
};

/// Time from a Node going `Unknown` to the monitor's first attempt: two 1 s ticks plus the
/// token and the POST, with room for a loaded machine.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Time after a final outcome in which no further attempt may follow. The base configuration
/// retries after 1 s, so a retry would show well within it.
const QUIET_PERIOD: Duration = Duration::from_secs(4);

/// Time allowed for masakari-api to list a notification the monitor saw accepted.
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

const DELIVERED: &str = "masakari_hostmonitor_notifications_total{outcome=\"delivered\"}";
const ALREADY_KNOWN: &str = "masakari_hostmonitor_notifications_total{outcome=\"already_known\"}";
const REJECTED: &str = "masakari_hostmonitor_notifications_total{outcome=\"rejected\"}";
const RETRIED: &str = "masakari_hostmonitor_notifications_total{outcome=\"retried\"}";

#[tokio::test]
async fn unknown_node_notified_once() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let host = stack.claim_hosts(1).await.remove(0);
    let kube = fake_cluster(std::slice::from_ref(&host)).await;
    let api = password_api(&stack, "v3password", &stack.auth_url);
    let mut monitor = MonitorProcess::start(&kube, &api, "");
    monitor.wait_ready().await;

    let since = Timestamp::now() - 1.second();
    let failed_at = Timestamp::now();
    fail_node(&kube, &host);
    let attempts = monitor.wait_for_attempts(&host, 1, DELIVERY_TIMEOUT).await;
    let delivered_at = Timestamp::now();
    tokio::time::sleep(QUIET_PERIOD).await;

    assert_eq!(monitor.outcomes(&host), ["delivered"], "{}", monitor.tail());
    let stored = stack
        .wait_for_notifications(&host, since, 1, STORE_TIMEOUT)
        .await;
    assert_eq!(stored.len(), 1, "stored: {stored:?}");
    let notification = &stored[0];
    assert_eq!(
        notification["notification_uuid"], attempts[0]["notification"],
        "the uuid the monitor logged is the one Masakari stored"
    );
    assert_eq!(notification["type"], "COMPUTE_HOST");
    assert_eq!(notification["payload"]["event"], "STOPPED");
    assert_eq!(notification["payload"]["host_status"], "NORMAL");
    assert_eq!(notification["payload"]["cluster_status"], "OFFLINE");

    // Two readings 1 s apart make the host Failed, so it failed at least one interval
    // (less tick jitter) after the Node changed, and before the monitor logged delivery.
    let generated = stored_time(notification);
    let earliest = failed_at + SignedDuration::from_millis(500);
    assert!(
        generated >= earliest,
        "generated_time {generated} is before {earliest}, one tick after the Node changed"
    );
    assert!(
        generated <= delivered_at,
        "generated_time {generated} is after delivery at {delivered_at}"
    );
    let logged = monitor
        .lines_with_message(&host, "Host failed")
        .first()
        .and_then(|line| line["generated_time"].as_str())
        .map(|text| text.parse::<Timestamp>().expect("logged generated_time"));
    let difference = logged.map(|logged| (logged - generated).abs());
    assert!(
        difference.is_some_and(|difference| difference
            .total(jiff::Unit::Millisecond)
            .unwrap_or(f64::MAX)
            < 1.0),
        "logged generated_time {logged:?}, stored {generated}"
    );
    assert_eq!(monitor.metric(DELIVERED).await, Some(1.0));
}

#[tokio::test]
async fn password_with_discovery_delivers() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let api = password_api(&stack, "password", &stack.keystone_url);
    assert_delivers(&stack, &api).await;
}

#[tokio::test]
async fn password_with_v3_url_delivers() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let api = password_api(&stack, "password", &stack.auth_url);
    assert_delivers(&stack, &api).await;
}

#[tokio::test]
async fn v3password_with_v3_url_delivers() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let api = password_api(&stack, "v3password", &stack.auth_url);
    assert_delivers(&stack, &api).await;
}

#[tokio::test]
async fn v3password_with_bare_url_delivers() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let api = password_api(&stack, "v3password", &stack.keystone_url);
    assert_delivers(&stack, &api).await;
}

#[tokio::test]
async fn application_credential_delivers() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let api = application_credential_api(&stack);
    assert_delivers(&stack, &api).await;
}

#[tokio::test]
async fn second_episode_already_known() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let host = stack.claim_hosts(1).await.remove(0);
    let kube = fake_cluster(std::slice::from_ref(&host)).await;
    let api = password_api(&stack, "v3password", &stack.auth_url);
    let mut monitor = MonitorProcess::start(&kube, &api, "");
    monitor.wait_ready().await;
    let since = Timestamp::now() - 1.second();

    fail_node(&kube, &host);
    monitor.wait_for_attempts(&host, 1, DELIVERY_TIMEOUT).await;
    recover_node(&kube, &host);
    monitor
        .wait_for_message(&host, "Host recovered", DELIVERY_TIMEOUT)
        .await;
    fail_node(&kube, &host);
    let attempts = monitor.wait_for_attempts(&host, 2, DELIVERY_TIMEOUT).await;
    tokio::time::sleep(QUIET_PERIOD).await;

    assert_eq!(
        monitor.outcomes(&host),
        ["delivered", "already_known"],
        "{}",
        monitor.tail()
    );
    assert_eq!(attempts[1]["attempt"], 1, "second episode: {}", attempts[1]);
    assert_eq!(attempts[1]["level"], "INFO");
    assert_eq!(
        attempts[1]["message"],
        "Notification already known to Masakari"
    );
    let reply = attempts[1]["masakari_message"].as_str().unwrap_or_default();
    assert!(!reply.is_empty(), "Masakari's message: {}", attempts[1]);
    assert_eq!(monitor.metric(DELIVERED).await, Some(1.0));
    assert_eq!(monitor.metric(ALREADY_KNOWN).await, Some(1.0));
    assert_eq!(monitor.metric(RETRIED).await.unwrap_or(0.0), 0.0);
    let stored = stack.notifications_since(&host, since).await;
    assert_eq!(stored.len(), 1, "stored: {stored:?}");
}

#[tokio::test]
async fn unregistered_host_rejected_once() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let host = "compute-99".to_owned();
    assert!(
        !stack.hosts.contains(&host),
        "{host} must not be a Masakari host for this test; it is in E2E_HOSTS"
    );
    let kube = fake_cluster(std::slice::from_ref(&host)).await;
    let api = password_api(&stack, "v3password", &stack.auth_url);
    let mut monitor = MonitorProcess::start(&kube, &api, "");
    monitor.wait_ready().await;

    fail_node(&kube, &host);
    let attempts = monitor.wait_for_attempts(&host, 1, DELIVERY_TIMEOUT).await;
    tokio::time::sleep(QUIET_PERIOD).await;

    assert_eq!(monitor.outcomes(&host), ["rejected"], "{}", monitor.tail());
    let line = &attempts[0];
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["attempt"], 1);
    let hint = line["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("failover segment"), "hint: {line}");
    assert!(hint.contains("host_name_"), "hint: {line}");
    assert_eq!(line["message"], "Notification rejected by Masakari");
    let reply = line["masakari_message"].as_str().unwrap_or_default();
    assert!(reply.contains(&host), "Masakari's message: {line}");
    assert_eq!(monitor.metric(REJECTED).await, Some(1.0));
    assert_eq!(monitor.metric(RETRIED).await.unwrap_or(0.0), 0.0);
}

#[tokio::test]
async fn zone_loss_held_by_breaker() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let zone = stack.claim_hosts(4).await;
    let mut nodes = zone.clone();
    nodes.extend((0..8).map(|index| format!("zone-b-node-{index}")));
    let kube = fake_cluster(&nodes).await;
    let api = password_api(&stack, "v3password", &stack.auth_url);
    let extra = "[circuit_breaker]\nenabled = true\nthreshold = 3\nstabilization_period = 5\n";
    let mut monitor = MonitorProcess::start(&kube, &api, extra);
    monitor.wait_ready().await;
    let since = Timestamp::now() - 1.second();

    for host in &zone {
        fail_node(&kube, host);
    }
    for host in &zone {
        monitor
            .wait_for_message(
                host,
                "Host failed, held by the open circuit breaker",
                DELIVERY_TIMEOUT,
            )
            .await;
    }
    tokio::time::sleep(QUIET_PERIOD).await;
    let opened = breaker_lines(&monitor, "Circuit breaker opened, evacuation suspended");
    assert_eq!(opened.len(), 1, "{}", monitor.tail());
    assert_eq!(opened[0]["down"], 4);
    assert_eq!(opened[0]["threshold"], 3);
    assert_eq!(opened[0]["monitored"], 12);
    for host in &zone {
        assert_eq!(monitor.attempts(host).len(), 0, "attempts for held {host}");
        let stored = stack.notifications_since(host, since).await;
        assert!(
            stored.is_empty(),
            "Masakari received {stored:?} for held {host}"
        );
    }

    for host in &zone {
        recover_node(&kube, host);
    }
    monitor
        .wait_for(DELIVERY_TIMEOUT, "breaker closed", |monitor| {
            let closed = breaker_lines(monitor, "Circuit breaker closed, evacuation resumed");
            closed.into_iter().next()
        })
        .await;
    let dropped: usize = zone
        .iter()
        .map(|host| {
            monitor
                .lines_with_message(host, "Held host recovered, dropped")
                .len()
        })
        .sum();
    assert_eq!(dropped, 4, "{}", monitor.tail());

    let failing = &zone[0];
    fail_node(&kube, failing);
    monitor
        .wait_for_attempts(failing, 1, DELIVERY_TIMEOUT)
        .await;
    tokio::time::sleep(QUIET_PERIOD).await;

    assert_eq!(
        monitor.outcomes(failing),
        ["delivered"],
        "{}",
        monitor.tail()
    );
    let stored = stack.notifications_since(failing, since).await;
    assert_eq!(stored.len(), 1, "stored for {failing}: {stored:?}");
    for host in &zone[1..] {
        assert_eq!(monitor.attempts(host).len(), 0, "attempts for {host}");
        let stored = stack.notifications_since(host, since).await;
        assert!(stored.is_empty(), "Masakari received {stored:?} for {host}");
    }
    assert_eq!(monitor.metric(DELIVERED).await, Some(1.0));
}

/// Runs a monitor with the `[api]` section `api`, fails one claimed host, and checks that
/// one attempt delivered it and Masakari stored it.
async fn assert_delivers(stack: &Stack, api: &str) {
    let host = stack.claim_hosts(1).await.remove(0);
    let kube = fake_cluster(std::slice::from_ref(&host)).await;
    let mut monitor = MonitorProcess::start(&kube, api, "");
    monitor.wait_ready().await;
    let since = Timestamp::now() - 1.second();

    fail_node(&kube, &host);
    let attempts = monitor.wait_for_attempts(&host, 1, DELIVERY_TIMEOUT).await;

    assert_eq!(monitor.outcomes(&host), ["delivered"], "{}", monitor.tail());
    let stored = stack
        .wait_for_notifications(&host, since, 1, STORE_TIMEOUT)
        .await;
    assert_eq!(stored.len(), 1, "stored: {stored:?}");
    assert_eq!(stored[0]["notification_uuid"], attempts[0]["notification"]);
}

/// Log lines of the circuit breaker with `message`.
fn breaker_lines(monitor: &MonitorProcess, message: &str) -> Vec<Value> {
    monitor
        .log_lines()
        .into_iter()
        .filter(|line| line["message"] == message)
        .collect()
}

/// Parses a stored `generated_time`, which masakari-api returns without a zone, as UTC.
fn stored_time(notification: &Value) -> Timestamp {
    let text = notification["generated_time"]
        .as_str()
        .unwrap_or_else(|| panic!("notification has no generated_time: {notification}"));
    let civil: DateTime = text
        .trim_end_matches('Z')
        .parse()
        .unwrap_or_else(|error| panic!("generated_time {text:?}: {error}"));
    civil
        .to_zoned(TimeZone::UTC)
        .unwrap_or_else(|error| panic!("generated_time {text:?}: {error}"))
        .timestamp()
}
