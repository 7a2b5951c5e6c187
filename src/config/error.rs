//! Value origins, and the errors and warnings the loader returns.

use std::fmt;
use std::path::PathBuf;

/// Source of an option's effective value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// A configuration file; `line` is unknown for values from an in-memory TOML table.
    File { path: PathBuf, line: Option<usize> },
    /// An `OS_<GROUP>__<OPTION>` environment variable.
    Environment(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Environment(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// One reason the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A `--config-file` or `--config-dir` that does not exist or cannot be read.
    #[error("{}: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },

    /// A syntax error; the rest of that file is not read.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// An option value that does not parse or breaks a bound. `message` never contains the value
    /// of a secret option.
    #[error("{origin}: [{section}] {option}: {message}")]
    InvalidValue {
        origin: Origin,
        section: String,
        option: String,
        message: String,
    },

    /// Options that are valid alone but do not fit together.
    #[error("[{section}]: {message}")]
    Inconsistent { section: String, message: String },
}

/// Every error found in one load, in the order found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Something an operator should look at that does not stop the program: an unknown option, a
/// deprecated name, an option the chosen `auth_type` does not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Location of the offending text; `None` when the warning is about the whole configuration.
    pub origin: Option<Origin>,
    pub section: String,
    pub option: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        write!(f, "[{}]", self.section)?;
        if let Some(option) = &self.option {
            write!(f, " {option}")?;
        }
        write!(f, ": {}", self.message)
    }
}
