//! Request checks of the fake: Keystone's auth body and masakari's notification schema.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value};

/// Reason Keystone rejected an auth request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AuthRejection {
    Malformed(&'static str),
    Unauthorized(&'static str),
}

/// A notification body as far as it could be read, and the first schema error, if any.
#[derive(Debug, Clone, Default)]
pub(super) struct Parsed {
    pub kind: String,
    pub hostname: String,
    pub generated_time: String,
    pub payload: BTreeMap<String, String>,
    pub error: Option<String>,
}

impl AuthRejection {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthRejection::Malformed(_) => StatusCode::BAD_REQUEST,
            AuthRejection::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        }
    }

    pub fn text(&self) -> &'static str {
        match self {
            AuthRejection::Malformed(text) | AuthRejection::Unauthorized(text) => text,
        }
    }
}

/// Checks a `POST /v3/auth/tokens` body: password or application-credential identity, and the
/// secret when the fake was given one.
pub(super) fn auth_request(request: &Value, secret: Option<&str>) -> Result<(), AuthRejection> {
    let identity = &request["auth"]["identity"];
    let methods = identity["methods"]
        .as_array()
        .filter(|methods| !methods.is_empty())
        .ok_or(AuthRejection::Malformed(
            "auth.identity.methods is missing.",
        ))?;

    for method in methods {
        let sent_secret = match method.as_str() {
            Some("password") => password_secret(&identity["password"])?,
            Some("application_credential") => {
                if request["auth"].get("scope").is_some() {
                    return Err(AuthRejection::Unauthorized(
                        "Application credentials cannot request a scope.",
                    ));
                }
                application_credential_secret(&identity["application_credential"])?
            }
            _ => return Err(AuthRejection::Unauthorized("Unsupported auth method.")),
        };
        if secret.is_some_and(|expected| expected != sent_secret) {
            return Err(AuthRejection::Unauthorized(
                "The request you have made requires authentication.",
            ));
        }
    }
    Ok(())
}

fn password_secret(password: &Value) -> Result<&str, AuthRejection> {
    let user = &password["user"];
    let named = user["name"].is_string() && user["domain"].is_object();
    if !user["id"].is_string() && !named {
        return Err(AuthRejection::Malformed(
            "password.user needs an id, or a name and a domain.",
        ));
    }
    user["password"].as_str().ok_or(AuthRejection::Malformed(
        "password.user.password is missing.",
    ))
}

fn application_credential_secret(credential: &Value) -> Result<&str, AuthRejection> {
    if !credential["id"].is_string() && !credential["name"].is_string() {
        return Err(AuthRejection::Malformed(
            "application_credential needs an id or a name.",
        ));
    }
    credential["secret"]
        .as_str()
        .ok_or(AuthRejection::Malformed(
            "application_credential.secret is missing.",
        ))
}

/// Reads a `POST /notifications` body and applies masakari's schema: the outer object, the
/// notification fields and, for COMPUTE_HOST, the payload enums.
pub(super) fn notification(body: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => {
            parsed.error = Some("Malformed request body.".to_owned());
            return parsed;
        }
    };
    let notification = match outer(&value) {
        Ok(notification) => notification,
        Err(error) => {
            parsed.error = Some(error);
            return parsed;
        }
    };

    parsed.kind = string_field(notification, "type");
    parsed.hostname = string_field(notification, "hostname");
    parsed.generated_time = string_field(notification, "generated_time");
    if let Some(payload) = notification.get("payload").and_then(Value::as_object) {
        parsed.payload = payload
            .iter()
            .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned()))
            .collect();
    }
    parsed.error = fields(notification).err();
    parsed
}

fn outer(value: &Value) -> Result<&Map<String, Value>, String> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid("body", value, "Not an object."))?;
    if let Some(extra) = object.keys().find(|key| *key != "notification") {
        return Err(invalid(
            extra,
            value,
            "Additional properties are not allowed.",
        ));
    }
    let notification = object.get("notification").ok_or_else(|| {
        invalid(
            "notification",
            value,
            "'notification' is a required property.",
        )
    })?;
    notification
        .as_object()
        .ok_or_else(|| invalid("notification", notification, "Not an object."))
}

const NOTIFICATION_KEYS: [&str; 4] = ["type", "hostname", "generated_time", "payload"];

fn fields(notification: &Map<String, Value>) -> Result<(), String> {
    let whole = Value::Object(notification.clone());
    if let Some(extra) = notification
        .keys()
        .find(|key| !NOTIFICATION_KEYS.contains(&key.as_str()))
    {
        return Err(invalid(
            extra,
            &whole,
            "Additional properties are not allowed.",
        ));
    }
    for key in NOTIFICATION_KEYS {
        if !notification.contains_key(key) {
            return Err(invalid(key, &whole, "Required property is missing."));
        }
    }

    let kind = &notification["type"];
    if !matches!(kind.as_str(), Some("COMPUTE_HOST" | "VM" | "PROCESS")) {
        return Err(invalid(
            "type",
            kind,
            "Not one of COMPUTE_HOST, VM, PROCESS.",
        ));
    }
    let hostname = &notification["hostname"];
    if !hostname.as_str().is_some_and(valid_hostname) {
        return Err(invalid("hostname", hostname, "Not a valid hostname."));
    }
    let generated_time = &notification["generated_time"];
    if !generated_time.as_str().is_some_and(valid_date_time) {
        return Err(invalid(
            "generated_time",
            generated_time,
            "Not a date-time.",
        ));
    }
    let payload = &notification["payload"];
    if kind == "COMPUTE_HOST" {
        compute_host_payload(payload)?;
    } else if !payload.is_object() {
        return Err(invalid("payload", payload, "Not an object."));
    }
    Ok(())
}

