//! Log setup from `[DEFAULT]`, with oslo.log's options and output rules.
//!
//! - Format: human-readable lines, or one flattened JSON object per line with `use_json`.
//! - Level: INFO, or DEBUG with `debug`; a non-empty `RUST_LOG` replaces both.
//! - Output: standard output, unless `log_file` or `log_dir` gives a file (see [`log_path`]).
//!
//! Events use one field set across the codebase, so that a search for a field finds every line
//! about it:
//!
//! | field | meaning |
//! |---|---|
//! | `host` | Masakari host name (the mapped Node name) |
//! | `notification` | Masakari notification uuid |
//! | `outcome` | result of a delivery attempt or token request (`delivered`, `duplicate`, ...) |
//! | `attempt` | delivery attempt number, starting at 1 |
//! | `reading` | `up`, `down` or `no_data` |
//! | `identity` | this replica's leader-election identity |

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::Subscriber;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::DefaultSection;

/// File name used when only `log_dir` is set, as oslo.log uses `<binary>.log`.
pub const DEFAULT_LOG_FILE_NAME: &str = "masakari-hostmonitor.log";

/// Dependencies whose DEBUG output is per-connection noise; `debug = true` keeps them at INFO.
/// `RUST_LOG` can still lower them.
const QUIET_AT_DEBUG: &[&str] = &["hyper", "hyper_util", "h2", "rustls", "tower", "reqwest"];

/// Errors of [`init`]. None is retried: `main` reports it and exits.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("failed to open log file {path}")]
    OpenLogFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid RUST_LOG filter {value:?}")]
    InvalidFilter {
        value: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("a global log subscriber is already installed")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
}

/// Keeps the log output open; hold it until the process exits.
#[derive(Debug)]
pub struct Guard {
    file: Option<Arc<File>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            let _ = file.as_ref().flush();
        }
    }
}

/// Installs the global subscriber for `section`, reading `RUST_LOG` from the environment.
pub fn init(section: &DefaultSection) -> Result<Guard, TelemetryError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (subscriber, guard) = subscriber(section, rust_log.as_deref())?;
    subscriber
        .try_init()
        .map_err(TelemetryError::AlreadyInstalled)?;
    Ok(guard)
}

/// Builds the subscriber without installing it, so that tests can scope it to one thread.
pub fn subscriber(
    section: &DefaultSection,
    rust_log: Option<&str>,
) -> Result<(impl Subscriber + Send + Sync + 'static, Guard), TelemetryError> {
    let filter = filter(section.debug, rust_log)?;

    let (writer, file, ansi) = match log_path(section) {
        Some(path) => {
            let file = Arc::new(open_log_file(&path)?);
            (BoxMakeWriter::new(file.clone()), Some(file), false)
        }
        None => {
            let ansi = std::io::stdout().is_terminal();
            (BoxMakeWriter::new(std::io::stdout), None, ansi)
        }
    };

    let format = if section.use_json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed()
    };

    let subscriber = tracing_subscriber::registry().with(filter).with(format);
    Ok((subscriber, Guard { file }))
}

/// Returns the log file oslo.log would use: `log_dir/log_file`, `log_dir/masakari-hostmonitor.log`
/// when only `log_dir` is set, `log_file` as given when only it is set, and `None` (standard
/// output) when neither is.
pub fn log_path(section: &DefaultSection) -> Option<PathBuf> {
    match (&section.log_dir, &section.log_file) {
        (Some(dir), Some(file)) => Some(dir.join(file)),
        (Some(dir), None) => Some(dir.join(DEFAULT_LOG_FILE_NAME)),
        (None, Some(file)) => Some(file.clone()),
        (None, None) => None,
    }
}

/// Returns the level filter: a non-empty `rust_log` wins, else INFO or DEBUG.
pub fn filter(debug: bool, rust_log: Option<&str>) -> Result<EnvFilter, TelemetryError> {
    let directives = match rust_log.map(str::trim) {
        Some(value) if !value.is_empty() => value.to_owned(),
        _ if debug => default_debug_directives(),
        _ => "info".to_owned(),
    };
    EnvFilter::builder()
        .parse(&directives)
        .map_err(|source| TelemetryError::InvalidFilter {
            value: directives,
            source,
        })
}

