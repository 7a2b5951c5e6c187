//! The monitor loop: every `monitoring_interval` it samples the node source once, pushes one
//! reading per host, evaluates the circuit breaker over the whole snapshot, and only then emits
//! the decisions of that tick.
//!
//! [`Monitor`] is the synchronous core (it owns the detector tracks and the breaker and returns
//! decisions); [`run`] is the async shell that samples, logs, updates metrics and hands
//! notifications to the delivery queue, which never blocks it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use crate::breaker::{Breaker, Transition};
use crate::config::Config;
use crate::delivery::{DeliveryHandle, Notification};
use crate::detector::{DetectorSettings, HostEvent, HostTrack, Phase, StartupReason};
use crate::metrics::{Metrics, ReadingLabel, StateLabel};
use crate::node_source::{NodeSource, Reading, Snapshot};

/// One decision of one tick, in the order the loop acts on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Breaker(Transition),
    /// The breaker closed and this held host must collect a fresh window.
    Released {
        host: String,
    },
    Host {
        host: String,
        event: HostEvent,
    },
    /// The host left the snapshot (Node deleted or no longer matching the label selector).
    Forgotten {
        host: String,
    },
}

/// The outcome of one tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// False when the node source has not completed its first list: nothing was evaluated.
    pub evaluated: bool,
    pub monitored: usize,
    pub down: usize,
    pub decisions: Vec<Decision>,
}

/// Wall-clock time for `generated_time` and the start-up rule, derived from tokio's clock.
///
/// In production it is the system clock. The simulator anchors it to a start time so that wall
/// time advances with tokio's (possibly paused) clock.
#[derive(Debug, Clone, Copy)]
pub enum WallClock {
    System,
    Anchored { wall: Timestamp, instant: Instant },
}

impl WallClock {
    /// Creates a wall clock that reads `wall` now and advances with tokio's clock.
    pub fn anchored(wall: Timestamp) -> Self {
        WallClock::Anchored {
            wall,
            instant: Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        match *self {
            WallClock::System => Timestamp::now(),
            WallClock::Anchored { wall, instant } => {
                let elapsed = jiff::SignedDuration::try_from(instant.elapsed())
                    .unwrap_or(jiff::SignedDuration::MAX);
                wall.saturating_add(elapsed).unwrap_or(wall)
            }
        }
    }
}

/// The synchronous core: detector tracks of every host plus the fleet's circuit breaker.
#[derive(Debug)]
pub struct Monitor {
    settings: DetectorSettings,
    tracks: HashMap<String, HostTrack>,
    breaker: Breaker,
}

impl Monitor {
    pub fn new(config: &Config) -> Self {
        Monitor {
            settings: DetectorSettings {
                samples: config.host.monitoring_samples,
                startup_down_horizon: config.kubernetes.startup_down_horizon,
            },
            tracks: HashMap::new(),
            breaker: Breaker::new(&config.circuit_breaker),
        }
    }

    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Returns the phase of one host, for tests and the simulator's summary.
    pub fn phase(&self, host: &str) -> Option<Phase> {
        self.tracks.get(host).map(HostTrack::phase)
    }

    pub fn count_phase(&self, matches: impl Fn(Phase) -> bool) -> usize {
        self.tracks.values().filter(|t| matches(t.phase())).count()
    }

    /// Evaluates one tick's snapshot. `now` drives the breaker; `wall` is the `generated_time`
    /// of hosts failing at this tick.
    pub fn tick(&mut self, snapshot: &Snapshot, now: Instant, wall: Timestamp) -> TickReport {
        if !snapshot.synced {
            return TickReport::default();
        }
        let mut decisions = self.forget_absent(snapshot);
        self.push_readings(snapshot);

        let monitored = snapshot.hosts.len();
        let down = snapshot
            .hosts
            .iter()
            .filter(|s| s.reading == Reading::Down)
            .count();
        if let Some(transition) = self.breaker.evaluate(down, monitored, now) {
            decisions.push(Decision::Breaker(transition));
            if matches!(transition, Transition::Closed { .. }) {
                decisions.extend(self.release_held());
            }
        }

        let breaker_open = self.breaker.is_open();
        for sample in &snapshot.hosts {
            let Some(track) = self.tracks.get_mut(&sample.host) else {
                continue;
            };
            if let Some(event) = track.evaluate(sample, self.settings, breaker_open, wall) {
                decisions.push(Decision::Host {
                    host: sample.host.clone(),
                    event,
                });
            }
        }

        TickReport {
            evaluated: true,
            monitored,
            down,
            decisions,
        }
    }

