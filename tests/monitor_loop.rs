//! The real monitor loop driven by a scripted node source on tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use masakari_hostmonitor::config::{Config, Threshold};
use masakari_hostmonitor::delivery::{self, Command};
use masakari_hostmonitor::fake::scripted::ScriptedSource;
use masakari_hostmonitor::metrics::Metrics;
use masakari_hostmonitor::monitor::{self, LoopContext, Monitor, TickReport, WallClock};
use masakari_hostmonitor::node_source::Reading::{self, Down, NoData, Up};
use tokio::sync::{mpsc, watch};

const INTERVAL: Duration = Duration::from_secs(10);

fn start_wall() -> Timestamp {
    "2026-12-04T10:00:00Z".parse().expect("valid timestamp")
}

fn config(samples: usize, threshold: Threshold, stabilization: Duration) -> Config {
    let mut config = Config::default();
    config.host.monitoring_interval = INTERVAL;
    config.host.monitoring_samples = samples;
    config.circuit_breaker.threshold = threshold;
    config.circuit_breaker.stabilization_period = stabilization;
    config
}

/// A running monitor loop: the test sets readings, then waits for the next tick's report.
struct Harness {
    source: Arc<ScriptedSource>,
    commands: mpsc::UnboundedReceiver<Command>,
    reports: mpsc::UnboundedReceiver<TickReport>,
    breaker_closed: watch::Receiver<bool>,
    submitted: Vec<(usize, String)>,
    cancelled: Vec<String>,
    ticks: usize,
}

impl Harness {
    /// Creates the loop with `hosts` all `Up`; nothing runs until the first [`Harness::tick`].
    fn new(
        config: &Config,
        hosts: usize,
    ) -> (Harness, impl FnOnce() -> tokio::task::JoinHandle<()>) {
        let source = Arc::new(ScriptedSource::new());
        for index in 0..hosts {
            source.set(
                &host(index),
                Up,
                Some(start_wall() - SignedDuration::from_hours(24)),
            );
        }
        let (handle, commands) = delivery::channel();
        let (report_tx, reports) = mpsc::unbounded_channel();
        let (breaker_tx, breaker_closed) = watch::channel(true);
        let context = LoopContext {
            interval: config.host.monitoring_interval,
            delivery: handle,
            breaker_closed: breaker_tx,
            metrics: Metrics::unregistered(),
            wall: WallClock::anchored(start_wall()),
            on_tick: Box::new(move |report| {
                let _ = report_tx.send(report.clone());
            }),
        };
        let monitor = Monitor::new(config);
        let loop_source = source.clone();
        let spawn = move || {
            tokio::spawn(monitor::run(
                loop_source,
                monitor,
                context,
                std::future::pending(),
            ))
        };
        let harness = Harness {
            source,
            commands,
            reports,
            breaker_closed,
            submitted: Vec::new(),
            cancelled: Vec::new(),
            ticks: 0,
        };
        (harness, spawn)
    }

    /// Waits for the next tick and collects the commands it sent to delivery.
    async fn tick(&mut self) -> TickReport {
        let report = self.reports.recv().await.expect("monitor loop running");
        self.ticks += 1;
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Submit(notification) => {
                    self.submitted.push((self.ticks, notification.host))
                }
                Command::Cancel { host } => self.cancelled.push(host),
            }
        }
        report
    }

    async fn ticks(&mut self, count: usize) {
        for _ in 0..count {
            self.tick().await;
        }
    }

    fn set(&self, hosts: &[String], reading: Reading) {
        for host in hosts {
            self.source.set_reading(host, reading);
        }
    }

    fn notified_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.submitted.iter().map(|(_, h)| h.clone()).collect();
        hosts.sort();
        hosts
    }

    fn breaker_open(&self) -> bool {
        !*self.breaker_closed.borrow()
    }
}

fn host(index: usize) -> String {
    format!("compute-{index}")
}

fn hosts(indices: &[usize]) -> Vec<String> {
    indices.iter().map(|i| host(*i)).collect()
}

/// Starts a loop over `count` Up hosts and runs its first tick.
async fn started(config: &Config, count: usize) -> Harness {
    let (mut harness, spawn) = Harness::new(config, count);
    spawn();
    harness.tick().await;
    harness
}

