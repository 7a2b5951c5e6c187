use std::collections::HashMap;
use std::process::ExitCode;

use masakari_hostmonitor::cli::{Command, Invocation, OutputFormat};
use masakari_hostmonitor::config::{self, Loaded, render_effective};
use masakari_hostmonitor::daemon::{self, RunOptions};
use masakari_hostmonitor::simulate;
use masakari_hostmonitor::telemetry::{self, error_chain};

/// Exit code for an invalid configuration or command line.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let invocation = Invocation::from_env();
    // Variables that are not UTF-8 cannot name or hold an option, so they are skipped.
    let env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    match invocation.cli.command {
        Some(Command::Simulate {
            scenario,
            real_time,
            output,
            ..
        }) => simulate(&invocation.sources, scenario.as_deref(), real_time, output),
        Some(Command::CheckConfig { .. }) => match load(&invocation.sources, &env) {
            Ok(loaded) => check_config(&loaded),
            Err(code) => code,
        },
        None => match load(&invocation.sources, &env) {
            Ok(loaded) => run(loaded, invocation.cli.dry_run),
            Err(code) => code,
        },
    }
}

fn load(sources: &config::Sources, env: &HashMap<String, String>) -> Result<Loaded, ExitCode> {
    config::load(sources, env).map_err(|errors| {
        eprintln!(
            "masakari-hostmonitor: invalid configuration ({} errors):",
            errors.len()
        );
        for error in errors.iter() {
            eprintln!("  {error}");
        }
        ExitCode::from(EXIT_CONFIG)
    })
}

fn check_config(loaded: &Loaded) -> ExitCode {
    print!("{}", render_effective(&loaded.effective));
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    println!("\nConfiguration is valid.");
    ExitCode::SUCCESS
}

fn run(loaded: Loaded, dry_run: bool) -> ExitCode {
    if loaded.config.api.auth.auth_url.is_empty() && !dry_run {
        eprintln!(
            "masakari-hostmonitor: [api] auth_url is required to send notifications; set it, or run with --dry-run"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("masakari-hostmonitor: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _log_guard = match telemetry::init(&loaded.config.default) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("masakari-hostmonitor: {}", error_chain(&error));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let options = RunOptions {
        dry_run,
        warnings: loaded.warnings,
    };
    match runtime.block_on(daemon::run(loaded.config, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = error_chain(&error);
            tracing::error!(error = %message, "Stopped with an error");
            eprintln!("masakari-hostmonitor: {message}");
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(1))
        }
    }
}

/// Runs `simulate`, which takes its configuration from the scenario's `[config]` table.
fn simulate(
    sources: &config::Sources,
    scenario: Option<&str>,
    real_time: bool,
    output: OutputFormat,
) -> ExitCode {
    if !sources.args.is_empty() {
        eprintln!(
            "masakari-hostmonitor: simulate reads its configuration from the scenario's [config] table; remove --config-file and --config-dir"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let output = match output {
        OutputFormat::Text => simulate::command::Output::Text,
        OutputFormat::Json => simulate::command::Output::Json,
    };
    simulate::command::run(scenario, simulate::Options { real_time }, output)
}
