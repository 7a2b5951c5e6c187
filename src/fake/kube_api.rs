//! A fake Kubernetes API server for Nodes and Leases, on 127.0.0.1, speaking the real wire
//! protocol: paged lists with `continue`, label selectors, watches from a resourceVersion with
//! bookmarks and `410 Gone` after compaction, and Lease updates with resourceVersion
//! preconditions. Tests drive it through [`FakeKubeApi`]'s methods.

mod fixture;
mod leases;
mod listener;
mod nodes;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use fixture::NodeFixture;

/// Settings of the fake server.
#[derive(Debug, Clone)]
pub struct FakeKubeSettings {
    /// Node events kept for watches; a watch or `continue` from before the oldest is `410 Gone`.
    /// Default 1,000.
    pub history_limit: usize,
    /// Interval between BOOKMARK events on each watch. Default 1 s.
    pub bookmark_interval: Duration,
}

/// Request counters, for asserting the API load a client causes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiStats {
    /// Node list requests (each page counts).
    pub list_requests: u64,
    pub watch_requests: u64,
    /// Single Node GET requests.
    pub get_requests: u64,
    /// Requests on Leases, any method.
    pub lease_requests: u64,
    /// Response body bytes of Node lists, gets and watches.
    pub bytes_served: u64,
    /// Watch streams open now.
    pub open_watches: u64,
}

/// Misuse of the test control API.
#[derive(Debug, thiserror::Error)]
pub enum FakeKubeError {
    #[error("the object has no metadata.name")]
    NoName,
    #[error("node {0} not found")]
    NodeNotFound(String),
    #[error("failed to bind the fake API server")]
    BindFailed(#[source] std::io::Error),
}

/// A running fake API server. Dropping it stops the server.
pub struct FakeKubeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

/// State shared by the handlers and the control handle.
struct Shared {
    settings: FakeKubeSettings,
    state: Mutex<State>,
    /// Node changes, sent while the state lock is held so watches see them in order.
    events: broadcast::Sender<Arc<NodeEvent>>,
    /// Commands to every open watch.
    control: broadcast::Sender<WatchControl>,
    available: watch::Sender<bool>,
    kill_connections: Arc<Mutex<CancellationToken>>,
    /// Code of the ERROR event every new watch gets at once, when set.
    failing_watches: Mutex<Option<u16>>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    list: AtomicU64,
    watch: AtomicU64,
    get: AtomicU64,
    lease: AtomicU64,
    bytes: AtomicU64,
    open_watches: AtomicU64,
}

struct State {
    resource_version: u64,
    nodes: BTreeMap<String, Arc<StoredNode>>,
    /// Node events newer than `compacted_rv`, oldest first.
    history: VecDeque<Arc<NodeEvent>>,
    /// Events up to this resourceVersion are forgotten.
    compacted_rv: u64,
    leases: BTreeMap<(String, String), Value>,
    next_uid: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change of one Node.
struct NodeEvent {
    resource_version: u64,
    kind: EventType,
    name: String,
    /// The Node after the change (for DELETED, its last state with the deletion's RV).
    object: Arc<StoredNode>,
    /// The Node before the change.
    previous: Option<Arc<StoredNode>>,
}

/// A Node as served: its JSON text, kept serialized to use about as much memory as the text,
/// and its labels for selectors.
struct StoredNode {
    json: Box<str>,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy)]
enum WatchControl {
    Close,
    Error(u16),
}

impl Default for FakeKubeSettings {
    fn default() -> Self {
        FakeKubeSettings {
            history_limit: 1_000,
            bookmark_interval: Duration::from_secs(1),
        }
    }
}

impl FakeKubeApi {
    /// Starts the server on 127.0.0.1 with an ephemeral port and default settings.
    pub async fn start() -> FakeKubeApi {
        Self::start_with(FakeKubeSettings::default())
            .await
            .unwrap_or_else(|error| panic!("fake Kubernetes API failed to start: {error}"))
    }

