//! Benchmark of the real `masakari-hostmonitor` binary: memory, CPU per tick, load on the
//! Kubernetes API server, detection latency and delivery of a mass failure.
//!
//! This process runs the fake Kubernetes API server (with Nodes of realistic size) and the fake
//! Keystone and Masakari on 127.0.0.1, and starts the monitor as a child process, so the fakes'
//! memory and CPU are not counted against it. Build the monitor first with
//! `cargo build --release`; this program looks for it next to itself.
//!
//! ```text
//! cargo build --release
//! cargo run --release --bin bench -- --nodes 1000,5000,10000 --runs 3 --output bench.json
//! ```

mod fleet;
mod process;
mod report;
mod scenario;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use masakari_hostmonitor::node_source::WatchOptions;

use crate::report::{Conditions, Rates, Report, SavedReport};
use crate::scenario::{RunFigures, RunSettings};

/// Measures the masakari-hostmonitor binary against fake Kubernetes, Keystone and Masakari
/// servers on 127.0.0.1, and prints medians (min–max) over the runs.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Cli {
    /// Fleet sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    nodes: Vec<usize>,
    /// Runs per fleet size; each starts a new monitor process.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also write every figure as JSON to this file.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Length of the steady-state window and of the churn window, in seconds.
    #[arg(long, default_value_t = 25)]
    window: u64,
    /// `[host] monitoring_interval` of the monitor, in seconds.
    #[arg(long, default_value_t = 1)]
    interval: u64,
    /// Serialised size of each Node, in bytes, reached with `status.images` entries.
    #[arg(long, default_value_t = 15_000)]
    node_bytes: usize,
    /// Nodes whose heartbeat changes per minute in the churn window, in percent of the fleet.
    #[arg(long, default_value_t = 1.0)]
    churn_percent: f64,
    /// Hosts failed one tick after another to measure detection latency.
    #[arg(long, default_value_t = 5)]
    detections: usize,
    /// Hosts failed in one tick; capped so that at least one Node stays up.
    #[arg(long, default_value_t = 500)]
    mass_failures: usize,
    /// Delay of Masakari's responses during the mass failure, in milliseconds.
    #[arg(long, default_value_t = 50)]
    masakari_latency_ms: u64,
    /// Interval between BOOKMARK events on the fake API server's watches, in seconds.
    #[arg(long, default_value_t = 60)]
    bookmark_interval: u64,
    /// Print the table in Markdown instead of aligned columns.
    #[arg(long)]
    markdown: bool,
    /// Print the report of a JSON file written by --output, without measuring.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// The masakari-hostmonitor binary. Default: the one next to this program.
    #[arg(long)]
    binary: Option<PathBuf>,
}

