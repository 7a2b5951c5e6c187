//! Node list, get and watch handlers.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{EventType, NodeEvent, Shared, StoredNode, WatchControl, status_body, status_response};
use crate::label_selector::LabelSelector;

type Params = HashMap<String, String>;

/// Starting point of one watch stream.
struct WatchStart {
    backlog: Vec<Arc<NodeEvent>>,
    /// Synthetic ADDED events for `resourceVersion=0` or unset.
    initial: Vec<Arc<StoredNode>>,
    resource_version: u64,
    events: broadcast::Receiver<Arc<NodeEvent>>,
}

pub(super) async fn list_or_watch(
    AxumState(shared): AxumState<Arc<Shared>>,
    Query(params): Query<Params>,
) -> Response {
    let selector = match LabelSelector::parse(params.get("labelSelector").map_or("", |s| s)) {
        Ok(selector) => selector,
        Err(error) => {
            return status_response(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("unable to parse requirement: {error}"),
                None,
            );
        }
    };
    let watch = params.get("watch").is_some_and(|w| w == "true" || w == "1");
    if watch {
        shared.counters.watch.fetch_add(1, Ordering::Relaxed);
        watch_nodes(shared, &params, selector)
    } else {
        shared.counters.list.fetch_add(1, Ordering::Relaxed);
        list_nodes(&shared, &params, &selector)
    }
}

pub(super) async fn get_node(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    shared.counters.get.fetch_add(1, Ordering::Relaxed);
    let node = shared.lock().nodes.get(&name).cloned();
    match node {
        Some(node) => raw_json_response(&shared, node.json.to_string()),
        None => status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("nodes \"{name}\" not found"),
            Some(json!({"name": name, "kind": "nodes"})),
        ),
    }
}

fn raw_json_response(shared: &Shared, body: String) -> Response {
    shared.count_bytes(body.len());
    let headers = [(header::CONTENT_TYPE, "application/json")];
    (StatusCode::OK, headers, body).into_response()
}

/// Serves one page. Pages after the first read the state at the first page's
/// resourceVersion, rebuilt from the retained history, as etcd serves a consistent snapshot.
fn list_nodes(shared: &Shared, params: &Params, selector: &LabelSelector) -> Response {
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let state = shared.lock();
    let (snapshot_rv, start) = match params.get("continue").filter(|c| !c.is_empty()) {
        None => (state.resource_version, None),
        Some(token) => match decode_continue(token) {
            Some((rv, _)) if rv < state.compacted_rv => {
                return status_response(
                    StatusCode::GONE,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".to_owned(),
                    None,
                );
            }
            Some((rv, name)) => (rv, Some(name)),
            None => {
                return status_response(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "continue key is not valid".to_owned(),
                    None,
                );
            }
        },
    };

    // The state at `snapshot_rv`: each Node changed since then as it was before its first
    // later change.
    let mut overlay: BTreeMap<&str, Option<&Arc<StoredNode>>> = BTreeMap::new();
    for event in state.history.iter().rev() {
        if event.resource_version <= snapshot_rv {
            break;
        }
        overlay.insert(&event.name, event.previous.as_ref());
    }
    let lower = match &start {
        Some(name) => Bound::Excluded(name.as_str()),
        None => Bound::Unbounded,
    };
    let current = state
        .nodes
        .range::<str, _>((lower, Bound::Unbounded))
        .map(|(k, v)| (k.as_str(), Some(v)));
    let changed = overlay
        .range::<str, _>((lower, Bound::Unbounded))
        .map(|(k, v)| (*k, *v));
    let mut matching = merge_sorted(current, changed)
        .filter_map(|(name, node)| node.map(|n| (name, n)))
        .filter(|(_, node)| selector.matches_labels(&node.labels));

    let mut items: Vec<&StoredNode> = Vec::new();
    let mut last_name = None;
    let mut more = false;
    for (name, node) in matching.by_ref() {
        if limit.is_some_and(|l| items.len() >= l) {
            more = true;
            break;
        }
        items.push(node);
        last_name = Some(name);
    }
    let mut metadata = json!({"resourceVersion": snapshot_rv.to_string()});
    if more && let Some(name) = last_name {
        metadata["continue"] = Value::String(encode_continue(snapshot_rv, name));
    }
    let mut body =
        format!(r#"{{"kind":"NodeList","apiVersion":"v1","metadata":{metadata},"items":["#);
    for (i, node) in items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&node.json);
    }
    body.push_str("]}");
    raw_json_response(shared, body)
}

