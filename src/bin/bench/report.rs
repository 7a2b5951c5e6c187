//! Summaries over repeated runs: medians with min and max, printed as a table and as JSON.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::scenario::RunFigures;

/// Median, minimum and maximum of one figure over the runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// One row of the table: a figure at every fleet size.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub figure: &'static str,
    pub unit: &'static str,
    /// The target, as text, or empty.
    pub target: &'static str,
    /// One entry per fleet size, in the order of `Report::sizes`.
    pub values: Vec<Option<Spread>>,
}

/// The whole result: the summary table and every run's raw figures.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub sizes: Vec<usize>,
    pub rows: Vec<Row>,
    pub rates: Rates,
    pub conditions: Conditions,
    pub runs: Vec<RunFigures>,
}

/// The settings the runs were measured with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Conditions {
    pub runs: usize,
    pub interval_secs: u64,
    pub window_secs: u64,
    pub churn_percent_per_minute: f64,
    pub masakari_latency_ms: u64,
    pub bookmark_interval_secs: u64,
    pub node_bytes: usize,
}

/// Events per hour that the per-hour figures are computed from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Rates {
    pub watch_timeout_secs: u64,
    pub bookmark_interval_secs: u64,
    /// Watch streams the server ends per hour: 3600 / watch timeout.
    pub watch_restarts_per_hour: f64,
    /// BOOKMARK events per hour: 3600 / bookmark interval plus one at the end of each stream.
    pub bookmarks_per_hour: f64,
}

/// The inputs of a report, as `--output` writes them.
#[derive(Debug, Deserialize)]
pub struct SavedReport {
    pub sizes: Vec<usize>,
    pub rates: Rates,
    #[serde(default)]
    pub conditions: Conditions,
    pub runs: Vec<RunFigures>,
}

/// Extractor of a row's values from one run's figures. Most give one value per run, but the
/// detection latencies give one per host.
type Extract = fn(&RunFigures, &Rates) -> Vec<f64>;

impl Rates {
    pub fn new(watch_timeout_secs: u64, bookmark_interval_secs: u64) -> Rates {
        let restarts = 3600.0 / watch_timeout_secs.max(1) as f64;
        Rates {
            watch_timeout_secs,
            bookmark_interval_secs,
            watch_restarts_per_hour: restarts,
            bookmarks_per_hour: 3600.0 / bookmark_interval_secs.max(1) as f64 + restarts,
        }
    }
}

impl Spread {
    /// Returns `None` for no values. The median of an even count is the mean of the middle two.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        } else {
            sorted[middle]
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }
}

impl Report {
    pub fn new(
        sizes: Vec<usize>,
        runs: Vec<RunFigures>,
        rates: Rates,
        conditions: Conditions,
    ) -> Report {
        let rows = rows()
            .into_iter()
            .map(|(figure, unit, target, extract)| Row {
                figure,
                unit,
                target,
                values: sizes
                    .iter()
                    .map(|size| {
                        let values: Vec<f64> = runs
                            .iter()
                            .filter(|run| run.nodes == *size)
                            .flat_map(|run| extract(run, &rates))
                            .collect();
                        Spread::of(&values)
                    })
                    .collect(),
            })
            .collect();
        Report {
            sizes,
            rows,
            rates,
            conditions,
            runs,
        }
    }

    /// Renders the table: one column per fleet size, each cell `median (min–max)`.
    pub fn table(&self) -> String {
        let mut header = vec!["figure".to_owned(), "unit".to_owned()];
        header.extend(self.sizes.iter().map(|size| format!("{size} nodes")));
        header.push("target".to_owned());
        let mut lines = vec![header];
        for row in &self.rows {
            let mut cells = vec![row.figure.to_owned(), row.unit.to_owned()];
            cells.extend(row.values.iter().map(|value| match value {
                Some(spread) => format_spread(spread),
                None => "-".to_owned(),
            }));
            cells.push(row.target.to_owned());
            lines.push(cells);
        }
        render_columns(&lines)
    }