/// Errors that stop the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("monitor binary {0} not found; build it with `cargo build --release` or pass --binary")]
    BinaryNotFound(PathBuf),
    #[error("failed to locate this program")]
    CurrentExe(#[source] std::io::Error),
    #[error("failed to start {binary}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the monitor exited ({status}); its last output:\n{output}")]
    MonitorExited { status: String, output: String },
    #[error("I/O failed on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unexpected format of {path}")]
    ProcFormat { path: PathBuf },
    #[error("reading the monitor's CPU-time clock failed (error {0})")]
    CpuClock(i32),
    #[error("no free loopback port")]
    NoFreePort(#[source] std::io::Error),
    #[error("scraping {url} failed")]
    ScrapeFailed {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("fake Kubernetes API failed")]
    FakeKube(#[source] masakari_hostmonitor::fake::kube_api::FakeKubeError),
    #[error("fake OpenStack failed")]
    FakeOpenStack(#[source] masakari_hostmonitor::fake::openstack::FakeOpenStackError),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("missing {0}")]
    Missing(String),
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("failed to write or read the JSON report")]
    Json(#[source] serde_json::Error),
}

impl BenchError {
    pub fn io(path: &Path, source: std::io::Error) -> BenchError {
        BenchError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {}", render_error(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), BenchError> {
    if let Some(path) = &cli.report {
        let bytes = std::fs::read(path).map_err(|source| BenchError::io(path, source))?;
        let saved: SavedReport = serde_json::from_slice(&bytes).map_err(BenchError::Json)?;
        let report = Report::new(saved.sizes, saved.runs, saved.rates, saved.conditions);
        print_report(&cli, &report);
        return Ok(());
    }
    validate(&cli)?;
    let binary = match &cli.binary {
        Some(path) => path.clone(),
        None => sibling_binary()?,
    };
    if !binary.is_file() {
        return Err(BenchError::BinaryNotFound(binary));
    }
    eprintln!("bench: measuring {}", binary.display());
    warn_if_debug_build();

    eprintln!(
        "bench: Nodes padded to {} bytes with {} images each",
        cli.node_bytes,
        fleet::images_for(cli.node_bytes)
    );
    let mut fleets = Vec::new();
    for &size in &cli.nodes {
        fleets.push(fleet::build(size, cli.node_bytes));
    }
    let mut runs: Vec<RunFigures> = Vec::new();
    for run in 1..=cli.runs {
        for nodes in &fleets {
            let settings = run_settings(&cli, nodes.len());
            eprintln!("bench: run {run}/{}, {} nodes", cli.runs, nodes.len());
            let figures = scenario::run(&binary, nodes, &settings).await?;
            eprintln!(
                "bench:   start-up {:.1} s, VmRSS {:.1} MiB, CPU per tick {:.2} ms, mass failure {:.2} s",
                figures.startup.seconds,
                figures.memory_steady.rss_mib,
                figures.steady.cpu_per_tick_ms,
                figures.mass_failure.seconds_after_log
            );
            runs.push(figures);
        }
    }

    let watch_timeout = WatchOptions::default().watch_timeout.as_secs();
    let rates = Rates::new(watch_timeout, cli.bookmark_interval.max(1));
    let conditions = Conditions {
        runs: cli.runs,
        interval_secs: cli.interval,
        window_secs: cli.window,
        churn_percent_per_minute: cli.churn_percent,
        masakari_latency_ms: cli.masakari_latency_ms,
        bookmark_interval_secs: cli.bookmark_interval,
        node_bytes: runs.first().map_or(cli.node_bytes, |r| r.node_bytes),
    };
    let report = Report::new(cli.nodes.clone(), runs, rates, conditions);
    print_report(&cli, &report);
    if let Some(path) = &cli.output {
        let json = serde_json::to_vec_pretty(&report).map_err(BenchError::Json)?;
        std::fs::write(path, json).map_err(|source| BenchError::io(path, source))?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(())
}

fn validate(cli: &Cli) -> Result<(), BenchError> {
    if cli.runs == 0 {
        return Err(BenchError::InvalidOption(
            "--runs must be at least 1".into(),
        ));
    }
    if cli.interval == 0 {
        return Err(BenchError::InvalidOption(
            "--interval must be at least 1 second".into(),
        ));
    }
    if let Some(size) = cli
        .nodes
        .iter()
        .find(|size| **size < 4 || **size <= cli.detections * 2)
    {
        return Err(BenchError::InvalidOption(format!(
            "--nodes {size} is too small: each size needs at least 4 nodes and more than twice --detections"
        )));
    }
    Ok(())
}

/// Settings of one run; the mass failure is capped so that at least one Node stays up.
fn run_settings(cli: &Cli, nodes: usize) -> RunSettings {
    let mass_failures = cli.mass_failures.min(nodes - cli.detections - 1).max(1);
    RunSettings {
        interval_secs: cli.interval,
        window: Duration::from_secs(cli.window),
        churn_percent_per_minute: cli.churn_percent,
        detections: cli.detections,
        mass_failures,
        masakari_latency: Duration::from_millis(cli.masakari_latency_ms),
        bookmark_interval: Duration::from_secs(cli.bookmark_interval.max(1)),
        startup_timeout: Duration::from_secs(180),
    }
}

/// Warns when the bench, and so probably the monitor next to it, is a debug build. Cargo does
/// not relink an unchanged binary, so file times cannot tell whether the monitor is current.
fn warn_if_debug_build() {
    if cfg!(debug_assertions) {
        eprintln!(
            "bench: warning: this bench is a debug build, and so is probably the monitor next \
             to it; use `cargo build --release` and `cargo run --release --bin bench`"
        );
    }
}

/// Returns the `masakari-hostmonitor` binary in this program's directory (`target/release` under
/// `cargo run --release`).
fn sibling_binary() -> Result<PathBuf, BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::CurrentExe)?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    Ok(dir.join(format!(
        "masakari-hostmonitor{}",
        std::env::consts::EXE_SUFFIX
    )))
}

fn print_report(cli: &Cli, report: &Report) {
    let conditions = &report.conditions;
    println!(
        "masakari-hostmonitor benchmark: {} run(s) per size, medians (min–max)",
        conditions.runs
    );
    println!(
        "Nodes of {} bytes; interval {} s; windows of {} s; churn {}% of Nodes per minute; \
         Masakari latency {} ms in the mass failure; BOOKMARK every {} s",
        conditions.node_bytes,
        conditions.interval_secs,
        conditions.window_secs,
        conditions.churn_percent_per_minute,
        conditions.masakari_latency_ms,
        conditions.bookmark_interval_secs
    );
    println!(
        "Per-hour figures (computed): {:.1} watch restarts (one per {} s watch timeout), each \
         costing the requests and bytes of the measured watch restart, and {:.1} BOOKMARKs of \
         that restart's size; plus the lists measured in the steady window.\n",
        report.rates.watch_restarts_per_hour,
        report.rates.watch_timeout_secs,
        report.rates.bookmarks_per_hour
    );
    if cli.markdown {
        print!("{}", report.markdown());
    } else {
        print!("{}", report.table());
    }
}

/// Renders the error and its chain of causes, one per line.
fn render_error(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    text
}