    fn forget_absent(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
        let present: HashMap<&str, &str> = snapshot
            .hosts
            .iter()
            .map(|s| (s.host.as_str(), s.uid.as_str()))
            .collect();
        let mut gone: Vec<String> = self
            .tracks
            .iter()
            .filter(|(host, track)| present.get(host.as_str()) != Some(&track.uid()))
            .map(|(host, _)| host.clone())
            .collect();
        gone.sort();
        for host in &gone {
            let Some(old) = self.tracks.remove(host) else {
                continue;
            };
            if let Some(uid) = present.get(host.as_str()) {
                self.tracks.insert(
                    host.clone(),
                    HostTrack::replacing(uid, self.settings.samples, &old),
                );
            }
        }
        gone.into_iter()
            .filter(|host| !present.contains_key(host.as_str()))
            .map(|host| Decision::Forgotten { host })
            .collect()
    }

    fn push_readings(&mut self, snapshot: &Snapshot) {
        let samples = self.settings.samples;
        for sample in &snapshot.hosts {
            // Known hosts are looked up without copying the name, which `entry` would need.
            if let Some(track) = self.tracks.get_mut(&sample.host) {
                track.push(sample.reading);
                continue;
            }
            let mut track = HostTrack::new(&sample.uid, samples);
            track.push(sample.reading);
            self.tracks.insert(sample.host.clone(), track);
        }
    }

