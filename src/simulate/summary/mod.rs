//! The summary of a run, rendered as text or JSON. For each failure episode of each host it
//! gives when the host failed, when the monitor declared it Failed, when Masakari accepted the
//! notification, and the outcome. It also lists the circuit breaker's transitions, the
//! notifications and the expectations.
//!
//! A failure episode starts with the scenario event that takes a ready node to `False` or
//! `Unknown` and ends with the event that makes it `True` again. Monitor decisions and
//! notifications are attributed to the latest episode of their host that started before them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::driver::{Recording, describe, status_str};
use super::expect::ExpectationResult;
use super::scenario::{Action, Scenario, format_offset};
use crate::breaker::Transition;
use crate::config::ReadyStatus;
use crate::detector::HostEvent;
use crate::monitor::Decision;

mod text;

pub use text::plural;

/// The outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    /// `virtual` (paused tokio clock) or `real`.
    pub clock: &'static str,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    pub nodes: usize,
    /// Ticks that evaluated a synced snapshot.
    pub ticks: usize,
    pub events: Vec<EventRecord>,
    pub failures: Vec<HostFailure>,
    pub breaker: Vec<BreakerRecord>,
    /// Every notification request Masakari authenticated, in arrival order.
    pub notifications: Vec<NotificationRecord>,
    /// Notification requests Masakari received, including those rejected with 503 while down.
    pub masakari_requests: usize,
    pub expectations: Vec<ExpectationResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    #[serde(serialize_with = "seconds")]
    pub at: Duration,
    pub description: String,
}

/// One failure episode of one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostFailure {
    pub host: String,
    /// The scenario's change, such as `Ready=Unknown`; `down at start-up` when the monitor
    /// reported a host that no event took down.
    pub cause: String,
    /// When the scenario event took the node down.
    #[serde(serialize_with = "optional_seconds")]
    pub failed_at: Option<Duration>,
    /// When an event made the node ready again.
    #[serde(serialize_with = "optional_seconds")]
    pub recovered_at: Option<Duration>,
    /// When the monitor declared the host Failed.
    #[serde(serialize_with = "optional_seconds")]
    pub declared_failed_at: Option<Duration>,
    /// When the open breaker held the host instead.
    #[serde(serialize_with = "optional_seconds")]
    pub held_at: Option<Duration>,
    /// When the monitor found the host down at start-up and decided not to notify it.
    #[serde(serialize_with = "optional_seconds")]
    pub suppressed_at_startup: Option<Duration>,
    /// When Masakari accepted (202) the first notification of this episode.
    #[serde(serialize_with = "optional_seconds")]
    pub notified_at: Option<Duration>,
    /// `declared_failed_at - failed_at`.
    #[serde(serialize_with = "optional_seconds")]
    pub detection_delay: Option<Duration>,
    /// `notified_at - failed_at`.
    #[serde(serialize_with = "optional_seconds")]
    pub notification_delay: Option<Duration>,
    /// Statuses of Masakari's responses to this episode's requests, in order.
    pub answers: Vec<u16>,
    pub outcome: Outcome,
}

/// The end of a failure episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Masakari accepted a notification.
    Notified,
    /// Masakari responded, but never with 202 (409 duplicate, 400 unknown host, ...).
    Rejected,
    /// Declared Failed, but Masakari received nothing before the end or the host recovered.
    NotDelivered,
    /// Held by the open breaker and never declared Failed afterwards.
    Held,
    /// Found down at start-up for longer than the start-up horizon, so not notified.
    SuppressedAtStartup,
    /// The node was ready again before the monitor declared it Failed.
    RecoveredBeforeDetection,
    /// The node was deleted before the monitor declared it Failed.
    DeletedBeforeDetection,
    /// Still down at the end, and not (yet) declared Failed.
    NotDetected,
}