/// Merges two iterators sorted by name; on equal names the second wins.
fn merge_sorted<'a, V: Copy + 'a>(
    a: impl Iterator<Item = (&'a str, V)>,
    b: impl Iterator<Item = (&'a str, V)>,
) -> impl Iterator<Item = (&'a str, V)> {
    let mut a = a.peekable();
    let mut b = b.peekable();
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if x.0 < y.0 => a.next(),
        (Some(x), Some(y)) if x.0 > y.0 => b.next(),
        (Some(_), Some(_)) => {
            a.next();
            b.next()
        }
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
}

fn encode_continue(rv: u64, name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{rv}-{hex}")
}

fn decode_continue(token: &str) -> Option<(u64, String)> {
    let (rv, hex) = token.split_once('-')?;
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()?;
    Some((rv.parse().ok()?, String::from_utf8(bytes).ok()?))
}

fn watch_nodes(shared: Arc<Shared>, params: &Params, selector: LabelSelector) -> Response {
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let requested = params.get("resourceVersion").map_or("", |s| s).to_owned();
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true" || b == "1");
    let control = shared.control.subscribe();
    let failing = *shared
        .failing_watches
        .lock()
        .unwrap_or_else(|p| p.into_inner());

    let start = {
        let state = shared.lock();
        let events = shared.events.subscribe();
        if requested.is_empty() || requested == "0" {
            Ok(WatchStart {
                backlog: Vec::new(),
                initial: state.nodes.values().cloned().collect(),
                resource_version: state.resource_version,
                events,
            })
        } else {
            match requested.parse::<u64>() {
                Err(_) => {
                    return status_response(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        format!("invalid resource version: {requested}"),
                        None,
                    );
                }
                Ok(rv) if rv < state.compacted_rv => Err(state.compacted_rv),
                Ok(rv) => Ok(WatchStart {
                    backlog: state
                        .history
                        .iter()
                        .filter(|e| e.resource_version > rv)
                        .cloned()
                        .collect(),
                    initial: Vec::new(),
                    resource_version: state.resource_version.max(rv),
                    events,
                }),
            }
        }
    };

    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let stream = WatchStream {
        shared: shared.clone(),
        selector,
        tx,
        bookmarks,
    };
    match start {
        _ if failing.is_some() => {
            let code = failing.unwrap_or(500);
            tokio::spawn(async move {
                let status = status_body(code, "InternalError", "watch failed");
                stream.send("ERROR", &status).await;
            });
        }
        Ok(start) => {
            tokio::spawn(stream.run(start, control, timeout));
        }
        Err(oldest) => {
            let message = format!("too old resource version: {requested} ({oldest})");
            tokio::spawn(stream.expired(message));
        }
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The task that writes one watch response.
struct WatchStream {
    shared: Arc<Shared>,
    selector: LabelSelector,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    bookmarks: bool,
}

impl WatchStream {
    async fn expired(self, message: String) {
        self.send_expired(&message).await;
    }

    async fn send_expired(&self, message: &str) {
        let status = status_body(410, "Expired", message);
        self.send("ERROR", &status).await;
    }

    async fn run(
        self,
        start: WatchStart,
        mut control: broadcast::Receiver<WatchControl>,
        timeout: Option<Duration>,
    ) {
        let counters = self.shared.clone();
        counters
            .counters
            .open_watches
            .fetch_add(1, Ordering::Relaxed);
        let mut rv = start.resource_version;
        let mut events = start.events;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut bookmark_tick = tokio::time::interval(self.shared.settings.bookmark_interval);
        bookmark_tick.tick().await;

        let mut open = self.send_initial(&start.initial, &start.backlog).await;
        while open {
            open = tokio::select! {
                event = events.recv() => match event {
                    Ok(event) if event.resource_version > rv => {
                        rv = event.resource_version;
                        self.send_event(&event).await
                    }
                    Ok(_) => true,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.send_expired("watch fell behind").await;
                        false
                    }
                    Err(broadcast::error::RecvError::Closed) => false,
                },
                command = control.recv() => match command {
                    Ok(WatchControl::Error(code)) => {
                        let reason = if code == 410 { "Expired" } else { "InternalError" };
                        let status = status_body(code, reason, "injected watch error");
                        self.send("ERROR", &status).await;
                        false
                    }
                    Ok(WatchControl::Close) | Err(_) => {
                        self.bookmark(rv).await;
                        false
                    }
                },
                () = sleep_until(deadline) => {
                    self.bookmark(rv).await;
                    false
                }
                _ = bookmark_tick.tick() => self.bookmark(rv).await,
                () = self.tx.closed() => false,
            };
        }
        counters
            .counters
            .open_watches
            .fetch_sub(1, Ordering::Relaxed);
    }

    async fn send_initial(&self, initial: &[Arc<StoredNode>], backlog: &[Arc<NodeEvent>]) -> bool {
        for node in initial {
            let matches = self.selector.matches_labels(&node.labels);
            if matches && !self.send_raw("ADDED", &node.json).await {
                return false;
            }
        }
        for event in backlog {
            if !self.send_event(event).await {
                return false;
            }
        }
        true
    }

    /// Sends a change filtered by this watch's selector: a Node that starts matching is ADDED,
    /// one that stops matching is DELETED.
    async fn send_event(&self, event: &NodeEvent) -> bool {
        let now = self.selector.matches_labels(&event.object.labels);
        let before = event
            .previous
            .as_ref()
            .is_some_and(|p| self.selector.matches_labels(&p.labels));
        let kind = match (event.kind, before, now) {
            (EventType::Deleted, true, _) => "DELETED",
            (EventType::Deleted, false, _) => return true,
            (_, false, true) => "ADDED",
            (_, true, true) => "MODIFIED",
            (_, true, false) => "DELETED",
            (_, false, false) => return true,
        };
        self.send_raw(kind, &event.object.json).await
    }

    async fn bookmark(&self, rv: u64) -> bool {
        if !self.bookmarks {
            return true;
        }
        let object = json!({"kind": "Node", "apiVersion": "v1",
                            "metadata": {"resourceVersion": rv.to_string()}});
        self.send("BOOKMARK", &object).await
    }

    async fn send(&self, kind: &str, object: &Value) -> bool {
        self.send_raw(kind, &object.to_string()).await
    }

    /// Sends one event line whose object is already serialized.
    async fn send_raw(&self, kind: &str, object: &str) -> bool {
        let line = format!("{{\"type\":\"{kind}\",\"object\":{object}}}\n");
        self.shared.count_bytes(line.len());
        self.tx.send(Ok(Bytes::from(line))).await.is_ok()
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_token_round_trip() {
        let token = encode_continue(42, "compute-7.example.org");
        assert_eq!(
            decode_continue(&token),
            Some((42, "compute-7.example.org".to_owned()))
        );
        assert_eq!(decode_continue("x"), None);
        assert_eq!(decode_continue("1-zz"), None);
    }

    #[test]
    fn merge_sorted_second_wins() {
        let a = [("a", 1), ("c", 1), ("d", 1)];
        let b = [("b", 2), ("c", 2), ("e", 2)];
        let merged: Vec<_> = merge_sorted(a.into_iter(), b.into_iter()).collect();
        assert_eq!(merged, [("a", 1), ("b", 2), ("c", 2), ("d", 1), ("e", 2)]);
    }
}