    pub async fn start_with(settings: FakeKubeSettings) -> Result<FakeKubeApi, FakeKubeError> {
        let tcp = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(FakeKubeError::BindFailed)?;
        let addr = tcp.local_addr().map_err(FakeKubeError::BindFailed)?;
        let (available, available_rx) = watch::channel(true);
        let kill_connections = Arc::new(Mutex::new(CancellationToken::new()));
        let shared = Arc::new(Shared {
            settings,
            state: Mutex::new(State {
                resource_version: 1,
                nodes: BTreeMap::new(),
                history: VecDeque::new(),
                compacted_rv: 1,
                leases: BTreeMap::new(),
                next_uid: 1,
            }),
            events: broadcast::channel(16_384).0,
            control: broadcast::channel(64).0,
            available,
            kill_connections: kill_connections.clone(),
            failing_watches: Mutex::new(None),
            counters: Counters::default(),
        });
        let listener = listener::SwitchListener {
            addr,
            listener: Some(tcp),
            available: available_rx,
            kill: kill_connections,
        };
        let router = Router::new()
            .route("/api/v1/nodes", get(nodes::list_or_watch))
            .route("/api/v1/nodes/{name}", get(nodes::get_node))
            .merge(leases::routes())
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::warn!(error = %error, "Fake Kubernetes API stopped");
            }
        });
        Ok(FakeKubeApi {
            addr,
            shared,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Builds a kube client for this server (plain HTTP, no authentication).
    pub fn client(&self) -> kube::Client {
        let url = format!("http://{}", self.addr)
            .parse()
            .unwrap_or_else(|error| panic!("loopback URL is valid: {error}"));
        let config = kube::Config::new(url);
        kube::Client::try_from(config)
            .unwrap_or_else(|error| panic!("kube client for the fake API: {error}"))
    }

    /// Adds or replaces a Node; the server sets `metadata.resourceVersion`. Returns it.
    pub fn apply_node(&self, node: Value) -> Result<u64, FakeKubeError> {
        let name = node
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or(FakeKubeError::NoName)?
            .to_owned();
        let mut state = self.shared.lock();
        let kind = if state.nodes.contains_key(&name) {
            EventType::Modified
        } else {
            EventType::Added
        };
        Ok(self.shared.record(&mut state, kind, name, node))
    }

    /// Deletes a Node. Returns the deletion's resourceVersion.
    pub fn delete_node(&self, name: &str) -> Result<u64, FakeKubeError> {
        let mut state = self.shared.lock();
        let node = state
            .nodes
            .get(name)
            .ok_or_else(|| FakeKubeError::NodeNotFound(name.to_owned()))?;
        let node = node.to_value();
        Ok(self
            .shared
            .record(&mut state, EventType::Deleted, name.to_owned(), node))
    }

    /// Sets the Ready condition's status and reason, with a new `lastTransitionTime` and
    /// `lastHeartbeatTime` of now. Adds a Ready condition if there is none.
    pub fn set_ready(&self, name: &str, status: &str, reason: &str) -> Result<u64, FakeKubeError> {
        let mut node = self
            .node(name)
            .ok_or_else(|| FakeKubeError::NodeNotFound(name.to_owned()))?;
        let now = jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_default();
        let ready = json!({
            "type": "Ready", "status": status, "reason": reason,
            "message": format!("Ready set to {status}"),
            "lastHeartbeatTime": now.to_string(), "lastTransitionTime": now.to_string(),
        });
        let status_object = &mut node["status"];
        if !status_object.is_object() {
            *status_object = json!({});
        }
        let conditions = &mut status_object["conditions"];
        if !conditions.is_array() {
            *conditions = json!([]);
        }
        if let Some(list) = conditions.as_array_mut() {
            list.retain(|c| c["type"] != "Ready");
            list.push(ready);
        }
        self.apply_node(node)
    }

    /// Returns the stored Node, as served.
    pub fn node(&self, name: &str) -> Option<Value> {
        self.shared.lock().nodes.get(name).map(|n| n.to_value())
    }

    /// Returns the current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().resource_version
    }

    /// Sends an ERROR event with this code to every open watch, then closes them. Returns how
    /// many watches it reached.
    pub fn inject_watch_error(&self, code: u16) -> usize {
        self.shared
            .control
            .send(WatchControl::Error(code))
            .unwrap_or(0)
    }

    /// Makes every new watch request accepted and then failed at once with an ERROR event of
    /// this code, until called with `None`. Open watches are not affected.
    pub fn fail_new_watches(&self, code: Option<u16>) {
        *self
            .shared
            .failing_watches
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = code;
    }

    /// Ends every open watch stream normally (with a final BOOKMARK), as the server does at
    /// `timeoutSeconds`. Returns how many it reached.
    pub fn close_watches(&self) -> usize {
        self.shared.control.send(WatchControl::Close).unwrap_or(0)
    }

    /// Switches the server off or on. Off closes the listening socket, so new connections are
    /// refused, and resets every open connection, watches included. On binds the same port
    /// again.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.shared.available.send_replace(!unavailable);
        if unavailable {
            let mut token = self
                .shared
                .kill_connections
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            token.cancel();
            *token = CancellationToken::new();
        }
    }

    /// Forgets all Node history: a watch or `continue` from any earlier resourceVersion gets
    /// `410 Gone`.
    pub fn compact(&self) {
        let mut state = self.shared.lock();
        state.history.clear();
        state.compacted_rv = state.resource_version;
    }

    pub fn stats(&self) -> ApiStats {
        let c = &self.shared.counters;
        ApiStats {
            list_requests: c.list.load(Ordering::Relaxed),
            watch_requests: c.watch.load(Ordering::Relaxed),
            get_requests: c.get.load(Ordering::Relaxed),
            lease_requests: c.lease.load(Ordering::Relaxed),
            bytes_served: c.bytes.load(Ordering::Relaxed),
            open_watches: c.open_watches.load(Ordering::Relaxed),
        }
    }

    /// Returns a stored Lease, as served.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .lock()
            .leases
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }
}

