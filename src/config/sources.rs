//! Configuration sources: the files to read, their order, and reading them into [`Document`]s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::document::Document;
use super::error::ConfigError;
use super::{ini, toml_source};

/// The project name oslo.config searches for: `masakarimonitors.conf`.
const PROJECT: &str = "masakarimonitors";
/// The program name oslo.config also searches for: `masakari-hostmonitor.conf`.
const PROGRAM: &str = "masakari-hostmonitor";

/// One `--config-file` or `--config-dir` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceArg {
    /// An INI file, or TOML when the name ends in `.toml`.
    File(PathBuf),
    /// A directory whose `*.conf` files are read in name order.
    Dir(PathBuf),
}

/// The configuration sources in command-line order; later ones win.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sources {
    pub args: Vec<SourceArg>,
}

impl Sources {
    pub fn new(args: Vec<SourceArg>) -> Self {
        Sources { args }
    }

    /// Returns the sources to read. Without any `--config-file`, the default files are read
    /// first; without any `--config-dir`, the default directories that exist are read after the
    /// files, as oslo.config does.
    pub fn effective(&self, env: &HashMap<String, String>) -> Vec<SourceArg> {
        let has_file = self
            .args
            .iter()
            .any(|arg| matches!(arg, SourceArg::File(_)));
        let has_dir = self.args.iter().any(|arg| matches!(arg, SourceArg::Dir(_)));
        let search = search_dirs(env);
        let mut effective = Vec::new();
        if !has_file {
            effective.extend(
                default_files(&search, ".conf")
                    .into_iter()
                    .map(SourceArg::File),
            );
        }
        effective.extend(self.args.iter().cloned());
        if !has_dir {
            let dirs = default_files(&search, ".conf.d")
                .into_iter()
                .filter(|dir| dir.is_dir());
            effective.extend(dirs.map(SourceArg::Dir));
        }
        effective
    }
}

/// `~/.masakarimonitors/`, `~/`, `/etc/masakarimonitors/`, `/etc/`, as oslo.config's
/// `_get_config_dirs` lists them.
fn search_dirs(env: &HashMap<String, String>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = env.get("HOME").filter(|home| !home.is_empty()) {
        dirs.push(Path::new(home).join(format!(".{PROJECT}")));
        dirs.push(PathBuf::from(home));
    }
    dirs.push(Path::new("/etc").join(PROJECT));
    dirs.push(PathBuf::from("/etc"));
    dirs
}

/// Returns the first existing `masakarimonitors<ext>` and the first `masakari-hostmonitor<ext>`.
fn default_files(search: &[PathBuf], extension: &str) -> Vec<PathBuf> {
    [PROJECT, PROGRAM]
        .iter()
        .filter_map(|base| {
            search
                .iter()
                .map(|dir| dir.join(format!("{base}{extension}")))
                .find(|path| path.exists())
        })
        .collect()
}

/// Reads every source in order. A file that cannot be read or parsed adds an error and is left
/// out. The others are still read, so one run reports every problem.
pub fn read_all(args: &[SourceArg], errors: &mut Vec<ConfigError>) -> Vec<Document> {
    let mut documents = Vec::new();
    for arg in args {
        match arg {
            SourceArg::File(path) => documents.extend(read_file(path, errors)),
            SourceArg::Dir(dir) => {
                for path in dir_files(dir, errors) {
                    documents.extend(read_file(&path, errors));
                }
            }
        }
    }
    documents
}

fn read_file(path: &Path, errors: &mut Vec<ConfigError>) -> Option<Document> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            errors.push(ConfigError::Unreadable {
                path: path.to_owned(),
                message: format!("cannot read file: {error}"),
            });
            return None;
        }
    };
    let parsed = if path.extension().is_some_and(|ext| ext == "toml") {
        toml_source::parse(&text, path)
    } else {
        ini::parse(&text, path)
    };
    parsed.map_err(|error| errors.push(error)).ok()
}

fn dir_files(dir: &Path, errors: &mut Vec<ConfigError>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            let message = format!("cannot read configuration directory: {error}");
            errors.push(ConfigError::Unreadable {
                path: dir.to_owned(),
                message,
            });
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "conf"))
        .collect();
    files.sort();
    files
}