#[tokio::test(start_paused = true)]
async fn zone_loss_trips_breaker_for_any_hosts() {
    let config = config(3, Threshold::Count(3), Duration::from_secs(300));
    let zones: [&[usize]; 4] = [
        &[0, 1, 2, 3],
        &[8, 9, 10, 11],
        &[0, 5, 10, 11],
        &[11, 3, 7, 1],
    ];
    for zone in zones {
        let mut harness = started(&config, 12).await;
        harness.set(&hosts(zone), Reading::Down);
        harness.ticks(10).await;
        assert!(
            harness.submitted.is_empty(),
            "zone {zone:?}: {:?}",
            harness.submitted
        );
        assert!(harness.breaker_open(), "zone {zone:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn two_down_below_threshold_are_notified() {
    let config = config(3, Threshold::Count(3), Duration::from_secs(300));
    let mut harness = started(&config, 12).await;
    harness.set(&hosts(&[4, 9]), Down);
    harness.ticks(10).await;
    assert_eq!(harness.notified_hosts(), hosts(&[4, 9]));
    assert!(
        harness.submitted.iter().all(|(tick, _)| *tick == 4),
        "{:?}",
        harness.submitted
    );
    assert!(!harness.breaker_open());
}

#[tokio::test(start_paused = true)]
async fn control_plane_fault_then_single_failure() {
    let stabilization = Duration::from_secs(300);
    let config = config(3, Threshold::Percent(50), stabilization);
    let mut harness = started(&config, 12).await;

    // Every Ready condition turns Unknown, which reads Down with the default statuses.
    harness.source.set_all(Down);
    harness.ticks(20).await;
    assert!(harness.submitted.is_empty());
    assert!(harness.breaker_open());

    harness.source.set_all(Up);
    harness.ticks(30).await;
    assert!(
        harness.breaker_open(),
        "still inside the stabilisation period"
    );
    harness.ticks(1).await;
    assert!(
        !harness.breaker_open(),
        "closed after 300 s below the threshold"
    );

    harness.set(&hosts(&[7]), Down);
    harness.ticks(5).await;
    assert_eq!(harness.notified_hosts(), hosts(&[7]));
}

#[tokio::test(start_paused = true)]
async fn staggered_failures_stop_at_breaker() {
    let config = config(2, Threshold::Count(3), Duration::from_secs(60));
    let mut harness = started(&config, 12).await;

    harness.set(&hosts(&[0]), Down);
    harness.tick().await; // tick 2: compute-0 has one Down
    harness.set(&hosts(&[1]), Down);
    harness.tick().await; // tick 3: compute-0 fails, 2 down
    harness.set(&hosts(&[2]), Down);
    harness.tick().await; // tick 4: 3 down, breaker opens before compute-1 fails
    assert_eq!(harness.notified_hosts(), hosts(&[0]));
    assert!(harness.breaker_open());

    harness.ticks(3).await;
    assert_eq!(
        harness.notified_hosts(),
        hosts(&[0]),
        "no notification while open"
    );

    harness.set(&hosts(&[2]), Up);
    harness.ticks(6).await; // 2 down for 50 s
    assert!(harness.breaker_open());
    harness.tick().await; // 60 s below the threshold: closes, compute-1 released
    assert!(!harness.breaker_open());
    assert_eq!(harness.notified_hosts(), hosts(&[0]));

    harness.tick().await;
    assert_eq!(
        harness.notified_hosts(),
        hosts(&[0]),
        "one fresh Down is not enough"
    );
    harness.tick().await;
    assert_eq!(harness.notified_hosts(), hosts(&[0, 1]));
    harness.ticks(5).await;
    assert_eq!(
        harness.submitted.len(),
        2,
        "compute-0 is not notified again"
    );
    assert!(harness.cancelled.is_empty());
}

#[tokio::test(start_paused = true)]
async fn flapping_host_is_not_notified() {
    let config = config(3, Threshold::Count(3), Duration::from_secs(300));
    let mut harness = started(&config, 4).await;
    let pattern = [
        Down, Down, Up, Down, Down, Up, Down, Down, Up, Down, Down, Up,
    ];
    for reading in pattern {
        harness.set(&hosts(&[1]), reading);
        harness.tick().await;
    }
    assert!(harness.submitted.is_empty(), "{:?}", harness.submitted);
}

#[tokio::test(start_paused = true)]
async fn startup_down_for_days_is_not_notified() {
    let config = config(3, Threshold::Count(3), Duration::from_secs(300));
    let (mut harness, spawn) = Harness::new(&config, 6);
    harness.source.set(
        "compute-2",
        Down,
        Some(start_wall() - SignedDuration::from_hours(96)),
    );
    spawn();
    harness.ticks(10).await;
    assert!(harness.submitted.is_empty());

    harness.set(&hosts(&[2]), Up);
    harness.tick().await;
    harness.set(&hosts(&[2]), Down);
    harness.ticks(3).await;
    assert_eq!(
        harness.notified_hosts(),
        hosts(&[2]),
        "notified after being seen Up"
    );
}

#[tokio::test(start_paused = true)]
async fn startup_recent_failure_is_notified() {
    let config = config(3, Threshold::Count(3), Duration::from_secs(300));
    let (mut harness, spawn) = Harness::new(&config, 6);
    harness.source.set(
        "compute-4",
        Down,
        Some(start_wall() - SignedDuration::from_mins(2)),
    );
    spawn();
    harness.ticks(10).await;
    assert_eq!(harness.submitted, vec![(3, host(4))]);
}

#[tokio::test(start_paused = true)]
async fn no_data_delays_decision() {
    let config = config(3, Threshold::Count(3), Duration::from_secs(300));
    let mut harness = started(&config, 4).await;
    for reading in [Down, Down, NoData, Down, Down] {
        harness.set(&hosts(&[3]), reading);
        harness.tick().await;
    }
    assert!(harness.submitted.is_empty());
    harness.tick().await; // third Down after the NoData
    assert_eq!(harness.submitted, vec![(7, host(3))]);
}

#[tokio::test(start_paused = true)]
async fn source_outage_never_notifies() {
    let config = config(3, Threshold::Count(3), Duration::from_secs(300));
    let mut harness = started(&config, 12).await;
    harness.set(&hosts(&[5]), Down);
    harness.ticks(2).await;
    harness.source.set_all(NoData);
    harness.ticks(30).await;
    harness.source.set_all(Up);
    harness.set(&hosts(&[5]), Down);
    harness.ticks(2).await;
    assert!(harness.submitted.is_empty(), "{:?}", harness.submitted);
    harness.tick().await;
    assert_eq!(
        harness.notified_hosts(),
        hosts(&[5]),
        "three fresh Downs after the outage"
    );
}

#[tokio::test(start_paused = true)]
async fn unsynced_source_is_not_evaluated() {
    let config = config(1, Threshold::Count(3), Duration::from_secs(300));
    let (mut harness, spawn) = Harness::new(&config, 3);
    harness.source.set_synced(false);
    harness.set(&hosts(&[0]), Down);
    spawn();
    let report = harness.tick().await;
    assert!(!report.evaluated);
    assert!(harness.submitted.is_empty());
}

#[tokio::test(start_paused = true)]
async fn recovery_cancels_pending_notification() {
    let config = config(2, Threshold::Count(3), Duration::from_secs(300));
    let mut harness = started(&config, 4).await;
    harness.set(&hosts(&[1]), Down);
    harness.ticks(2).await;
    assert_eq!(harness.notified_hosts(), hosts(&[1]));
    harness.set(&hosts(&[1]), Up);
    harness.tick().await;
    assert_eq!(harness.cancelled, hosts(&[1]));
}

#[tokio::test(start_paused = true)]
async fn breaker_threshold_by_fleet_size() {
    // (fleet size, threshold at 50 %)
    for (fleet, threshold) in [(1, 2), (2, 2), (3, 2), (10, 5), (1_000, 500)] {
        let config = config(1, Threshold::Percent(50), Duration::from_secs(300));
        let below = (threshold - 1).min(fleet);

        let mut harness = started(&config, fleet).await;
        harness.set(&hosts(&(0..below).collect::<Vec<_>>()), Down);
        harness.ticks(2).await;
        assert_eq!(harness.submitted.len(), below, "{below} of {fleet} down");
        assert!(!harness.breaker_open(), "{below} of {fleet} down");

        if threshold <= fleet {
            let mut harness = started(&config, fleet).await;
            harness.set(&hosts(&(0..threshold).collect::<Vec<_>>()), Down);
            harness.ticks(2).await;
            assert!(harness.submitted.is_empty(), "{threshold} of {fleet} down");
            assert!(harness.breaker_open(), "{threshold} of {fleet} down");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn ticks_follow_interval() {
    let config = config(1, Threshold::Count(3), Duration::from_secs(300));
    let (mut harness, spawn) = Harness::new(&config, 1);
    let start = tokio::time::Instant::now();
    spawn();
    harness.ticks(4).await;
    assert_eq!(start.elapsed(), INTERVAL * 3);
}

#[tokio::test(start_paused = true)]
async fn deleted_host_is_forgotten() {
    let config = config(1, Threshold::Count(3), Duration::from_secs(300));
    let mut harness = started(&config, 3).await;
    harness.set(&hosts(&[2]), Down);
    harness.tick().await;
    assert_eq!(harness.notified_hosts(), hosts(&[2]));
    harness.source.remove(&host(2));
    harness.tick().await;
    assert!(
        harness.cancelled.is_empty(),
        "a confirmed failure is still delivered"
    );
    harness.source.set(&host(2), Down, Some(start_wall()));
    harness.tick().await;
    assert_eq!(harness.submitted.len(), 2, "a re-created Node starts fresh");
}