/// Masakari's COMPUTE_HOST payload: `event` required, `host_status` and `cluster_status`
/// optional, nothing else; the enums are case-sensitive.
fn compute_host_payload(payload: &Value) -> Result<(), String> {
    let object = payload
        .as_object()
        .ok_or_else(|| invalid("payload", payload, "Not an object."))?;
    let allowed: [(&str, &[&str], bool); 3] = [
        ("event", &["STARTED", "STOPPED"], true),
        ("host_status", &["NORMAL", "UNKNOWN"], false),
        ("cluster_status", &["ONLINE", "OFFLINE"], false),
    ];
    if let Some(extra) = object
        .keys()
        .find(|key| !allowed.iter().any(|(name, _, _)| name == key))
    {
        return Err(invalid(
            extra,
            payload,
            "Additional properties are not allowed.",
        ));
    }
    for (name, values, required) in allowed {
        match object.get(name) {
            None if required => {
                return Err(invalid(name, payload, "Required property is missing."));
            }
            None => {}
            Some(value) if value.as_str().is_some_and(|text| values.contains(&text)) => {}
            Some(value) => {
                let reason = format!("Not one of {}.", values.join(", "));
                return Err(invalid(name, value, &reason));
            }
        }
    }
    Ok(())
}

/// Masakari's hostname rule: 1 to 255 characters from `[a-zA-Z0-9-._]`.
fn valid_hostname(hostname: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    (1..=255).contains(&hostname.len()) && hostname.chars().all(allowed)
}

/// Accepts the forms masakari's clients send: RFC 3339 with an offset, or a date-time without
/// a zone (read as UTC), with `T` or a space between date and time.
fn valid_date_time(text: &str) -> bool {
    let normalized = text.replacen(' ', "T", 1);
    normalized.parse::<jiff::Timestamp>().is_ok()
        || normalized.parse::<jiff::civil::DateTime>().is_ok()
}

fn string_field(notification: &Map<String, Value>, key: &str) -> String {
    notification
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Masakari's schema error text.
fn invalid(field: &str, value: &Value, reason: &str) -> String {
    format!("Invalid input for field/attribute {field}. Value: {value}. {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(notification: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({ "notification": notification })).expect("json")
    }

    fn compute_host() -> Value {
        json!({
            "type": "COMPUTE_HOST",
            "hostname": "compute-0",
            "generated_time": "2026-01-02T03:04:05.000000",
            "payload": {"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "OFFLINE"}
        })
    }

    #[test]
    fn notification_valid_compute_host() {
        let parsed = notification(&body(compute_host()));
        assert_eq!(parsed.error, None);
        assert_eq!(parsed.hostname, "compute-0");
        assert_eq!(parsed.payload["event"], "STOPPED");
    }

    #[test]
    fn notification_accepts_date_time_forms() {
        for time in [
            "2017-04-24 08:34:46",
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05+02:00",
        ] {
            let mut value = compute_host();
            value["generated_time"] = json!(time);
            assert_eq!(notification(&body(value)).error, None, "{time}");
        }
    }

    #[test]
    fn notification_rejects_schema_errors() {
        let cases: [(&str, Value); 6] = [
            ("type", json!("HOST")),
            ("hostname", json!("compute 0")),
            ("generated_time", json!("yesterday")),
            ("payload", json!({"event": "stopped"})),
            ("payload", json!({"event": "STOPPED", "extra": "x"})),
            ("payload", json!({"host_status": "NORMAL"})),
        ];
        for (field, value) in cases {
            let mut notification_value = compute_host();
            notification_value[field] = value.clone();
            let parsed = notification(&body(notification_value));
            assert!(parsed.error.is_some(), "{field} = {value} accepted");
        }
    }

    #[test]
    fn notification_rejects_missing_and_extra_fields() {
        let mut missing = compute_host();
        missing
            .as_object_mut()
            .expect("object")
            .remove("generated_time");
        assert!(notification(&body(missing)).error.is_some());

        let mut extra = compute_host();
        extra["uuid"] = json!("x");
        assert!(notification(&body(extra)).error.is_some());

        assert!(notification(b"{\"other\": {}}").error.is_some());
        assert!(notification(b"not json").error.is_some());
    }

    #[test]
    fn auth_password_with_secret() {
        let request = json!({"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": "monitor", "domain": {"name": "Default"}, "password": "s3cret"}}}}});
        assert_eq!(auth_request(&request, Some("s3cret")), Ok(()));
        assert_eq!(auth_request(&request, None), Ok(()));
        let rejected = auth_request(&request, Some("other")).expect_err("wrong secret");
        assert_eq!(rejected.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn auth_application_credential_rejects_scope() {
        let identity = json!({"methods": ["application_credential"],
            "application_credential": {"id": "abc", "secret": "s3cret"}});
        let unscoped = json!({"auth": {"identity": identity}});
        assert_eq!(auth_request(&unscoped, Some("s3cret")), Ok(()));

        let scoped = json!({"auth": {"identity": identity, "scope": {"project": {"id": "p"}}}});
        let rejected = auth_request(&scoped, Some("s3cret")).expect_err("scope rejected");
        assert_eq!(rejected.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn auth_malformed_body() {
        let rejected = auth_request(&json!({"auth": {}}), None).expect_err("no methods");
        assert_eq!(rejected.status(), StatusCode::BAD_REQUEST);
    }
}
