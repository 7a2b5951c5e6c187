//! The timeline: starts the fakes, runs the daemon against them, applies each scenario event at
//! its time on tokio's clock and records what the monitor decided and what Masakari received.
//!
//! On a paused clock, tokio advances time whenever every task waits, so each step here either
//! sleeps until a scenario time or waits on loopback I/O that is already readable. A change made
//! at the same instant as a tick reaches the node cache only after that tick sampled it, because
//! the watch event still has to cross a socket, so the next tick is the first to see it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::SimulateError;
use super::scenario::{Action, DownAtStart, Event, NodeSpec, Scenario, format_offset};
use crate::config::{Config, ConfigWarning, ReadyStatus};
use crate::daemon::{self, Hooks, RunOptions};
use crate::fake::kube_api::{FakeKubeApi, FakeKubeSettings, NodeFixture};
use crate::fake::openstack::{Endpoint, FakeOpenStack};
use crate::monitor::{Decision, TickReport, WallClock};

/// Everything a run observed, with times as offsets from the start of the simulation.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Ticks that evaluated a synced snapshot.
    pub ticks: usize,
    /// Every decision of every tick.
    pub decisions: Vec<(Duration, Decision)>,
    /// The scenario events, as applied.
    pub events: Vec<Event>,
    /// Notification requests Masakari authenticated, in arrival order.
    pub received: Vec<Received>,
    /// Notification requests Masakari received, including those rejected with 503 while down.
    pub masakari_requests: usize,
}

/// One notification request Masakari authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub at: Duration,
    pub host: String,
    pub status: u16,
    pub notification_uuid: Option<String>,
}

/// The fakes the timeline acts on.
struct Fakes {
    kube: FakeKubeApi,
    openstack: FakeOpenStack,
    /// Node objects created by `add_node`, for fresh uids.
    added: u64,
}

/// Runs `scenario` to its end with `config`, whose `[api] auth_url` is replaced by the fake
/// Keystone's.
pub async fn execute(
    scenario: &Scenario,
    mut config: Config,
    warnings: Vec<ConfigWarning>,
) -> Result<Recording, SimulateError> {
    let start = Instant::now();
    let start_wall = jiff::Timestamp::now();
    let wall = WallClock::anchored(start_wall);
    let mut fakes = start_fakes(scenario, start_wall).await?;
    config.api.auth.auth_url = fakes.openstack.auth_url();
    config.api.endpoint_override = None;

    let shared = Arc::new(Mutex::new(Recording::default()));
    let hooks = Hooks {
        on_tick: Some(record_ticks(shared.clone(), start)),
    };
    let shutdown = CancellationToken::new();
    let options = RunOptions {
        dry_run: false,
        warnings,
    };
    let kube = kube_client(&fakes.kube)?;
    let daemon = daemon::run_with(config, options, kube, wall, hooks, shutdown.clone());
    tokio::pin!(daemon);

    let mut applied = Vec::with_capacity(scenario.events.len());
    let timeline = play(scenario, &mut fakes, start, &mut applied);
    tokio::select! {
        biased;

        result = &mut daemon => {
            result.map_err(SimulateError::Daemon)?;
            return Err(SimulateError::DaemonStopped);
        }

        result = timeline => result?,
    }
    shutdown.cancel();
    daemon.await.map_err(SimulateError::Daemon)?;

    let mut recording = std::mem::take(&mut *lock(&shared));
    recording.events = applied;
    recording.received = fakes
        .openstack
        .received()
        .into_iter()
        .map(|r| Received {
            at: r.received_at.saturating_duration_since(start),
            host: r.hostname,
            status: r.status,
            notification_uuid: r.notification_uuid,
        })
        .collect();
    recording.masakari_requests = fakes.openstack.requests(Endpoint::MasakariNotifications);
    Ok(recording)
}

async fn start_fakes(
    scenario: &Scenario,
    start_wall: jiff::Timestamp,
) -> Result<Fakes, SimulateError> {
    let kube = FakeKubeApi::start_with(FakeKubeSettings::default())
        .await
        .map_err(SimulateError::FakeKube)?;
    for node in &scenario.fleet.nodes {
        let mut fixture = fixture(node, None);
        if let Some(down) = scenario.fleet.down.iter().find(|d| d.node == node.name) {
            fixture = down_fixture(fixture, down, start_wall);
        }
        kube.apply_node(fixture.to_json())
            .map_err(SimulateError::FakeKube)?;
    }
    let openstack = FakeOpenStack::start()
        .await
        .map_err(SimulateError::FakeOpenStack)?;
    Ok(Fakes {
        kube,
        openstack,
        added: 0,
    })
}

/// Builds a client of the fake Kubernetes API that opens a connection per request.
///
/// NOTE: on tokio's paused clock, an axum 0.8.9 (hyper 1.13) server sends the headers of a
/// streamed response (a watch) on a kept-alive connection that already served a request, but
/// never its body. A plain axum server and a raw TCP client reproduce it, and on the wall clock
/// the body streams. The cause is not found. With `Connection: close`, every request, the watch
/// included, gets a fresh connection.
fn kube_client(fake: &FakeKubeApi) -> Result<kube::Client, SimulateError> {
    let url = format!("http://{}", fake.addr())
        .parse()
        .map_err(SimulateError::KubeUrl)?;
    let mut config = kube::Config::new(url);
    config.headers.push((
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    ));
    kube::Client::try_from(config).map_err(SimulateError::KubeClient)
}

