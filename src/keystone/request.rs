//! The token request: its URL and its body, built as keystoneauth builds them.

use serde_json::{Map, Value, json};

use super::KeystoneError;
use crate::config::{AuthConfig, AuthType};

/// Returns the v3 root for the explicit `v3*` plugins: `auth_url` when it ends in `v3`, else
/// `auth_url` plus `/v3`. The trailing `/` is removed first.
pub(crate) fn explicit_v3_root(auth_url: &str) -> String {
    let trimmed = auth_url.trim_end_matches('/');
    if trimmed.ends_with("v3") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v3")
    }
}

/// Returns the token URL under a v3 root.
pub(crate) fn token_url(v3_root: &str) -> String {
    format!("{}/auth/tokens", v3_root.trim_end_matches('/'))
}

/// Builds the `POST /v3/auth/tokens` body for the configured plugin.
///
/// The body contains the password or application credential secret: never log it.
pub(crate) fn token_request_body(auth: &AuthConfig) -> Result<Value, KeystoneError> {
    match auth.auth_type {
        AuthType::Password | AuthType::V3Password => password_body(auth),
        AuthType::V3ApplicationCredential => application_credential_body(auth),
    }
}

fn password_body(auth: &AuthConfig) -> Result<Value, KeystoneError> {
    let generic = auth.auth_type == AuthType::Password;
    let password = auth
        .password
        .as_ref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| invalid("password", "is required"))?;

    let user_domain = domain_ref(
        fallback(&auth.user_domain_id, &auth.default_domain_id, generic),
        fallback(&auth.user_domain_name, &auth.default_domain_name, generic),
    );
    let mut user = user_ref(auth, user_domain, !generic)?;
    user.insert(
        "password".into(),
        Value::String(password.expose().to_owned()),
    );

    let mut body = json!({
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": Value::Object(user)}}
        }
    });
    if let Some(scope) = scope(auth, generic)? {
        body["auth"]["scope"] = scope;
    }
    Ok(body)
}

fn application_credential_body(auth: &AuthConfig) -> Result<Value, KeystoneError> {
    let secret = auth
        .application_credential_secret
        .as_ref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("application_credential_secret", "is required"))?;

    let mut credential = Map::new();
    credential.insert("secret".into(), Value::String(secret.expose().to_owned()));
    if let Some(id) = non_empty(&auth.application_credential_id) {
        credential.insert("id".into(), Value::String(id.to_owned()));
    } else if let Some(name) = non_empty(&auth.application_credential_name) {
        credential.insert("name".into(), Value::String(name.to_owned()));
        let domain = domain_ref(
            non_empty(&auth.user_domain_id),
            non_empty(&auth.user_domain_name),
        );
        let user = user_ref(auth, domain, true)?;
        credential.insert("user".into(), Value::Object(user));
    } else {
        return Err(invalid(
            "application_credential_id",
            "or application_credential_name is required",
        ));
    }

    // Keystone rejects an application credential request that carries a scope.
    Ok(json!({
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": Value::Object(credential)
            }
        }
    }))
}

/// Builds `{"id": ...}` or `{"name": ..., "domain": ...}`; user id wins over user name.
fn user_ref(
    auth: &AuthConfig,
    domain: Option<Value>,
    domain_required: bool,
) -> Result<Map<String, Value>, KeystoneError> {
    let mut user = Map::new();
    if let Some(id) = non_empty(&auth.user_id) {
        user.insert("id".into(), Value::String(id.to_owned()));
        return Ok(user);
    }
    let name =
        non_empty(&auth.username).ok_or_else(|| invalid("username", "or user_id is required"))?;
    user.insert("name".into(), Value::String(name.to_owned()));
    match domain {
        Some(domain) => {
            user.insert("domain".into(), domain);
        }
        None if domain_required => {
            return Err(invalid(
                "user_domain_name",
                "or user_domain_id is required with username",
            ));
        }
        None => {}
    }
    Ok(user)
}

