//! Circuit breaker: suspends evacuation while too many hosts are down at once.
//!
//! `down_count` is the number of monitored hosts whose latest reading is `Down`. The breaker
//! opens when `down_count >= threshold` and closes only after `down_count < threshold` has held
//! continuously for the stabilisation period. A single down host never opens it.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{BreakerSection, Threshold};

/// The breaker's decision state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    /// Open; `below_since` is when `down_count` last dropped below the threshold, if it is below.
    Open {
        below_since: Option<Instant>,
    },
}

/// A change of breaker state, with the figures that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened {
        down: usize,
        threshold: usize,
        monitored: usize,
    },
    Closed {
        down: usize,
        threshold: usize,
        monitored: usize,
        stable_for: Duration,
    },
}

/// The fleet-wide circuit breaker. Synchronous: the caller passes `now`.
#[derive(Debug, Clone)]
pub struct Breaker {
    enabled: bool,
    threshold: Threshold,
    stabilization_period: Duration,
    state: State,
}

impl Breaker {
    pub fn new(config: &BreakerSection) -> Self {
        Breaker {
            enabled: config.enabled,
            threshold: config.threshold,
            stabilization_period: config.stabilization_period,
            state: State::Closed,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    /// Feeds one tick's counts and returns the transition it caused, if any.
    pub fn evaluate(&mut self, down: usize, monitored: usize, now: Instant) -> Option<Transition> {
        if !self.enabled {
            return None;
        }
        let threshold = effective_threshold(self.threshold, monitored);
        let at_threshold = down >= threshold;

        match self.state {
            State::Closed if at_threshold => {
                self.state = State::Open { below_since: None };
                Some(Transition::Opened {
                    down,
                    threshold,
                    monitored,
                })
            }
            State::Closed => None,
            State::Open { .. } if at_threshold => {
                self.state = State::Open { below_since: None };
                None
            }
            State::Open { below_since: None } => {
                self.state = State::Open {
                    below_since: Some(now),
                };
                self.close_if_stable(down, threshold, monitored, now)
            }
            State::Open { .. } => self.close_if_stable(down, threshold, monitored, now),
        }
    }

    fn close_if_stable(
        &mut self,
        down: usize,
        threshold: usize,
        monitored: usize,
        now: Instant,
    ) -> Option<Transition> {
        let State::Open {
            below_since: Some(since),
        } = self.state
        else {
            return None;
        };
        let stable_for = now.duration_since(since);
        if stable_for < self.stabilization_period {
            return None;
        }
        self.state = State::Closed;
        Some(Transition::Closed {
            down,
            threshold,
            monitored,
            stable_for,
        })
    }
}

/// Computes the number of down hosts that opens the breaker for a fleet of `monitored` hosts.
///
/// A percentage is rounded up. The result is never below 2, so one down host never opens it.
pub fn effective_threshold(threshold: Threshold, monitored: usize) -> usize {
    let raw = match threshold {
        Threshold::Count(count) => count,
        Threshold::Percent(percent) => (monitored * usize::from(percent)).div_ceil(100),
    };
    raw.max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: Threshold, stabilization_secs: u64) -> Breaker {
        Breaker::new(&BreakerSection {
            enabled: true,
            threshold,
            stabilization_period: Duration::from_secs(stabilization_secs),
        })
    }

    #[test]
    fn percent_threshold_small_and_large_fleets() {
        let half = Threshold::Percent(50);
        // (monitored, expected threshold)
        let cases = [
            (0, 2),
            (1, 2),
            (2, 2),
            (3, 2),
            (10, 5),
            (11, 6),
            (1_000, 500),
        ];
        for (monitored, expected) in cases {
            assert_eq!(
                effective_threshold(half, monitored),
                expected,
                "50% of {monitored}"
            );
        }
    }

    #[test]
    fn percent_threshold_rounds_up() {
        assert_eq!(effective_threshold(Threshold::Percent(10), 1_001), 101);
        assert_eq!(effective_threshold(Threshold::Percent(1), 1_000), 10);
        assert_eq!(effective_threshold(Threshold::Percent(100), 3), 3);
        assert_eq!(effective_threshold(Threshold::Percent(34), 3), 2);
    }

    #[test]
    fn count_threshold_never_below_two() {
        assert_eq!(effective_threshold(Threshold::Count(1), 10), 2);
        assert_eq!(effective_threshold(Threshold::Count(0), 10), 2);
        assert_eq!(effective_threshold(Threshold::Count(5), 3), 5);
    }

    #[test]
    fn single_down_host_never_opens() {
        let mut breaker = breaker(Threshold::Percent(50), 300);
        let now = Instant::now();
        assert_eq!(breaker.evaluate(1, 1, now), None);
        assert_eq!(breaker.evaluate(1, 2, now), None);
        assert!(!breaker.is_open());
    }

    #[test]
    fn breaker_opens_at_threshold() {
        let mut breaker = breaker(Threshold::Count(3), 300);
        let now = Instant::now();
        assert_eq!(breaker.evaluate(2, 12, now), None);
        assert_eq!(
            breaker.evaluate(3, 12, now),
            Some(Transition::Opened {
                down: 3,
                threshold: 3,
                monitored: 12
            })
        );
        assert!(breaker.is_open());
    }

    #[test]
    fn breaker_closes_after_stabilization() {
        let mut breaker = breaker(Threshold::Count(3), 300);
        let start = Instant::now();
        breaker.evaluate(4, 12, start);
        let below = start + Duration::from_secs(60);
        assert_eq!(breaker.evaluate(0, 12, below), None);
        assert_eq!(
            breaker.evaluate(0, 12, below + Duration::from_secs(299)),
            None
        );
        assert!(breaker.is_open());
        let closed = breaker.evaluate(1, 12, below + Duration::from_secs(300));
        assert_eq!(
            closed,
            Some(Transition::Closed {
                down: 1,
                threshold: 3,
                monitored: 12,
                stable_for: Duration::from_secs(300)
            })
        );
        assert!(!breaker.is_open());
    }

    #[test]
    fn return_to_threshold_restarts_wait() {
        let mut breaker = breaker(Threshold::Count(3), 300);
        let start = Instant::now();
        breaker.evaluate(3, 12, start);
        breaker.evaluate(2, 12, start + Duration::from_secs(10));
        breaker.evaluate(3, 12, start + Duration::from_secs(200));
        breaker.evaluate(2, 12, start + Duration::from_secs(210));
        assert_eq!(
            breaker.evaluate(2, 12, start + Duration::from_secs(320)),
            None
        );
        assert!(breaker.is_open(), "wait restarted at 210 s");
        assert!(matches!(
            breaker.evaluate(2, 12, start + Duration::from_secs(510)),
            Some(Transition::Closed { .. })
        ));
    }

    #[test]
    fn zero_stabilization_closes_on_first_tick_below() {
        let mut breaker = breaker(Threshold::Count(2), 0);
        let now = Instant::now();
        breaker.evaluate(2, 4, now);
        assert!(matches!(
            breaker.evaluate(1, 4, now),
            Some(Transition::Closed { .. })
        ));
    }

    #[test]
    fn disabled_breaker_never_opens() {
        let mut breaker = Breaker::new(&BreakerSection {
            enabled: false,
            threshold: Threshold::Count(2),
            stabilization_period: Duration::from_secs(300),
        });
        assert_eq!(breaker.evaluate(100, 100, Instant::now()), None);
        assert!(!breaker.is_open());
    }

    #[test]
    fn threshold_follows_fleet_size() {
        let mut breaker = breaker(Threshold::Percent(50), 0);
        let now = Instant::now();
        assert_eq!(breaker.evaluate(3, 10, now), None);
        assert!(matches!(
            breaker.evaluate(3, 6, now),
            Some(Transition::Opened { threshold: 3, .. })
        ));
    }
}