    /// Renders the table as a Markdown table, for docs/benchmarks.md.
    pub fn markdown(&self) -> String {
        let mut text = String::from("| figure | unit |");
        for size in &self.sizes {
            let _ = write!(text, " {size} nodes |");
        }
        text.push_str(" target |\n|---|---|");
        text.push_str(&"---:|".repeat(self.sizes.len()));
        text.push_str("---|\n");
        for row in &self.rows {
            let _ = write!(text, "| {} | {} |", row.figure, row.unit);
            for value in &row.values {
                let cell = value.as_ref().map_or_else(|| "-".to_owned(), format_spread);
                let _ = write!(text, " {cell} |");
            }
            let _ = writeln!(text, " {} |", row.target);
        }
        text
    }
}

fn rows() -> Vec<(&'static str, &'static str, &'static str, Extract)> {
    vec![
        ("start-up: spawn to initial list done", "s", "", |r, _| {
            vec![r.startup.list_seconds]
        }),
        ("start-up: spawn to first full tick", "s", "", |r, _| {
            vec![r.startup.seconds]
        }),
        ("start-up: list requests", "requests", "", |r, _| {
            vec![r.startup.list_requests as f64]
        }),
        ("start-up: bytes read", "MB", "", |r, _| {
            vec![r.startup.bytes as f64 / 1e6]
        }),
        ("steady: VmRSS", "MiB", "<= 64 at 10,000", |r, _| {
            vec![r.memory_steady.rss_mib]
        }),
        ("steady: VmHWM (peak since start)", "MiB", "", |r, _| {
            vec![r.memory_steady.hwm_mib]
        }),
        (
            "steady: CPU per tick (/proc/PID/stat)",
            "ms",
            "<= 10 at 10,000",
            |r, _| vec![r.steady.cpu_per_tick_ms],
        ),
        (
            "steady: CPU per tick (CPU-time clock)",
            "ms",
            "<= 10 at 10,000",
            |r, _| vec![r.steady.cpu_clock_per_tick_ms],
        ),
        (
            "steady: tick evaluation (histogram mean)",
            "ms",
            "",
            |r, _| vec![r.steady.tick_eval_ms],
        ),
        ("steady: ticks in window", "ticks", "", |r, _| {
            vec![r.steady.ticks]
        }),
        (
            "steady: list requests in window",
            "requests",
            "0",
            |r, _| vec![r.steady.list_requests as f64],
        ),
        (
            "steady: watch requests in window",
            "requests",
            "",
            |r, _| vec![r.steady.watch_requests as f64],
        ),
        ("steady: bytes read in window", "bytes", "", |r, _| {
            vec![r.steady.bytes as f64]
        }),
        (
            "steady: bytes per hour (extrapolated from window)",
            "KB/h",
            "",
            |r, _| vec![per_hour(r.steady.bytes as f64, r.steady.seconds) / 1e3],
        ),
        ("watch restart: list requests", "requests", "0", |r, _| {
            vec![r.rewatch.list_requests as f64]
        }),
        ("watch restart: watch requests", "requests", "", |r, _| {
            vec![r.rewatch.watch_requests as f64]
        }),
        (
            "watch restart: bytes (final BOOKMARK)",
            "bytes",
            "",
            |r, _| vec![r.rewatch.bytes as f64],
        ),
        (
            "steady: requests per hour (computed)",
            "requests/h",
            "",
            |r, rates| {
                let per_restart = (r.rewatch.watch_requests + r.rewatch.list_requests) as f64;
                vec![
                    per_hour(r.steady.list_requests as f64, r.steady.seconds)
                        + rates.watch_restarts_per_hour * per_restart,
                ]
            },
        ),
        (
            "steady: bytes per hour (computed)",
            "KB/h",
            "",
            |r, rates| vec![rates.bookmarks_per_hour * r.rewatch.bytes as f64 / 1e3],
        ),
        ("churn: Node updates applied", "per min", "", |r, _| {
            vec![per_minute(r.churn_updates as f64, r.churn.seconds)]
        }),
        ("churn: watch events applied", "per min", "", |r, _| {
            vec![per_minute(r.churn.watch_events, r.churn.seconds)]
        }),
        ("churn: watch bytes read", "KB/min", "", |r, _| {
            vec![per_minute(r.churn.bytes as f64, r.churn.seconds) / 1e3]
        }),
        ("churn: list requests in window", "requests", "0", |r, _| {
            vec![r.churn.list_requests as f64]
        }),
        ("churn: CPU per tick (/proc/PID/stat)", "ms", "", |r, _| {
            vec![r.churn.cpu_per_tick_ms]
        }),
        ("churn: CPU per tick (CPU-time clock)", "ms", "", |r, _| {
            vec![r.churn.cpu_clock_per_tick_ms]
        }),
        (
            "churn: tick evaluation (histogram mean)",
            "ms",
            "",
            |r, _| vec![r.churn.tick_eval_ms],
        ),
        (
            "detection: after Host failed log line",
            "ms",
            "<= 100",
            |r, _| r.detection.after_log_ms.clone(),
        ),
        ("detection: after tick start", "ms", "", |r, _| {
            r.detection.after_tick_start_ms.clone()
        }),
        (
            "mass failure: hosts failed in one tick",
            "hosts",
            "",
            |r, _| vec![r.mass_failure.hosts as f64],
        ),
        (
            "mass failure: notifications accepted",
            "hosts",
            "",
            |r, _| vec![r.mass_failure.accepted as f64],
        ),
        (
            "mass failure: ticks the failures spanned",
            "ticks",
            "1",
            |r, _| vec![r.mass_failure.ticks_spanned as f64],
        ),
        (
            "mass failure: all delivered, after log line",
            "s",
            "<= 5",
            |r, _| vec![r.mass_failure.seconds_after_log],
        ),
        (
            "mass failure: all delivered, after tick start",
            "s",
            "",
            |r, _| vec![r.mass_failure.seconds_after_tick_start],
        ),
        ("end of run: VmRSS", "MiB", "", |r, _| {
            vec![r.memory_end.rss_mib]
        }),
        ("end of run: VmHWM", "MiB", "", |r, _| {
            vec![r.memory_end.hwm_mib]
        }),
    ]
}

