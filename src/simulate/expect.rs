//! Checks a scenario's `[[expect]]` entries against the summary of its run.

use std::time::Duration;

use serde::Serialize;

use super::scenario::{Expectation, format_offset};
use super::summary::{Summary, plural};

/// One checked expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectationResult {
    /// The expectation in words, such as `compute-3 notified within 1m of its failure`.
    pub expectation: String,
    pub passed: bool,
    /// The observation behind the result.
    pub detail: String,
}

/// Checks every expectation, in order.
pub fn check_all(expectations: &[Expectation], summary: &Summary) -> Vec<ExpectationResult> {
    expectations
        .iter()
        .map(|expectation| {
            let (passed, detail) = check(expectation, summary);
            ExpectationResult {
                expectation: describe(expectation),
                passed,
                detail,
            }
        })
        .collect()
}

/// Describes the expectation in words.
pub fn describe(expectation: &Expectation) -> String {
    match expectation {
        Expectation::Notified {
            host,
            within,
            by,
            times,
        } => {
            let mut text = format!("{host} notified");
            if let Some(times) = times {
                text.push_str(&format!(" exactly {}", plural(*times, "time")));
            }
            if let Some(within) = within {
                text.push_str(&format!(
                    " within {} of its failure",
                    format_offset(*within)
                ));
            }
            if let Some(by) = by {
                text.push_str(&format!(" by {}", format_offset(*by)));
            }
            text
        }
        Expectation::NotNotified { host } => format!("{host} not notified"),
        Expectation::Notifications { count } => {
            format!("exactly {} accepted", plural(*count, "notification"))
        }
        Expectation::BreakerOpens { by } => with_by("breaker opens", *by),
        Expectation::BreakerCloses { by } => with_by("breaker closes", *by),
        Expectation::BreakerStaysClosed => "breaker stays closed".to_owned(),
    }
}

fn with_by(text: &str, by: Option<Duration>) -> String {
    match by {
        Some(by) => format!("{text} by {}", format_offset(by)),
        None => text.to_owned(),
    }
}

fn check(expectation: &Expectation, summary: &Summary) -> (bool, String) {
    match expectation {
        Expectation::Notified {
            host,
            within,
            by,
            times,
        } => check_notified(summary, host, *within, *by, *times),
        Expectation::NotNotified { host } => {
            let requests: Vec<String> = summary
                .notifications
                .iter()
                .filter(|n| &n.host == host)
                .map(|n| format!("{} at {}", n.status, format_offset(n.at)))
                .collect();
            if requests.is_empty() {
                (true, "Masakari received no notification for it".to_owned())
            } else {
                (false, format!("Masakari received {}", requests.join(", ")))
            }
        }
        Expectation::Notifications { count } => {
            let accepted: Vec<&str> = summary.accepted().map(|n| n.host.as_str()).collect();
            let detail = if accepted.is_empty() {
                "none accepted".to_owned()
            } else {
                format!("{} accepted ({})", accepted.len(), accepted.join(", "))
            };
            (accepted.len() == *count, detail)
        }
        Expectation::BreakerOpens { by } => check_breaker(summary, "opened", *by),
        Expectation::BreakerCloses { by } => check_breaker(summary, "closed", *by),
        Expectation::BreakerStaysClosed => match summary.breaker.first() {
            None => (true, "it never opened".to_owned()),
            Some(first) => (false, format!("it opened at {}", format_offset(first.at))),
        },
    }
}

fn check_notified(
    summary: &Summary,
    host: &str,
    within: Option<Duration>,
    by: Option<Duration>,
    times: Option<usize>,
) -> (bool, String) {
    let accepted: Vec<Duration> = summary
        .accepted()
        .filter(|n| n.host == host)
        .map(|n| n.at)
        .collect();
    let Some(&first) = accepted.first() else {
        let answers: Vec<String> = summary
            .notifications
            .iter()
            .filter(|n| n.host == host)
            .map(|n| n.status.to_string())
            .collect();
        let detail = if answers.is_empty() {
            "Masakari received no notification for it".to_owned()
        } else {
            format!(
                "Masakari accepted none, it responded {}",
                answers.join(", ")
            )
        };
        return (false, detail);
    };

    let mut problems = Vec::new();
    let mut detail = format!("accepted at {}", format_offset(first));
    if let Some(by) = by
        && first > by
    {
        problems.push(format!("later than {}", format_offset(by)));
    }
    if let Some(within) = within {
        let failure = summary
            .failures
            .iter()
            .find(|f| f.host == host && f.notified_at == Some(first));
        match failure.and_then(|f| f.notification_delay) {
            Some(delay) => {
                detail.push_str(&format!(", {} after its failure", format_offset(delay)));
                if delay > within {
                    problems.push(format!("more than {} after it", format_offset(within)));
                }
            }
            None => problems.push("no scenario event took the host down before it".to_owned()),
        }
    }
    if let Some(times) = times
        && accepted.len() != times
    {
        problems.push(format!("accepted {}", plural(accepted.len(), "time")));
    }

    if problems.is_empty() {
        (true, detail)
    } else {
        (false, format!("{detail}: {}", problems.join("; ")))
    }
}

