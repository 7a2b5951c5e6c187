//! The TOML form: one table per section (`[DEFAULT]`, `[api]`, ...), with the same keys as the
//! INI file. Values may be strings, integers, floats, booleans or arrays (for list options).
//! Each value is turned into the text the INI file would contain, so both forms share one
//! interpretation.

use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::document::{Document, Entry, Section, normalize_section_name};
use super::error::ConfigError;

/// Parses TOML text, keeping line numbers.
pub fn parse(text: &str, path: &Path) -> Result<Document, ConfigError> {
    let table = DeTable::parse(text).map_err(|error| {
        let line = error.span().map_or(1, |span| line_of(text, span.start));
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            message: error.message().to_owned(),
        }
    })?;
    let mut sections = Vec::new();
    for (name, value) in table.get_ref() {
        let line = Some(line_of(text, name.span().start));
        let DeValue::Table(entries) = value.get_ref() else {
            return Err(syntax(
                path,
                line,
                "top-level keys must be tables named after sections",
            ));
        };
        let mut section = Section {
            name: normalize_section_name(name.get_ref()),
            line,
            entries: Vec::new(),
        };
        for (key, value) in entries {
            let line = Some(line_of(text, key.span().start));
            let text_value = de_value_text(value.get_ref())
                .map_err(|message| syntax(path, line, &format!("{}: {message}", key.get_ref())))?;
            section.entries.push(Entry {
                key: key.get_ref().to_string(),
                value: text_value,
                line,
            });
        }
        sections.push(section);
    }
    Ok(Document {
        path: path.to_owned(),
        sections,
    })
}

/// Converts an already parsed table; values carry the origin `name` without line numbers.
pub fn from_table(table: &toml::Table, name: &Path) -> Result<Document, ConfigError> {
    let mut sections = Vec::new();
    for (section_name, value) in table {
        let toml::Value::Table(entries) = value else {
            return Err(syntax(
                name,
                None,
                "top-level keys must be tables named after sections",
            ));
        };
        let mut section = Section {
            name: normalize_section_name(section_name),
            line: None,
            entries: Vec::new(),
        };
        for (key, value) in entries {
            let text_value = value_text(value).map_err(|message| {
                syntax(name, None, &format!("[{section_name}] {key}: {message}"))
            })?;
            section.entries.push(Entry {
                key: key.clone(),
                value: text_value,
                line: None,
            });
        }
        sections.push(section);
    }
    Ok(Document {
        path: name.to_owned(),
        sections,
    })
}

fn de_value_text(value: &DeValue<'_>) -> Result<String, String> {
    match value {
        DeValue::String(text) => Ok(text.to_string()),
        DeValue::Integer(integer) => i64::from_str_radix(integer.as_str(), integer.radix())
            .map(|n| n.to_string())
            .map_err(|_| "integer out of range".to_owned()),
        DeValue::Float(float) => Ok(float.as_str().to_owned()),
        DeValue::Boolean(flag) => Ok(flag.to_string()),
        DeValue::Array(items) => {
            let items: Result<Vec<String>, String> = items
                .iter()
                .map(|item| de_value_text(item.get_ref()))
                .collect();
            join_list(items?)
        }
        DeValue::Datetime(_) => Err("dates are not option values".to_owned()),
        DeValue::Table(_) => Err("nested tables are not option values".to_owned()),
    }
}

fn value_text(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(flag) => Ok(flag.to_string()),
        toml::Value::Array(items) => {
            join_list(items.iter().map(value_text).collect::<Result<_, _>>()?)
        }
        toml::Value::Datetime(_) => Err("dates are not option values".to_owned()),
        toml::Value::Table(_) => Err("nested tables are not option values".to_owned()),
    }
}

/// Joins array items the way a list option is written in INI. Items containing a comma are
/// rejected because the list parser would split them.
fn join_list(items: Vec<String>) -> Result<String, String> {
    if items.iter().any(|item| item.contains(',')) {
        return Err("list items cannot contain a comma".to_owned());
    }
    Ok(items.join(","))
}

fn syntax(path: &Path, line: Option<usize>, message: &str) -> ConfigError {
    ConfigError::Syntax {
        path: path.to_owned(),
        line: line.unwrap_or(0),
        message: message.to_owned(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_values_become_ini_text() {
        let text = "[DEFAULT]\ndebug = true\n\n[host]\nmonitoring_interval = 30\n\n[kubernetes]\ndown_ready_statuses = [\"False\", \"Unknown\"]\n";
        let document = parse(text, Path::new("c.toml")).expect("parses");
        assert_eq!(
            document.last("DEFAULT", "debug").map(|e| e.value.as_str()),
            Some("true")
        );
        assert_eq!(
            document
                .last("host", "monitoring_interval")
                .and_then(|e| e.line),
            Some(5)
        );
        assert_eq!(
            document
                .last("kubernetes", "down_ready_statuses")
                .map(|e| e.value.as_str()),
            Some("False,Unknown")
        );
    }

    #[test]
    fn toml_rejects_top_level_values() {
        let error = parse("debug = true\n", Path::new("c.toml")).expect_err("rejected");
        assert!(
            error.to_string().contains("tables named after sections"),
            "{error}"
        );
    }

    #[test]
    fn toml_syntax_error_has_line() {
        let error = parse("[api]\nx = \n", Path::new("c.toml")).expect_err("rejected");
        let ConfigError::Syntax { line, .. } = error else {
            panic!("{error:?}")
        };
        assert_eq!(line, 2);
    }
}
