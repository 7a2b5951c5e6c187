//! Warnings found by reading the files themselves: unknown options and sections, deprecated
//! names, plugin options the chosen `auth_type` does not use.

use super::document::{DEFAULT_SECTION, Document, Entry, Section};
use super::error::ConfigWarning;
use super::model::AuthType;
use super::options::{self, OptSpec, Usage};

/// Scans every document. `auth_section` is `[api] auth_section`; `auth_type` the type in use.
/// Each warning appears once, at its first location.
pub fn scan(
    documents: &[Document],
    auth_section: Option<&str>,
    auth_type: AuthType,
) -> Vec<ConfigWarning> {
    let scanner = Scanner {
        auth_section,
        auth_type,
    };
    let mut warnings: Vec<ConfigWarning> = Vec::new();
    for document in documents {
        for section in &document.sections {
            for warning in scanner.section(document, section) {
                let duplicate = warnings.iter().any(|seen| {
                    seen.section == warning.section
                        && seen.option == warning.option
                        && seen.message == warning.message
                });
                if !duplicate {
                    warnings.push(warning);
                }
            }
        }
    }
    warnings
}

pub fn auth_type_name(auth_type: AuthType) -> &'static str {
    match auth_type {
        AuthType::Password => "password",
        AuthType::V3Password => "v3password",
        AuthType::V3ApplicationCredential => "v3applicationcredential",
    }
}

struct Scanner<'a> {
    auth_section: Option<&'a str>,
    auth_type: AuthType,
}

impl Scanner<'_> {
    fn is_auth_section(&self, name: &str) -> bool {
        self.auth_section == Some(name) && name != "api"
    }

    fn section(&self, document: &Document, section: &Section) -> Vec<ConfigWarning> {
        let name = section.name.as_str();
        let mut warnings = Vec::new();
        if !options::is_known_section(name) && !self.is_auth_section(name) {
            let message = if name.eq_ignore_ascii_case(DEFAULT_SECTION) {
                "section names are lower-cased except DEFAULT, so [default] is not [DEFAULT]; write [DEFAULT]"
            } else {
                "unknown section ignored"
            };
            warnings.push(ConfigWarning {
                origin: Some(document.origin(section.line)),
                section: name.to_owned(),
                option: None,
                message: message.to_owned(),
            });
        }
        let owned = options::OWNED_SECTIONS.contains(&name);
        if owned || self.is_auth_section(name) {
            for entry in &section.entries {
                let warn = |message: String| ConfigWarning {
                    origin: Some(document.origin(entry.line)),
                    section: name.to_owned(),
                    option: Some(entry.key.clone()),
                    message,
                };
                warnings.extend(self.entry_messages(name, entry).into_iter().map(warn));
            }
        }
        warnings
    }

    fn entry_messages(&self, section: &str, entry: &Entry) -> Vec<String> {
        let spec = if self.is_auth_section(section) {
            // Other options of a shared section such as [keystone_authtoken] belong to other programs.
            match options::find_by_key("api", &entry.key)
                .filter(|spec| matches!(spec.usage, Usage::Plugin(_)))
            {
                Some(spec) => spec,
                None => return Vec::new(),
            }
        } else {
            match options::find_by_key(section, &entry.key) {
                Some(spec) => spec,
                None => return vec!["unknown option ignored".to_owned()],
            }
        };
        let mut messages = Vec::new();
        if entry.key != spec.name {
            messages.push(format!("deprecated name; use {} instead", spec.name));
        }
        messages.extend(self.plugin_message(section, spec));
        messages
    }

    fn plugin_message(&self, section: &str, spec: &OptSpec) -> Option<String> {
        let Usage::Plugin(mask) = spec.usage else {
            return None;
        };
        if spec.name == "auth_type" {
            return None;
        }
        if let Some(auth_section) = self
            .auth_section
            .filter(|auth| *auth != "api" && section == "api")
        {
            return Some(format!("ignored because auth_section = {auth_section}"));
        }
        let auth_type = auth_type_name(self.auth_type);
        let used = options::plugin_bit(auth_type).is_some_and(|bit| mask & bit != 0);
        (!used).then(|| format!("not an option of auth_type {auth_type}; ignored"))
    }
}