fn check_breaker(summary: &Summary, state: &str, by: Option<Duration>) -> (bool, String) {
    let Some(record) = summary.breaker.iter().find(|r| r.state == state) else {
        return (false, format!("it never {state}"));
    };
    let detail = format!("{state} at {}", format_offset(record.at));
    match by {
        Some(by) if record.at > by => {
            (false, format!("{detail}, later than {}", format_offset(by)))
        }
        _ => (true, detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::summary::{BreakerRecord, HostFailure, NotificationRecord, Outcome};

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    fn notification(at: u64, host: &str, status: u16) -> NotificationRecord {
        NotificationRecord {
            at: secs(at),
            host: host.to_owned(),
            status,
            notification_uuid: None,
        }
    }

    /// compute-0 failed at 60 s and was notified at 100 s; compute-1 got a 500; the breaker
    /// opened at 200 s and never closed.
    fn summary() -> Summary {
        let failure = HostFailure {
            host: "compute-0".to_owned(),
            cause: "Ready=Unknown".to_owned(),
            failed_at: Some(secs(60)),
            recovered_at: None,
            declared_failed_at: Some(secs(90)),
            held_at: None,
            suppressed_at_startup: None,
            notified_at: Some(secs(100)),
            detection_delay: Some(secs(30)),
            notification_delay: Some(secs(40)),
            answers: vec![202],
            outcome: Outcome::Notified,
        };
        Summary {
            scenario: "test".to_owned(),
            clock: "virtual",
            duration: secs(600),
            nodes: 3,
            ticks: 60,
            events: Vec::new(),
            failures: vec![failure],
            breaker: vec![BreakerRecord {
                at: secs(200),
                state: "opened",
                down: 2,
                threshold: 2,
                monitored: 3,
            }],
            notifications: vec![
                notification(100, "compute-0", 202),
                notification(150, "compute-1", 500),
            ],
            masakari_requests: 2,
            expectations: Vec::new(),
        }
    }

    fn notified(within: Option<u64>, by: Option<u64>, times: Option<usize>) -> Expectation {
        Expectation::Notified {
            host: "compute-0".to_owned(),
            within: within.map(secs),
            by: by.map(secs),
            times,
        }
    }

    fn result(expectation: Expectation) -> ExpectationResult {
        check_all(&[expectation], &summary()).remove(0)
    }

    #[test]
    fn notified_limits() {
        assert!(result(notified(Some(40), Some(100), Some(1))).passed);
        let late = result(notified(Some(39), None, None));
        assert!(!late.passed);
        assert!(
            late.detail.contains("more than 39s after it"),
            "{}",
            late.detail
        );
        let after_by = result(notified(None, Some(99), None));
        assert!(
            after_by.detail.contains("later than 1m39s"),
            "{}",
            after_by.detail
        );
        let twice = result(notified(None, None, Some(2)));
        assert!(!twice.passed);
        assert!(twice.detail.contains("accepted 1 time"), "{}", twice.detail);
    }

    #[test]
    fn notified_fails_on_error_responses() {
        let outcome = result(Expectation::Notified {
            host: "compute-1".to_owned(),
            within: None,
            by: None,
            times: None,
        });
        assert!(!outcome.passed);
        assert_eq!(outcome.detail, "Masakari accepted none, it responded 500");
    }

    #[test]
    fn not_notified_counts_any_request() {
        let rejected = result(Expectation::NotNotified {
            host: "compute-1".to_owned(),
        });
        assert!(!rejected.passed);
        let untouched = result(Expectation::NotNotified {
            host: "compute-2".to_owned(),
        });
        assert!(untouched.passed);
    }

    #[test]
    fn notification_count() {
        assert!(result(Expectation::Notifications { count: 1 }).passed);
        assert!(!result(Expectation::Notifications { count: 2 }).passed);
    }

    #[test]
    fn breaker_expectations() {
        assert!(
            result(Expectation::BreakerOpens {
                by: Some(secs(200))
            })
            .passed
        );
        assert!(
            !result(Expectation::BreakerOpens {
                by: Some(secs(199))
            })
            .passed
        );
        let closes = result(Expectation::BreakerCloses { by: None });
        assert!(!closes.passed);
        assert_eq!(closes.detail, "it never closed");
        assert!(!result(Expectation::BreakerStaysClosed).passed);
    }

    #[test]
    fn descriptions_read_as_sentences() {
        assert_eq!(
            describe(&notified(Some(45), Some(600), Some(1))),
            "compute-0 notified exactly 1 time within 45s of its failure by 10m0s"
        );
        assert_eq!(
            describe(&Expectation::Notifications { count: 2 }),
            "exactly 2 notifications accepted"
        );
        assert_eq!(
            describe(&Expectation::BreakerCloses {
                by: Some(secs(420))
            }),
            "breaker closes by 7m0s"
        );
    }
}
