//! Kubernetes label selectors, as apimachinery's `labels.Parse` reads them and the API server
//! applies them: comma-separated requirements `key`, `!key`, `key=value`, `key==value`,
//! `key!=value`, `key in (v1,v2)`, `key notin (v1,v2)`, `key>1`, `key<1`, all of which must
//! match. Keys are `[DNS subdomain "/"] name`; names and values are at most 63 characters of
//! `[A-Za-z0-9_.-]` starting and ending with an alphanumeric; values may be empty.
//!
//! The configuration validates `[kubernetes] monitoring_node_labels` with it, and the fake
//! Kubernetes API filters Nodes with it.

use std::collections::{BTreeMap, BTreeSet};

/// A parsed selector; the empty selector matches every object.
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
    GreaterThan(i64),
    LessThan(i64),
}

impl LabelSelector {
    /// Parses `text`. The error names the invalid part and what is allowed there.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let tokens = lex(text);
        let mut parser = Parser {
            tokens: &tokens,
            position: 0,
        };
        let mut requirements = Vec::new();
        if tokens.is_empty() {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(parser.requirement()?);
            match parser.next() {
                None => return Ok(LabelSelector { requirements }),
                Some(Token::Comma) => {}
                Some(token) => {
                    return Err(format!(
                        "expected ',' between requirements, found {}",
                        describe(token)
                    ));
                }
            }
        }
    }

    /// Tests the selector against a label map.
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|key| labels.get(key).map(String::as_str))
    }

    /// Tests the selector against labels read through `get`.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| {
            let value = get(&r.key);
            match &r.operator {
                Operator::Equals(v) => value == Some(v.as_str()),
                Operator::NotEquals(v) => value != Some(v.as_str()),
                Operator::In(set) => value.is_some_and(|v| set.contains(v)),
                Operator::NotIn(set) => value.is_none_or(|v| !set.contains(v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
                Operator::GreaterThan(n) => integer(value).is_some_and(|v| v > *n),
                Operator::LessThan(n) => integer(value).is_some_and(|v| v < *n),
            }
        })
    }
}

/// Checks `selector` without keeping the parsed form.
pub fn validate(selector: &str) -> Result<(), String> {
    LabelSelector::parse(selector).map(|_| ())
}

fn integer(value: Option<&str>) -> Option<i64> {
    value.and_then(|v| v.parse().ok())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Equals,
    DoubleEquals,
    NotEquals,
    Not,
    Open,
    Close,
    Comma,
    Greater,
    Less,
}

fn lex(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            ' ' | '\t' | '\r' | '\n' => continue,
            '=' if chars.peek() == Some(&'=') => {
                chars.next();
                Token::DoubleEquals
            }
            '=' => Token::Equals,
            '!' if chars.peek() == Some(&'=') => {
                chars.next();
                Token::NotEquals
            }
            '!' => Token::Not,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '>' => Token::Greater,
            '<' => Token::Less,
            _ => {
                let mut word = c.to_string();
                while let Some(&next) = chars.peek() {
                    if " \t\r\n=!(),><".contains(next) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                Token::Word(word)
            }
        };
        tokens.push(token);
    }
    tokens
}

