//! Label selectors as the API server parses them: `=`, `==`, `!=`, `in`, `notin`, exists and
//! `!` (does not exist), requirements joined by commas.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// A parsed label selector; an empty one matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    Equals(String),
    NotEquals(String),
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    Exists,
    DoesNotExist,
}

/// Error for a selector that cannot be parsed. The API server returns 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(String);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for term in split_terms(text)? {
            let term = term.trim();
            if term.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(SelectorError("empty requirement".to_owned()));
            }
            requirements.push(Requirement::parse(term)?);
        }
        Ok(LabelSelector { requirements })
    }

    /// Tests the selector against an object's `metadata.labels`.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        self.matches_with(|key| labels.and_then(|l| l.get(key)).and_then(Value::as_str))
    }

    /// Tests the selector against a label map.
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|key| labels.get(key).map(String::as_str))
    }

    fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| match &r.operator {
            Operator::Equals(v) => get(&r.key) == Some(v.as_str()),
            Operator::NotEquals(v) => get(&r.key) != Some(v.as_str()),
            Operator::In(set) => get(&r.key).is_some_and(|v| set.contains(v)),
            Operator::NotIn(set) => get(&r.key).is_none_or(|v| !set.contains(v)),
            Operator::Exists => get(&r.key).is_some(),
            Operator::DoesNotExist => get(&r.key).is_none(),
        })
    }
}

/// Splits at commas outside parentheses.
fn split_terms(text: &str) -> Result<Vec<&str>, SelectorError> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| SelectorError(text.to_owned()))?;
            }
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError(text.to_owned()));
    }
    terms.push(&text[start..]);
    Ok(terms)
}

impl Requirement {
    fn parse(term: &str) -> Result<Self, SelectorError> {
        let invalid = || SelectorError(term.to_owned());
        if let Some(open) = term.find('(') {
            let close = term.rfind(')').filter(|c| *c > open).ok_or_else(invalid)?;
            if !term[close + 1..].trim().is_empty() {
                return Err(invalid());
            }
            let head = term[..open].trim_end();
            let (key, word) = head.rsplit_once(char::is_whitespace).ok_or_else(invalid)?;
            let values: BTreeSet<String> = term[open + 1..close]
                .split(',')
                .map(|v| v.trim().to_owned())
                .collect();
            for value in &values {
                check_value(value).map_err(|_| invalid())?;
            }
            let operator = match word {
                "in" => Operator::In(values),
                "notin" => Operator::NotIn(values),
                _ => return Err(invalid()),
            };
            return Requirement::new(key.trim(), operator).map_err(|_| invalid());
        }
        if let Some(key) = term.strip_prefix('!') {
            return Requirement::new(key.trim(), Operator::DoesNotExist).map_err(|_| invalid());
        }
        let (key, operator) = if let Some((k, v)) = term.split_once("!=") {
            (k, Operator::NotEquals(v.trim().to_owned()))
        } else if let Some((k, v)) = term.split_once("==") {
            (k, Operator::Equals(v.trim().to_owned()))
        } else if let Some((k, v)) = term.split_once('=') {
            (k, Operator::Equals(v.trim().to_owned()))
        } else {
            (term, Operator::Exists)
        };
        if let Operator::Equals(v) | Operator::NotEquals(v) = &operator {
            check_value(v).map_err(|_| invalid())?;
        }
        Requirement::new(key.trim(), operator).map_err(|_| invalid())
    }

    fn new(key: &str, operator: Operator) -> Result<Self, ()> {
        check_key(key)?;
        Ok(Requirement {
            key: key.to_owned(),
            operator,
        })
    }
}

/// Checks a key: an optional DNS subdomain prefix and `/`, then a name of up to 63 characters.
fn check_key(key: &str) -> Result<(), ()> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            let prefix_ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !prefix_ok {
                return Err(());
            }
            name
        }
        None => key,
    };
    if name.is_empty() || !valid_name(name) {
        return Err(());
    }
    Ok(())
}

/// Checks a value: empty, or a name of up to 63 characters.
fn check_value(value: &str) -> Result<(), ()> {
    if value.is_empty() || valid_name(value) {
        Ok(())
    } else {
        Err(())
    }
}

fn valid_name(name: &str) -> bool {
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    name.len() <= 63
        && ends_ok(name.chars().next())
        && ends_ok(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: Value) -> Value {
        json!({"metadata": {"name": "n", "labels": labels}})
    }

    #[test]
    fn selector_operators() {
        let object = node(json!({"a": "1", "b": "2", "zone": "x"}));
        let cases = [
            ("", true),
            ("a=1", true),
            ("a==1", true),
            ("a=2", false),
            ("a!=2", true),
            ("c!=2", true),
            ("a in (1,3)", true),
            ("a in (3)", false),
            ("a notin (3)", true),
            ("c notin (3)", true),
            ("a notin (1)", false),
            ("a", true),
            ("c", false),
            ("!c", true),
            ("!a", false),
            ("a=1,b=2", true),
            ("a=1,b=3", false),
            ("zone in (x,,y),a,c notin ()", true),
            (" a = 1 , b in ( 2 ) ", true),
        ];
        for (text, expected) in cases {
            let selector = LabelSelector::parse(text).expect(text);
            assert_eq!(selector.matches(&object), expected, "{text}");
        }
    }

    #[test]
    fn selector_prefixed_keys() {
        let object = node(json!({"node-role.kubernetes.io/compute": ""}));
        assert!(
            LabelSelector::parse("node-role.kubernetes.io/compute")
                .unwrap()
                .matches(&object)
        );
        assert!(
            LabelSelector::parse("node-role.kubernetes.io/compute=")
                .unwrap()
                .matches(&object)
        );
    }

    #[test]
    fn selector_rejects_invalid() {
        for text in [
            "a in 1",
            "a in (1",
            "a,",
            "=1",
            "a b",
            "a=(1)",
            "x/=1",
            "a in (1) b",
        ] {
            assert!(LabelSelector::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn selector_no_labels() {
        let object = json!({"metadata": {"name": "n"}});
        assert!(LabelSelector::parse("!a").unwrap().matches(&object));
        assert!(!LabelSelector::parse("a").unwrap().matches(&object));
    }
}
