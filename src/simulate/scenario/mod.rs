//! The scenario file: a fleet, a `[config]` table for the real loader, a timeline of events and
//! the expectations checked at the end.
//!
//! The `validate` module turns the file into the typed [`Scenario`] defined here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::ReadyStatus;

mod validate;

/// The label that carries a node's zone unless `[fleet] zone_label` names another one.
pub const DEFAULT_ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Node names generated from `[fleet] count` when `name_pattern` is not set.
pub const DEFAULT_NAME_PATTERN: &str = "compute-{index}";

/// Errors reading or validating a scenario. None is retried: the scenario must be fixed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("failed to read scenario file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no built-in scenario or file named {name:?}; built-in scenarios: {available}")]
    UnknownScenario { name: String, available: String },
    #[error("invalid scenario {origin}")]
    Parse {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid scenario {origin}: {location}: {problem}")]
    Invalid {
        origin: String,
        location: String,
        problem: String,
    },
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `name`, else the file name without extension.
    pub name: String,
    pub description: Option<String>,
    /// `duration`: how long the simulation runs, from the start of the monitor.
    pub duration: Duration,
    pub fleet: Fleet,
    /// `[config]`: sections and keys of masakarimonitors.conf, for the real loader.
    pub config: toml::Table,
    /// `[[events]]`, sorted by time; events at the same time keep their file order.
    pub events: Vec<Event>,
    /// `[[expect]]`, in file order.
    pub expectations: Vec<Expectation>,
}

/// The simulated Kubernetes nodes present at the start. They start with Ready `True`, except
/// those in `down`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub nodes: Vec<NodeSpec>,
    /// `[[fleet.down]]`: nodes whose Ready condition is already `False` or `Unknown` at the start.
    pub down: Vec<DownAtStart>,
}

/// A node that is already down when the simulation starts, as after a monitor restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownAtStart {
    pub node: String,
    /// `False` or `Unknown`.
    pub status: ReadyStatus,
    /// How long before the start the Ready condition left `True` (its `lastTransitionTime`).
    pub since: Duration,
}

/// One simulated node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub zone: Option<String>,
    /// The fleet's labels plus the zone label when the node has a zone.
    pub labels: BTreeMap<String, String>,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Time since the start of the simulation.
    pub at: Duration,
    pub action: Action,
}

/// The change an event makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `set_ready`: the Ready condition of these nodes gets `status` (and `reason`).
    SetReady {
        nodes: Vec<String>,
        status: ReadyStatus,
        reason: Option<String>,
    },
    /// `delete_node`: the Node objects are deleted.
    DeleteNodes { nodes: Vec<String> },
    /// `add_node`: the Node objects are created (again) with Ready `True`.
    AddNodes { nodes: Vec<NodeSpec> },
    /// `kubernetes_api_down` / `kubernetes_api_up`.
    KubernetesApi { available: bool },
    /// `masakari_down` / `masakari_up`: while down, Masakari responds 503 to every request.
    Masakari { available: bool },
    /// `masakari_status`: Masakari responds to notifications with this status. `None` restores
    /// normal responses.
    MasakariStatus { status: Option<u16> },
    /// `masakari_latency`: every Keystone and Masakari response is delayed by this much.
    MasakariLatency { latency: Duration },
}

/// One `[[expect]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// Masakari accepted (202) a notification for `host`.
    Notified {
        host: String,
        /// The first accepted notification came at most this long after the event that last
        /// made the host not ready before it.
        within: Option<Duration>,
        /// The first accepted notification came at most this long after the start.
        by: Option<Duration>,
        /// Exactly this many notifications for the host were accepted.
        times: Option<usize>,
    },
    /// Masakari received no notification request at all for `host`.
    NotNotified { host: String },
    /// Exactly this many notifications were accepted, for all hosts together.
    Notifications { count: usize },
    /// The breaker opened, at or before `by` when given.
    BreakerOpens { by: Option<Duration> },
    /// The breaker closed after having opened, at or before `by` when given.
    BreakerCloses { by: Option<Duration> },
    /// The breaker never opened.
    BreakerStaysClosed,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        let stem = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".to_owned());
        Scenario::from_toml(&text, &path.display().to_string(), &stem)
    }

    /// Parses and validates scenario text. `origin` names it in errors; `default_name` is the
    /// scenario's name when the text sets none.
    pub fn from_toml(
        text: &str,
        origin: &str,
        default_name: &str,
    ) -> Result<Scenario, ScenarioError> {
        validate::parse(text, origin, default_name)
    }

    /// Returns the nodes present at the start plus those any `add_node` event creates.
    pub fn all_node_names(&self) -> BTreeSet<&str> {
        let mut names: BTreeSet<&str> = self.fleet.nodes.iter().map(|n| n.name.as_str()).collect();
        for event in &self.events {
            if let Action::AddNodes { nodes } = &event.action {
                names.extend(nodes.iter().map(|n| n.name.as_str()));
            }
        }
        names
    }
}

