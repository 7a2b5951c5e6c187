//! Finds each option's text: environment, then the newest file that sets it, then the default;
//! then expands `$` references.

use std::collections::HashMap;

use super::document::{DEFAULT_SECTION, Document};
use super::error::Origin;
use super::options::{self, HOSTNAME_DEFAULT, OptSpec, Usage};
use super::substitute::{self, Resolve, SubstitutionError};

/// An option's text after substitution; `None` when unset with no default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub text: Option<String>,
    pub origin: Origin,
    /// The section the value was read from (the `auth_section` for plugin options).
    pub section: String,
}

pub struct Resolver<'a> {
    documents: &'a [Document],
    env: &'a HashMap<String, String>,
    hostname: String,
    auth_section: Option<String>,
    /// References being expanded, to detect cycles.
    stack: Vec<(String, String)>,
}

impl<'a> Resolver<'a> {
    pub fn new(
        documents: &'a [Document],
        env: &'a HashMap<String, String>,
        hostname: String,
    ) -> Self {
        let mut resolver = Resolver {
            documents,
            env,
            hostname,
            auth_section: None,
            stack: Vec::new(),
        };
        resolver.auth_section = resolver
            .raw("api", "auth_section", &[])
            .map(|(text, _)| text.trim().to_owned())
            .filter(|name| !name.is_empty())
            .map(|name| super::document::normalize_section_name(&name));
        resolver
    }

    pub fn auth_section(&self) -> Option<&str> {
        self.auth_section.as_deref()
    }

    /// Returns the section an option is read from.
    pub fn section_of(&self, spec: &OptSpec) -> String {
        match (spec.usage, &self.auth_section) {
            (Usage::Plugin(_), Some(section)) => section.clone(),
            _ => spec.section.to_owned(),
        }
    }

    /// Returns the unexpanded text of `name` in `section`: the `OS_<SECTION>__<NAME>` environment
    /// variable, else the newest file that sets the name or one of its deprecated names (the
    /// current name first within each file).
    pub fn raw(&self, section: &str, name: &str, deprecated: &[&str]) -> Option<(String, Origin)> {
        let variable = format!("OS_{}__{}", section.to_uppercase(), name.to_uppercase());
        if let Some(text) = self.env.get(&variable) {
            return Some((text.clone(), Origin::Environment(variable)));
        }
        for document in self.documents.iter().rev() {
            for key in std::iter::once(&name).chain(deprecated) {
                if let Some(entry) = document.last(section, key) {
                    return Some((entry.value.clone(), document.origin(entry.line)));
                }
            }
        }
        None
    }

    /// Resolves and expands one registered option.
    pub fn value(&mut self, spec: &OptSpec) -> Result<Value, SubstitutionError> {
        let section = self.section_of(spec);
        let mut raw = self.raw(&section, spec.name, spec.deprecated);
        if raw.is_none() && spec.name == "auth_type" && section != spec.section {
            raw = self.raw(spec.section, spec.name, spec.deprecated);
        }
        let (text, origin) = match raw {
            Some((text, origin)) => (Some(text), origin),
            None => (self.default_text(spec), Origin::Default),
        };
        let text = match text {
            Some(text) if text.contains('$') => Some(substitute::expand(&text, &section, self)?),
            other => other,
        };
        Ok(Value {
            text,
            origin,
            section,
        })
    }

    fn default_text(&self, spec: &OptSpec) -> Option<String> {
        match spec.default {
            Some(HOSTNAME_DEFAULT) => Some(self.hostname.clone()),
            other => other.map(str::to_owned),
        }
    }

    /// Finds the registered option `name` as seen from `section`, counting the auth section as
    /// holding the plugin options.
    fn spec_in(&self, section: &str, name: &str) -> Option<&'static OptSpec> {
        if let Some(spec) = options::find(section, name) {
            return Some(spec);
        }
        if self.auth_section.as_deref() == Some(section) {
            return options::find("api", name)
                .filter(|spec| matches!(spec.usage, Usage::Plugin(_)));
        }
        None
    }
}

impl Resolve for Resolver<'_> {
    fn resolve(&mut self, section: &str, name: &str) -> Result<Option<String>, SubstitutionError> {
        let key = (section.to_owned(), name.to_owned());
        if self.stack.contains(&key) {
            return Err(SubstitutionError::Cycle(format!("{section}.{name}")));
        }
        self.stack.push(key);
        let result = self.resolve_unguarded(section, name);
        self.stack.pop();
        result
    }
}

impl Resolver<'_> {
    fn resolve_unguarded(
        &mut self,
        section: &str,
        name: &str,
    ) -> Result<Option<String>, SubstitutionError> {
        if let Some(spec) = self.spec_in(section, name) {
            return Ok(Some(self.value(spec)?.text.unwrap_or_default()));
        }
        if options::OWNED_SECTIONS.contains(&section) && section != DEFAULT_SECTION {
            return Ok(None);
        }
        // Sections this program does not own: use the files' text.
        match self.raw(section, name, &[]) {
            Some((text, _)) => Ok(Some(substitute::expand(&text, section, self)?)),
            None => Ok(None),
        }
    }
}