    fn release_held(&mut self) -> Vec<Decision> {
        let mut released: Vec<String> = self
            .tracks
            .iter_mut()
            .filter_map(|(host, track)| track.release().then(|| host.clone()))
            .collect();
        released.sort();
        released
            .into_iter()
            .map(|host| Decision::Released { host })
            .collect()
    }
}

/// A callback run after every tick with its report.
pub type TickHook = Box<dyn FnMut(&TickReport) + Send>;

/// Everything the loop's shell needs besides the node source.
pub struct LoopContext {
    pub interval: Duration,
    pub delivery: DeliveryHandle,
    /// Written after every tick: true while the breaker is closed.
    pub breaker_closed: watch::Sender<bool>,
    pub metrics: Metrics,
    pub wall: WallClock,
    /// Called after every tick with its report, e.g. to mark liveness and readiness.
    pub on_tick: TickHook,
}

/// Runs ticks every `interval` until `shutdown` completes. The first tick is immediate.
pub async fn run<S: NodeSource>(
    source: Arc<S>,
    mut monitor: Monitor,
    mut context: LoopContext,
    shutdown: impl Future<Output = ()>,
) {
    let mut ticker = tokio::time::interval(context.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    info!(
        interval_secs = context.interval.as_secs_f64(),
        "Monitor loop started"
    );

    loop {
        tokio::select! {
            _ = &mut shutdown => break,

            _ = ticker.tick() => {
                let started = Instant::now();
                let snapshot = source.snapshot();
                let report = monitor.tick(&snapshot, started, context.wall.now());
                act_on(&report, &context);
                record_tick(&report, &snapshot, &monitor, &context.metrics);
                let _ = context.breaker_closed.send(!monitor.breaker_open());
                context.metrics.tick_duration_seconds.observe(started.elapsed().as_secs_f64());
                (context.on_tick)(&report);
            }
        }
    }
    info!("Monitor loop stopped");
}

/// Logs every decision of a tick, one line each, and hands notifications to delivery.
fn act_on(report: &TickReport, context: &LoopContext) {
    if !report.evaluated {
        debug!("Node source not synced yet, tick skipped");
        return;
    }
    for decision in &report.decisions {
        match decision {
            Decision::Breaker(transition) => log_transition(transition, &context.metrics),
            Decision::Released { host } => {
                info!(host = %host, "Held host released, waiting for fresh readings")
            }
            Decision::Forgotten { host } => info!(host = %host, "Host no longer monitored"),
            Decision::Host { host, event } => act_on_host(host, event, context),
        }
    }
}

fn act_on_host(host: &str, event: &HostEvent, context: &LoopContext) {
    match event {
        HostEvent::Failed { generated_time } => {
            info!(host = %host, generated_time = %generated_time, "Host failed");
            context.delivery.submit(Notification {
                host: host.to_owned(),
                generated_time: *generated_time,
            });
        }
        HostEvent::Held => warn!(host = %host, "Host failed, held by the open circuit breaker"),
        HostEvent::Recovered => {
            info!(host = %host, "Host recovered");
            context.delivery.cancel(host);
        }
        HostEvent::RecoveredWhileHeld => {
            info!(host = %host, "Held host recovered, dropped")
        }
        HostEvent::DownAtStartup(reason) => log_startup_down(host, reason),
        HostEvent::UpAfterStartupDown => {
            info!(host = %host, "Host up after being down at start-up, now monitored")
        }
    }
}

fn log_startup_down(host: &str, reason: &StartupReason) {
    match reason {
        StartupReason::NeverUpdated => info!(
            host = %host,
            reason = "kubelet never posted status",
            "Host down at start-up, not notified"
        ),
        StartupReason::DownSince(since) => info!(
            host = %host,
            down_since = %since,
            reason = "down for longer than [kubernetes] startup_down_horizon",
            "Host down at start-up, not notified"
        ),
        StartupReason::DownSinceUnknown => info!(
            host = %host,
            reason = "Ready condition has no transition time",
            "Host down at start-up, not notified"
        ),
    }
}

fn log_transition(transition: &Transition, metrics: &Metrics) {
    let state = match transition {
        Transition::Opened {
            down,
            threshold,
            monitored,
        } => {
            warn!(
                down = down,
                threshold = threshold,
                monitored = monitored,
                reason = "down hosts reached the threshold",
                "Circuit breaker opened, evacuation suspended"
            );
            "open"
        }
        Transition::Closed {
            down,
            threshold,
            monitored,
            stable_for,
        } => {
            warn!(
                down = down,
                threshold = threshold,
                monitored = monitored,
                stable_for_secs = stable_for.as_secs(),
                reason = "down hosts stayed below the threshold for the stabilisation period",
                "Circuit breaker closed, evacuation resumed"
            );
            "closed"
        }
    };
    metrics
        .breaker_transitions
        .get_or_create(&StateLabel {
            state: state.to_owned(),
        })
        .inc();
}

fn record_tick(report: &TickReport, snapshot: &Snapshot, monitor: &Monitor, metrics: &Metrics) {
    metrics.ticks.inc();
    if !report.evaluated {
        return;
    }
    let mut by_reading = [0i64; 3];
    for sample in &snapshot.hosts {
        let index = match sample.reading {
            Reading::Up => 0,
            Reading::Down => 1,
            Reading::NoData => 2,
        };
        by_reading[index] += 1;
    }
    for (reading, count) in [Reading::Up, Reading::Down, Reading::NoData]
        .into_iter()
        .zip(by_reading)
    {
        let label = ReadingLabel {
            reading: reading.as_str().to_owned(),
        };
        metrics.hosts_by_reading.get_or_create(&label).set(count);
    }
    metrics.hosts_monitored.set(report.monitored as i64);
    let failed = monitor.count_phase(|p| matches!(p, Phase::Failed { .. }));
    let held = monitor.count_phase(|p| matches!(p, Phase::Held { .. }));
    metrics.hosts_failed.set(failed as i64);
    metrics.hosts_held.set(held as i64);
    metrics.breaker_open.set(i64::from(monitor.breaker_open()));
    for sample in snapshot.hosts.iter().filter(|s| s.reading != Reading::Up) {
        debug!(host = %sample.host, reading = sample.reading.as_str(), "Reading");
    }
}
