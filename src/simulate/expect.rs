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
            format!("Masakari accepted none, it answered {}", answers.join(", "))
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
