//! Warnings found by reading the files themselves: unknown options and sections, deprecated
//! names, plugin options the chosen `auth_type` does not use.

use super::document::{DEFAULT_SECTION, Document};
use super::error::ConfigWarning;
use super::model::AuthType;
use super::options::{self, Usage};

/// Scans every document. `auth_section` is `[api] auth_section`; `auth_type` the type in use.
pub fn scan(
    documents: &[Document],
    auth_section: Option<&str>,
    auth_type: AuthType,
) -> Vec<ConfigWarning> {
    let mut warnings: Vec<ConfigWarning> = Vec::new();
    let mut push = |warning: ConfigWarning| {
        let duplicate = warnings.iter().any(|seen| {
            seen.section == warning.section
                && seen.option == warning.option
                && seen.message == warning.message
        });
        if !duplicate {
            warnings.push(warning);
        }
    };
    let auth_bit = options::plugin_bit(auth_type_name(auth_type)).unwrap_or(0);
    for document in documents {
        for section in &document.sections {
            let name = section.name.as_str();
            let is_auth_section = auth_section == Some(name) && name != "api";
            if !options::is_known_section(name) && !is_auth_section {
                let mut message = "unknown section ignored".to_owned();
                if name.eq_ignore_ascii_case(DEFAULT_SECTION) {
                    message = "section names are lower-cased except DEFAULT, so [default] is not [DEFAULT]; write [DEFAULT]"
                        .to_owned();
                }
                push(ConfigWarning {
                    origin: Some(document.origin(section.line)),
                    section: name.to_owned(),
                    option: None,
                    message,
                });
            }
            for entry in &section.entries {
                let spec = if is_auth_section {
                    options::find_by_key("api", &entry.key)
                        .filter(|spec| matches!(spec.usage, Usage::Plugin(_)))
                } else if options::OWNED_SECTIONS.contains(&name) {
                    options::find_by_key(name, &entry.key)
                } else {
                    continue;
                };
                let origin = Some(document.origin(entry.line));
                let option = Some(entry.key.clone());
                let section_name = name.to_owned();
                let Some(spec) = spec else {
                    if !is_auth_section {
                        let message = "unknown option ignored".to_owned();
                        push(ConfigWarning {
                            origin,
                            section: section_name,
                            option,
                            message,
                        });
                    }
                    continue;
                };
                if entry.key != spec.name {
                    let message = format!("deprecated name; use {} instead", spec.name);
                    push(ConfigWarning {
                        origin: origin.clone(),
                        section: section_name.clone(),
                        option: option.clone(),
                        message,
                    });
                }
                if let Usage::Plugin(mask) = spec.usage {
                    if name == "api"
                        && auth_section.is_some_and(|section| section != "api")
                        && spec.name != "auth_type"
                    {
                        let message = format!(
                            "ignored because auth_section = {}",
                            auth_section.unwrap_or_default()
                        );
                        push(ConfigWarning {
                            origin,
                            section: section_name,
                            option,
                            message,
                        });
                    } else if mask & auth_bit == 0 && spec.name != "auth_type" {
                        let message = format!(
                            "not an option of auth_type {}; ignored",
                            auth_type_name(auth_type)
                        );
                        push(ConfigWarning {
                            origin,
                            section: section_name,
                            option,
                            message,
                        });
                    }
                }
            }
        }
    }
    warnings
}

pub fn auth_type_name(auth_type: AuthType) -> &'static str {
    match auth_type {
        AuthType::Password => "password",
        AuthType::V3Password => "v3password",
        AuthType::V3ApplicationCredential => "v3applicationcredential",
    }
}
