//! Failure detector: decides, host by host, when a host is `Failed`.
//!
//! A host is `Failed` when its last `monitoring_samples` readings are all `Down`. Decisions are
//! edge-triggered: entering `Failed` produces one decision, staying there produces none, and one
//! `Up` reading makes the host healthy again. The detector is synchronous; the monitor loop feeds
//! it one reading per host per tick and acts on what it returns.

use std::time::Duration;

use jiff::Timestamp;

use crate::node_source::{HostSample, Reading};
use crate::window::Window;

/// A host's position in its failure episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No reading other than `NoData` yet, so the start-up rule has not been applied.
    Unseen,
    /// Monitored: healthy, or collecting `Down` readings.
    Watching,
    /// Found down when first seen, too long ago or never posted status: not notified until the
    /// host has been seen `Up`.
    Suppressed,
    /// Failed and handed to delivery.
    Failed { generated_time: Timestamp },
    /// Failed while the circuit breaker was open: not handed to delivery.
    Held { generated_time: Timestamp },
}

/// The reason a host found down when first seen is not notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupReason {
    /// The kubelet never posted status (`NodeStatusNeverUpdated`): the host never ran anything.
    NeverUpdated,
    /// The Ready condition left `True` at this time, longer ago than the start-up horizon.
    DownSince(Timestamp),
    /// The Ready condition has no `lastTransitionTime`, so how long it has been down is unknown.
    DownSinceUnknown,
}

/// The detector's decision for one host at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// The host entered `Failed`; the caller sends a notification.
    Failed { generated_time: Timestamp },
    /// The host entered `Failed` while the breaker is open; nothing is sent.
    Held,
    /// A notified host read `Up`; any pending notification must be cancelled.
    Recovered,
    /// A held host read `Up` before the breaker closed; it is dropped.
    RecoveredWhileHeld,
    /// A host found down when first seen will not be notified for this episode.
    DownAtStartup(StartupReason),
    /// A suppressed host read `Up`; from now on it is monitored as usual.
    UpAfterStartupDown,
}

/// One host's detector state.
#[derive(Debug, Clone)]
pub struct HostTrack {
    uid: String,
    window: Window,
    phase: Phase,
}

/// Settings the detector needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct DetectorSettings {
    pub samples: usize,
    pub startup_down_horizon: Duration,
}

impl HostTrack {
    pub fn new(uid: &str, samples: usize) -> Self {
        HostTrack {
            uid: uid.to_owned(),
            window: Window::new(samples),
            phase: Phase::Unseen,
        }
    }

    /// Creates the track of a Node re-created under the name of a failed host. The track keeps
    /// the failure, so its first `Up` reading cancels the pending notification and its `Down`
    /// readings do not notify again.
    pub fn replacing(uid: &str, samples: usize, previous: &HostTrack) -> Self {
        let mut track = HostTrack::new(uid, samples);
        if let Phase::Failed { generated_time } = previous.phase {
            track.phase = Phase::Failed { generated_time };
        }
        track
    }

