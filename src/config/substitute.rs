//! oslo.config's `$` substitution.
//!
//! `$name` and `${name}` expand to the option `name` of the same section, falling back to
//! `[DEFAULT]`; `${section.name}` reads another section. `$$` and `\$` are a literal `$`, and a
//! `$` not followed by a name stays as it is. Names match `[_A-Za-z][._A-Za-z0-9]*` (oslo's
//! pattern, applied case-insensitively by Python's `string.Template`).

/// Failure to expand a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubstitutionError {
    /// The reference names no option.
    Unknown(String),
    /// The reference leads back to the option being expanded.
    Cycle(String),
}

/// Source of referenced values: `Ok(None)` when `section` has no option `name`.
pub trait Resolve {
    fn resolve(&mut self, section: &str, name: &str) -> Result<Option<String>, SubstitutionError>;
}

/// Expands every reference in `text`, read in `section`.
pub fn expand(
    text: &str,
    section: &str,
    resolver: &mut dyn Resolve,
) -> Result<String, SubstitutionError> {
    let text = text.replace("\\$", "$$");
    let mut output = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find('$') {
        output.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            output.push('$');
            rest = tail;
        } else if let Some((name, tail)) = braced_name(after).or_else(|| bare_name(after)) {
            output.push_str(&lookup(name, section, resolver)?);
            rest = tail;
        } else {
            output.push('$');
            rest = after;
        }
    }
    output.push_str(rest);
    Ok(output)
}

fn lookup(
    reference: &str,
    section: &str,
    resolver: &mut dyn Resolve,
) -> Result<String, SubstitutionError> {
    let (group, name) = match reference.split_once('.') {
        Some((group, name)) => (group, name),
        None => (section, reference),
    };
    if let Some(value) = resolver.resolve(group, name)? {
        return Ok(value);
    }
    match resolver.resolve("DEFAULT", reference)? {
        Some(value) => Ok(value),
        None => Err(SubstitutionError::Unknown(reference.to_owned())),
    }
}

fn braced_name(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('{')?;
    let end = inner.find('}')?;
    let name = &inner[..end];
    (name_length(name) == name.len() && !name.is_empty()).then(|| (name, &inner[end + 1..]))
}

fn bare_name(text: &str) -> Option<(&str, &str)> {
    let length = name_length(text);
    (length > 0).then(|| text.split_at(length))
}

/// Returns the length of the longest name at the start of `text`.
fn name_length(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, c)) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    chars
        .find(|&(_, c)| !(c == '_' || c == '.' || c.is_ascii_alphanumeric()))
        .map_or(text.len(), |(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Table(Vec<(&'static str, &'static str, &'static str)>);

    impl Resolve for Table {
        fn resolve(
            &mut self,
            section: &str,
            name: &str,
        ) -> Result<Option<String>, SubstitutionError> {
            Ok(self
                .0
                .iter()
                .find(|(s, n, _)| *s == section && *n == name)
                .map(|(_, _, v)| (*v).to_owned()))
        }
    }

    fn table() -> Table {
        Table(vec![
            ("api", "username", "masakari"),
            ("api", "user_domain_name", "Default"),
            ("DEFAULT", "hostname", "compute-0"),
            ("DEFAULT", "debugx", "yes"),
        ])
    }

    fn run(text: &str) -> Result<String, SubstitutionError> {
        expand(text, "api", &mut table())
    }

    #[test]
    fn literal_dollars() {
        assert_eq!(run("pa$$word").as_deref(), Ok("pa$word"));
        assert_eq!(run("pa\\$word").as_deref(), Ok("pa$word"));
        assert_eq!(run("R3d$$ky&pa$$$$word").as_deref(), Ok("R3d$ky&pa$$word"));
        assert_eq!(run("trailing$").as_deref(), Ok("trailing$"));
        assert_eq!(run("a $ b").as_deref(), Ok("a $ b"));
        assert_eq!(run("${not closed").as_deref(), Ok("${not closed"));
        assert_eq!(run("$1x").as_deref(), Ok("$1x"));
    }

    #[test]
    fn references_expand() {
        assert_eq!(run("$username-x").as_deref(), Ok("masakari-x"));
        assert_eq!(run("${username}x").as_deref(), Ok("masakarix"));
        assert_eq!(
            run("${api.username}-$debugx").as_deref(),
            Ok("masakari-yes")
        );
        assert_eq!(run("$hostname").as_deref(), Ok("compute-0"));
        assert_eq!(
            expand("${api.user_domain_name}", "api", &mut table()).as_deref(),
            Ok("Default")
        );
    }

    #[test]
    fn unknown_reference_fails() {
        assert_eq!(
            run("R3d$ky&pa$$word"),
            Err(SubstitutionError::Unknown("ky".to_owned()))
        );
        assert_eq!(
            run("${nosuch.option}"),
            Err(SubstitutionError::Unknown("nosuch.option".to_owned()))
        );
    }
}
