//! The oslo.config INI dialect.
//!
//! Rules, as oslo.config's `iniparser.py` applies them:
//! - each line is right-stripped, and a blank line ends a multi-line value;
//! - a line starting with a space or tab continues the previous value, with leading whitespace
//!   removed and lines joined with `\n`. With no previous key it is an error;
//! - comments are whole lines starting with `#` or `;`, so `a = b # c` has the value `b # c`;
//! - a header is `[name]` and must end with `]`;
//! - an assignment splits at the first `=` or `:`, whichever comes first; key and value are
//!   stripped, and a value (its first line) that starts and ends with the same quote character
//!   loses both quotes.

use std::path::Path;

use super::document::{Document, Entry, Section, normalize_section_name};
use super::error::ConfigError;

/// Parses INI text. The first syntax error stops the parse, as in oslo.config.
pub fn parse(text: &str, path: &Path) -> Result<Document, ConfigError> {
    let mut parser = Parser {
        path,
        sections: Vec::new(),
        pending: None,
    };
    for (index, raw_line) in text.lines().enumerate() {
        parser.line(index + 1, raw_line)?;
    }
    parser.flush();
    Ok(Document {
        path: path.to_owned(),
        sections: parser.sections,
    })
}

struct Pending {
    key: String,
    lines: Vec<String>,
    line: usize,
}

struct Parser<'a> {
    path: &'a Path,
    sections: Vec<Section>,
    pending: Option<Pending>,
}

impl Parser<'_> {
    fn line(&mut self, number: usize, raw_line: &str) -> Result<(), ConfigError> {
        let line = raw_line.trim_end();
        if line.is_empty() {
            self.flush();
            return Ok(());
        }

        if line.starts_with([' ', '\t']) {
            return match &mut self.pending {
                Some(pending) => {
                    pending.lines.push(line.trim_start().to_owned());
                    Ok(())
                }
                None => Err(self.error(number, "Unexpected continuation line")),
            };
        }

        self.flush();
        if line.starts_with('[') {
            self.header(number, line)
        } else if line.starts_with(['#', ';']) {
            Ok(())
        } else {
            self.assignment(number, line)
        }
    }

    fn header(&mut self, number: usize, line: &str) -> Result<(), ConfigError> {
        if !line.ends_with(']') {
            return Err(self.error(number, "Invalid section (must end with ])"));
        }
        if line.len() <= 2 {
            return Err(self.error(number, "Empty section name"));
        }
        let name = normalize_section_name(&line[1..line.len() - 1]);
        self.sections.push(Section {
            name,
            line: Some(number),
            entries: Vec::new(),
        });
        Ok(())
    }

    fn assignment(&mut self, number: usize, line: &str) -> Result<(), ConfigError> {
        let separator = match (line.find('='), line.find(':')) {
            (Some(equal), Some(colon)) => equal.min(colon),
            (Some(at), None) | (None, Some(at)) => at,
            (None, None) => {
                return Err(self.error(number, "No ':' or '=' found in assignment"));
            }
        };
        let key = line[..separator].trim();
        if key.is_empty() {
            return Err(self.error(number, "Key cannot be empty"));
        }
        if self.sections.is_empty() {
            return Err(self.error(number, "Section must be started before assignment"));
        }
        let value = strip_quotes(line[separator + 1..].trim());
        self.pending = Some(Pending {
            key: key.to_owned(),
            lines: vec![value.to_owned()],
            line: number,
        });
        Ok(())
    }

    fn flush(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let entry = Entry {
            key: pending.key,
            value: pending.lines.join("\n"),
            line: Some(pending.line),
        };
        if let Some(section) = self.sections.last_mut() {
            section.entries.push(entry);
        }
    }

    /// Builds a syntax error. The line itself is not echoed because it may hold a secret.
    fn error(&self, number: usize, message: &str) -> ConfigError {
        ConfigError::Syntax {
            path: self.path.to_owned(),
            line: number,
            message: message.to_owned(),
        }
    }
}

