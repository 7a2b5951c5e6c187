//! Each option's effective value and origin, as `check-config` prints them.

use std::fmt::Write as _;

use super::error::Origin;
use super::options::{self, Kind, Usage};
use super::resolve::Resolver;

/// Whether the program uses an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionStatus {
    Used,
    /// Accepted for compatibility; has no effect.
    Ignored,
}

/// One option as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveOption {
    /// The section the value was read from.
    pub section: String,
    pub name: String,
    /// The value after substitution, `***` for a set secret, `None` when unset.
    pub value: Option<String>,
    pub origin: Origin,
    pub status: OptionStatus,
}

pub fn collect(resolver: &mut Resolver<'_>) -> Vec<EffectiveOption> {
    let mut effective = Vec::new();
    for spec in options::OPTIONS {
        let status = match spec.usage {
            Usage::Ignored | Usage::Plugin(0) => OptionStatus::Ignored,
            Usage::Used | Usage::Plugin(_) => OptionStatus::Used,
        };
        let (value, origin, section) = match resolver.value(spec) {
            Ok(value) => (value.text, value.origin, value.section),
            Err(_) => (
                Some("<invalid>".to_owned()),
                Origin::Default,
                resolver.section_of(spec),
            ),
        };
        if status == OptionStatus::Ignored && origin == Origin::Default {
            continue;
        }
        let value = match (spec.kind, value) {
            (Kind::Secret, Some(text)) if !text.is_empty() => Some("***".to_owned()),
            (_, value) => value,
        };
        effective.push(EffectiveOption {
            section,
            name: spec.name.to_owned(),
            value,
            origin,
            status,
        });
    }
    effective
}

/// Renders options as `[section] name = value  (origin)`, one per line, grouped by section.
pub fn render_effective(options: &[EffectiveOption]) -> String {
    let mut output = String::new();
    let mut current = "";
    for option in options {
        if option.section != current {
            if !current.is_empty() {
                output.push('\n');
            }
            let _ = writeln!(output, "[{}]", option.section);
            current = &option.section;
        }
        let value = option
            .value
            .as_deref()
            .map_or("<unset>".to_owned(), |text| format!("{text:?}"));
        let note = match option.status {
            OptionStatus::Used => String::new(),
            OptionStatus::Ignored => ", ignored by this program".to_owned(),
        };
        let _ = writeln!(
            output,
            "{} = {value}  ({}{note})",
            option.name, option.origin
        );
    }
    output
}
