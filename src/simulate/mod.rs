//! `simulate`: runs the real daemon ([`crate::daemon::run_with`]) against an in-process fake
//! Kubernetes API and fake Keystone and Masakari, following a scenario file, so that anyone can
//! watch the monitor work and tune its parameters on a laptop.
//!
//! - [`scenario`]: the TOML scenario (fleet, `[config]`, timeline, expectations).
//! - `driver`: starts the fakes, applies the timeline on tokio's clock, records decisions.
//! - [`summary`]: what happened per host failure and to the breaker, as text or JSON.
//! - [`expect`]: checks the scenario's expectations against the summary.
//! - [`command`]: the `simulate` subcommand (log setup, output, exit code).
//!
//! By default the runtime's clock is paused, so tokio skips ahead whenever every task waits, and
//! a 30-minute scenario takes well under a second. `--real-time` runs on the wall clock.

use crate::config::{self, Config, ConfigErrors, ConfigWarning};
use crate::daemon::DaemonError;
use crate::fake::kube_api::FakeKubeError;
use crate::fake::openstack::FakeOpenStackError;

pub mod command;
mod driver;
pub mod expect;
pub mod scenario;
pub mod summary;

pub use scenario::{Scenario, ScenarioError};
pub use summary::Summary;

/// The scenarios built into the binary, by name; each is also a file under `examples/`.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "rack-loss-breaker",
        include_str!("../../examples/rack-loss-breaker.toml"),
    ),
    (
        "single-host-failure",
        include_str!("../../examples/single-host-failure.toml"),
    ),
    (
        "flapping-host",
        include_str!("../../examples/flapping-host.toml"),
    ),
    (
        "kubernetes-api-outage",
        include_str!("../../examples/kubernetes-api-outage.toml"),
    ),
    (
        "masakari-down",
        include_str!("../../examples/masakari-down.toml"),
    ),
    (
        "masakari-errors",
        include_str!("../../examples/masakari-errors.toml"),
    ),
    (
        "monitor-restart",
        include_str!("../../examples/monitor-restart.toml"),
    ),
];

/// The scenario `simulate` runs without an argument: a rack loss that trips the breaker, then
/// one host failure that is notified.
pub const DEFAULT_SCENARIO: &str = "rack-loss-breaker";

/// Placeholder Keystone URL for validating `[config]`. The run replaces it with the fake's.
const PLACEHOLDER_AUTH_URL: &str = "http://127.0.0.1/v3";

/// How to run a scenario.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Run on the wall clock instead of the paused (virtual) clock.
    pub real_time: bool,
}

