//! Kubernetes label selector syntax, as apimachinery's `labels.Parse` accepts it:
//! comma-separated requirements `key`, `!key`, `key=value`, `key==value`, `key!=value`,
//! `key in (v1,v2)`, `key notin (v1,v2)`, `key>1`, `key<1`. Keys are
//! `[DNS subdomain "/"] name`; names and values are at most 63 characters of `[A-Za-z0-9_.-]`
//! starting and ending with an alphanumeric; values may be empty.

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

/// Checks `selector`. The error names the invalid part and what is allowed there.
pub fn validate(selector: &str) -> Result<(), String> {
    let tokens = lex(selector);
    let mut parser = Parser {
        tokens: &tokens,
        position: 0,
    };
    if tokens.is_empty() {
        return Ok(());
    }
    loop {
        parser.requirement()?;
        match parser.next() {
            None => return Ok(()),
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

    fn requirement(&mut self) -> Result<(), String> {
        if self.peek() == Some(&Token::Not) {
            self.position += 1;
            return self.key().map(|_| ());
        }
        self.key()?;
        match self.peek().cloned() {
            None | Some(Token::Comma) => Ok(()),
            Some(Token::Equals | Token::DoubleEquals | Token::NotEquals) => {
                self.position += 1;
                self.single_value()
            }
            Some(Token::Greater | Token::Less) => {
                self.position += 1;
                match self.next() {
                    Some(Token::Word(word)) if word.parse::<i64>().is_ok() => Ok(()),
                    _ => Err("'>' and '<' need an integer value".to_owned()),
                }
            }
            Some(Token::Word(word)) if word == "in" || word == "notin" => {
                self.position += 1;
                self.value_set()
            }
            Some(token) => Err(format!(
                "expected an operator after the key, found {}",
                describe(&token)
            )),
        }
    }

    fn key(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(word)) => validate_key(word).map(|()| word.clone()),
            Some(token) => Err(format!("expected a label key, found {}", describe(token))),
            None => Err("expected a label key at the end".to_owned()),
        }
    }

    fn single_value(&mut self) -> Result<(), String> {
        match self.peek() {
            None | Some(Token::Comma) => Ok(()),
            Some(Token::Word(word)) => {
                let word = word.clone();
                self.position += 1;
                validate_value(&word)
            }
            Some(token) => Err(format!("expected a label value, found {}", describe(token))),
        }
    }

    fn value_set(&mut self) -> Result<(), String> {
        if self.next() != Some(&Token::Open) {
            return Err("expected '(' after in or notin".to_owned());
        }
        loop {
            match self.next() {
                Some(Token::Word(word)) => {
                    let word = word.clone();
                    validate_value(&word)?;
                    match self.next() {
                        Some(Token::Comma) => {}
                        Some(Token::Close) => return Ok(()),
                        _ => return Err("expected ',' or ')' in the value list".to_owned()),
                    }
                }
                Some(Token::Comma) => {}
                Some(Token::Close) => return Ok(()),
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
        ] {
            assert!(validate(selector).is_err(), "{selector}");
        }
    }
}
