//! Version discovery for the generic `password` plugin when `auth_url` names no version.

use serde_json::Value;
use url::Url;

/// Returns the `self` link of the v3 entry of a discovery document.
///
/// Accepts the three shapes keystoneauth accepts: `{"versions": {"values": [...]}}`,
/// `{"versions": [...]}` and `{"version": {...}}`. A `stable` entry is preferred over a
/// `current` or `supported` one; entries of other versions or states are skipped.
pub(crate) fn v3_link(document: &Value) -> Option<String> {
    let entries: Vec<&Value> = match (document.get("versions"), document.get("version")) {
        (Some(Value::Object(versions)), _) => versions.get("values")?.as_array()?.iter().collect(),
        (Some(Value::Array(values)), _) => values.iter().collect(),
        (None, Some(version @ Value::Object(_))) => vec![version],
        _ => return None,
    };
    let v3: Vec<&Value> = entries
        .into_iter()
        .filter(|entry| {
            let id = entry.get("id").and_then(Value::as_str).unwrap_or("");
            id == "v3" || id.starts_with("v3.")
        })
        .collect();
    ["stable", "current", "supported"]
        .iter()
        .find_map(|wanted| {
            v3.iter()
                .filter(|entry| {
                    entry
                        .get("status")
                        .and_then(Value::as_str)
                        .is_some_and(|status| status.eq_ignore_ascii_case(wanted))
                })
                .find_map(|entry| self_link(entry))
        })
}

fn self_link(entry: &Value) -> Option<String> {
    entry
        .get("links")?
        .as_array()?
        .iter()
        .find(|link| link.get("rel").and_then(Value::as_str) == Some("self"))?
        .get("href")?
        .as_str()
        .filter(|href| !href.is_empty())
        .map(str::to_owned)
}

/// Applies keystoneauth's fallback when discovery fails: a URL whose path starts with `/v3`
/// is taken as the v3 root. A path such as `/identity/v3` does not qualify.
pub(crate) fn v3_root_from_path(auth_url: &str) -> Option<String> {
    let url = Url::parse(auth_url).ok()?;
    url.path()
        .starts_with("/v3")
        .then(|| auth_url.trim_end_matches('/').to_owned())
}

/// Returns whether `auth_url` already names the v3 API, which makes discovery unnecessary.
pub(crate) fn names_v3(auth_url: &str) -> bool {
    auth_url.trim_end_matches('/').ends_with("/v3")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: &str, status: &str, href: &str) -> Value {
        json!({"id": id, "status": status, "links": [{"rel": "self", "href": href}]})
    }

    #[test]
    fn versions_values_shape() {
        let document = json!({"versions": {"values": [
            entry("v2.0", "deprecated", "http://h/identity/v2.0/"),
            entry("v3.14", "stable", "http://h/identity/v3/")
        ]}});
        assert_eq!(v3_link(&document).as_deref(), Some("http://h/identity/v3/"));
    }

    #[test]
    fn versions_list_shape_prefers_stable() {
        let document = json!({"versions": [
            entry("v3.0", "supported", "http://old/v3/"),
            entry("v3.14", "stable", "http://new/v3/")
        ]});
        assert_eq!(v3_link(&document).as_deref(), Some("http://new/v3/"));
    }

    #[test]
    fn single_version_shape() {
        let document = json!({"version": entry("v3.14", "CURRENT", "http://h/v3/")});
        assert_eq!(v3_link(&document).as_deref(), Some("http://h/v3/"));
    }

    #[test]
    fn no_v3_entry() {
        let document = json!({"versions": [entry("v2.0", "stable", "http://h/v2.0/")]});
        assert_eq!(v3_link(&document), None);
        assert_eq!(v3_link(&json!({"error": "x"})), None);
    }

    #[test]
    fn path_rule() {
        assert_eq!(
            v3_root_from_path("http://h:5000/v3/").as_deref(),
            Some("http://h:5000/v3")
        );
        assert_eq!(v3_root_from_path("http://h/identity/v3"), None);
        assert_eq!(v3_root_from_path("http://h/identity"), None);
        assert!(names_v3("http://h/identity/v3/"));
        assert!(!names_v3("http://h/identity"));
    }
}
