//! Keystone issues tokens for 60 s: the monitor renews its token and keeps delivering
//! after the first one expired. Restarts Keystone, so it runs in its own test binary.

mod support;

use std::time::Duration;

use jiff::{Timestamp, ToSpan};

use support::e2e_stack::Stack;
use support::monitor::{MonitorProcess, fail_node, fake_cluster, password_api};

const TOKEN_LIFETIME_SECS: u64 = 60;

/// Keystone's token lifetime in the stack's default configuration.
const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3600;

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn delivers_across_token_expiry() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    stack
        .restart_keystone_with_token_expiration(TOKEN_LIFETIME_SECS)
        .await;
    let hosts = stack.claim_hosts(2).await;
    let kube = fake_cluster(&hosts).await;
    let api = password_api(&stack, "v3password", &stack.auth_url);
    let mut monitor = MonitorProcess::start(&kube, &api, "");
    monitor.wait_ready().await;
    let since = Timestamp::now() - 1.second();
    let first_token = issued_tokens(&monitor)
        .first()
        .copied()
        .expect("a token was issued at start-up");
    let lifetime = first_token.1 - first_token.0;
    assert!(
        lifetime.get_seconds() <= TOKEN_LIFETIME_SECS as i64 + 1,
        "first token lives {lifetime}, Keystone was restarted with {TOKEN_LIFETIME_SECS} s"
    );

    fail_node(&kube, &hosts[0]);
    monitor
        .wait_for_attempts(&hosts[0], 1, DELIVERY_TIMEOUT)
        .await;
    let expired_at = first_token.1 + 5.seconds();
    let wait = expired_at.duration_since(Timestamp::now());
    if let Ok(wait) = Duration::try_from(wait) {
        tokio::time::sleep(wait).await;
    }
    fail_node(&kube, &hosts[1]);
    monitor
        .wait_for_attempts(&hosts[1], 1, DELIVERY_TIMEOUT)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    for host in &hosts {
        assert_eq!(
            monitor.outcomes(host),
            ["delivered"],
            "{host}\n{}",
            monitor.tail()
        );
        let stored = stack.notifications_since(host, since).await;
        assert_eq!(stored.len(), 1, "stored for {host}: {stored:?}");
    }
    let tokens = issued_tokens(&monitor);
    let second_sent = attempt_time(&monitor, &hosts[1]);
    assert!(
        second_sent > first_token.1,
        "second notification at {second_sent}, before the first token expired at {}",
        first_token.1
    );
    assert!(
        tokens.iter().any(|(issued, _)| *issued > first_token.1),
        "no token issued after the first expired at {}: {tokens:?}",
        first_token.1
    );
    let successes = monitor
        .metric("masakari_hostmonitor_keystone_authentications_total{outcome=\"success\"}")
        .await
        .unwrap_or(0.0);
    assert_eq!(successes, tokens.len() as f64);
    assert!(successes >= 2.0, "token requests: {successes}");

    stack
        .restart_keystone_with_token_expiration(DEFAULT_TOKEN_LIFETIME_SECS)
        .await;
}

/// (log time, `expires_at`) of every "Keystone token issued" line.
fn issued_tokens(monitor: &MonitorProcess) -> Vec<(Timestamp, Timestamp)> {
    monitor
        .log_lines()
        .iter()
        .filter(|line| line["message"] == "Keystone token issued")
        .map(|line| {
            (
                timestamp(&line["timestamp"]),
                timestamp(&line["expires_at"]),
            )
        })
        .collect()
}

/// Log time of the first delivery attempt for `host`.
fn attempt_time(monitor: &MonitorProcess, host: &str) -> Timestamp {
    let attempts = monitor.attempts(host);
    let first = attempts.first().expect("an attempt for the host");
    timestamp(&first["timestamp"])
}

fn timestamp(value: &serde_json::Value) -> Timestamp {
    let text = value.as_str().unwrap_or_default();
    text.parse()
        .unwrap_or_else(|error| panic!("timestamp {value}: {error}"))
}