impl Drop for FakeKubeApi {
    fn drop(&mut self) {
        self.server.abort();
        self.shared.control.send(WatchControl::Close).ok();
        if let Ok(token) = self.shared.kill_connections.lock() {
            token.cancel();
        }
    }
}

impl StoredNode {
    fn new(node: &Value) -> Self {
        let labels = node
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        StoredNode {
            json: node.to_string().into_boxed_str(),
            labels,
        }
    }

    fn to_value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a Node change under a new resourceVersion and publishes it to watches.
    fn record(&self, state: &mut State, kind: EventType, name: String, mut node: Value) -> u64 {
        state.resource_version += 1;
        let rv = state.resource_version;
        if let Some(metadata) = node.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let object = Arc::new(StoredNode::new(&node));
        let previous = match kind {
            EventType::Deleted => state.nodes.remove(&name),
            EventType::Added | EventType::Modified => {
                state.nodes.insert(name.clone(), object.clone())
            }
        };
        let event = Arc::new(NodeEvent {
            resource_version: rv,
            kind,
            name,
            object,
            previous,
        });
        state.history.push_back(event.clone());
        while state.history.len() > self.settings.history_limit {
            if let Some(dropped) = state.history.pop_front() {
                state.compacted_rv = dropped.resource_version;
            }
        }
        self.events.send(event).ok();
        rv
    }

    fn next_resource_version(&self, state: &mut State) -> u64 {
        state.resource_version += 1;
        state.resource_version
    }

    fn count_bytes(&self, bytes: usize) {
        self.counters
            .bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Builds a `Status` error response, as the API server sends it.
pub(crate) fn status_response(
    code: StatusCode,
    reason: &str,
    message: String,
    details: Option<Value>,
) -> Response {
    let mut body = status_body(code.as_u16(), reason, &message);
    if let Some(details) = details {
        body["details"] = details;
    }
    (code, axum::Json(body)).into_response()
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}