/// Builds the scope in keystoneauth's priority order; `None` leaves the choice to Keystone.
fn scope(auth: &AuthConfig, generic: bool) -> Result<Option<Value>, KeystoneError> {
    if let Some(id) = non_empty(&auth.domain_id) {
        return Ok(Some(json!({"domain": {"id": id}})));
    }
    if let Some(name) = non_empty(&auth.domain_name) {
        return Ok(Some(json!({"domain": {"name": name}})));
    }
    if let Some(id) = non_empty(&auth.project_id) {
        return Ok(Some(json!({"project": {"id": id}})));
    }
    if let Some(name) = non_empty(&auth.project_name) {
        let domain = domain_ref(
            fallback(&auth.project_domain_id, &auth.default_domain_id, generic),
            fallback(
                &auth.project_domain_name,
                &auth.default_domain_name,
                generic,
            ),
        );
        let Some(domain) = domain else {
            if generic {
                return Ok(Some(json!({"project": {"name": name}})));
            }
            return Err(invalid(
                "project_domain_name",
                "or project_domain_id is required with project_name",
            ));
        };
        return Ok(Some(json!({"project": {"name": name, "domain": domain}})));
    }
    if let Some(id) = non_empty(&auth.trust_id) {
        return Ok(Some(json!({"OS-TRUST:trust": {"id": id}})));
    }
    // keystoneauth sends a system scope only for `all`; any other value adds no scope.
    if non_empty(&auth.system_scope) == Some("all") {
        return Ok(Some(json!({"system": {"all": true}})));
    }
    Ok(None)
}

/// Builds `{"id": ...}` or `{"name": ...}`; the id wins.
fn domain_ref(id: Option<&str>, name: Option<&str>) -> Option<Value> {
    match (id, name) {
        (Some(id), _) => Some(json!({"id": id})),
        (None, Some(name)) => Some(json!({"name": name})),
        (None, None) => None,
    }
}

