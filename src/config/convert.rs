//! Option types as oslo.config parses them. Each parser returns what is allowed on failure.

use std::time::Duration;

/// Parses a boolean: `true/1/on/yes` or `false/0/off/no`, any case.
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        _ => Err("expected a boolean: true, false, yes, no, on, off, 1 or 0".to_owned()),
    }
}

/// Parses an integer of at least `min`. Empty text means unset (`Ok(None)`).
pub fn integer(text: &str, min: i64) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let number: i64 = text
        .parse()
        .map_err(|_| format!("expected an integer of at least {min}"))?;
    if number < min {
        return Err(format!("must be at least {min}"));
    }
    Ok(Some(number))
}

/// Parses whole seconds of at least `min`. Empty text means unset.
pub fn seconds(text: &str, min: u64) -> Result<Option<Duration>, String> {
    let min_signed = i64::try_from(min).unwrap_or(i64::MAX);
    integer(text, min_signed)
        .map_err(|reason| format!("{reason} (seconds)"))
        .map(|value| value.map(|n| Duration::from_secs(n.unsigned_abs())))
}

/// Parses a positive number of seconds with a fraction. Empty text means unset.
pub fn float_seconds(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let reason = || "expected a number of seconds greater than 0".to_owned();
    let number: f64 = text.parse().map_err(|_| reason())?;
    if !(number.is_finite() && number > 0.0) {
        return Err(reason());
    }
    Duration::try_from_secs_f64(number)
        .map(Some)
        .map_err(|_| reason())
}

/// Splits a list: strip, drop one trailing comma, split on `,`, strip each item. Empty text is
/// an empty list.
pub fn list(text: &str) -> Vec<String> {
    let text = text.trim();
    let text = text.strip_suffix(',').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    text.split(',').map(|item| item.trim().to_owned()).collect()
}

/// Returns `None` for empty text, the text otherwise.
pub fn optional(text: Option<String>) -> Option<String> {
    text.filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        for text in ["true", "TRUE", "1", "on", "Yes"] {
            assert_eq!(boolean(text), Ok(true), "{text}");
        }
        for text in ["false", "False", "0", "off", "NO"] {
            assert_eq!(boolean(text), Ok(false), "{text}");
        }
        assert!(boolean("maybe").is_err());
        assert!(boolean("True # enabled").is_err());
    }

    #[test]
    fn integers() {
        assert_eq!(integer("30", 1), Ok(Some(30)));
        assert_eq!(integer("", 1), Ok(None));
        assert!(integer("0", 1).is_err());
        assert!(integer("10 ; seconds", 0).is_err());
        assert!(integer("1.5", 0).is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(list("a, b ,c,"), ["a", "b", "c"]);
        assert_eq!(list("a,b"), ["a", "b"]);
        assert_eq!(list("one,\ntwo"), ["one", "two"]);
        assert!(list("").is_empty());
        assert_eq!(list("a,,b"), ["a", "", "b"]);
    }

    #[test]
    fn float_seconds_parse() {
        assert_eq!(float_seconds("2.5"), Ok(Some(Duration::from_millis(2500))));
        assert!(float_seconds("0").is_err());
        assert!(float_seconds("-1").is_err());
        assert!(float_seconds("nan").is_err());
    }
}
