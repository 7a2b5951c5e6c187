//! In-process fake of Keystone and Masakari: one HTTP server on loopback for the simulator and
//! the benchmark.
//!
//! Keystone serves version discovery (`GET /`, `GET /v3`) and `POST /v3/auth/tokens`, whose
//! catalog lists an `instance-ha` endpoint on the same server (`/masakari/v1/<project>`).
//! Masakari serves `POST .../notifications` and replies as masakari does: 202 with a
//! `notification_uuid`, 400 for an invalid body or an unknown host, 401 for a wrong token and 409
//! for a duplicate (same host and payload accepted within the duplicate window, measured on the
//! tokio clock). Setters script outages, forced statuses and latency at run time.
//!
//! An outage of either service returns 503, as a load balancer with no healthy backend does.
//! Connections are still accepted, because both services share one listener.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod keystone;
mod masakari;
mod validate;

/// Masakari's default `duplicate_notification_detection_interval`.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(180);

/// Lifetime written into issued tokens' `expires_at`, Keystone's default `[token] expiration`.
const TOKEN_LIFETIME: jiff::SignedDuration = jiff::SignedDuration::from_secs(3600);

/// Errors of [`FakeOpenStack::start`].
#[derive(Debug, thiserror::Error)]
pub enum FakeOpenStackError {
    #[error("failed to bind the fake OpenStack server to {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The endpoints whose requests are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /` and `GET /v3`.
    KeystoneDiscovery,
    /// `POST /v3/auth/tokens`.
    KeystoneTokens,
    /// `POST .../notifications`.
    MasakariNotifications,
}

/// One notification request that passed authentication, with the reply it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedNotification {
    /// `type`, such as `COMPUTE_HOST`; empty when the body had none.
    pub kind: String,
    pub hostname: String,
    /// `generated_time` as sent.
    pub generated_time: String,
    pub payload: BTreeMap<String, String>,
    pub received_at: Instant,
    /// HTTP status of the reply.
    pub status: u16,
    /// Set for 202 replies.
    pub notification_uuid: Option<String>,
}

/// Settings fixed at start; the setters on [`FakeOpenStack`] change behaviour later.
#[derive(Debug, Clone)]
pub struct FakeOpenStackBuilder {
    project_id: String,
    project_name: String,
    region: String,
    secret: Option<String>,
    hosts: Option<Vec<String>>,
    duplicate_window: Duration,
}

/// A running fake. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeOpenStack {
    addr: SocketAddr,
    state: Arc<Shared>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    project_id: String,
    project_name: String,
    region: String,
    secret: Option<String>,
    base_url: String,
    mutable: Mutex<Mutable>,
}

#[derive(Debug, Default)]
struct Mutable {
    hosts: Option<HashSet<String>>,
    duplicate_window: Duration,
    masakari_down: bool,
    keystone_down: bool,
    masakari_status: Option<u16>,
    latency: Duration,
    tokens: HashSet<String>,
    tokens_issued: usize,
    received: Vec<ReceivedNotification>,
    requests: HashMap<Endpoint, usize>,
}

impl Default for FakeOpenStackBuilder {
    fn default() -> Self {
        FakeOpenStackBuilder {
            project_id: "5f2c9c4e0b7d4d6f9d2a3b1c8e7f6a50".to_owned(),
            project_name: "admin".to_owned(),
            region: "RegionOne".to_owned(),
            secret: None,
            hosts: None,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
        }
    }
}

impl FakeOpenStackBuilder {
    /// Project id of issued tokens and of the Masakari endpoint URL.
    pub fn project_id(mut self, project_id: impl Into<String>) -> Self {
        self.project_id = project_id.into();
        self
    }

    /// Catalog region of the Masakari endpoints. Default `RegionOne`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Password or application-credential secret Keystone accepts; unset accepts any.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Hosts registered in a failover segment; `None` (the default) accepts every host.
    pub fn hosts(mut self, hosts: Option<Vec<String>>) -> Self {
        self.hosts = hosts;
        self
    }

