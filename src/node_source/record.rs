//! Projection of a Node into the compact record the cache keeps, and the reading rules.

use jiff::Timestamp;

use super::partial::{ConditionsField, PartialNode, RawCondition, StatusField};
use super::{HostSample, Reading};
use crate::config::{HostNameSource, KubernetesSection, ReadyStatus};

/// The Ready reason the node lifecycle controller sets when the kubelet never posted status.
pub const NEVER_UPDATED_REASON: &str = "NodeStatusNeverUpdated";

/// Cached state of one Node: a few short strings, independent of the Node's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub name: String,
    pub uid: String,
    /// The Masakari host name.
    pub host: String,
    pub ready: Option<ReadyCondition>,
    pub shape: Shape,
}

/// The Ready condition chosen for a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyCondition {
    pub status: ConditionStatus,
    pub reason: Option<String>,
    pub last_transition_time: Option<Timestamp>,
}

/// A condition's `status`. Values other than the three Kubernetes defines read as `NoData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
    /// Missing, not a string, or a string other than `True`, `False` and `Unknown`.
    Other,
}

/// The shape of a Node's conditions, for reporting the odd ones once per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// One Ready condition.
    Normal,
    NoStatus,
    NoConditionsKey,
    NullConditions,
    /// `status.conditions` is not a list.
    InvalidConditions,
    EmptyConditions,
    NoReadyCondition,
    /// More than one Ready condition; the newest wins.
    DuplicateReady,
}

/// Mapping of Nodes to Masakari host names, and the statuses that read as `Down`.
#[derive(Debug, Clone)]
pub struct Projection {
    pub host_name_source: HostNameSource,
    pub strip_domain: bool,
    pub down_statuses: Vec<ReadyStatus>,
}

/// Reason a Node could not be projected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// `metadata.name` is missing or not a string.
    NoName,
}

impl ConditionStatus {
    fn parse(value: Option<&str>) -> Self {
        match value {
            Some("True") => ConditionStatus::True,
            Some("False") => ConditionStatus::False,
            Some("Unknown") => ConditionStatus::Unknown,
            _ => ConditionStatus::Other,
        }
    }

    /// Rank for breaking ties between Ready entries: higher is worse. An unrecognised status is
    /// placed between `True` and `False`, so real evidence of a fault still wins a tie.
    fn badness(self) -> u8 {
        match self {
            ConditionStatus::True => 0,
            ConditionStatus::Other => 1,
            ConditionStatus::False => 2,
            ConditionStatus::Unknown => 3,
        }
    }

    fn as_ready_status(self) -> Option<ReadyStatus> {
        match self {
            ConditionStatus::True => Some(ReadyStatus::True),
            ConditionStatus::False => Some(ReadyStatus::False),
            ConditionStatus::Unknown => Some(ReadyStatus::Unknown),
            ConditionStatus::Other => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
            ConditionStatus::Other => "other",
        }
    }
}

impl Shape {
    pub fn is_odd(self) -> bool {
        self != Shape::Normal
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Normal => "normal",
            Shape::NoStatus => "no_status",
            Shape::NoConditionsKey => "no_conditions_key",
            Shape::NullConditions => "null_conditions",
            Shape::InvalidConditions => "invalid_conditions",
            Shape::EmptyConditions => "empty_conditions",
            Shape::NoReadyCondition => "no_ready_condition",
            Shape::DuplicateReady => "duplicate_ready",
        }
    }
}

impl Projection {
    pub fn from_config(cfg: &KubernetesSection) -> Self {
        Projection {
            host_name_source: cfg.host_name_source.clone(),
            strip_domain: cfg.host_name_strip_domain,
            down_statuses: cfg.down_ready_statuses.clone(),
        }
    }

