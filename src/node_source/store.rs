//! The synchronous part of the node cache: records by node name, freshness, and the once-per-
//! change reports of odd Node shapes. The watch task feeds it; ticks sample it.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::partial::PartialNode;
use super::record::{NodeRecord, Projection, Shape, Unusable};
use super::{HostSample, Reading, Snapshot};

/// Node records keyed by node name, plus the watch's health.
#[derive(Debug)]
pub struct NodeStore {
    projection: Projection,
    freshness_limit: Duration,
    records: HashMap<String, NodeRecord>,
    synced: bool,
    /// When the watch last went from working to failing; `None` while it works.
    broken_since: Option<Instant>,
    /// Reports of odd shapes logged so far (for tests and diagnostics).
    shape_reports: u64,
    /// Number of records per host name, to report two Nodes mapped to one host.
    host_counts: HashMap<String, u32>,
}

impl NodeStore {
    pub fn new(projection: Projection, freshness_limit: Duration) -> Self {
        NodeStore {
            projection,
            freshness_limit,
            records: HashMap::new(),
            synced: false,
            broken_since: None,
            shape_reports: 0,
            host_counts: HashMap::new(),
        }
    }

    /// Applies an ADDED or MODIFIED Node.
    pub fn apply(&mut self, node: PartialNode) {
        let Some(record) = self.project(node) else {
            return;
        };
        let previous = self.records.remove(&record.name);
        self.report_shape(&record, previous.as_ref());
        match &previous {
            Some(previous) if previous.host == record.host => {}
            Some(previous) => {
                self.forget_host(&previous.host);
                self.count_host(&record);
            }
            None => self.count_host(&record),
        }
        self.records.insert(record.name.clone(), record);
    }

    /// Removes a deleted Node.
    pub fn delete(&mut self, node: &PartialNode) {
        let Some(name) = node.metadata.name.as_deref() else {
            return;
        };
        if let Some(record) = self.records.remove(name) {
            self.forget_host(&record.host);
            info!(node = %name, "Node deleted");
        }
    }

    /// Replaces every record with the result of a full list; Nodes not listed are forgotten.
    pub fn replace_all(&mut self, nodes: Vec<NodeRecord>) {
        let mut old = std::mem::take(&mut self.records);
        let mut records = HashMap::with_capacity(nodes.len());
        self.host_counts.clear();
        for record in nodes {
            let previous = old.remove(&record.name);
            self.report_shape(&record, previous.as_ref());
            self.count_host(&record);
            records.insert(record.name.clone(), record);
        }
        for name in old.keys() {
            info!(node = %name, "Node gone after relist");
        }
        self.records = records;
        self.synced = true;
    }

    /// Projects a Node, logging and dropping one that cannot be used.
    pub fn project(&self, node: PartialNode) -> Option<NodeRecord> {
        let uid = node.metadata.uid.clone();
        match self.projection.project(node) {
            Ok(record) => Some(record),
            Err(Unusable::NoName) => {
                warn!(uid = ?uid, "Node without a name skipped");
                None
            }
        }
    }

    /// Records that the watch or list just worked.
    pub fn mark_working(&mut self) {
        if self.broken_since.take().is_some() {
            info!("Node watch working again");
        }
    }

    /// Records that the watch or list just failed.
    pub fn mark_broken(&mut self, now: Instant) {
        self.broken_since.get_or_insert(now);
    }

    /// Returns whether the watch has been failing for longer than the freshness limit.
    pub fn is_stale(&self, now: Instant) -> bool {
        self.broken_since
            .is_some_and(|since| now.saturating_duration_since(since) > self.freshness_limit)
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn record(&self, name: &str) -> Option<&NodeRecord> {
        self.records.get(name)
    }

    pub fn shape_reports(&self) -> u64 {
        self.shape_reports
    }

    /// Samples every record at `now`, sorted by host name. Of several Nodes mapped to one host
    /// name, only the one with the smallest node name is sampled, so each host has exactly one
    /// reading.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let stale = self.is_stale(now);
        let mut hosts: Vec<(&str, HostSample)> = self
            .records
            .values()
            .map(|r| (r.name.as_str(), self.projection.sample(r, stale)))
            .collect();
        hosts.sort_unstable_by(|a, b| a.1.host.cmp(&b.1.host).then_with(|| a.0.cmp(b.0)));
        // Of several Nodes mapped to one host, the smallest name gives the uid, and the best
        // reading wins: one Ready Node means the host runs.
        hosts.dedup_by(|later, first| {
            if later.1.host != first.1.host {
                return false;
            }
            let rank = |r: Reading| match r {
                Reading::Up => 0,
                Reading::NoData => 1,
                Reading::Down => 2,
            };
            if rank(later.1.reading) < rank(first.1.reading) {
                first.1.reading = later.1.reading;
                first.1.ready_since = later.1.ready_since;
                first.1.never_updated = later.1.never_updated;
            }
            true
        });
        Snapshot {
            synced: self.synced,
            hosts: hosts.into_iter().map(|(_, sample)| sample).collect(),
        }
    }

    /// Counts a record's host name, warning when a second Node takes it.
    fn count_host(&mut self, record: &NodeRecord) {
        let count = self.host_counts.entry(record.host.clone()).or_insert(0);
        *count += 1;
        if *count == 2 {
            warn!(host = %record.host, node = %record.name, "Two Nodes map to the same host name, only one is monitored");
        }
    }

    fn forget_host(&mut self, host: &str) {
        if let Some(count) = self.host_counts.get_mut(host) {
            *count -= 1;
            if *count == 0 {
                self.host_counts.remove(host);
            }
        }
    }

    /// Logs a record's shape when it differs from the previous record of the same Node. A Node
    /// re-created with a new uid starts over.
    fn report_shape(&mut self, record: &NodeRecord, previous: Option<&NodeRecord>) {
        let previous_shape = previous
            .filter(|p| p.uid == record.uid)
            .map_or(Shape::Normal, |p| p.shape);
        if let Some(previous) = previous
            && previous.uid != record.uid
        {
            info!(node = %record.name, uid = %record.uid, "Node re-created");
        }
        if record.shape == previous_shape {
            return;
        }
        let ready_status = record.ready.as_ref().map(|r| r.status.as_str());
        match record.shape {
            Shape::Normal => {
                debug!(node = %record.name, previous = %previous_shape.as_str(), "Node shape normal again");
                return;
            }
            Shape::NoStatus => {
                info!(node = %record.name, shape = %record.shape.as_str(), "Node has no status yet, reading no data");
            }
            Shape::DuplicateReady => {
                warn!(node = %record.name, shape = %record.shape.as_str(), chosen = ?ready_status, "Node has several Ready conditions, newest used");
            }
            _ => {
                warn!(node = %record.name, shape = %record.shape.as_str(), "Node has no Ready condition, reading no data");
            }
        }
        self.shape_reports += 1;
    }
}