fn per_hour(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count * 3600.0 / seconds
    } else {
        0.0
    }
}

fn per_minute(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count * 60.0 / seconds
    } else {
        0.0
    }
}

fn format_spread(spread: &Spread) -> String {
    if spread.min == spread.max {
        format_number(spread.median)
    } else {
        format!(
            "{} ({}–{})",
            format_number(spread.median),
            format_number(spread.min),
            format_number(spread.max)
        )
    }
}

/// Three significant digits for small values, whole numbers from 100 up.
fn format_number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

fn render_columns(lines: &[Vec<String>]) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            lines
                .iter()
                .filter_map(|line| line.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for (index, line) in lines.iter().enumerate() {
        for (column, cell) in line.iter().enumerate() {
            let padding = widths[column] - cell.chars().count();
            let _ = write!(text, "{cell}{}  ", " ".repeat(padding));
        }
        text.truncate(text.trim_end().len());
        text.push('\n');
        if index == 0 {
            let rule: usize = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
            text.push_str(&"-".repeat(rule));
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_odd_and_even_counts() {
        assert_eq!(
            Spread::of(&[3.0, 1.0, 2.0]),
            Some(Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(
            Spread::of(&[4.0, 1.0, 2.0, 3.0]).map(|s| s.median),
            Some(2.5)
        );
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
    }

    #[test]
    fn numbers_formatted_by_magnitude() {
        assert_eq!(format_number(1234.56), "1235");
        assert_eq!(format_number(12.345), "12.3");
        assert_eq!(format_number(1.2345), "1.23");
        assert_eq!(format_number(0.12345), "0.123");
        assert_eq!(format_number(3.0), "3");
    }

    #[test]
    fn markdown_has_a_cell_per_size() {
        let report = Report {
            sizes: vec![10, 20],
            rows: vec![Row {
                figure: "steady: VmRSS",
                unit: "MiB",
                target: "<= 64",
                values: vec![Spread::of(&[1.0, 2.0, 3.0]), None],
            }],
            rates: Rates::new(290, 60),
            conditions: Conditions::default(),
            runs: Vec::new(),
        };
        assert_eq!(
            report.markdown(),
            "| figure | unit | 10 nodes | 20 nodes | target |\n\
             |---|---|---:|---:|---|\n\
             | steady: VmRSS | MiB | 2 (1–3) | - | <= 64 |\n"
        );
    }

    #[test]
    fn columns_aligned() {
        let lines = vec![
            vec!["a".to_owned(), "bb".to_owned()],
            vec!["ccc".to_owned(), "d".to_owned()],
        ];
        assert_eq!(render_columns(&lines), "a    bb\n-------\nccc  d\n");
    }
}