    /// Projects one Node into its record. The Node is consumed so its strings move.
    pub fn project(&self, node: PartialNode) -> Result<NodeRecord, Unusable> {
        let mut metadata = node.metadata;
        let name = metadata.name.take().ok_or(Unusable::NoName)?;
        let mapped = match &self.host_name_source {
            HostNameSource::NodeName => None,
            HostNameSource::Label(key) => metadata.labels.as_mut().and_then(|m| m.remove(key)),
            HostNameSource::Annotation(key) => {
                metadata.annotations.as_mut().and_then(|m| m.remove(key))
            }
        };
        let host = self.host_name(
            mapped
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| name.clone()),
        );
        let (ready, shape) = choose_ready(node.status);
        Ok(NodeRecord {
            name,
            uid: metadata.uid.unwrap_or_default(),
            host,
            ready,
            shape,
        })
    }

    fn host_name(&self, mut host: String) -> String {
        if self.strip_domain
            && let Some(dot) = host.find('.')
            && dot > 0
        {
            host.truncate(dot);
        }
        host
    }

    /// Reads a record: `Up` for `True`, `Down` for a configured down status, else `NoData`.
    pub fn reading(&self, record: &NodeRecord) -> Reading {
        let Some(ready) = &record.ready else {
            return Reading::NoData;
        };
        match ready.status.as_ready_status() {
            Some(ReadyStatus::True) => Reading::Up,
            Some(status) if self.down_statuses.contains(&status) => Reading::Down,
            _ => Reading::NoData,
        }
    }

    /// Builds the sample of a record at one tick. A `stale` cache forces `NoData`.
    pub fn sample(&self, record: &NodeRecord, stale: bool) -> HostSample {
        let reading = if stale {
            Reading::NoData
        } else {
            self.reading(record)
        };
        HostSample {
            host: record.host.clone(),
            uid: record.uid.clone(),
            reading,
            ready_since: record.ready.as_ref().and_then(|r| r.last_transition_time),
            never_updated: record.never_updated(),
        }
    }
}

impl NodeRecord {
    /// Returns whether the Ready condition's reason is `NodeStatusNeverUpdated`.
    pub fn never_updated(&self) -> bool {
        self.ready
            .as_ref()
            .is_some_and(|r| r.reason.as_deref() == Some(NEVER_UPDATED_REASON))
    }
}

/// Picks the Ready condition: the newest `lastTransitionTime` wins (a missing or invalid time
/// is the oldest), ties go to the worse status.
fn choose_ready(status: StatusField) -> (Option<ReadyCondition>, Shape) {
    let conditions = match status {
        StatusField::Missing => return (None, Shape::NoStatus),
        StatusField::Present(ConditionsField::Missing) => return (None, Shape::NoConditionsKey),
        StatusField::Present(ConditionsField::Null) => return (None, Shape::NullConditions),
        StatusField::Present(ConditionsField::NotList) => return (None, Shape::InvalidConditions),
        StatusField::Present(ConditionsField::List(list)) if list.is_empty() => {
            return (None, Shape::EmptyConditions);
        }
        StatusField::Present(ConditionsField::List(list)) => list,
    };

    let mut count = 0;
    let mut best: Option<ReadyCondition> = None;
    for raw in conditions.into_iter().filter(is_ready) {
        count += 1;
        let candidate = ReadyCondition::from_raw(raw);
        if best.as_ref().is_none_or(|b| candidate.beats(b)) {
            best = Some(candidate);
        }
    }
    let shape = match count {
        0 => Shape::NoReadyCondition,
        1 => Shape::Normal,
        _ => Shape::DuplicateReady,
    };
    (best, shape)
}

fn is_ready(condition: &RawCondition) -> bool {
    condition.type_.as_deref() == Some("Ready")
}

impl ReadyCondition {
    fn from_raw(raw: RawCondition) -> Self {
        ReadyCondition {
            status: ConditionStatus::parse(raw.status.as_deref()),
            reason: raw.reason,
            last_transition_time: raw
                .last_transition_time
                .and_then(|t| t.parse::<Timestamp>().ok()),
        }
    }

