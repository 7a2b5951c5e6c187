//! Prometheus metrics: one struct, registered in one place, shared by every component.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set with a single `reading` label (`up`, `down`, `no_data`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadingLabel {
    pub reading: String,
}

/// Label set with a single `outcome` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

/// Label set with a single `state` label (breaker transitions: `open`, `closed`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

/// The `outcome` values of `notifications_total`.
pub const NOTIFICATION_OUTCOMES: &[&str] = &[
    "delivered",
    "already_known",
    "rejected",
    "config_error",
    "retried",
    "cancelled",
    "dry_run",
    "abandoned",
];

/// Every metric the process exports. Cloning shares the underlying values.
#[derive(Clone)]
pub struct Metrics {
    pub hosts_monitored: Gauge,
    pub hosts_by_reading: Family<ReadingLabel, Gauge>,
    pub hosts_failed: Gauge,
    pub hosts_held: Gauge,
    pub breaker_open: Gauge,
    pub breaker_transitions: Family<StateLabel, Counter>,
    pub tick_duration_seconds: Histogram,
    pub ticks: Counter,
    pub notifications: Family<OutcomeLabel, Counter>,
    pub notifications_pending: Gauge,
    pub delivery_attempt_seconds: Histogram,
    pub failed_to_delivered_seconds: Histogram,
    pub slow_retries: Counter,
    pub watch_events: Counter,
    pub watch_restarts: Counter,
    pub watch_relists: Counter,
    pub keystone_authentications: Family<OutcomeLabel, Counter>,
    pub leader: Gauge,
    pub leader_transitions: Counter,
}

impl Metrics {
    /// Creates the metrics and registers them under the `masakari_hostmonitor` prefix.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            hosts_monitored: Gauge::default(),
            hosts_by_reading: Family::default(),
            hosts_failed: Gauge::default(),
            hosts_held: Gauge::default(),
            breaker_open: Gauge::default(),
            breaker_transitions: Family::default(),
            tick_duration_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            ticks: Counter::default(),
            notifications: Family::default(),
            notifications_pending: Gauge::default(),
            delivery_attempt_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            failed_to_delivered_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 18)),
            slow_retries: Counter::default(),
            watch_events: Counter::default(),
            watch_restarts: Counter::default(),
            watch_relists: Counter::default(),
            keystone_authentications: Family::default(),
            leader: Gauge::default(),
            leader_transitions: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("masakari_hostmonitor");
        r.register(
            "hosts_monitored",
            "Hosts in the latest snapshot",
            metrics.hosts_monitored.clone(),
        );
        r.register(
            "hosts",
            "Hosts by latest reading",
            metrics.hosts_by_reading.clone(),
        );
        r.register(
            "hosts_failed",
            "Hosts currently Failed",
            metrics.hosts_failed.clone(),
        );
        r.register(
            "hosts_held",
            "Failed hosts held by the open circuit breaker",
            metrics.hosts_held.clone(),
        );
        r.register(
            "breaker_open",
            "1 while the circuit breaker is open",
            metrics.breaker_open.clone(),
        );
        r.register(
            "breaker_transitions",
            "Circuit breaker transitions by new state",
            metrics.breaker_transitions.clone(),
        );
        r.register(
            "tick_duration_seconds",
            "Time spent evaluating one tick",
            metrics.tick_duration_seconds.clone(),
        );
        r.register("ticks", "Ticks evaluated", metrics.ticks.clone());
        r.register(
            "notifications",
            "Notifications by outcome",
            metrics.notifications.clone(),
        );
        r.register(
            "notifications_pending",
            "Notifications waiting for delivery",
            metrics.notifications_pending.clone(),
        );
        r.register(
            "delivery_attempt_seconds",
            "Duration of one POST to Masakari",
            metrics.delivery_attempt_seconds.clone(),
        );
        r.register(
            "failed_to_delivered_seconds",
            "Time from a host becoming Failed to Masakari accepting its notification",
            metrics.failed_to_delivered_seconds.clone(),
        );
        r.register(
            "slow_retries",
            "Delivery retries after the fast retries were used up",
            metrics.slow_retries.clone(),
        );
        r.register(
            "watch_events",
            "Node watch events applied to the cache",
            metrics.watch_events.clone(),
        );
        r.register(
            "watch_restarts",
            "Node watch errors followed by a restart",
            metrics.watch_restarts.clone(),
        );
        r.register(
            "watch_relists",
            "Full Node lists (start-up and after 410 Gone)",
            metrics.watch_relists.clone(),
        );
        r.register(
            "keystone_authentications",
            "Keystone token requests by outcome",
            metrics.keystone_authentications.clone(),
        );
        r.register(
            "leader",
            "1 while this replica holds the leader Lease",
            metrics.leader.clone(),
        );
        r.register(
            "leader_transitions",
            "Times this replica gained or lost leadership",
            metrics.leader_transitions.clone(),
        );
        metrics.create_known_series();
        metrics
    }

    /// Creates every label value the components use, so that dashboards and alerts see a 0
    /// instead of a missing series before the first event.
    fn create_known_series(&self) {
        for reading in ["up", "down", "no_data"] {
            let label = ReadingLabel {
                reading: reading.to_owned(),
            };
            drop(self.hosts_by_reading.get_or_create(&label));
        }
        for state in ["open", "closed"] {
            let label = StateLabel {
                state: state.to_owned(),
            };
            drop(self.breaker_transitions.get_or_create(&label));
        }
        for outcome in NOTIFICATION_OUTCOMES {
            let label = OutcomeLabel {
                outcome: (*outcome).to_owned(),
            };
            drop(self.notifications.get_or_create(&label));
        }
        for outcome in ["success", "failed", "rejected"] {
            let label = OutcomeLabel {
                outcome: outcome.to_owned(),
            };
            drop(self.keystone_authentications.get_or_create(&label));
        }
    }

    /// Metrics registered in a throw-away registry, for tests and tools that do not export them.
    pub fn unregistered() -> Self {
        Self::new(&mut Registry::default())
    }

    pub fn count_notification(&self, outcome: &str) {
        self.notifications
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn known_series_exported_before_events() {
        let mut registry = Registry::default();
        let _metrics = Metrics::new(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        for series in [
            r#"masakari_hostmonitor_breaker_transitions_total{state="open"} 0"#,
            r#"masakari_hostmonitor_notifications_total{outcome="delivered"} 0"#,
            r#"masakari_hostmonitor_notifications_total{outcome="abandoned"} 0"#,
            r#"masakari_hostmonitor_hosts{reading="no_data"} 0"#,
            r#"masakari_hostmonitor_keystone_authentications_total{outcome="success"} 0"#,
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
    }
}