struct Parser<'a> {
    tokens: &'a [Token],
    position: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.position);
        self.position += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        if self.peek() == Some(&Token::Not) {
            self.position += 1;
            let key = self.key()?;
            return Ok(Requirement {
                key,
                operator: Operator::DoesNotExist,
            });
        }
        let key = self.key()?;
        let operator = match self.peek().cloned() {
            None | Some(Token::Comma) => Operator::Exists,
            Some(Token::Equals | Token::DoubleEquals) => {
                self.position += 1;
                Operator::Equals(self.single_value()?)
            }
            Some(Token::NotEquals) => {
                self.position += 1;
                Operator::NotEquals(self.single_value()?)
            }
            Some(comparison @ (Token::Greater | Token::Less)) => {
                self.position += 1;
                let bound = match self.next() {
                    Some(Token::Word(word)) => word.parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| "'>' and '<' need an integer value".to_owned())?;
                if comparison == Token::Greater {
                    Operator::GreaterThan(bound)
                } else {
                    Operator::LessThan(bound)
                }
            }
            Some(Token::Word(word)) if word == "in" || word == "notin" => {
                self.position += 1;
                let values = self.value_set()?;
                if word == "in" {
                    Operator::In(values)
                } else {
                    Operator::NotIn(values)
                }
            }
            Some(token) => {
                return Err(format!(
                    "expected an operator after the key, found {}",
                    describe(&token)
                ));
            }
        };
        Ok(Requirement { key, operator })
    }

    fn key(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(word)) => validate_key(word).map(|()| word.clone()),
            Some(token) => Err(format!("expected a label key, found {}", describe(token))),
            None => Err("expected a label key at the end".to_owned()),
        }
    }

    /// Reads the value after `=`, `==` or `!=`; a missing value is the empty string.
    fn single_value(&mut self) -> Result<String, String> {
        match self.peek() {
            None | Some(Token::Comma) => Ok(String::new()),
            Some(Token::Word(word)) => {
                let word = word.clone();
                self.position += 1;
                validate_value(&word)?;
                Ok(word)
            }
            Some(token) => Err(format!("expected a label value, found {}", describe(token))),
        }
    }

    /// Reads `(v1,v2,...)`; empty items are the empty value, as apimachinery reads them.
    fn value_set(&mut self) -> Result<BTreeSet<String>, String> {
        if self.next() != Some(&Token::Open) {
            return Err("expected '(' after in or notin".to_owned());
        }
        let mut values = BTreeSet::new();
        let mut expect_value = true;
        loop {
            match self.next() {
                Some(Token::Word(word)) if expect_value => {
                    let word = word.clone();
                    validate_value(&word)?;
                    values.insert(word);
                    expect_value = false;
                }
                Some(Token::Comma) => {
                    if expect_value {
                        values.insert(String::new());
                    }
                    expect_value = true;
                }
                Some(Token::Close) => {
                    if expect_value && !values.is_empty() {
                        values.insert(String::new());
                    }
                    return Ok(values);
                }
                Some(Token::Word(_)) => {
                    return Err("expected ',' or ')' in the value list".to_owned());
                }
                _ => return Err("expected ')' to close the value list".to_owned()),
            }
        }
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(word) => format!("'{word}'"),
        Token::Equals => "'='".to_owned(),
        Token::DoubleEquals => "'=='".to_owned(),
        Token::NotEquals => "'!='".to_owned(),
        Token::Not => "'!'".to_owned(),
        Token::Open => "'('".to_owned(),
        Token::Close => "')'".to_owned(),
        Token::Comma => "','".to_owned(),
        Token::Greater => "'>'".to_owned(),
        Token::Less => "'<'".to_owned(),
    }
}

fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(format!(
            "invalid label key '{key}': the prefix must be a lower-case DNS subdomain"
        ));
    }
    if !is_qualified_name(name) {
        return Err(format!(
            "invalid label key '{key}': the name must be 1 to 63 characters of [A-Za-z0-9_.-], starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_qualified_name(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value '{value}': at most 63 characters of [A-Za-z0-9_.-], starting and ending with a letter or digit"
        ))
    }
}

fn is_qualified_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn is_dns_subdomain(prefix: &str) -> bool {
    prefix.len() <= 253
        && !prefix.is_empty()
        && prefix.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 63
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_selectors() {
        for selector in [
            "",
            "openstack-compute-node=enabled,masakari=enabled",
            "monitoring=true, compute-node==enabled",
            "x in (foo,,baz),y,z notin ()",
            "!node-role.kubernetes.io/control-plane",
            "tier!=frontend",
            "example.com/role=compute",
            "empty=",
            "count>3",
        ] {
            assert_eq!(validate(selector), Ok(()), "{selector}");
        }
    }

    #[test]
    fn invalid_selectors() {
        for selector in [
            "\"openstack-compute-node=enabled,\nmasakari=enabled\"",
            "a=b c=d",
            "Example.com/role=x",
            "key in foo",
            "=value",
            "a,",
            "k=-bad",
            "count>x",
            "a in 1",
            "a in (1",
            "a b",
            "a=(1)",
            "x/=1",
            "a in (1) b",
        ] {
            assert!(validate(selector).is_err(), "{selector}");
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn selector_operators_match() {
        let labels = labels(&[("a", "1"), ("b", "2"), ("zone", "x"), ("count", "5")]);
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
            ("count>3", true),
            ("count<3", false),
            ("a>0,count<6", true),
            ("zone>1", false),
        ];
        for (text, expected) in cases {
            let selector = LabelSelector::parse(text).expect(text);
            assert_eq!(selector.matches_labels(&labels), expected, "{text}");
        }
    }

    #[test]
    fn empty_values_match_empty_labels() {
        let labels = labels(&[("node-role.kubernetes.io/compute", "")]);
        for text in [
            "node-role.kubernetes.io/compute",
            "node-role.kubernetes.io/compute=",
            "node-role.kubernetes.io/compute in (a,)",
        ] {
            let selector = LabelSelector::parse(text).expect(text);
            assert!(selector.matches_labels(&labels), "{text}");
        }
    }

    #[test]
    fn selector_without_labels() {
        let none = BTreeMap::new();
        assert!(
            LabelSelector::parse("!a")
                .expect("valid")
                .matches_labels(&none)
        );
        assert!(
            !LabelSelector::parse("a")
                .expect("valid")
                .matches_labels(&none)
        );
        assert!(
            LabelSelector::parse("a notin (1)")
                .expect("valid")
                .matches_labels(&none)
        );
    }
}
