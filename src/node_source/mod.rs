//! Kubernetes node source: a watch-backed cache of compact node records, sampled once per tick.

use std::path::PathBuf;

use jiff::Timestamp;

mod cache;
mod client;
pub mod partial;
pub mod record;
pub mod store;

pub use cache::{NodeCache, WatchOptions};
pub use client::client;

/// One host's reading at one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reading {
    /// The Ready condition is `True`.
    Up,
    /// The Ready condition has one of the configured down statuses.
    Down,
    /// No evidence either way: stale cache, no status, no Ready condition. Never counts as `Down`.
    NoData,
}

impl Reading {
    pub fn as_str(self) -> &'static str {
        match self {
            Reading::Up => "up",
            Reading::Down => "down",
            Reading::NoData => "no_data",
        }
    }
}

/// One monitored host as seen at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSample {
    /// The Masakari host name (mapped from the Node).
    pub host: String,
    /// The Node's uid; a Node re-created under the same name has a new one.
    pub uid: String,
    pub reading: Reading,
    /// `lastTransitionTime` of the Ready condition that gave the reading, when known.
    pub ready_since: Option<Timestamp>,
    /// The Ready condition's reason is `NodeStatusNeverUpdated`: the kubelet never posted status.
    pub never_updated: bool,
}

/// Everything the monitor loop learns from the node source at one tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The initial list has completed at least once.
    pub synced: bool,
    /// One entry per monitored host, sorted by host name.
    pub hosts: Vec<HostSample>,
}

/// Something the monitor loop can sample once per tick: the node cache, or a scripted source in
/// tests and the simulator.
pub trait NodeSource: Send + Sync + 'static {
    /// Returns the readings of every monitored host now. Never blocks on the network.
    fn snapshot(&self) -> Snapshot;
}

/// Errors building the Kubernetes client. All are configuration or environment problems that a
/// retry does not fix.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid kubeconfig {path}")]
    KubeconfigInvalid {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no Kubernetes configuration found (KUBECONFIG, ~/.kube/config, in-cluster service account)"
    )]
    ConfigNotFound(#[source] kube::config::InferConfigError),
    #[error("failed to build the Kubernetes client")]
    ClientBuildFailed(#[source] kube::Error),
}
