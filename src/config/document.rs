//! One parsed configuration file: its sections and assignments, each with its line.

use std::path::PathBuf;

use super::error::Origin;

/// The name of the default section; the only section name matched case-sensitively.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// A parsed INI or TOML source, before any option is interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub path: PathBuf,
    pub sections: Vec<Section>,
}

/// One section header and the assignments under it. A repeated header gives a second `Section`
/// with the same name; later assignments win.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `DEFAULT`, or the name as written lower-cased.
    pub name: String,
    pub line: Option<usize>,
    pub entries: Vec<Entry>,
}

/// One `key = value` assignment, with quotes already stripped and continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: Option<usize>,
}

impl Document {
    /// Returns the last assignment of `key` in `section`, across repeated headers.
    pub fn last(&self, section: &str, key: &str) -> Option<&Entry> {
        self.sections
            .iter()
            .filter(|s| s.name == section)
            .flat_map(|s| s.entries.iter())
            .rfind(|entry| entry.key == key)
    }

    pub fn origin(&self, line: Option<usize>) -> Origin {
        Origin::File {
            path: self.path.clone(),
            line,
        }
    }
}

/// Lower-cases a section name unless it is exactly `DEFAULT`, as oslo.config does: `[API]` is
/// `[api]`, but `[default]` is a section named `default`, not the default section.
pub fn normalize_section_name(name: &str) -> String {
    if name == DEFAULT_SECTION {
        name.to_owned()
    } else {
        name.to_lowercase()
    }
}
