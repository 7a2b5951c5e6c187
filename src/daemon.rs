//! The monitor's run path: everything `masakari-hostmonitor` starts after the configuration
//! loaded.

use tracing::{info, warn};

use crate::config::{Config, ConfigWarning};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Monitor and log decisions without sending notifications.
    pub dry_run: bool,
    /// Configuration warnings, logged once logging is set up.
    pub warnings: Vec<ConfigWarning>,
}

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("daemon not implemented")]
    NotImplemented,
}

/// Runs the monitor until shutdown.
// TODO: start the components; this only logs the configuration warnings.
pub async fn run(config: Config, options: RunOptions) -> Result<(), DaemonError> {
    for warning in &options.warnings {
        warn!(warning = %warning, "Configuration warning");
    }
    info!(hostname = %config.default.hostname, dry_run = options.dry_run, "Daemon not implemented");
    Ok(())
}