/// Builds the hook that appends each tick's decisions to the recording.
fn record_ticks(
    recording: Arc<Mutex<Recording>>,
    start: Instant,
) -> Box<dyn FnMut(&TickReport) + Send> {
    Box::new(move |report: &TickReport| {
        if !report.evaluated {
            return;
        }
        let at = start.elapsed();
        let mut recording = lock(&recording);
        recording.ticks += 1;
        recording
            .decisions
            .extend(report.decisions.iter().cloned().map(|d| (at, d)));
    })
}

/// Applies every event at its time, then waits for the end of the scenario.
async fn play(
    scenario: &Scenario,
    fakes: &mut Fakes,
    start: Instant,
    applied: &mut Vec<Event>,
) -> Result<(), SimulateError> {
    for event in &scenario.events {
        tokio::time::sleep_until(start + event.at).await;
        info!(
            at = %format_offset(event.at),
            action = %describe(&event.action),
            "Scenario event"
        );
        apply(fakes, &event.action).map_err(|source| SimulateError::Event {
            at: format_offset(event.at),
            source,
        })?;
        applied.push(event.clone());
    }
    tokio::time::sleep_until(start + scenario.duration).await;
    info!(at = %format_offset(scenario.duration), "Scenario ended");
    Ok(())
}

fn apply(fakes: &mut Fakes, action: &Action) -> Result<(), crate::fake::kube_api::FakeKubeError> {
    match action {
        Action::SetReady {
            nodes,
            status,
            reason,
        } => {
            let reason = reason.as_deref().unwrap_or(default_reason(*status));
            for node in nodes {
                fakes.kube.set_ready(node, status_str(*status), reason)?;
            }
        }
        Action::DeleteNodes { nodes } => {
            for node in nodes {
                fakes.kube.delete_node(node)?;
            }
        }
        Action::AddNodes { nodes } => {
            for node in nodes {
                fakes.added += 1;
                let uid = format!("00000000-0000-4000-8000-{:012x}", fakes.added);
                fakes.kube.apply_node(fixture(node, Some(&uid)).to_json())?;
            }
        }
        Action::KubernetesApi { available } => fakes.kube.set_unavailable(!available),
        Action::Masakari { available } => fakes.openstack.set_masakari_down(!available),
        Action::MasakariStatus { status } => fakes.openstack.set_masakari_status(*status),
        Action::MasakariLatency { latency } => fakes.openstack.set_latency(*latency),
    }
    Ok(())
}

fn fixture(node: &NodeSpec, uid: Option<&str>) -> NodeFixture {
    let labels = node.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let fixture = NodeFixture::ready(&node.name).labels(labels);
    match uid {
        Some(uid) => fixture.uid(uid),
        None => fixture,
    }
}

/// Sets the Ready condition of a node that is down at the start, with its transition time.
fn down_fixture(
    fixture: NodeFixture,
    down: &DownAtStart,
    start_wall: jiff::Timestamp,
) -> NodeFixture {
    let fixture = match down.status {
        ReadyStatus::False => fixture.not_ready(),
        ReadyStatus::True | ReadyStatus::Unknown => fixture.unknown(),
    };
    let since = jiff::SignedDuration::try_from(down.since).unwrap_or(jiff::SignedDuration::MAX);
    let left_ready = start_wall.saturating_sub(since).unwrap_or(start_wall);
    fixture.transition_time(left_ready)
}

/// Describes an action in one line, for logs and the summary.
pub fn describe(action: &Action) -> String {
    match action {
        Action::SetReady { nodes, status, .. } => {
            format!("{} Ready={}", list_nodes(nodes), status_str(*status))
        }
        Action::DeleteNodes { nodes } => format!("{} deleted", list_nodes(nodes)),
        Action::AddNodes { nodes } => {
            let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
            format!("{} added", list_nodes(&names))
        }
        Action::KubernetesApi { available: false } => "Kubernetes API down".to_owned(),
        Action::KubernetesApi { available: true } => "Kubernetes API up".to_owned(),
        Action::Masakari { available: false } => "Masakari down".to_owned(),
        Action::Masakari { available: true } => "Masakari up".to_owned(),
        Action::MasakariStatus {
            status: Some(status),
        } => {
            format!("Masakari responds {status}")
        }
        Action::MasakariStatus { status: None } => "Masakari responds normally".to_owned(),
        Action::MasakariLatency { latency } => {
            format!("Masakari latency {}", format_offset(*latency))
        }
    }
}

/// Lists node names, abbreviating long lists: `compute-0, compute-1, compute-2 and 7 more`.
fn list_nodes(nodes: &[String]) -> String {
    const SHOWN: usize = 3;
    if nodes.len() <= SHOWN + 1 {
        return nodes.join(", ");
    }
    format!(
        "{} and {} more",
        nodes[..SHOWN].join(", "),
        nodes.len() - SHOWN
    )
}

pub fn status_str(status: ReadyStatus) -> &'static str {
    match status {
        ReadyStatus::True => "True",
        ReadyStatus::False => "False",
        ReadyStatus::Unknown => "Unknown",
    }
}

/// Returns the reason the kubelet or the node lifecycle controller writes with each status.
fn default_reason(status: ReadyStatus) -> &'static str {
    match status {
        ReadyStatus::True => "KubeletReady",
        ReadyStatus::False => "KubeletNotReady",
        ReadyStatus::Unknown => "NodeStatusUnknown",
    }
}

fn lock(recording: &Mutex<Recording>) -> MutexGuard<'_, Recording> {
    // A poisoned lock only means that the tick hook panicked, and the recording is still usable.
    recording.lock().unwrap_or_else(|e| e.into_inner())
}