fn strip_quotes(value: &str) -> &str {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(&quote @ (b'"' | b'\'')) if bytes.last() == Some(&quote) => {
            if value.len() >= 2 {
                &value[1..value.len() - 1]
            } else {
                ""
            }
        }
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Document {
        parse(text, Path::new("t.conf")).expect("parses")
    }

    fn value(document: &Document, section: &str, key: &str) -> Option<String> {
        document.last(section, key).map(|entry| entry.value.clone())
    }

    fn syntax_error(text: &str) -> (usize, String) {
        match parse(text, Path::new("t.conf")) {
            Err(ConfigError::Syntax { line, message, .. }) => (line, message),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn inline_comment_is_part_of_value() {
        let document = parse_ok("[a]\nx = value # not a comment\ny = 10 ; s\n");
        assert_eq!(
            value(&document, "a", "x").as_deref(),
            Some("value # not a comment")
        );
        assert_eq!(value(&document, "a", "y").as_deref(), Some("10 ; s"));
    }

    #[test]
    fn comment_lines_are_skipped() {
        let document = parse_ok("# top\n[a]\n; semi\n#x = 1\ny = 2\n");
        assert_eq!(value(&document, "a", "x"), None);
        assert_eq!(value(&document, "a", "y").as_deref(), Some("2"));
    }

    #[test]
    fn first_separator_wins() {
        let document = parse_ok("[a]\nuser: colon\npassword = a=b:c\nurl: http://h:5000\n");
        assert_eq!(value(&document, "a", "user").as_deref(), Some("colon"));
        assert_eq!(value(&document, "a", "password").as_deref(), Some("a=b:c"));
        assert_eq!(
            value(&document, "a", "url").as_deref(),
            Some("http://h:5000")
        );
    }

    #[test]
    fn matching_quotes_are_stripped() {
        let document = parse_ok("[a]\nx = \"q\"\ny = 'q'\nz = \"q'\nw = \"\nv = \"\"\n");
        assert_eq!(value(&document, "a", "x").as_deref(), Some("q"));
        assert_eq!(value(&document, "a", "y").as_deref(), Some("q"));
        assert_eq!(value(&document, "a", "z").as_deref(), Some("\"q'"));
        assert_eq!(value(&document, "a", "w").as_deref(), Some(""));
        assert_eq!(value(&document, "a", "v").as_deref(), Some(""));
    }

    #[test]
    fn continuation_lines_join_with_newline() {
        let document = parse_ok("[a]\nx = first\n  second\n\tthird\n\n  \ny = 1\nz =\n  next\n");
        assert_eq!(
            value(&document, "a", "x").as_deref(),
            Some("first\nsecond\nthird")
        );
        assert_eq!(value(&document, "a", "z").as_deref(), Some("\nnext"));
    }

    #[test]
    fn indented_comment_continues_value() {
        let document = parse_ok("[a]\nx = a\n  # indented\n");
        assert_eq!(value(&document, "a", "x").as_deref(), Some("a\n# indented"));
    }

    #[test]
    fn quotes_only_stripped_on_first_line() {
        let document = parse_ok("[a]\nx = \"one,\n  two\"\n");
        assert_eq!(value(&document, "a", "x").as_deref(), Some("\"one,\ntwo\""));
    }

    #[test]
    fn section_names_lowercased_except_default() {
        let document = parse_ok("[API]\nx = 1\n[default]\ny = 2\n[DEFAULT]\nz = 3\n");
        let names: Vec<_> = document.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["api", "default", "DEFAULT"]);
    }

    #[test]
    fn keys_are_case_sensitive() {
        let document = parse_ok("[a]\nUsername = x\n");
        assert_eq!(value(&document, "a", "username"), None);
        assert_eq!(value(&document, "a", "Username").as_deref(), Some("x"));
    }

    #[test]
    fn repeated_sections_later_wins() {
        let document = parse_ok("[host]\nn = 3\n[api]\nx = 1\n[host]\nn = 5\n");
        assert_eq!(value(&document, "host", "n").as_deref(), Some("5"));
        assert_eq!(document.last("host", "n").and_then(|e| e.line), Some(6));
    }

    #[test]
    fn empty_value_is_empty_string() {
        let document = parse_ok("[a]\ncafile =\n");
        assert_eq!(value(&document, "a", "cafile").as_deref(), Some(""));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(
            syntax_error("[host]\n  monitoring_interval = 30\n"),
            (2, "Unexpected continuation line".to_owned())
        );
        assert_eq!(
            syntax_error("[api] # c\n").1,
            "Invalid section (must end with ])"
        );
        assert_eq!(syntax_error("[]\n").1, "Empty section name");
        assert_eq!(
            syntax_error("x = 1\n").1,
            "Section must be started before assignment"
        );
        assert_eq!(syntax_error("[a]\n= 1\n").1, "Key cannot be empty");
        assert_eq!(
            syntax_error("[a]\n\njust words\n"),
            (3, "No ':' or '=' found in assignment".to_owned())
        );
    }
}
