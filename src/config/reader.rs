//! Typed reads of resolved options, collecting every error instead of stopping at the first.

use std::time::Duration;

use super::convert;
use super::error::{ConfigError, Origin};
use super::options::{self, Kind, OptSpec};
use super::resolve::{Resolver, Value};
use super::substitute::SubstitutionError;
use crate::secret::Secret;

pub struct Reader<'a> {
    pub resolver: Resolver<'a>,
    pub errors: Vec<ConfigError>,
}

impl<'a> Reader<'a> {
    pub fn new(resolver: Resolver<'a>) -> Self {
        Reader {
            resolver,
            errors: Vec::new(),
        }
    }

    fn spec(section: &str, name: &str) -> &'static OptSpec {
        options::find(section, name)
            .unwrap_or_else(|| panic!("option [{section}] {name} is not registered"))
    }

    /// Resolves one option; a failed substitution is recorded and reads as unset.
    pub fn value(&mut self, section: &str, name: &str) -> Option<Value> {
        let spec = Self::spec(section, name);
        match self.resolver.value(spec) {
            Ok(value) => Some(value),
            Err(error) => {
                let origin = self
                    .resolver
                    .raw(&self.resolver.section_of(spec), spec.name, spec.deprecated)
                    .map_or(Origin::Default, |(_, origin)| origin);
                let message = substitution_message(&error, spec.kind == Kind::Secret);
                let section = self.resolver.section_of(spec);
                self.errors.push(ConfigError::InvalidValue {
                    origin,
                    section,
                    option: name.to_owned(),
                    message,
                });
                None
            }
        }
    }

    /// Parses an option; `None` when it is unset, empty for a number, or invalid (recorded).
    pub fn parse<T>(
        &mut self,
        section: &str,
        name: &str,
        parse: impl FnOnce(&str) -> Result<Option<T>, String>,
    ) -> Option<T> {
        let value = self.value(section, name)?;
        let text = value.text.as_deref()?;
        match parse(text) {
            Ok(parsed) => parsed,
            Err(reason) => {
                self.invalid(&value, name, &reason);
                None
            }
        }
    }

    /// Records `reason` against a resolved value, quoting the value unless the option is secret.
    pub fn invalid(&mut self, value: &Value, name: &str, reason: &str) {
        let secret = options::find("api", name).is_some_and(|spec| spec.kind == Kind::Secret);
        let message = match (&value.text, secret) {
            (Some(text), false) => format!("invalid value {text:?}: {reason}"),
            _ => format!("invalid value: {reason}"),
        };
        self.errors.push(ConfigError::InvalidValue {
            origin: value.origin.clone(),
            section: value.section.clone(),
            option: name.to_owned(),
            message,
        });
    }

    pub fn bool(&mut self, section: &str, name: &str, fallback: bool) -> bool {
        self.parse(section, name, |text| convert::boolean(text).map(Some))
            .unwrap_or(fallback)
    }

    pub fn int(&mut self, section: &str, name: &str, min: i64, fallback: i64) -> i64 {
        self.parse(section, name, |text| convert::integer(text, min))
            .unwrap_or(fallback)
    }

    pub fn seconds(&mut self, section: &str, name: &str, min: u64, fallback: Duration) -> Duration {
        self.parse(section, name, |text| convert::seconds(text, min))
            .unwrap_or(fallback)
    }

    /// Reads a string option; empty reads as unset.
    pub fn string(&mut self, section: &str, name: &str) -> Option<String> {
        convert::optional(self.value(section, name)?.text)
    }

    /// Reads a secret option; empty reads as unset.
    pub fn secret(&mut self, section: &str, name: &str) -> Option<Secret> {
        self.string(section, name).map(Secret::new)
    }

    pub fn inconsistent(&mut self, section: &str, message: String) {
        self.errors.push(ConfigError::Inconsistent {
            section: section.to_owned(),
            message,
        });
    }
}

fn substitution_message(error: &SubstitutionError, secret: bool) -> String {
    match (error, secret) {
        (SubstitutionError::Unknown(_), true) => {
            "contains a '$' that does not refer to a known option; write $$ for a literal dollar sign".to_owned()
        }
        (SubstitutionError::Unknown(reference), false) => {
            format!("refers to unknown option ${reference}; write $$ for a literal dollar sign")
        }
        (SubstitutionError::Cycle(_), true) => "contains a '$' reference that refers back to itself".to_owned(),
        (SubstitutionError::Cycle(reference), false) => {
            format!("the reference ${reference} refers back to this option")
        }
    }
}