/// Parses `"90s"`, `"5m"`, `"1h30m"`, `"1m 30s"` or ISO 8601 (`"PT90S"`), with jiff's friendly
/// duration format.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .trim()
        .parse()
        .map_err(|e: jiff::Error| e.to_string())?;
    Duration::try_from(signed).map_err(|_| "must not be negative".to_owned())
}

/// Formats a time offset as the scenario writes them: `0s`, `1m30s`, `2h0m5.5s`.
pub fn format_offset(offset: Duration) -> String {
    let millis = offset.as_millis();
    let hours = millis / 3_600_000;
    let minutes = millis / 60_000 % 60;
    let seconds = millis / 1000 % 60;
    let fraction = millis % 1000;
    let seconds = if fraction == 0 {
        format!("{seconds}s")
    } else {
        let decimals = format!("{fraction:03}");
        format!("{seconds}.{}s", decimals.trim_end_matches('0'))
    };
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, _) => format!("{minutes}m{seconds}"),
        _ => format!("{hours}h{minutes}m{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        duration = "10m"
        [fleet]
        count = 3
    "#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml(text, "test.toml", "test")
    }

    fn problem(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("scenario accepted"),
            Err(error) => {
                let mut text = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                text
            }
        }
    }

    #[test]
    fn durations_in_friendly_format() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn offsets_formatted_like_input() {
        assert_eq!(format_offset(Duration::ZERO), "0s");
        assert_eq!(format_offset(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_offset(Duration::from_millis(111_500)), "1m51.5s");
        assert_eq!(format_offset(Duration::from_secs(3605)), "1h0m5s");
    }

    #[test]
    fn fleet_from_count_and_zones() {
        let scenario = parse(
            r#"
            duration = "10m"
            [fleet]
            count = 6
            name_pattern = "cmp-{index:02}"
            zones = ["rack-a", "rack-b"]
            labels = { "openstack-compute-node" = "enabled" }
            "#,
        )
        .unwrap();
        let names: Vec<&str> = scenario
            .fleet
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["cmp-00", "cmp-01", "cmp-02", "cmp-03", "cmp-04", "cmp-05"]
        );
        let zones: Vec<&str> = scenario
            .fleet
            .nodes
            .iter()
            .filter_map(|n| n.zone.as_deref())
            .collect();
        assert_eq!(
            zones,
            ["rack-a", "rack-a", "rack-a", "rack-b", "rack-b", "rack-b"]
        );
        let labels = &scenario.fleet.nodes[4].labels;
        assert_eq!(labels[DEFAULT_ZONE_LABEL], "rack-b");
        assert_eq!(labels["openstack-compute-node"], "enabled");
        assert_eq!(scenario.name, "test");
    }

    #[test]
    fn zone_event_targets_its_nodes() {
        let scenario = parse(
            r#"
            duration = "10m"
            [fleet]
            count = 4
            zones = ["a", "b"]
            [[events]]
            at = "2m"
            action = "set_ready"
            zone = "b"
            status = "Unknown"
            [[events]]
            at = 30
            action = "masakari_down"
            "#,
        )
        .unwrap();
        assert_eq!(scenario.events[0].at, Duration::from_secs(30));
        assert_eq!(
            scenario.events[1].action,
            Action::SetReady {
                nodes: vec!["compute-2".to_owned(), "compute-3".to_owned()],
                status: ReadyStatus::Unknown,
                reason: None,
            }
        );
    }

    #[test]
    fn expectations_parsed() {
        let scenario = parse(
            r#"
            duration = "10m"
            [fleet]
            names = ["a", "b", "c"]
            [[expect]]
            notified = "a"
            within = "1m"
            times = 1
            [[expect]]
            not_notified = ["b", "c"]
            [[expect]]
            breaker = "opens"
            by = "5m"
            [[expect]]
            notifications = 1
            "#,
        )
        .unwrap();
        assert_eq!(
            scenario.expectations,
            [
                Expectation::Notified {
                    host: "a".to_owned(),
                    within: Some(Duration::from_secs(60)),
                    by: None,
                    times: Some(1),
                },
                Expectation::NotNotified {
                    host: "b".to_owned()
                },
                Expectation::NotNotified {
                    host: "c".to_owned()
                },
                Expectation::BreakerOpens {
                    by: Some(Duration::from_secs(300)),
                },
                Expectation::Notifications { count: 1 },
            ]
        );
    }

    #[test]
    fn unknown_key_rejected() {
        let text = format!(
            "{MINIMAL}\n[[events]]\nat = \"1m\"\naction = \"masakari_down\"\nnode = \"compute-0\"\n"
        );
        assert!(problem(&text).contains("takes no `node`"));
        let text = format!("{MINIMAL}\n[[events]]\nat = \"1m\"\nactoin = \"masakari_down\"\n");
        assert!(problem(&text).contains("actoin"));
    }

    #[test]
    fn unknown_node_rejected() {
        let text = format!(
            "{MINIMAL}\n[[events]]\nat = \"1m\"\naction = \"set_ready\"\nnode = \"compute-9\"\nstatus = \"False\"\n"
        );
        assert!(problem(&text).contains("\"compute-9\""));
        let text = format!("{MINIMAL}\n[[expect]]\nnotified = \"compute-7\"\n");
        assert!(problem(&text).contains("\"compute-7\""));
    }

    #[test]
    fn timeline_node_existence_checked() {
        let deleted_then_set = format!(
            "{MINIMAL}\n[[events]]\nat = \"1m\"\naction = \"delete_node\"\nnode = \"compute-1\"\n\
             [[events]]\nat = \"2m\"\naction = \"set_ready\"\nnode = \"compute-1\"\nstatus = \"False\"\n"
        );
        assert!(problem(&deleted_then_set).contains("does not exist at that time"));
        let added_twice = format!(
            "{MINIMAL}\n[[events]]\nat = \"1m\"\naction = \"add_node\"\nnode = \"compute-1\"\n"
        );
        assert!(problem(&added_twice).contains("already exists"));
        let set_before_added = format!(
            "{MINIMAL}\n[[events]]\nat = \"2m\"\naction = \"add_node\"\nnode = \"compute-9\"\n\
             [[events]]\nat = \"1m\"\naction = \"set_ready\"\nnode = \"compute-9\"\nstatus = \"False\"\n"
        );
        assert!(problem(&set_before_added).contains("\"compute-9\" does not exist"));
    }

    #[test]
    fn added_node_may_be_targeted() {
        let text = format!(
            "{MINIMAL}\n[[events]]\nat = \"1m\"\naction = \"add_node\"\nnode = \"compute-9\"\n\
             [[events]]\nat = \"2m\"\naction = \"set_ready\"\nnode = \"compute-9\"\nstatus = \"False\"\n"
        );
        let scenario = parse(&text).unwrap();
        assert_eq!(scenario.events.len(), 2);
    }

    #[test]
    fn event_after_duration_rejected() {
        let text = format!("{MINIMAL}\n[[events]]\nat = \"11m\"\naction = \"masakari_up\"\n");
        assert!(problem(&text).contains("after the scenario's `duration`"));
    }

    #[test]
    fn bad_values_rejected() {
        let status = format!(
            "{MINIMAL}\n[[events]]\nat = \"1m\"\naction = \"set_ready\"\nnode = \"compute-0\"\nstatus = \"down\"\n"
        );
        assert!(problem(&status).contains("\"True\", \"False\" or \"Unknown\""));
        let http = format!(
            "{MINIMAL}\n[[events]]\nat = \"1m\"\naction = \"masakari_status\"\nstatus = 42\n"
        );
        assert!(problem(&http).contains("from 100 to 599"));
        let duration = format!("{MINIMAL}\n[[events]]\nat = \"soon\"\naction = \"masakari_up\"\n");
        assert!(problem(&duration).contains("invalid duration \"soon\""));
        let two = format!("{MINIMAL}\n[[expect]]\nnotifications = 1\nbreaker = \"opens\"\n");
        assert!(problem(&two).contains("exactly one of"));
    }

    #[test]
    fn nodes_down_at_start() {
        let scenario = parse(&format!(
            "{MINIMAL}\n[[fleet.down]]\nnode = \"compute-1\"\nstatus = \"Unknown\"\nsince = \"2h\"\n"
        ))
        .unwrap();
        assert_eq!(
            scenario.fleet.down,
            [DownAtStart {
                node: "compute-1".to_owned(),
                status: ReadyStatus::Unknown,
                since: Duration::from_secs(7200),
            }]
        );
        let up = format!(
            "{MINIMAL}\n[[fleet.down]]\nnode = \"compute-1\"\nstatus = \"True\"\nsince = \"2h\"\n"
        );
        assert!(problem(&up).contains("\"False\" or \"Unknown\""));
        let unknown = format!(
            "{MINIMAL}\n[[fleet.down]]\nnode = \"compute-7\"\nstatus = \"False\"\nsince = 5\n"
        );
        assert!(problem(&unknown).contains("not in the fleet"));
    }
}
