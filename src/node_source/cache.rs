//! The watch task that keeps the node store current, and the [`NodeCache`] handle ticks sample.
//!
//! The task lists the monitored Nodes once (paged), then watches from the list's
//! resourceVersion with bookmarks. A watch that the server ends is resumed from the last
//! resourceVersion without a list; only `410 Gone` (history compacted) leads to a new list.
//! Errors back off exponentially with jitter.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::partial::PartialNode;
use super::record::Projection;
use super::store::NodeStore;
use super::{NodeSource, Snapshot};
use crate::config::KubernetesSection;
use crate::metrics::Metrics;

/// Tuning of the list and watch requests.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Server-side `timeoutSeconds` of each watch request. The server then ends the stream and
    /// the task resumes it from the last resourceVersion. A stream silent for this long plus
    /// five seconds is treated as dead. Default 290 s, the default of kube-rs 5.
    pub watch_timeout: Duration,
    /// `limit` of each list page. Default 100: a page is held in memory whole while it is
    /// decoded, and 100 Nodes of 170 KB make 17 MB.
    pub page_size: u32,
    /// Delay after the first error, doubled after each further error in a row. Default 800 ms.
    pub backoff_initial: Duration,
    /// Maximum delay between retries. Default 30 s.
    pub backoff_max: Duration,
    /// Token that stops the task when cancelled. Aborting the task handle also stops it.
    pub shutdown: CancellationToken,
}

/// A cache of compact node records fed by a Kubernetes watch. Cloning shares the cache.
#[derive(Clone)]
pub struct NodeCache {
    store: Arc<Mutex<NodeStore>>,
    synced: watch::Receiver<bool>,
}

/// State of the watch task between requests.
struct WatchTask {
    api: Api<PartialNode>,
    selector: Option<String>,
    options: WatchOptions,
    store: Arc<Mutex<NodeStore>>,
    synced: watch::Sender<bool>,
    metrics: Metrics,
    backoff: Backoff,
}

/// Outcome of one watch request.
enum WatchEnd {
    /// The server ended the stream: resume from the last resourceVersion.
    Resume(String),
    /// `410 Gone`: list again.
    Relist,
    /// An error: back off, then resume from the resourceVersion.
    Failed(String),
}

struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            watch_timeout: Duration::from_secs(290),
            page_size: 100,
            backoff_initial: Duration::from_millis(800),
            backoff_max: Duration::from_secs(30),
            shutdown: CancellationToken::new(),
        }
    }
}

impl NodeCache {
    /// Starts the watch task with default options. The task runs until its handle is aborted.
    pub fn spawn(
        client: Client,
        cfg: &KubernetesSection,
        metrics: Metrics,
    ) -> (NodeCache, tokio::task::JoinHandle<()>) {
        Self::spawn_with(client, cfg, metrics, WatchOptions::default())
    }

    /// Starts the watch task. The task runs until `options.shutdown` is cancelled or its handle
    /// is aborted.
    pub fn spawn_with(
        client: Client,
        cfg: &KubernetesSection,
        metrics: Metrics,
        options: WatchOptions,
    ) -> (NodeCache, tokio::task::JoinHandle<()>) {
        let store = Arc::new(Mutex::new(NodeStore::new(
            Projection::from_config(cfg),
            cfg.cache_freshness_limit,
        )));
        let (synced_tx, synced_rx) = watch::channel(false);
        let selector = Some(cfg.monitoring_node_labels.trim().to_owned()).filter(|s| !s.is_empty());
        let task = WatchTask {
            api: Api::all(client),
            selector,
            backoff: Backoff::new(options.backoff_initial, options.backoff_max),
            options,
            store: store.clone(),
            synced: synced_tx,
            metrics,
        };
        let span = info_span!("node_watch");
        let handle = tokio::spawn(task.run().instrument(span));
        let cache = NodeCache {
            store,
            synced: synced_rx,
        };
        (cache, handle)
    }

    /// Waits until the first full list has been applied. Returns at once if it already has,
    /// and never returns if the task stopped before that.
    pub async fn wait_synced(&self) {
        let mut synced = self.synced.clone();
        if synced.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Locks the store, for inspection in tests and the admin server.
    pub fn store(&self) -> MutexGuard<'_, NodeStore> {
        lock(&self.store)
    }
}

impl NodeSource for NodeCache {
    fn snapshot(&self) -> Snapshot {
        lock(&self.store).snapshot(Instant::now())
    }
}

