//! The scenario file: a fleet, a `[config]` table for the real loader, a timeline of events and
//! the expectations checked at the end.
//!
//! The file is parsed into raw serde structs first, then validated into the typed [`Scenario`],
//! so that every error names the entry it is about (`events[2]`, `expect[0]`, `fleet`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::ReadyStatus;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    duration: RawDuration,
    fleet: RawFleet,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    events: Vec<RawEvent>,
    #[serde(default)]
    expect: Vec<RawExpectation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    names: Option<Vec<String>>,
    count: Option<usize>,
    name_pattern: Option<String>,
    #[serde(default)]
    zones: Vec<String>,
    zone_label: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    down: Vec<RawDownAtStart>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDownAtStart {
    node: String,
    status: toml::Value,
    since: RawDuration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: RawDuration,
    action: ActionKind,
    node: Option<String>,
    nodes: Option<Vec<String>>,
    zone: Option<String>,
    status: Option<toml::Value>,
    reason: Option<String>,
    latency: Option<RawDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionKind {
    SetReady,
    DeleteNode,
    AddNode,
    KubernetesApiDown,
    KubernetesApiUp,
    MasakariDown,
    MasakariUp,
    MasakariStatus,
    MasakariLatency,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectation {
    notified: Option<String>,
    not_notified: Option<OneOrMany>,
    notifications: Option<usize>,
    breaker: Option<BreakerKind>,
    within: Option<RawDuration>,
    by: Option<RawDuration>,
    times: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BreakerKind {
    Opens,
    Closes,
    StaysClosed,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A duration as text (`"90s"`, `"5m"`, `"1h30m"`) or as whole seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Seconds(u64),
    Text(String),
}

/// Validation context: the origin for messages and the names events may refer to.
struct Checker<'a> {
    origin: &'a str,
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
        let raw: RawScenario = toml::from_str(text).map_err(|source| ScenarioError::Parse {
            origin: origin.to_owned(),
            source,
        })?;
        Checker { origin }.scenario(raw, default_name)
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

impl Checker<'_> {
    fn invalid(&self, location: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            origin: self.origin.to_owned(),
            location: location.into(),
            problem: problem.into(),
        }
    }

    fn scenario(&self, raw: RawScenario, default_name: &str) -> Result<Scenario, ScenarioError> {
        let duration = self.duration("duration", &raw.duration)?;
        if duration.is_zero() {
            return Err(self.invalid("duration", "must be longer than zero"));
        }
        let (fleet, zone_label) = self.fleet(raw.fleet)?;

        let mut events = Vec::with_capacity(raw.events.len());
        for (index, event) in raw.events.into_iter().enumerate() {
            let location = format!("events[{index}]");
            let event = self.event(&location, event, &fleet, &zone_label)?;
            if event.at > duration {
                return Err(self.invalid(location, "`at` is after the scenario's `duration`"));
            }
            events.push(event);
        }
        events.sort_by_key(|event| event.at);

        let mut scenario = Scenario {
            name: raw.name.unwrap_or_else(|| default_name.to_owned()),
            description: raw.description,
            duration,
            fleet,
            config: raw.config,
            events,
            expectations: Vec::new(),
        };
        self.check_targets(&scenario)?;
        for (index, expectation) in raw.expect.into_iter().enumerate() {
            let location = format!("expect[{index}]");
            let parsed = self.expectation(&location, expectation)?;
            scenario.expectations.extend(parsed);
        }
        self.check_expected_hosts(&scenario)?;
        Ok(scenario)
    }

    fn duration(&self, location: &str, raw: &RawDuration) -> Result<Duration, ScenarioError> {
        match raw {
            RawDuration::Seconds(seconds) => Ok(Duration::from_secs(*seconds)),
            RawDuration::Text(text) => parse_duration(text).map_err(|problem| {
                self.invalid(location, format!("invalid duration {text:?}: {problem}"))
            }),
        }
    }

    fn fleet(&self, raw: RawFleet) -> Result<(Fleet, String), ScenarioError> {
        let names = match (raw.names, raw.count) {
            (Some(_), Some(_)) => {
                return Err(self.invalid("fleet", "set either `names` or `count`, not both"));
            }
            (None, None) => return Err(self.invalid("fleet", "set `names` or `count`")),
            (Some(names), None) => {
                if raw.name_pattern.is_some() {
                    return Err(self.invalid("fleet", "`name_pattern` only applies to `count`"));
                }
                names
            }
            (None, Some(count)) => {
                let pattern = raw.name_pattern.as_deref().unwrap_or(DEFAULT_NAME_PATTERN);
                generate_names(pattern, count)
                    .map_err(|problem| self.invalid("fleet.name_pattern", problem))?
            }
        };
        if names.is_empty() {
            return Err(self.invalid("fleet", "the fleet has no nodes"));
        }
        let mut seen = BTreeSet::new();
        for name in &names {
            if !is_node_name(name) {
                return Err(self.invalid("fleet", format!("invalid node name {name:?}")));
            }
            if !seen.insert(name.as_str()) {
                return Err(self.invalid("fleet", format!("node {name:?} is listed twice")));
            }
        }
        if raw.zones.len() > names.len() {
            return Err(self.invalid("fleet.zones", "more zones than nodes"));
        }

        let down = self.down_at_start(&raw.down, &names)?;
        let zone_label = raw
            .zone_label
            .unwrap_or_else(|| DEFAULT_ZONE_LABEL.to_owned());
        let count = names.len();
        let nodes = names
            .into_iter()
            .enumerate()
            .map(|(index, name)| {
                // Contiguous blocks: with 12 nodes and 3 zones, nodes 0-3 are in the first zone.
                let zone = (!raw.zones.is_empty())
                    .then(|| raw.zones[index * raw.zones.len() / count].clone());
                node_spec(name, zone, &raw.labels, &zone_label)
            })
            .collect();
        Ok((Fleet { nodes, down }, zone_label))
    }

    fn down_at_start(
        &self,
        raw: &[RawDownAtStart],
        names: &[String],
    ) -> Result<Vec<DownAtStart>, ScenarioError> {
        let mut down = Vec::with_capacity(raw.len());
        for (index, entry) in raw.iter().enumerate() {
            let location = format!("fleet.down[{index}]");
            if !names.contains(&entry.node) {
                return Err(self.invalid(
                    location,
                    format!("node {:?} is not in the fleet", entry.node),
                ));
            }
            if down.iter().any(|d: &DownAtStart| d.node == entry.node) {
                return Err(
                    self.invalid(location, format!("node {:?} is listed twice", entry.node))
                );
            }
            let status = match self.ready_status(&location, Some(&entry.status))? {
                ReadyStatus::True => {
                    return Err(self.invalid(location, "`status` must be \"False\" or \"Unknown\""));
                }
                status => status,
            };
            down.push(DownAtStart {
                node: entry.node.clone(),
                status,
                since: self.duration(&format!("{location}.since"), &entry.since)?,
            });
        }
        Ok(down)
    }

    fn event(
        &self,
        location: &str,
        raw: RawEvent,
        fleet: &Fleet,
        zone_label: &str,
    ) -> Result<Event, ScenarioError> {
        let at = self.duration(&format!("{location}.at"), &raw.at)?;
        let has_target = raw.node.is_some() || raw.nodes.is_some() || raw.zone.is_some();
        let takes_target = matches!(
            raw.action,
            ActionKind::SetReady | ActionKind::DeleteNode | ActionKind::AddNode
        );
        if has_target && !takes_target {
            return Err(self.invalid(location, "this action takes no `node`, `nodes` or `zone`"));
        }
        if raw.status.is_some()
            && !matches!(
                raw.action,
                ActionKind::SetReady | ActionKind::MasakariStatus
            )
        {
            return Err(self.invalid(location, "this action takes no `status`"));
        }
        if raw.reason.is_some() && raw.action != ActionKind::SetReady {
            return Err(self.invalid(location, "only `set_ready` takes a `reason`"));
        }
        if raw.latency.is_some() && raw.action != ActionKind::MasakariLatency {
            return Err(self.invalid(location, "only `masakari_latency` takes a `latency`"));
        }

        let action = match raw.action {
            ActionKind::SetReady => Action::SetReady {
                nodes: self.targets(location, &raw, fleet)?,
                status: self.ready_status(location, raw.status.as_ref())?,
                reason: raw.reason,
            },
            ActionKind::DeleteNode => Action::DeleteNodes {
                nodes: self.targets(location, &raw, fleet)?,
            },
            ActionKind::AddNode => self.add_nodes(location, &raw, fleet, zone_label)?,
            ActionKind::KubernetesApiDown => Action::KubernetesApi { available: false },
            ActionKind::KubernetesApiUp => Action::KubernetesApi { available: true },
            ActionKind::MasakariDown => Action::Masakari { available: false },
            ActionKind::MasakariUp => Action::Masakari { available: true },
            ActionKind::MasakariStatus => Action::MasakariStatus {
                status: self.http_status(location, raw.status.as_ref())?,
            },
            ActionKind::MasakariLatency => {
                let Some(latency) = &raw.latency else {
                    return Err(self.invalid(location, "`masakari_latency` needs `latency`"));
                };
                Action::MasakariLatency {
                    latency: self.duration(&format!("{location}.latency"), latency)?,
                }
            }
        };
        Ok(Event { at, action })
    }

    /// Resolves `node`, `nodes` or `zone` to node names. Names are checked against the whole
    /// scenario later, because `add_node` may create them.
    fn targets(
        &self,
        location: &str,
        raw: &RawEvent,
        fleet: &Fleet,
    ) -> Result<Vec<String>, ScenarioError> {
        let names = match (&raw.node, &raw.nodes, &raw.zone) {
            (Some(node), None, None) => vec![node.clone()],
            (None, Some(nodes), None) => nodes.clone(),
            (None, None, Some(zone)) => {
                let names: Vec<String> = fleet
                    .nodes
                    .iter()
                    .filter(|n| n.zone.as_deref() == Some(zone.as_str()))
                    .map(|n| n.name.clone())
                    .collect();
                if names.is_empty() {
                    return Err(self.invalid(location, format!("no node is in zone {zone:?}")));
                }
                names
            }
            (None, None, None) => {
                return Err(self.invalid(location, "set one of `node`, `nodes` or `zone`"));
            }
            _ => {
                return Err(self.invalid(location, "set only one of `node`, `nodes` or `zone`"));
            }
        };
        if names.is_empty() {
            return Err(self.invalid(location, "`nodes` is empty"));
        }
        Ok(names)
    }

    fn add_nodes(
        &self,
        location: &str,
        raw: &RawEvent,
        fleet: &Fleet,
        zone_label: &str,
    ) -> Result<Action, ScenarioError> {
        let (names, zone) = match (&raw.node, &raw.nodes) {
            (Some(node), None) => (vec![node.clone()], raw.zone.clone()),
            (None, Some(nodes)) => (nodes.clone(), raw.zone.clone()),
            _ => {
                return Err(self.invalid(
                    location,
                    "`add_node` needs `node` or `nodes`, and optionally the new nodes' `zone`",
                ));
            }
        };
        let fleet_labels = fleet.nodes.first().map(|n| n.labels.clone());
        let mut nodes = Vec::with_capacity(names.len());
        for name in names {
            if !is_node_name(&name) {
                return Err(self.invalid(location, format!("invalid node name {name:?}")));
            }
            // A node of the fleet comes back as it was; a new one gets the fleet's labels.
            let spec = match fleet.nodes.iter().find(|n| n.name == name) {
                Some(existing) if zone.is_none() => existing.clone(),
                _ => {
                    let mut labels = fleet_labels.clone().unwrap_or_default();
                    labels.remove(zone_label);
                    node_spec(name, zone.clone(), &labels, zone_label)
                }
            };
            nodes.push(spec);
        }
        Ok(Action::AddNodes { nodes })
    }

    fn ready_status(
        &self,
        location: &str,
        value: Option<&toml::Value>,
    ) -> Result<ReadyStatus, ScenarioError> {
        match value.and_then(toml::Value::as_str) {
            Some("True") => Ok(ReadyStatus::True),
            Some("False") => Ok(ReadyStatus::False),
            Some("Unknown") => Ok(ReadyStatus::Unknown),
            _ => Err(self.invalid(
                location,
                "`set_ready` needs `status` = \"True\", \"False\" or \"Unknown\"",
            )),
        }
    }

    fn http_status(
        &self,
        location: &str,
        value: Option<&toml::Value>,
    ) -> Result<Option<u16>, ScenarioError> {
        let Some(value) = value else {
            return Ok(None);
        };
        match value.as_integer().and_then(|s| u16::try_from(s).ok()) {
            Some(status) if (100..=599).contains(&status) => Ok(Some(status)),
            _ => Err(self.invalid(
                location,
                format!("`status` must be an HTTP status code from 100 to 599, not {value}"),
            )),
        }
    }

    fn check_targets(&self, scenario: &Scenario) -> Result<(), ScenarioError> {
        let known = scenario.all_node_names();
        for event in &scenario.events {
            let nodes = match &event.action {
                Action::SetReady { nodes, .. } | Action::DeleteNodes { nodes } => nodes,
                _ => continue,
            };
            if let Some(unknown) = nodes.iter().find(|n| !known.contains(n.as_str())) {
                return Err(self.invalid(
                    format!("event at {}", format_offset(event.at)),
                    format!("node {unknown:?} is neither in the fleet nor added by `add_node`"),
                ));
            }
        }
        Ok(())
    }

    fn expectation(
        &self,
        location: &str,
        raw: RawExpectation,
    ) -> Result<Vec<Expectation>, ScenarioError> {
        let kinds = [
            raw.notified.is_some(),
            raw.not_notified.is_some(),
            raw.notifications.is_some(),
            raw.breaker.is_some(),
        ];
        if kinds.iter().filter(|set| **set).count() != 1 {
            return Err(self.invalid(
                location,
                "set exactly one of `notified`, `not_notified`, `notifications` or `breaker`",
            ));
        }
        let within = self.optional_duration(location, "within", raw.within.as_ref())?;
        let by = self.optional_duration(location, "by", raw.by.as_ref())?;
        if raw.notified.is_none() && (within.is_some() || raw.times.is_some()) {
            return Err(self.invalid(location, "`within` and `times` only apply to `notified`"));
        }
        let by_allowed = raw.notified.is_some()
            || matches!(raw.breaker, Some(BreakerKind::Opens | BreakerKind::Closes));
        if by.is_some() && !by_allowed {
            return Err(self.invalid(
                location,
                "`by` only applies to `notified` and to `breaker` = \"opens\" or \"closes\"",
            ));
        }

        let expectations = if let Some(host) = raw.notified {
            vec![Expectation::Notified {
                host,
                within,
                by,
                times: raw.times,
            }]
        } else if let Some(hosts) = raw.not_notified {
            let hosts = match hosts {
                OneOrMany::One(host) => vec![host],
                OneOrMany::Many(hosts) => hosts,
            };
            hosts
                .into_iter()
                .map(|host| Expectation::NotNotified { host })
                .collect()
        } else if let Some(count) = raw.notifications {
            vec![Expectation::Notifications { count }]
        } else {
            match raw.breaker {
                Some(BreakerKind::Opens) => vec![Expectation::BreakerOpens { by }],
                Some(BreakerKind::Closes) => vec![Expectation::BreakerCloses { by }],
                Some(BreakerKind::StaysClosed) | None => vec![Expectation::BreakerStaysClosed],
            }
        };
        Ok(expectations)
    }

    fn optional_duration(
        &self,
        location: &str,
        key: &str,
        raw: Option<&RawDuration>,
    ) -> Result<Option<Duration>, ScenarioError> {
        raw.map(|raw| self.duration(&format!("{location}.{key}"), raw))
            .transpose()
    }

    /// Rejects expectations about hosts the scenario never creates, which would pass or fail
    /// for the wrong reason. Skipped when `[config.kubernetes]` maps host names from labels,
    /// annotations or domains, because then host names differ from node names.
    fn check_expected_hosts(&self, scenario: &Scenario) -> Result<(), ScenarioError> {
        let maps_names = scenario
            .config
            .get("kubernetes")
            .and_then(toml::Value::as_table)
            .is_some_and(|section| {
                section.contains_key("host_name_label")
                    || section.contains_key("host_name_annotation")
                    || section.contains_key("host_name_strip_domain")
            });
        if maps_names {
            return Ok(());
        }
        let known = scenario.all_node_names();
        for expectation in &scenario.expectations {
            let host = match expectation {
                Expectation::Notified { host, .. } | Expectation::NotNotified { host } => host,
                _ => continue,
            };
            if !known.contains(host.as_str()) {
                return Err(self.invalid(
                    "expect",
                    format!("host {host:?} is not a node of this scenario"),
                ));
            }
        }
        Ok(())
    }
}

fn node_spec(
    name: String,
    zone: Option<String>,
    fleet_labels: &BTreeMap<String, String>,
    zone_label: &str,
) -> NodeSpec {
    let mut labels = fleet_labels.clone();
    if let Some(zone) = &zone {
        labels.insert(zone_label.to_owned(), zone.clone());
    }
    NodeSpec { name, zone, labels }
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

/// Expands `{index}` or a zero-padded `{index:03}` in `pattern` for 0..count.
fn generate_names(pattern: &str, count: usize) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find("{index") else {
        return Err(format!("{pattern:?} has no `{{index}}` placeholder"));
    };
    let Some(close) = pattern[open..].find('}').map(|c| open + c) else {
        return Err(format!("{pattern:?} has an unclosed placeholder"));
    };
    let width = match &pattern[open + "{index".len()..close] {
        "" => 0,
        spec => spec
            .strip_prefix(":0")
            .and_then(|w| w.parse::<usize>().ok())
            .ok_or_else(|| format!("{pattern:?}: write `{{index}}` or `{{index:0N}}`"))?,
    };
    let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
    Ok((0..count)
        .map(|index| format!("{prefix}{index:0width$}{suffix}"))
        .collect())
}

/// A Kubernetes object name: a DNS subdomain (RFC 1123), as Node names must be.
fn is_node_name(name: &str) -> bool {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let alphanumeric_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    !name.is_empty() && name.len() <= 253 && valid_chars && alphanumeric_ends
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

    #[test]
    fn name_patterns() {
        assert_eq!(generate_names("n{index}", 2).unwrap(), ["n0", "n1"]);
        assert_eq!(generate_names("n-{index:03}.x", 1).unwrap(), ["n-000.x"]);
        assert!(generate_names("node", 2).is_err());
        assert!(generate_names("n{index:3}", 2).is_err());
    }
}
