//! The `simulate` subcommand: loads the scenario, sets up logging as the daemon does (level and
//! format from `[DEFAULT]`), runs, prints the summary and chooses the exit code.
//!
//! Log lines carry the simulation time (`+00:02:30.000`) instead of the wall clock, so they line
//! up with the scenario's `at` values. Text output writes logs and summary to standard output;
//! JSON output writes the summary alone to standard output and the logs to standard error.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::OnceLock;

use tokio::time::Instant;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::{Options, SimulateError};
use crate::config::DefaultSection;

/// Exit code when an expectation failed or the run failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for an invalid scenario or `[config]`, as for an invalid configuration file.
pub const EXIT_INVALID: u8 = 2;

/// The summary's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// Log timestamps as time since the first log line, which the run writes at its start.
#[derive(Debug, Default)]
struct SimulationTime {
    start: OnceLock<Instant>,
}

impl FormatTime for SimulationTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        // tokio's clock: paused and skipping ahead in a virtual run, the wall clock otherwise.
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(*self.start.get_or_init(|| now));
        let millis = elapsed.as_millis();
        write!(
            w,
            "+{:02}:{:02}:{:02}.{:03}",
            millis / 3_600_000,
            millis / 60_000 % 60,
            millis / 1000 % 60,
            millis % 1000
        )
    }
}

/// Runs `simulate [SCENARIO]` and returns the process exit code: 0 when the run completed and
/// every expectation passed, 1 when one failed or the run failed, 2 for an invalid scenario.
pub fn run(scenario: Option<&str>, options: Options, output: Output) -> ExitCode {
    let scenario = match super::load(scenario) {
        Ok(scenario) => scenario,
        Err(error) => return report(&SimulateError::Scenario(error)),
    };
    let config = match super::load_config(&scenario) {
        Ok((config, _)) => config,
        Err(error) => return report(&error),
    };
    if let Err(message) = init_logging(&config.default, output) {
        eprintln!("masakari-hostmonitor: {message}");
        return ExitCode::from(EXIT_INVALID);
    }

    let summary = match super::run(&scenario, options) {
        Ok(summary) => summary,
        Err(error) => return report(&error),
    };
    let printed = match output {
        Output::Text => writeln!(std::io::stdout(), "\n{}", summary.render_text()),
        Output::Json => writeln!(std::io::stdout(), "{}", summary.to_json()),
    };
    if printed.is_err() || !summary.passed() {
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::SUCCESS
}

/// Prints the error with its causes and returns the matching exit code.
fn report(error: &SimulateError) -> ExitCode {
    eprintln!(
        "masakari-hostmonitor: simulate: {}",
        crate::telemetry::error_chain(error)
    );
    match error {
        SimulateError::Scenario(_)
        | SimulateError::Config { .. }
        | SimulateError::AdminNotLoopback { .. } => ExitCode::from(EXIT_INVALID),
        _ => ExitCode::from(EXIT_FAILED),
    }
}

/// Installs the global subscriber: `[DEFAULT] debug` and `use_json` as the daemon reads them,
/// `RUST_LOG` over both. `log_file` and `log_dir` are ignored, because the logs are part of the
/// output.
fn init_logging(section: &DefaultSection, output: Output) -> Result<(), String> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter: EnvFilter = crate::telemetry::filter(section.debug, rust_log.as_deref())
        .map_err(|error| error.to_string())?;
    let to_stderr = output == Output::Json;
    let ansi = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };

    let layer = tracing_subscriber::fmt::layer().with_timer(SimulationTime::default());
    let layer = match (section.use_json, to_stderr) {
        (true, true) => layer
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
        (true, false) => layer
            .json()
            .flatten_event(true)
            .with_writer(std::io::stdout)
            .boxed(),
        (false, true) => layer.with_ansi(ansi).with_writer(std::io::stderr).boxed(),
        (false, false) => layer.with_ansi(ansi).with_writer(std::io::stdout).boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init()
        .map_err(|error| format!("failed to install the log subscriber: {error}"))
}