/// Locks the store. A panic while the lock was held can at worst lose one record until that
/// Node's next event, so a poisoned lock is used as is.
fn lock(store: &Mutex<NodeStore>) -> MutexGuard<'_, NodeStore> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WatchTask {
    async fn run(mut self) {
        let shutdown = self.options.shutdown.clone();
        tokio::select! {
            () = self.list_and_watch() => {}
            () = shutdown.cancelled() => info!("Node watch stopped"),
        }
    }

    async fn list_and_watch(&mut self) {
        loop {
            let Some(mut resource_version) = self.list().await else {
                self.failed().await;
                continue;
            };
            loop {
                match self.watch(&resource_version).await {
                    WatchEnd::Resume(rv) => resource_version = rv,
                    WatchEnd::Relist => break,
                    WatchEnd::Failed(rv) => {
                        resource_version = rv;
                        self.failed().await;
                    }
                }
            }
        }
    }

    /// Lists every monitored Node page by page and replaces the store's content. Returns the
    /// list's resourceVersion, or `None` after an error.
    async fn list(&mut self) -> Option<String> {
        let mut params = ListParams {
            label_selector: self.selector.clone(),
            limit: Some(self.options.page_size),
            ..ListParams::default()
        };
        let mut records = Vec::new();
        loop {
            let page = match self.api.list(&params).await {
                Ok(page) => page,
                Err(error) => {
                    warn!(error = %error, "Node list failed");
                    return None;
                }
            };
            {
                let store = lock(&self.store);
                records.extend(
                    page.items
                        .into_iter()
                        .filter_map(|node| store.project(node)),
                );
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params.continue_token = Some(token),
                None => {
                    let Some(rv) = page.metadata.resource_version.filter(|rv| !rv.is_empty())
                    else {
                        warn!("Node list has no resourceVersion");
                        return None;
                    };
                    let count = records.len();
                    {
                        let mut store = lock(&self.store);
                        store.replace_all(records);
                        store.mark_working();
                    }
                    self.synced.send_replace(true);
                    self.metrics.watch_relists.inc();
                    self.backoff.reset();
                    info!(nodes = count, resource_version = %rv, "Node list applied");
                    return Some(rv);
                }
            }
        }
    }

    /// Runs one watch request from `resource_version` until the stream ends.
    async fn watch(&mut self, resource_version: &str) -> WatchEnd {
        let params = WatchParams {
            label_selector: self.selector.clone(),
            timeout: Some(
                self.options
                    .watch_timeout
                    .as_secs()
                    .clamp(1, u32::MAX as u64) as u32,
            ),
            bookmarks: true,
            ..WatchParams::default()
        };
        let mut rv = resource_version.to_owned();
        let stream = match self.api.watch(&params, &rv).await {
            Ok(stream) => stream,
            Err(kube::Error::Api(status)) if status.code == 410 => {
                info!(resource_version = %rv, "Node watch expired, listing again");
                return WatchEnd::Relist;
            }
            Err(error) => {
                warn!(error = %error, "Node watch request failed");
                return WatchEnd::Failed(rv);
            }
        };
        // Accepting the request proves little: an ERROR event may follow at once. The cache
        // counts as working again only once the stream delivers something or ends normally.
        let idle_limit = self.options.watch_timeout + Duration::from_secs(5);
        let mut stream = std::pin::pin!(stream.into_stream());
        let mut delivered = false;
        let mut last_seen = Instant::now();

        loop {
            let item = match tokio::time::timeout(idle_limit, stream.next()).await {
                Ok(Some(item)) => item,
                // A stream that ends without delivering anything proves nothing and is resumed
                // after the backoff, so an API server or proxy that closes watches at once is
                // not hammered.
                Ok(None) if !delivered => return WatchEnd::Failed(rv),
                Ok(None) => {
                    lock(&self.store).mark_working();
                    return WatchEnd::Resume(rv);
                }
                Err(_) => {
                    warn!("Node watch silent for too long, reconnecting");
                    // Nothing arrived since `last_seen`: the cache is broken since then.
                    lock(&self.store).mark_broken(last_seen);
                    return WatchEnd::Failed(rv);
                }
            };
            delivered = true;
            last_seen = Instant::now();
            match item {
                Ok(WatchEvent::Added(node) | WatchEvent::Modified(node)) => {
                    self.event_seen(&node, &mut rv);
                    lock(&self.store).apply(node);
                }
                Ok(WatchEvent::Deleted(node)) => {
                    self.event_seen(&node, &mut rv);
                    lock(&self.store).delete(&node);
                }
                Ok(WatchEvent::Bookmark(bookmark)) => {
                    rv = bookmark.metadata.resource_version;
                    lock(&self.store).mark_working();
                }
                Ok(WatchEvent::Error(status)) if status.code == 410 => {
                    info!(resource_version = %rv, "Node watch expired, listing again");
                    return WatchEnd::Relist;
                }
                Ok(WatchEvent::Error(status)) => {
                    warn!(code = status.code, reason = %status.reason, status_message = %status.message, "Node watch returned an error");
                    return WatchEnd::Failed(rv);
                }
                Err(kube::Error::SerdeError(error)) => {
                    warn!(error = %error, "Node watch event not readable, skipped");
                }
                Err(error) => {
                    warn!(error = %error, "Node watch stream failed");
                    return WatchEnd::Failed(rv);
                }
            }
        }
    }

    fn event_seen(&mut self, node: &PartialNode, rv: &mut String) {
        if let Some(new_rv) = node
            .metadata
            .resource_version
            .as_deref()
            .filter(|v| !v.is_empty())
        {
            new_rv.clone_into(rv);
        }
        self.metrics.watch_events.inc();
        self.backoff.reset();
        lock(&self.store).mark_working();
    }

    /// Counts a failure, marks the cache broken and sleeps for the next backoff delay.
    async fn failed(&mut self) {
        self.metrics.watch_restarts.inc();
        lock(&self.store).mark_broken(Instant::now());
        let delay = self.backoff.next_delay();
        debug!(
            delay_ms = delay.as_millis() as u64,
            "Node watch backing off"
        );
        tokio::time::sleep(delay).await;
    }
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }

    /// Returns the next delay, with up to 25 % jitter either way, never above the maximum.
    fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::rng().random_range(0.75..=1.25);
        base.mul_f64(jitter).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_max_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(800), Duration::from_secs(30));
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(600));
        assert!(delays[0] <= Duration::from_millis(1000));
        assert!(delays[3] >= Duration::from_millis(4800));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
        assert!(delays[7] >= Duration::from_millis(22_500));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(1000));
    }
}
