//! The summary as text for a terminal.

use std::fmt::Write as _;
use std::time::Duration;

use super::{HostFailure, Outcome, Summary};
use crate::simulate::scenario::format_offset;

impl Summary {
    /// Renders the summary as text for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Scenario {}: {}, {} on the {} clock, {} evaluated",
            self.scenario,
            plural(self.nodes, "node"),
            format_offset(self.duration),
            self.clock,
            plural(self.ticks, "tick"),
        );
        self.render_events(&mut out);
        self.render_failures(&mut out);
        self.render_breaker(&mut out);
        self.render_notifications(&mut out);
        self.render_expectations(&mut out);
        out
    }

    fn render_events(&self, out: &mut String) {
        let _ = writeln!(out, "\nEvents");
        if self.events.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for event in &self.events {
            let _ = writeln!(
                out,
                "  {:>9}  {}",
                format_offset(event.at),
                event.description
            );
        }
    }

    fn render_failures(&self, out: &mut String) {
        let _ = writeln!(out, "\nHost failures");
        if self.failures.is_empty() {
            let _ = writeln!(out, "  none");
            return;
        }
        let header = [
            "host",
            "cause",
            "failed",
            "declared",
            "notified",
            "detection",
            "outcome",
        ];
        let rows: Vec<[String; 7]> = self
            .failures
            .iter()
            .map(|f| {
                [
                    f.host.clone(),
                    f.cause.clone(),
                    offset_or_dash(f.failed_at),
                    offset_or_dash(f.declared_failed_at),
                    offset_or_dash(f.notified_at),
                    offset_or_dash(f.detection_delay),
                    outcome_text(f),
                ]
            })
            .collect();
        render_table(out, header, &rows);
    }

    fn render_breaker(&self, out: &mut String) {
        let _ = writeln!(out, "\nCircuit breaker");
        if self.breaker.is_empty() {
            let _ = writeln!(out, "  never opened");
        }
        for record in &self.breaker {
            let _ = writeln!(
                out,
                "  {:>9}  {} ({} down, threshold {}, {} monitored)",
                format_offset(record.at),
                record.state,
                record.down,
                record.threshold,
                record.monitored,
            );
        }
    }

    fn render_notifications(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\nMasakari: {} accepted, {} received",
            plural(self.accepted().count(), "notification"),
            plural(self.masakari_requests, "request"),
        );
        for notification in &self.notifications {
            let _ = writeln!(
                out,
                "  {:>9}  {}  {}",
                format_offset(notification.at),
                notification.host,
                notification.status,
            );
        }
    }

    fn render_expectations(&self, out: &mut String) {
        if self.expectations.is_empty() {
            return;
        }
        let _ = writeln!(out, "\nExpectations");
        for result in &self.expectations {
            let mark = if result.passed { "PASS" } else { "FAIL" };
            let _ = writeln!(out, "  {mark}  {}: {}", result.expectation, result.detail);
        }
        let passed = self.expectations.iter().filter(|e| e.passed).count();
        let _ = writeln!(
            out,
            "{passed} of {} expectations passed",
            self.expectations.len()
        );
    }
}

fn outcome_text(failure: &HostFailure) -> String {
    let mut text = failure.outcome.describe().to_owned();
    if let (Some(held), Outcome::Held | Outcome::Notified) = (failure.held_at, failure.outcome) {
        let _ = write!(text, " (held at {})", format_offset(held));
    }
    if let Some(recovered) = failure.recovered_at {
        let _ = write!(text, ", up at {}", format_offset(recovered));
    }
    if failure.outcome == Outcome::Rejected {
        let answers: Vec<String> = failure.answers.iter().map(u16::to_string).collect();
        let _ = write!(text, " (responses {})", answers.join(", "));
    }
    text
}

fn render_table<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("  {}", padded.join("  ").trim_end())
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// `1 notification`, `2 notifications`.
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn offset_or_dash(offset: Option<Duration>) -> String {
    offset.map_or_else(|| "-".to_owned(), format_offset)
}