#[derive(Debug, Clone, Serialize)]
pub struct BreakerRecord {
    #[serde(serialize_with = "seconds")]
    pub at: Duration,
    /// `opened` or `closed`.
    pub state: &'static str,
    pub down: usize,
    pub threshold: usize,
    pub monitored: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotificationRecord {
    #[serde(serialize_with = "seconds")]
    pub at: Duration,
    pub host: String,
    pub status: u16,
    pub notification_uuid: Option<String>,
}

/// Builds the summary of a recording; expectations are added by the caller.
pub fn build(scenario: &Scenario, recording: &Recording, virtual_clock: bool) -> Summary {
    let mut failures = episodes(scenario, recording);
    attribute_decisions(&mut failures, recording);
    attribute_notifications(&mut failures, recording);
    let mut failures: Vec<HostFailure> = failures.into_values().flatten().collect();
    for failure in &mut failures {
        finish(failure);
    }
    failures.sort_by(|a, b| (a.failed_at, &a.host).cmp(&(b.failed_at, &b.host)));

    Summary {
        scenario: scenario.name.clone(),
        clock: if virtual_clock { "virtual" } else { "real" },
        duration: scenario.duration,
        nodes: scenario.fleet.nodes.len(),
        ticks: recording.ticks,
        events: recording
            .events
            .iter()
            .map(|e| EventRecord {
                at: e.at,
                description: describe(&e.action),
            })
            .collect(),
        failures,
        breaker: breaker_records(recording),
        notifications: recording
            .received
            .iter()
            .map(|r| NotificationRecord {
                at: r.at,
                host: r.host.clone(),
                status: r.status,
                notification_uuid: r.notification_uuid.clone(),
            })
            .collect(),
        masakari_requests: recording.masakari_requests,
        expectations: Vec::new(),
    }
}

fn empty_failure(host: &str, cause: String, failed_at: Option<Duration>) -> HostFailure {
    HostFailure {
        host: host.to_owned(),
        cause,
        failed_at,
        recovered_at: None,
        declared_failed_at: None,
        held_at: None,
        suppressed_at_startup: None,
        notified_at: None,
        detection_delay: None,
        notification_delay: None,
        answers: Vec::new(),
        outcome: Outcome::NotDetected,
    }
}

/// Opens an episode per node down at the start or taken down by an event, and closes it when an
/// event brings the node back.
fn episodes(scenario: &Scenario, recording: &Recording) -> BTreeMap<String, Vec<HostFailure>> {
    let mut by_host: BTreeMap<String, Vec<HostFailure>> = BTreeMap::new();
    for down in &scenario.fleet.down {
        let cause = format!(
            "Ready={} since {} before the start",
            status_str(down.status),
            format_offset(down.since)
        );
        let failure = empty_failure(&down.node, cause, Some(Duration::ZERO));
        by_host.entry(down.node.clone()).or_default().push(failure);
    }
    for event in &recording.events {
        match &event.action {
            Action::SetReady { nodes, status, .. } => {
                for node in nodes {
                    let list = by_host.entry(node.clone()).or_default();
                    let open = list.last_mut().filter(|f| f.recovered_at.is_none());
                    match (status, open) {
                        (ReadyStatus::True, Some(open)) => open.recovered_at = Some(event.at),
                        (ReadyStatus::True, None) | (_, Some(_)) => {}
                        (status, None) => {
                            let cause = format!("Ready={}", status_str(*status));
                            list.push(empty_failure(node, cause, Some(event.at)));
                        }
                    }
                }
            }
            // A deleted node's open episode ends with the deletion.
            Action::DeleteNodes { nodes } => {
                for node in nodes {
                    let open = by_host
                        .get_mut(node)
                        .and_then(|list| list.last_mut())
                        .filter(|f| f.recovered_at.is_none());
                    if let Some(open) = open {
                        open.cause.push_str(", then deleted");
                        open.recovered_at = Some(event.at);
                    }
                }
            }
            _ => {}
        }
    }
    by_host
}

/// Finds the episode of `host` that was under way at `at`, or creates one when no event
/// explains it.
fn episode_at<'a>(
    by_host: &'a mut BTreeMap<String, Vec<HostFailure>>,
    host: &str,
    at: Duration,
) -> &'a mut HostFailure {
    let list = by_host.entry(host.to_owned()).or_default();
    let index = list.iter().rposition(|f| f.failed_at <= Some(at));
    match index {
        Some(index) => &mut list[index],
        None => {
            list.insert(0, empty_failure(host, "down at start-up".to_owned(), None));
            &mut list[0]
        }
    }
}

fn attribute_decisions(by_host: &mut BTreeMap<String, Vec<HostFailure>>, recording: &Recording) {
    for (at, decision) in &recording.decisions {
        let Decision::Host { host, event } = decision else {
            continue;
        };
        match event {
            HostEvent::Failed { .. } => {
                let failure = episode_at(by_host, host, *at);
                failure.declared_failed_at.get_or_insert(*at);
            }
            HostEvent::Held => {
                let failure = episode_at(by_host, host, *at);
                failure.held_at.get_or_insert(*at);
            }
            HostEvent::DownAtStartup(_) => {
                let failure = episode_at(by_host, host, *at);
                failure.suppressed_at_startup.get_or_insert(*at);
            }
            _ => {}
        }
    }
}

fn attribute_notifications(
    by_host: &mut BTreeMap<String, Vec<HostFailure>>,
    recording: &Recording,
) {
    for received in &recording.received {
        let failure = episode_at(by_host, &received.host, received.at);
        failure.answers.push(received.status);
        if received.status == 202 {
            failure.notified_at.get_or_insert(received.at);
        }
    }
}

