//! A node source whose readings the caller sets directly, for tests of the monitor loop.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jiff::Timestamp;

use crate::node_source::{HostSample, NodeSource, Reading, Snapshot};

/// A [`NodeSource`] whose hosts and readings are set by the caller between ticks.
#[derive(Debug, Default)]
pub struct ScriptedSource {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    synced: bool,
    hosts: BTreeMap<String, HostSample>,
}

impl ScriptedSource {
    /// Creates a synced source with no hosts.
    pub fn new() -> Self {
        let source = ScriptedSource::default();
        source.set_synced(true);
        source
    }

    pub fn set_synced(&self, synced: bool) {
        self.lock().synced = synced;
    }

    /// Adds or replaces a host; its uid is `uid-<host>`.
    pub fn set(&self, host: &str, reading: Reading, ready_since: Option<Timestamp>) {
        self.set_sample(HostSample {
            host: host.to_owned(),
            uid: format!("uid-{host}"),
            reading,
            ready_since,
            never_updated: false,
        });
    }

    /// Changes the reading of an existing host, keeping its other fields, or adds the host.
    pub fn set_reading(&self, host: &str, reading: Reading) {
        let mut state = self.lock();
        match state.hosts.get_mut(host) {
            Some(sample) => sample.reading = reading,
            None => {
                drop(state);
                self.set(host, reading, None);
            }
        }
    }

    /// Sets the same reading on every host.
    pub fn set_all(&self, reading: Reading) {
        for sample in self.lock().hosts.values_mut() {
            sample.reading = reading;
        }
    }

    pub fn set_sample(&self, sample: HostSample) {
        self.lock().hosts.insert(sample.host.clone(), sample);
    }

    pub fn remove(&self, host: &str) {
        self.lock().hosts.remove(host);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a test panicked while holding it; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl NodeSource for ScriptedSource {
    fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        Snapshot {
            synced: state.synced,
            hosts: state.hosts.values().cloned().collect(),
        }
    }
}