    pub fn uid(&self) -> &str {
        &self.uid
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn latest(&self) -> Option<Reading> {
        self.window.latest()
    }

    /// Records this tick's reading in the window. Call before [`HostTrack::evaluate`].
    pub fn push(&mut self, reading: Reading) {
        self.window.push(reading);
    }

    /// Moves a held host back to monitoring with an empty window, so that it needs a full
    /// window of fresh `Down` readings before it fails again. Returns false for other phases.
    pub fn release(&mut self) -> bool {
        if !matches!(self.phase, Phase::Held { .. }) {
            return false;
        }
        self.window.clear();
        self.phase = Phase::Watching;
        true
    }

    /// Applies the phase rules to the reading pushed this tick.
    pub fn evaluate(
        &mut self,
        sample: &HostSample,
        settings: DetectorSettings,
        breaker_open: bool,
        now: Timestamp,
    ) -> Option<HostEvent> {
        let reading = sample.reading;
        match self.phase {
            Phase::Unseen => self.first_seen(sample, settings, breaker_open, now),
            Phase::Suppressed if reading == Reading::Up => {
                self.phase = Phase::Watching;
                Some(HostEvent::UpAfterStartupDown)
            }
            Phase::Suppressed => None,
            Phase::Watching => self.fail_if_down(breaker_open, now),
            Phase::Failed { .. } if reading == Reading::Up => {
                self.phase = Phase::Watching;
                Some(HostEvent::Recovered)
            }
            Phase::Held { .. } if reading == Reading::Up => {
                self.phase = Phase::Watching;
                Some(HostEvent::RecoveredWhileHeld)
            }
            Phase::Failed { .. } | Phase::Held { .. } => None,
        }
    }

    fn first_seen(
        &mut self,
        sample: &HostSample,
        settings: DetectorSettings,
        breaker_open: bool,
        now: Timestamp,
    ) -> Option<HostEvent> {
        match sample.reading {
            Reading::NoData => None,
            Reading::Up => {
                self.phase = Phase::Watching;
                None
            }
            Reading::Down => {
                match startup_suppression(sample, settings.startup_down_horizon, now) {
                    Some(reason) => {
                        self.phase = Phase::Suppressed;
                        Some(HostEvent::DownAtStartup(reason))
                    }
                    None => {
                        self.phase = Phase::Watching;
                        self.fail_if_down(breaker_open, now)
                    }
                }
            }
        }
    }

    fn fail_if_down(&mut self, breaker_open: bool, now: Timestamp) -> Option<HostEvent> {
        if !self.window.all_down() {
            return None;
        }
        if breaker_open {
            self.phase = Phase::Held {
                generated_time: now,
            };
            Some(HostEvent::Held)
        } else {
            self.phase = Phase::Failed {
                generated_time: now,
            };
            Some(HostEvent::Failed {
                generated_time: now,
            })
        }
    }
}

/// Returns why a host that reads `Down` when first seen must not be notified, or `None` when
/// its Ready condition left `True` within `horizon` of `now`.
pub fn startup_suppression(
    sample: &HostSample,
    horizon: Duration,
    now: Timestamp,
) -> Option<StartupReason> {
    if sample.never_updated {
        return Some(StartupReason::NeverUpdated);
    }
    let Some(since) = sample.ready_since else {
        return Some(StartupReason::DownSinceUnknown);
    };
    let down_for = now.duration_since(since);
    // A transition time in the future (clock skew) counts as recent.
    match jiff::SignedDuration::try_from(horizon) {
        Ok(limit) if down_for > limit => Some(StartupReason::DownSince(since)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Reading::{Down, NoData, Up};

    const SETTINGS: DetectorSettings = DetectorSettings {
        samples: 3,
        startup_down_horizon: Duration::from_secs(600),
    };

    fn now() -> Timestamp {
        "2026-12-04T10:00:00Z".parse().expect("valid timestamp")
    }

    fn sample(reading: Reading) -> HostSample {
        HostSample {
            host: "compute-0".to_owned(),
            uid: "uid-0".to_owned(),
            reading,
            ready_since: Some(now() - jiff::SignedDuration::from_secs(120)),
            never_updated: false,
        }
    }

    /// Feeds readings one per tick and returns the events in order.
    fn feed(track: &mut HostTrack, readings: &[Reading], breaker_open: bool) -> Vec<HostEvent> {
        let mut events = Vec::new();
        for reading in readings {
            track.push(*reading);
            if let Some(event) = track.evaluate(&sample(*reading), SETTINGS, breaker_open, now()) {
                events.push(event);
            }
        }
        events
    }

    fn failed() -> HostEvent {
        HostEvent::Failed {
            generated_time: now(),
        }
    }

    #[test]
    fn fails_after_n_downs() {
        let mut track = HostTrack::new("uid-0", 3);
        assert_eq!(feed(&mut track, &[Up, Down, Down], false), vec![]);
        assert_eq!(feed(&mut track, &[Down], false), vec![failed()]);
    }

    #[test]
    fn failure_is_edge_triggered() {
        let mut track = HostTrack::new("uid-0", 3);
        let events = feed(&mut track, &[Up, Down, Down, Down, Down, Down, Down], false);
        assert_eq!(events, vec![failed()]);
    }

    #[test]
    fn up_recovers_and_next_failure_notifies_again() {
        let mut track = HostTrack::new("uid-0", 2);
        let events = feed(&mut track, &[Up, Down, Down, Up, Down, Down], false);
        assert_eq!(events, vec![failed(), HostEvent::Recovered, failed()]);
    }

    #[test]
    fn no_data_breaks_a_run() {
        let mut track = HostTrack::new("uid-0", 3);
        assert_eq!(
            feed(&mut track, &[Up, Down, Down, NoData, Down, Down], false),
            vec![]
        );
        assert_eq!(feed(&mut track, &[Down], false), vec![failed()]);
    }

    #[test]
    fn no_data_does_not_recover_failed_host() {
        let mut track = HostTrack::new("uid-0", 1);
        let events = feed(&mut track, &[Up, Down, NoData, NoData, Down], false);
        assert_eq!(events, vec![failed()]);
        assert!(matches!(track.phase(), Phase::Failed { .. }));
    }

    #[test]
    fn flapping_never_fails() {
        let mut track = HostTrack::new("uid-0", 3);
        let flapping = [
            Up, Down, Down, Up, Down, Down, Up, Down, Down, Up, Down, Down, Up,
        ];
        assert_eq!(feed(&mut track, &flapping, false), vec![]);
    }

    #[test]
    fn open_breaker_holds_instead_of_failing() {
        let mut track = HostTrack::new("uid-0", 2);
        assert_eq!(
            feed(&mut track, &[Up, Down, Down], true),
            vec![HostEvent::Held]
        );
        assert_eq!(feed(&mut track, &[Down], true), vec![]);
    }

    #[test]
    fn release_needs_fresh_readings() {
        let mut track = HostTrack::new("uid-0", 2);
        feed(&mut track, &[Up, Down, Down], true);
        assert!(track.release());
        assert_eq!(feed(&mut track, &[Down], false), vec![]);
        assert_eq!(feed(&mut track, &[Down], false), vec![failed()]);
    }

    #[test]
    fn release_ignores_other_phases() {
        let mut track = HostTrack::new("uid-0", 2);
        feed(&mut track, &[Up, Down], false);
        assert!(!track.release());
        assert_eq!(feed(&mut track, &[Down], false), vec![failed()]);
    }

    #[test]
    fn held_host_recovering_is_dropped() {
        let mut track = HostTrack::new("uid-0", 1);
        let events = feed(&mut track, &[Up, Down, Up], true);
        assert_eq!(events, vec![HostEvent::Held, HostEvent::RecoveredWhileHeld]);
        assert_eq!(track.phase(), Phase::Watching);
    }

    #[test]
    fn first_seen_recently_down_is_notified() {
        let mut track = HostTrack::new("uid-0", 3);
        assert_eq!(feed(&mut track, &[Down, Down, Down], false), vec![failed()]);
    }

    #[test]
    fn first_seen_down_for_days_is_suppressed() {
        let mut track = HostTrack::new("uid-0", 1);
        let mut old = sample(Down);
        let since = now() - jiff::SignedDuration::from_hours(72);
        old.ready_since = Some(since);
        track.push(Down);
        let event = track.evaluate(&old, SETTINGS, false, now());
        assert_eq!(
            event,
            Some(HostEvent::DownAtStartup(StartupReason::DownSince(since)))
        );
        assert_eq!(feed(&mut track, &[Down, Down, Down], false), vec![]);
        assert_eq!(
            feed(&mut track, &[Up], false),
            vec![HostEvent::UpAfterStartupDown]
        );
        assert_eq!(feed(&mut track, &[Down], false), vec![failed()]);
    }

    #[test]
    fn never_updated_node_is_suppressed() {
        let mut track = HostTrack::new("uid-0", 1);
        let mut never = sample(Down);
        never.never_updated = true;
        never.ready_since = Some(now());
        track.push(Down);
        assert_eq!(
            track.evaluate(&never, SETTINGS, false, now()),
            Some(HostEvent::DownAtStartup(StartupReason::NeverUpdated))
        );
    }

    #[test]
    fn unknown_transition_time_is_suppressed() {
        let mut no_time = sample(Down);
        no_time.ready_since = None;
        assert_eq!(
            startup_suppression(&no_time, SETTINGS.startup_down_horizon, now()),
            Some(StartupReason::DownSinceUnknown)
        );
    }

    #[test]
    fn horizon_boundary() {
        let horizon = Duration::from_secs(600);
        let mut at_limit = sample(Down);
        at_limit.ready_since = Some(now() - jiff::SignedDuration::from_secs(600));
        assert_eq!(startup_suppression(&at_limit, horizon, now()), None);
        at_limit.ready_since = Some(now() - jiff::SignedDuration::from_secs(601));
        assert!(startup_suppression(&at_limit, horizon, now()).is_some());
    }

    #[test]
    fn future_transition_time_counts_as_recent() {
        let mut skewed = sample(Down);
        skewed.ready_since = Some(now() + jiff::SignedDuration::from_secs(30));
        assert_eq!(
            startup_suppression(&skewed, Duration::from_secs(600), now()),
            None
        );
    }

    #[test]
    fn first_readings_no_data_defer_startup_rule() {
        let mut track = HostTrack::new("uid-0", 1);
        assert_eq!(feed(&mut track, &[NoData, NoData], false), vec![]);
        assert_eq!(track.phase(), Phase::Unseen);
        assert_eq!(feed(&mut track, &[Down], false), vec![failed()]);
    }
}
