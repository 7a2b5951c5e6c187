//! `[api]`: catalog options, TLS session options and the keystoneauth plugin options, with the
//! credential checks keystoneauth's loaders make.

use std::path::PathBuf;

use super::convert;
use super::model::*;
use super::reader::Reader;

const S: &str = "api";

pub fn api_section(reader: &mut Reader<'_>, defaults: &ApiSection) -> ApiSection {
    let api_interface = reader
        .parse(S, "api_interface", |text| match text.trim() {
            "public" => Ok(Some(Interface::Public)),
            "internal" => Ok(Some(Interface::Internal)),
            "admin" => Ok(Some(Interface::Admin)),
            _ => Err("expected public, internal or admin".to_owned()),
        })
        .unwrap_or(defaults.api_interface);
    let endpoint_override = reader.string(S, "endpoint_override");
    if endpoint_override.is_some() {
        check_url(reader, "endpoint_override");
    }
    ApiSection {
        region: reader
            .string(S, "region")
            .unwrap_or_else(|| defaults.region.clone()),
        api_interface,
        endpoint_override,
        auth: auth(reader),
        tls: TlsConfig {
            cafile: reader.string(S, "cafile").map(PathBuf::from),
            certfile: reader.string(S, "certfile").map(PathBuf::from),
            keyfile: reader.string(S, "keyfile").map(PathBuf::from),
            insecure: reader.bool(S, "insecure", defaults.tls.insecure),
        },
        timeout: reader
            .parse(S, "timeout", convert::float_seconds)
            .unwrap_or(defaults.timeout),
    }
}

fn auth(reader: &mut Reader<'_>) -> AuthConfig {
    let errors_before = reader.errors.len();
    let auth_type = reader
        .parse(S, "auth_type", |text| match text.trim() {
            "password" => Ok(Some(AuthType::Password)),
            "v3password" => Ok(Some(AuthType::V3Password)),
            "v3applicationcredential" => Ok(Some(AuthType::V3ApplicationCredential)),
            _ => Err("expected password, v3password or v3applicationcredential".to_owned()),
        })
        .unwrap_or(AuthType::Password);
    let auth_url = reader.string(S, "auth_url").unwrap_or_default();
    if !auth_url.is_empty() {
        check_url(reader, "auth_url");
    }
    let auth = AuthConfig {
        auth_type,
        auth_url,
        user_id: reader.string(S, "user_id"),
        username: reader.string(S, "username"),
        user_domain_id: reader.string(S, "user_domain_id"),
        user_domain_name: reader.string(S, "user_domain_name"),
        password: reader.secret(S, "password"),
        project_id: reader.string(S, "project_id"),
        project_name: reader.string(S, "project_name"),
        project_domain_id: reader.string(S, "project_domain_id"),
        project_domain_name: reader.string(S, "project_domain_name"),
        domain_id: reader.string(S, "domain_id"),
        domain_name: reader.string(S, "domain_name"),
        system_scope: reader.string(S, "system_scope"),
        trust_id: reader.string(S, "trust_id"),
        default_domain_id: reader.string(S, "default_domain_id"),
        default_domain_name: reader.string(S, "default_domain_name"),
        application_credential_id: reader.string(S, "application_credential_id"),
        application_credential_name: reader.string(S, "application_credential_name"),
        application_credential_secret: reader.secret(S, "application_credential_secret"),
    };
    // An invalid value already has its error and reads as unset, so the combination checks
    // would only repeat it.
    if !auth.auth_url.is_empty() && reader.errors.len() == errors_before {
        let section = reader.resolver.auth_section().unwrap_or(S).to_owned();
        for message in credential_problems(&auth) {
            reader.inconsistent(&section, message);
        }
    }
    auth
}

fn check_url(reader: &mut Reader<'_>, name: &str) {
    let Some(value) = reader.value(S, name) else {
        return;
    };
    let text = value.text.clone().unwrap_or_default();
    let valid = url::Url::parse(text.trim())
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
    if !valid {
        reader.invalid(&value, name, "expected an http or https URL");
    }
}

/// Lists the problems keystoneauth's loaders reject before authenticating, plus missing
/// credentials each plugin needs to send a request at all. Called only when `auth_url` is set.
pub fn credential_problems(auth: &AuthConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let has_user = auth.user_id.is_some() || auth.username.is_some();
    let has_user_domain = auth.user_domain_id.is_some() || auth.user_domain_name.is_some();
    let has_project_domain = auth.project_domain_id.is_some() || auth.project_domain_name.is_some();
    let v3 = auth.auth_type != AuthType::Password;
    match auth.auth_type {
        AuthType::Password | AuthType::V3Password => {
            if auth.password.is_none() {
                problems.push(
                    "password is required for the password and v3password auth types".to_owned(),
                );
            }
            if !has_user {
                problems.push(
                    "username or user_id is required for the password and v3password auth types"
                        .to_owned(),
                );
            }
        }
        AuthType::V3ApplicationCredential => {
            if auth.application_credential_secret.is_none() {
                problems.push("application_credential_secret is required for auth_type v3applicationcredential".to_owned());
            }
            if auth.application_credential_id.is_none()
                && auth.application_credential_name.is_none()
            {
                problems.push(
                    "application_credential_id or application_credential_name is required for auth_type v3applicationcredential"
                        .to_owned(),
                );
            }
            if auth.application_credential_id.is_none()
                && auth.application_credential_name.is_some()
                && !has_user
            {
                problems.push(
                    "application_credential_name needs username or user_id to find the credential"
                        .to_owned(),
                );
            }
        }
    }
    if v3 && auth.username.is_some() && !has_user_domain {
        problems.push(
            "username needs user_domain_id or user_domain_name for this auth_type".to_owned(),
        );
    }
    if v3 && auth.project_name.is_some() && !has_project_domain {
        problems.push(
            "project_name needs project_domain_id or project_domain_name for this auth_type"
                .to_owned(),
        );
    }
    problems
}