fn finish(failure: &mut HostFailure) {
    let delay = |at: Option<Duration>| Some(at?.saturating_sub(failure.failed_at?));
    failure.detection_delay = delay(failure.declared_failed_at);
    failure.notification_delay = delay(failure.notified_at);
    let deleted = failure.cause.ends_with("deleted");
    failure.outcome = if failure.notified_at.is_some() {
        Outcome::Notified
    } else if !failure.answers.is_empty() {
        Outcome::Rejected
    } else if failure.declared_failed_at.is_some() {
        Outcome::NotDelivered
    } else if failure.held_at.is_some() {
        Outcome::Held
    } else if failure.suppressed_at_startup.is_some() {
        Outcome::SuppressedAtStartup
    } else if deleted && failure.recovered_at.is_some() {
        Outcome::DeletedBeforeDetection
    } else if failure.recovered_at.is_some() {
        Outcome::RecoveredBeforeDetection
    } else {
        Outcome::NotDetected
    };
}

fn breaker_records(recording: &Recording) -> Vec<BreakerRecord> {
    recording
        .decisions
        .iter()
        .filter_map(|(at, decision)| match decision {
            Decision::Breaker(Transition::Opened {
                down,
                threshold,
                monitored,
            }) => Some(BreakerRecord {
                at: *at,
                state: "opened",
                down: *down,
                threshold: *threshold,
                monitored: *monitored,
            }),
            Decision::Breaker(Transition::Closed {
                down,
                threshold,
                monitored,
                ..
            }) => Some(BreakerRecord {
                at: *at,
                state: "closed",
                down: *down,
                threshold: *threshold,
                monitored: *monitored,
            }),
            _ => None,
        })
        .collect()
}

impl Outcome {
    pub fn describe(self) -> &'static str {
        match self {
            Outcome::Notified => "notified",
            Outcome::Rejected => "rejected by Masakari",
            Outcome::NotDelivered => "failed, not delivered",
            Outcome::Held => "held by the circuit breaker",
            Outcome::SuppressedAtStartup => "down at start-up, not notified",
            Outcome::RecoveredBeforeDetection => "recovered before detection",
            Outcome::DeletedBeforeDetection => "deleted before detection",
            Outcome::NotDetected => "not detected",
        }
    }
}

impl Summary {
    /// True when every expectation passed (or there are none).
    pub fn passed(&self) -> bool {
        self.expectations.iter().all(|e| e.passed)
    }

    /// Notifications Masakari accepted with 202.
    pub fn accepted(&self) -> impl Iterator<Item = &NotificationRecord> {
        self.notifications.iter().filter(|n| n.status == 202)
    }

    /// Serializes the summary as one JSON document, with times in seconds from the start and
    /// a top-level `passed` that is true when every expectation passed.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::to_value(self).unwrap_or_else(
            |error| serde_json::json!({"error": format!("summary not serializable: {error}")}),
        );
        if let Some(object) = json.as_object_mut() {
            object.insert("passed".to_owned(), self.passed().into());
        }
        json
    }
}

fn seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