    fn beats(&self, other: &ReadyCondition) -> bool {
        match self.last_transition_time.cmp(&other.last_transition_time) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self.status.badness() > other.status.badness(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn projection() -> Projection {
        Projection {
            host_name_source: HostNameSource::NodeName,
            strip_domain: false,
            down_statuses: vec![ReadyStatus::False, ReadyStatus::Unknown],
        }
    }

    fn node(json: serde_json::Value) -> PartialNode {
        serde_json::from_value(json).expect("valid node")
    }

    fn ready(status: &str, time: Option<&str>) -> serde_json::Value {
        let mut c = serde_json::json!({"type": "Ready", "status": status, "reason": "r"});
        if let Some(time) = time {
            c["lastTransitionTime"] = time.into();
        }
        c
    }

    fn with_conditions(conditions: Vec<serde_json::Value>) -> PartialNode {
        node(serde_json::json!({
            "metadata": {"name": "compute-0.example.org", "uid": "u1",
                         "labels": {"host": "h1.example.org"}, "annotations": {"masakari": "a1"}},
            "status": {"conditions": conditions}
        }))
    }

    #[test]
    fn reading_follows_ready_status() {
        let p = projection();
        let cases = [
            ("True", Reading::Up),
            ("False", Reading::Down),
            ("Unknown", Reading::Down),
            ("Maybe", Reading::NoData),
        ];
        for (status, expected) in cases {
            let record = p
                .project(with_conditions(vec![ready(status, None)]))
                .unwrap();
            assert_eq!(p.reading(&record), expected, "{status}");
        }
    }

    #[test]
    fn reading_respects_down_statuses() {
        let mut p = projection();
        p.down_statuses = vec![ReadyStatus::False];
        let record = p
            .project(with_conditions(vec![ready("Unknown", None)]))
            .unwrap();
        assert_eq!(p.reading(&record), Reading::NoData);
    }

    #[test]
    fn duplicate_ready_newest_wins() {
        let p = projection();
        let record = p
            .project(with_conditions(vec![
                ready("Unknown", Some("2026-01-01T00:00:00Z")),
                ready("True", Some("2026-01-02T00:00:00Z")),
            ]))
            .unwrap();
        assert_eq!(record.shape, Shape::DuplicateReady);
        assert_eq!(p.reading(&record), Reading::Up);
    }

    #[test]
    fn duplicate_ready_tie_goes_to_worse() {
        let p = projection();
        for order in [["True", "False"], ["False", "True"]] {
            let t = Some("2026-01-01T00:00:00Z");
            let record = p
                .project(with_conditions(vec![
                    ready(order[0], t),
                    ready(order[1], t),
                ]))
                .unwrap();
            assert_eq!(
                record.ready.as_ref().unwrap().status,
                ConditionStatus::False
            );
        }
        let record = p
            .project(with_conditions(vec![
                ready("Unknown", None),
                ready("False", None),
            ]))
            .unwrap();
        assert_eq!(
            record.ready.as_ref().unwrap().status,
            ConditionStatus::Unknown
        );
    }

    #[test]
    fn duplicate_ready_missing_time_is_oldest() {
        let p = projection();
        let record = p
            .project(with_conditions(vec![
                ready("Unknown", None),
                ready("True", Some("2020-01-01T00:00:00Z")),
            ]))
            .unwrap();
        assert_eq!(p.reading(&record), Reading::Up);
    }

    #[test]
    fn host_name_sources() {
        let cases = [
            (HostNameSource::NodeName, false, "compute-0.example.org"),
            (HostNameSource::NodeName, true, "compute-0"),
            (
                HostNameSource::Label("host".into()),
                false,
                "h1.example.org",
            ),
            (HostNameSource::Label("host".into()), true, "h1"),
            (
                HostNameSource::Label("absent".into()),
                false,
                "compute-0.example.org",
            ),
            (HostNameSource::Annotation("masakari".into()), false, "a1"),
            (
                HostNameSource::Annotation("absent".into()),
                true,
                "compute-0",
            ),
        ];
        for (source, strip, expected) in cases {
            let p = Projection {
                host_name_source: source.clone(),
                strip_domain: strip,
                ..projection()
            };
            let record = p
                .project(with_conditions(vec![ready("True", None)]))
                .unwrap();
            assert_eq!(record.host, expected, "{source:?} strip={strip}");
            assert_eq!(record.name, "compute-0.example.org");
        }
    }

    #[test]
    fn never_updated_reason() {
        let p = projection();
        let node = with_conditions(vec![serde_json::json!({
            "type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated"
        })]);
        let record = p.project(node).unwrap();
        assert!(record.never_updated());
        assert_eq!(p.reading(&record), Reading::Down);
    }

    #[test]
    fn nameless_node_is_unusable() {
        let p = projection();
        let node = node(serde_json::json!({"metadata": {"uid": "u"}}));
        assert_eq!(p.project(node), Err(Unusable::NoName));
    }

    #[test]
    fn stale_sample_is_no_data() {
        let p = projection();
        let record = p
            .project(with_conditions(vec![ready(
                "False",
                Some("2026-01-01T00:00:00Z"),
            )]))
            .unwrap();
        let sample = p.sample(&record, true);
        assert_eq!(sample.reading, Reading::NoData);
        assert_eq!(
            sample.ready_since,
            Some("2026-01-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(sample.uid, "u1");
    }
}