/// Errors of a simulation run. None is retried.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("invalid [config] in scenario {scenario}")]
    Config {
        scenario: String,
        #[source]
        source: ConfigErrors,
    },
    #[error(
        "[config.admin] listen_address {address} is not a loopback address; the simulator listens on 127.0.0.1 only"
    )]
    AdminNotLoopback { address: std::net::SocketAddr },
    #[error("simulate::run was called inside a tokio runtime; call it from a plain thread")]
    InsideRuntime,
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("failed to start the fake Kubernetes API")]
    FakeKube(#[source] FakeKubeError),
    #[error("invalid URL of the fake Kubernetes API")]
    KubeUrl(#[source] http::uri::InvalidUri),
    #[error("failed to build the client of the fake Kubernetes API")]
    KubeClient(#[source] kube::Error),
    #[error("failed to start the fake Keystone and Masakari")]
    FakeOpenStack(#[source] FakeOpenStackError),
    #[error("scenario event at {at} failed")]
    Event {
        at: String,
        #[source]
        source: FakeKubeError,
    },
    #[error("the monitor failed")]
    Daemon(#[source] DaemonError),
    #[error("the monitor stopped before the scenario ended")]
    DaemonStopped,
}

/// Resolves the `simulate` argument, a built-in scenario name or else a file path. `None`
/// selects the default scenario.
pub fn load(argument: Option<&str>) -> Result<Scenario, ScenarioError> {
    let name = argument.unwrap_or(DEFAULT_SCENARIO);
    if let Some((name, text)) = BUILT_IN.iter().find(|(built_in, _)| *built_in == name) {
        return Scenario::from_toml(text, &format!("built-in {name}"), name);
    }
    let path = std::path::Path::new(name);
    let looks_like_name = !name.contains(std::path::MAIN_SEPARATOR) && path.extension().is_none();
    if looks_like_name && !path.exists() {
        let available: Vec<&str> = BUILT_IN.iter().map(|(name, _)| *name).collect();
        return Err(ScenarioError::UnknownScenario {
            name: name.to_owned(),
            available: available.join(", "),
        });
    }
    Scenario::from_file(path)
}

/// Runs `scenario` to its end in a new single-threaded runtime and returns its summary, with
/// the expectations checked. It blocks the calling thread, so it must be called outside any
/// tokio runtime, and returns [`SimulateError::InsideRuntime`] inside one.
pub fn run(scenario: &Scenario, options: Options) -> Result<Summary, SimulateError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(SimulateError::InsideRuntime);
    }
    let (config, warnings) = load_config(scenario)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(!options.real_time)
        .build()
        .map_err(SimulateError::Runtime)?;
    let recording = runtime.block_on(driver::execute(scenario, config, warnings))?;

    let mut summary = summary::build(scenario, &recording, !options.real_time);
    summary.expectations = expect::check_all(&scenario.expectations, &summary);
    Ok(summary)
}

/// Loads the scenario's `[config]` with the real loader, after filling in what the simulator
/// provides: Keystone credentials for the fake, `[admin]` and `[leader_election]` off unless
/// the scenario turns them on.
pub fn load_config(scenario: &Scenario) -> Result<(Config, Vec<ConfigWarning>), SimulateError> {
    let table = config_table(&scenario.config);
    let origin = format!("scenario {} [config]", scenario.name);
    let loaded =
        config::load_toml_table(&table, &origin).map_err(|source| SimulateError::Config {
            scenario: scenario.name.clone(),
            source,
        })?;
    let address = loaded.config.admin.listen_address;
    if loaded.config.admin.enabled && !address.ip().is_loopback() {
        return Err(SimulateError::AdminNotLoopback { address });
    }
    Ok((loaded.config, loaded.warnings))
}

/// Returns the scenario's `[config]` with the simulator's defaults added where it sets nothing.
fn config_table(scenario_config: &toml::Table) -> toml::Table {
    let mut table = scenario_config.clone();

    if let Some(api) = section(&mut table, "api") {
        // The fake Keystone accepts any credentials; the run points auth_url at it.
        api.insert("auth_url".into(), PLACEHOLDER_AUTH_URL.into());
        api.remove("endpoint_override");
        let app_credential = api
            .get("auth_type")
            .and_then(toml::Value::as_str)
            .is_some_and(|t| t == "v3applicationcredential");
        let defaults: &[(&str, &str)] = if app_credential {
            &[
                ("application_credential_id", "simulated"),
                ("application_credential_secret", "simulated"),
            ]
        } else {
            &[
                ("username", "masakari"),
                ("password", "simulated"),
                ("user_domain_name", "Default"),
                ("project_name", "service"),
                ("project_domain_name", "Default"),
            ]
        };
        for (key, value) in defaults {
            api.entry(*key).or_insert_with(|| (*value).into());
        }
    }
    if let Some(admin) = section(&mut table, "admin") {
        admin.entry("enabled").or_insert(false.into());
        admin
            .entry("listen_address")
            .or_insert_with(|| "127.0.0.1:9797".into());
    }
    if let Some(leader_election) = section(&mut table, "leader_election") {
        leader_election.entry("enabled").or_insert(false.into());
    }
    table
}

/// Returns the named section, created when missing, or `None` when the key is not a table,
/// which the loader then rejects.
fn section<'a>(table: &'a mut toml::Table, name: &str) -> Option<&'a mut toml::Table> {
    table
        .entry(name)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
}