fn optional_seconds<S: Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serializer.serialize_f64(duration.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::driver::Received;
    use crate::simulate::scenario::Event;

    const SCENARIO: &str = r#"
        duration = "20m"
        [fleet]
        count = 3
        [[fleet.down]]
        node = "compute-2"
        status = "Unknown"
        since = "3h"
    "#;

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    fn set_ready(at: u64, node: &str, status: ReadyStatus) -> Event {
        Event {
            at: secs(at),
            action: Action::SetReady {
                nodes: vec![node.to_owned()],
                status,
                reason: None,
            },
        }
    }

    fn host(host: &str, at: u64, event: HostEvent) -> (Duration, Decision) {
        let decision = Decision::Host {
            host: host.to_owned(),
            event,
        };
        (secs(at), decision)
    }

    fn received(at: u64, host: &str, status: u16) -> Received {
        Received {
            at: secs(at),
            host: host.to_owned(),
            status,
            notification_uuid: (status == 202).then(|| format!("uuid-{at}")),
        }
    }

    fn failed() -> HostEvent {
        HostEvent::Failed {
            generated_time: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn summarize(recording: &Recording) -> Summary {
        let scenario = Scenario::from_toml(SCENARIO, "test", "test").unwrap();
        build(&scenario, recording, true)
    }

    #[test]
    fn episodes_get_decisions_and_notifications() {
        let recording = Recording {
            ticks: 120,
            events: vec![
                set_ready(60, "compute-0", ReadyStatus::Unknown),
                set_ready(300, "compute-0", ReadyStatus::True),
                set_ready(600, "compute-0", ReadyStatus::False),
            ],
            decisions: vec![
                host(
                    "compute-2",
                    10,
                    HostEvent::DownAtStartup(crate::detector::StartupReason::DownSinceUnknown),
                ),
                host("compute-0", 90, failed()),
                host("compute-0", 310, HostEvent::Recovered),
                host("compute-0", 630, failed()),
            ],
            received: vec![
                received(90, "compute-0", 503),
                received(100, "compute-0", 202),
                received(630, "compute-0", 409),
            ],
            masakari_requests: 4,
        };

        let summary = summarize(&recording);

        type Row<'a> = (
            &'a str,
            Option<Duration>,
            Option<Duration>,
            Option<Duration>,
            Outcome,
        );
        let rows: Vec<Row> = summary
            .failures
            .iter()
            .map(|f| {
                (
                    f.host.as_str(),
                    f.failed_at,
                    f.declared_failed_at,
                    f.notified_at,
                    f.outcome,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "compute-2",
                    Some(secs(0)),
                    None,
                    None,
                    Outcome::SuppressedAtStartup
                ),
                (
                    "compute-0",
                    Some(secs(60)),
                    Some(secs(90)),
                    Some(secs(100)),
                    Outcome::Notified
                ),
                (
                    "compute-0",
                    Some(secs(600)),
                    Some(secs(630)),
                    None,
                    Outcome::Rejected
                ),
            ]
        );
        assert_eq!(summary.failures[1].detection_delay, Some(secs(30)));
        assert_eq!(summary.failures[1].notification_delay, Some(secs(40)));
        assert_eq!(summary.failures[1].answers, [503, 202]);
        assert_eq!(summary.failures[1].recovered_at, Some(secs(300)));
        assert_eq!(summary.failures[2].answers, [409]);
        assert_eq!(summary.accepted().count(), 1);
    }

    #[test]
    fn outcomes_without_notification() {
        let recording = Recording {
            events: vec![
                set_ready(60, "compute-0", ReadyStatus::Unknown),
                set_ready(75, "compute-0", ReadyStatus::True),
                set_ready(60, "compute-1", ReadyStatus::False),
                Event {
                    at: secs(70),
                    action: Action::DeleteNodes {
                        nodes: vec!["compute-1".to_owned()],
                    },
                },
                set_ready(500, "compute-0", ReadyStatus::False),
                set_ready(900, "compute-0", ReadyStatus::True),
                set_ready(1000, "compute-0", ReadyStatus::False),
            ],
            decisions: vec![
                host("compute-0", 530, HostEvent::Held),
                host("compute-0", 910, HostEvent::RecoveredWhileHeld),
            ],
            ..Recording::default()
        };

        let summary = summarize(&recording);

        let outcomes: Vec<(&str, u64, Outcome)> = summary
            .failures
            .iter()
            .filter(|f| f.host != "compute-2")
            .map(|f| (f.host.as_str(), f.failed_at.unwrap().as_secs(), f.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("compute-0", 60, Outcome::RecoveredBeforeDetection),
                ("compute-1", 60, Outcome::DeletedBeforeDetection),
                ("compute-0", 500, Outcome::Held),
                ("compute-0", 1000, Outcome::NotDetected),
            ]
        );
    }

    #[test]
    fn breaker_transitions_listed() {
        let recording = Recording {
            decisions: vec![
                (
                    secs(70),
                    Decision::Breaker(Transition::Opened {
                        down: 4,
                        threshold: 3,
                        monitored: 12,
                    }),
                ),
                (
                    secs(370),
                    Decision::Breaker(Transition::Closed {
                        down: 0,
                        threshold: 3,
                        monitored: 12,
                        stable_for: secs(120),
                    }),
                ),
            ],
            ..Recording::default()
        };

        let summary = summarize(&recording);

        let states: Vec<(&str, Duration, usize)> = summary
            .breaker
            .iter()
            .map(|r| (r.state, r.at, r.down))
            .collect();
        assert_eq!(states, [("opened", secs(70), 4), ("closed", secs(370), 0)]);
        let text = summary.render_text();
        assert!(
            text.contains("1m10s  opened (4 down, threshold 3, 12 monitored)"),
            "{text}"
        );
    }

    #[test]
    fn json_times_in_seconds() {
        let recording = Recording {
            events: vec![set_ready(90, "compute-0", ReadyStatus::Unknown)],
            decisions: vec![host("compute-0", 120, failed())],
            received: vec![received(121, "compute-0", 202)],
            ..Recording::default()
        };

        let json = summarize(&recording).to_json();

        let failure = &json["failures"][1];
        assert_eq!(failure["host"], "compute-0");
        assert_eq!(failure["failed_at"], 90.0);
        assert_eq!(failure["detection_delay"], 30.0);
        assert_eq!(failure["held_at"], serde_json::Value::Null);
        assert_eq!(failure["outcome"], "notified");
        assert_eq!(json["passed"], true);
        assert_eq!(json["duration"], 1200.0);
    }
}
