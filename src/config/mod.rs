//! Configuration: oslo.config INI or TOML files, environment overrides, one typed model.
//!
//! [`load`] reads the sources in command-line order (later files win), applies
//! `OS_<SECTION>__<OPTION>` environment variables over them, expands `$` references, converts
//! and checks every option, and returns the [`Config`] with the warnings to log and each
//! option's effective value and origin. Every error is collected before returning, so one run
//! shows them all.
//!
//! A missing `[api] auth_url` is not an error here: [`ApiSection::auth`] then has an empty
//! `auth_url`, and the caller decides whether it can run without sending (`--dry-run`). The
//! credential checks for the chosen `auth_type` run only when `auth_url` is set.

mod api;
mod build;
mod convert;
mod document;
mod effective;
mod error;
mod ini;

mod model;
mod options;
mod reader;
mod resolve;
mod sources;
mod substitute;
mod toml_source;
mod warnings;

use std::collections::HashMap;
use std::path::Path;

pub use effective::{EffectiveOption, OptionStatus, render_effective};
pub use error::{ConfigError, ConfigErrors, ConfigWarning, Origin};
pub use model::*;
pub use sources::{SourceArg, Sources};

use document::Document;
use reader::Reader;
use resolve::Resolver;

/// A loaded configuration.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Problems that do not stop the program; log them once logging is set up.
    pub warnings: Vec<ConfigWarning>,
    /// Every registered option with its effective value (secrets masked) and origin.
    pub effective: Vec<EffectiveOption>,
}

/// Loads the configuration from `sources` and the environment `env` (normally
/// `std::env::vars()`; `HOME` locates the default files).
pub fn load(sources: &Sources, env: &HashMap<String, String>) -> Result<Loaded, ConfigErrors> {
    let mut errors = Vec::new();
    let documents = sources::read_all(&sources.effective(env), &mut errors);
    load_documents(&documents, env, errors)
}

/// Loads a configuration from an in-memory TOML table with the file's sections and keys, such as
/// a simulation scenario's `[config]` table. `origin` names it in errors. The process
/// environment is not consulted.
pub fn load_toml_table(table: &toml::Table, origin: &str) -> Result<Loaded, ConfigErrors> {
    let document = toml_source::from_table(table, Path::new(origin))
        .map_err(|error| ConfigErrors(vec![error]))?;
    load_documents(&[document], &HashMap::new(), Vec::new())
}

fn load_documents(
    documents: &[Document],
    env: &HashMap<String, String>,
    mut errors: Vec<ConfigError>,
) -> Result<Loaded, ConfigErrors> {
    let mut reader = Reader::new(Resolver::new(documents, env, machine_hostname()));
    let config = build::build(&mut reader);
    errors.append(&mut reader.errors);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let auth_section = reader.resolver.auth_section().map(str::to_owned);
    let warnings = warnings::scan(
        documents,
        auth_section.as_deref(),
        config.api.auth.auth_type,
    );
    let effective = effective::collect(&mut reader.resolver);
    Ok(Loaded {
        config,
        warnings,
        effective,
    })
}

/// Returns the machine's host name, the default of `hostname` as in masakari-monitors (Python's
/// `socket.gethostname()`), or `localhost` when it cannot be read.
fn machine_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
