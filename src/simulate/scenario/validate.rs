//! Parsing and validation: the file is read into raw serde structs, then checked and turned
//! into the typed [`Scenario`], so that every error names the entry it is about (`events[2]`,
//! `expect[0]`, `fleet`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use super::{
    Action, DEFAULT_NAME_PATTERN, DEFAULT_ZONE_LABEL, DownAtStart, Event, Fleet, NodeSpec,
    Scenario, ScenarioError, format_offset, parse_duration,
};
use crate::config::ReadyStatus;

mod expectations;

/// Parses and validates scenario text, for [`Scenario::from_toml`].
pub(super) fn parse(
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
    expect: Vec<expectations::RawExpectation>,
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

/// A duration as text (`"90s"`, `"5m"`, `"1h30m"`) or as whole seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawDuration {
    Seconds(u64),
    Text(String),
}

/// Validation context: the origin for messages and the names events may refer to.
struct Checker<'a> {
    pub(super) origin: &'a str,
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

    /// Replays the timeline over the set of existing nodes, so that an event on a node that does
    /// not exist at its time is rejected here rather than failing halfway through the run.
    fn check_targets(&self, scenario: &Scenario) -> Result<(), ScenarioError> {
        let mut existing: BTreeSet<&str> = scenario
            .fleet
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        for event in &scenario.events {
            let location = format!("event at {}", format_offset(event.at));
            match &event.action {
                Action::SetReady { nodes, .. } => {
                    if let Some(missing) = nodes.iter().find(|n| !existing.contains(n.as_str())) {
                        return Err(self.invalid(location, missing_node(missing)));
                    }
                }
                Action::DeleteNodes { nodes } => {
                    for node in nodes {
                        if !existing.remove(node.as_str()) {
                            return Err(self.invalid(location, missing_node(node)));
                        }
                    }
                }
                Action::AddNodes { nodes } => {
                    for node in nodes {
                        if !existing.insert(node.name.as_str()) {
                            return Err(self.invalid(
                                location,
                                format!("node {:?} already exists at that time", node.name),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn missing_node(node: &str) -> String {
    format!(
        "node {node:?} does not exist at that time (not in the fleet, deleted, or not yet added by `add_node`)"
    )
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

    #[test]
    fn name_patterns() {
        assert_eq!(generate_names("n{index}", 2).unwrap(), ["n0", "n1"]);
        assert_eq!(generate_names("n-{index:03}.x", 1).unwrap(), ["n-000.x"]);
        assert!(generate_names("node", 2).is_err());
        assert!(generate_names("n{index:3}", 2).is_err());
    }
}