    /// Duplicate window. Default 180 s.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start(self) -> Result<FakeOpenStack, FakeOpenStackError> {
        let address = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| FakeOpenStackError::Bind { address, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| FakeOpenStackError::Bind { address, source })?;

        let mutable = Mutable {
            hosts: self.hosts.map(|hosts| hosts.into_iter().collect()),
            duplicate_window: self.duplicate_window,
            ..Mutable::default()
        };
        let state = Arc::new(Shared {
            project_id: self.project_id,
            project_name: self.project_name,
            region: self.region,
            secret: self.secret,
            base_url: format!("http://{addr}"),
            mutable: Mutex::new(mutable),
        });

        let stop = CancellationToken::new();
        let app = router(state.clone());
        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %error, "Fake OpenStack server failed");
            }
        });
        Ok(FakeOpenStack {
            addr,
            state,
            stop,
            task: Some(task),
        })
    }
}

impl FakeOpenStack {
    pub fn builder() -> FakeOpenStackBuilder {
        FakeOpenStackBuilder::default()
    }

    /// Starts a fake with the defaults: any credentials, any host, 180 s duplicate window.
    pub async fn start() -> Result<FakeOpenStack, FakeOpenStackError> {
        Self::builder().start().await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Keystone URL with the `/v3` suffix, for `[api] auth_url`.
    pub fn auth_url(&self) -> String {
        format!("{}/v3", self.state.base_url)
    }

    /// Returns the Masakari endpoint the catalog lists.
    pub fn masakari_url(&self) -> String {
        self.state.masakari_url()
    }

    pub fn project_id(&self) -> &str {
        &self.state.project_id
    }

    /// While down, Masakari replies 503 to every request.
    pub fn set_masakari_down(&self, down: bool) {
        self.state.lock().masakari_down = down;
    }

    /// While down, Keystone replies 503 to every request.
    pub fn set_keystone_down(&self, down: bool) {
        self.state.lock().keystone_down = down;
    }

    /// Replies to authenticated notification requests with this status instead of evaluating
    /// them, with a masakari fault body unless it is 202. `None` restores normal replies.
    pub fn set_masakari_status(&self, status: Option<u16>) {
        self.state.lock().masakari_status = status;
    }

    /// Delays every reply by this long on the tokio clock, so a paused clock skips it.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// Replaces the registered hosts; `None` accepts every host.
    pub fn set_hosts(&self, hosts: Option<Vec<String>>) {
        self.state.lock().hosts = hosts.map(|hosts| hosts.into_iter().collect());
    }

    pub fn set_duplicate_window(&self, window: Duration) {
        self.state.lock().duplicate_window = window;
    }

    /// Invalidates every issued token, so the next notification gets 401.
    pub fn expire_tokens(&self) {
        self.state.lock().tokens.clear();
    }

    /// Returns every authenticated notification request so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedNotification> {
        self.state.lock().received.clone()
    }

    /// Requests to `endpoint` so far, including those that got an error.
    pub fn requests(&self, endpoint: Endpoint) -> usize {
        let mutable = self.state.lock();
        mutable.requests.get(&endpoint).copied().unwrap_or(0)
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.lock().tokens_issued
    }

    /// Stops accepting connections and waits for the server task.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeOpenStack {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Shared {
    /// A poisoned lock only means a handler panicked; the recorded state is still usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, Mutable> {
        self.mutable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn masakari_url(&self) -> String {
        format!("{}/masakari/v1/{}", self.base_url, self.project_id)
    }

    /// Counts the request and returns the latency to apply.
    fn count(&self, endpoint: Endpoint) -> Duration {
        let mut mutable = self.lock();
        *mutable.requests.entry(endpoint).or_default() += 1;
        mutable.latency
    }
}

fn router(state: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(keystone::root))
        .route("/v3", get(keystone::v3))
        .route("/v3/", get(keystone::v3))
        .route("/v3/auth/tokens", post(keystone::tokens))
        .route("/masakari/v1/notifications", post(masakari::notifications))
        .route(
            "/masakari/v1/{project}/notifications",
            post(masakari::project_notifications),
        )
        .with_state(state)
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Generates a random version-4 UUID in its canonical text form.
fn random_uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