fn default_debug_directives() -> String {
    let mut directives = String::from("debug");
    for target in QUIET_AT_DEBUG {
        directives.push(',');
        directives.push_str(target);
        directives.push_str("=info");
    }
    directives
}

/// Opens `path` for appending, as oslo.log's `WatchedFileHandler` does; the directory must exist.
fn open_log_file(path: &Path) -> Result<File, TelemetryError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| TelemetryError::OpenLogFile {
            path: path.to_owned(),
            source,
        })
}

/// Renders an error and its sources on one line: `outer: inner: root`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn section() -> DefaultSection {
        Config::default().default
    }

    #[test]
    fn log_path_none_means_stdout() {
        assert_eq!(log_path(&section()), None);
    }

    #[test]
    fn log_path_dir_and_file_joined() {
        let mut section = section();
        section.log_dir = Some("/var/log/masakari".into());
        section.log_file = Some("monitor.log".into());
        assert_eq!(
            log_path(&section),
            Some(PathBuf::from("/var/log/masakari/monitor.log"))
        );
    }

    #[test]
    fn log_path_dir_only_uses_binary_name() {
        let mut section = section();
        section.log_dir = Some("/var/log/masakari".into());
        assert_eq!(
            log_path(&section),
            Some(PathBuf::from("/var/log/masakari/masakari-hostmonitor.log"))
        );
    }

    #[test]
    fn log_path_file_only_used_as_given() {
        let mut section = section();
        section.log_file = Some("relative/monitor.log".into());
        assert_eq!(
            log_path(&section),
            Some(PathBuf::from("relative/monitor.log"))
        );
    }

    #[test]
    fn filter_defaults_to_info() {
        assert_eq!(filter(false, None).expect("filter").to_string(), "info");
    }

    #[test]
    fn filter_debug_keeps_http_stack_at_info() {
        let filter = filter(true, None).expect("filter").to_string();
        assert!(filter.contains("debug"), "{filter}");
        assert!(filter.contains("hyper=info"), "{filter}");
    }

    #[test]
    fn filter_rust_log_overrides_debug() {
        let filter = filter(true, Some("warn,masakari_hostmonitor=trace")).expect("filter");
        let text = filter.to_string();
        assert!(text.contains("masakari_hostmonitor=trace"), "{text}");
        assert!(!text.contains("hyper=info"), "{text}");
    }

    #[test]
    fn filter_blank_rust_log_ignored() {
        assert_eq!(
            filter(false, Some("  ")).expect("filter").to_string(),
            "info"
        );
    }

    #[test]
    fn filter_invalid_rust_log_rejected() {
        let error = filter(false, Some("x=notalevel")).expect_err("invalid");
        assert!(error.to_string().contains("x=notalevel"), "{error}");
    }

    fn log_to_file(use_json: bool, debug: bool) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut section = section();
        section.log_dir = Some(dir.path().to_owned());
        section.use_json = use_json;
        section.debug = debug;

        let (subscriber, guard) = subscriber(&section, None).expect("subscriber");
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(host = "compute-0", reading = "down", "Reading");
            tracing::info!(host = "compute-0", attempt = 2_u32, "Host failed");
        });
        drop(guard);

        let path = dir.path().join(DEFAULT_LOG_FILE_NAME);
        std::fs::read_to_string(path).expect("log file written")
    }

    #[test]
    fn json_lines_have_flattened_fields() {
        let text = log_to_file(true, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");

        let event: serde_json::Value = serde_json::from_str(lines[0]).expect("one JSON object");
        assert_eq!(event["level"], "INFO");
        assert_eq!(event["message"], "Host failed");
        assert_eq!(event["host"], "compute-0");
        assert_eq!(event["attempt"], 2);
    }

    #[test]
    fn human_lines_include_debug_when_enabled() {
        let text = log_to_file(false, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("DEBUG"), "{text}");
        assert!(lines[0].contains("reading=\"down\""), "{text}");
        assert!(lines[1].contains("Host failed"), "{text}");
        assert!(!text.contains('\u{1b}'), "ANSI escapes in a file: {text}");
    }

    #[test]
    fn missing_log_dir_is_an_error() {
        let mut section = section();
        section.log_dir = Some("/nonexistent/masakari-hostmonitor-test".into());
        let error = subscriber(&section, None).err().expect("open fails");
        assert!(error.to_string().contains("/nonexistent"), "{error}");
    }
}