/// Returns `value`, or `default` when `use_default` is set (the generic plugin's
/// `default_domain_*` fallback).
fn fallback<'a>(
    value: &'a Option<String>,
    default: &'a Option<String>,
    use_default: bool,
) -> Option<&'a str> {
    non_empty(value).or(if use_default {
        non_empty(default)
    } else {
        None
    })
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn invalid(option: &'static str, problem: &'static str) -> KeystoneError {
    KeystoneError::InvalidConfig { option, problem }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::secret::Secret;

    fn auth(auth_type: AuthType) -> AuthConfig {
        let mut auth = Config::default().api.auth;
        auth.auth_type = auth_type;
        auth.auth_url = "http://keystone/v3".into();
        auth
    }

    fn password_auth(auth_type: AuthType) -> AuthConfig {
        let mut auth = auth(auth_type);
        auth.username = Some("masakari".into());
        auth.password = Some(Secret::new("pw"));
        auth.user_domain_name = Some("Default".into());
        auth
    }

    #[test]
    fn explicit_root_with_and_without_version() {
        assert_eq!(explicit_v3_root("http://h:5000"), "http://h:5000/v3");
        assert_eq!(explicit_v3_root("http://h:5000/"), "http://h:5000/v3");
        assert_eq!(
            explicit_v3_root("http://h/identity/v3/"),
            "http://h/identity/v3"
        );
        assert_eq!(
            token_url("http://h/identity/v3/"),
            "http://h/identity/v3/auth/tokens"
        );
    }

    #[test]
    fn v3password_project_scope() {
        let mut auth = password_auth(AuthType::V3Password);
        auth.project_name = Some("service".into());
        auth.project_domain_id = Some("default".into());
        auth.project_domain_name = Some("Default".into());
        let body = token_request_body(&auth).unwrap();
        assert_eq!(
            body,
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "masakari", "domain": {"name": "Default"}, "password": "pw"}}},
                "scope": {"project": {"name": "service", "domain": {"id": "default"}}}
            }})
        );
    }

    #[test]
    fn user_id_wins_over_username() {
        let mut auth = password_auth(AuthType::V3Password);
        auth.user_id = Some("u1".into());
        let body = token_request_body(&auth).unwrap();
        assert_eq!(
            body["auth"]["identity"]["password"]["user"],
            json!({"id": "u1", "password": "pw"})
        );
        assert!(body["auth"].get("scope").is_none());
    }

    #[test]
    fn scope_priority() {
        let mut auth = password_auth(AuthType::V3Password);
        auth.system_scope = Some("all".into());
        assert_eq!(
            token_request_body(&auth).unwrap()["auth"]["scope"],
            json!({"system": {"all": true}})
        );
        auth.trust_id = Some("t".into());
        assert_eq!(
            token_request_body(&auth).unwrap()["auth"]["scope"],
            json!({"OS-TRUST:trust": {"id": "t"}})
        );
        auth.project_name = Some("p".into());
        auth.project_domain_name = Some("D".into());
        assert_eq!(
            token_request_body(&auth).unwrap()["auth"]["scope"],
            json!({"project": {"name": "p", "domain": {"name": "D"}}})
        );
        auth.project_id = Some("pid".into());
        assert_eq!(
            token_request_body(&auth).unwrap()["auth"]["scope"],
            json!({"project": {"id": "pid"}})
        );
        auth.domain_name = Some("dn".into());
        assert_eq!(
            token_request_body(&auth).unwrap()["auth"]["scope"],
            json!({"domain": {"name": "dn"}})
        );
        auth.domain_id = Some("did".into());
        assert_eq!(
            token_request_body(&auth).unwrap()["auth"]["scope"],
            json!({"domain": {"id": "did"}})
        );
    }

    #[test]
    fn system_scope_other_than_all_is_no_scope() {
        let mut auth = password_auth(AuthType::V3Password);
        auth.system_scope = Some("region".into());
        assert!(
            token_request_body(&auth).unwrap()["auth"]
                .get("scope")
                .is_none()
        );
    }

    #[test]
    fn generic_password_fills_default_domain() {
        let mut auth = password_auth(AuthType::Password);
        auth.user_domain_name = None;
        auth.default_domain_id = Some("default".into());
        auth.project_name = Some("service".into());
        let body = token_request_body(&auth).unwrap();
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["domain"],
            json!({"id": "default"})
        );
        assert_eq!(
            body["auth"]["scope"],
            json!({"project": {"name": "service", "domain": {"id": "default"}}})
        );
    }

    #[test]
    fn v3password_requires_domains() {
        let mut auth = password_auth(AuthType::V3Password);
        auth.user_domain_name = None;
        auth.default_domain_id = Some("default".into());
        assert!(matches!(
            token_request_body(&auth),
            Err(KeystoneError::InvalidConfig {
                option: "user_domain_name",
                ..
            })
        ));
        let mut auth = password_auth(AuthType::V3Password);
        auth.project_name = Some("service".into());
        assert!(matches!(
            token_request_body(&auth),
            Err(KeystoneError::InvalidConfig {
                option: "project_domain_name",
                ..
            })
        ));
    }

    #[test]
    fn password_required() {
        let mut auth = password_auth(AuthType::Password);
        auth.password = None;
        assert!(matches!(
            token_request_body(&auth),
            Err(KeystoneError::InvalidConfig {
                option: "password",
                ..
            })
        ));
    }

    #[test]
    fn application_credential_by_id_has_no_scope() {
        let mut auth = auth(AuthType::V3ApplicationCredential);
        auth.application_credential_id = Some("ac".into());
        auth.application_credential_secret = Some(Secret::new("s3"));
        auth.project_name = Some("ignored".into());
        auth.project_domain_name = Some("Default".into());
        assert_eq!(
            token_request_body(&auth).unwrap(),
            json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": "ac", "secret": "s3"}}}})
        );
    }

    #[test]
    fn application_credential_by_name_names_user() {
        let mut auth = auth(AuthType::V3ApplicationCredential);
        auth.application_credential_name = Some("monitor".into());
        auth.application_credential_secret = Some(Secret::new("s3"));
        auth.username = Some("masakari".into());
        auth.user_domain_id = Some("default".into());
        assert_eq!(
            token_request_body(&auth).unwrap()["auth"]["identity"]["application_credential"],
            json!({"name": "monitor", "secret": "s3",
                "user": {"name": "masakari", "domain": {"id": "default"}}})
        );
        auth.username = None;
        assert!(token_request_body(&auth).is_err());
    }
}
