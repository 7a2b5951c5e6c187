//! Real-world configuration files load, or fail, exactly as expected.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use masakari_hostmonitor::config::{
    self, AuthType, ConfigError, ConfigErrors, HostNameSource, Interface, Loaded, Origin,
    SourceArg, Sources,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn load(name: &str) -> Result<Loaded, ConfigErrors> {
    let env = HashMap::from([("HOME".to_owned(), "/nonexistent".to_owned())]);
    config::load(&Sources::new(vec![SourceArg::File(fixture(name))]), &env)
}

fn loaded(name: &str) -> Loaded {
    load(name).unwrap_or_else(|errors| panic!("{name} should load:\n{errors}"))
}

fn invalid_options(errors: &ConfigErrors) -> Vec<(String, String)> {
    errors
        .iter()
        .filter_map(|error| match error {
            ConfigError::InvalidValue {
                section, option, ..
            } => Some((section.clone(), option.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn charm_style_loads() {
    let loaded = loaded("charm-style.conf");
    let config = &loaded.config;
    assert_eq!(config.default.hostname, "compute-0");
    assert!(!config.default.debug);
    assert_eq!(config.api.api_interface, Interface::Internal);
    assert_eq!(config.api.auth.auth_url, "https://192.0.2.5:5000");
    assert_eq!(
        config.api.auth.username.as_deref(),
        Some("masakari-monitors")
    );
    assert_eq!(
        config.api.auth.password.as_ref().map(|p| p.expose()),
        Some("Zq8-example-not-a-secret")
    );
    // Both id and name are kept; the Keystone client sends the id.
    assert_eq!(
        config.api.auth.user_domain_id.as_deref(),
        Some("1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6")
    );
    assert_eq!(
        config.api.auth.user_domain_name.as_deref(),
        Some("service_domain")
    );
    assert_eq!(
        config.api.auth.project_domain_id.as_deref(),
        Some("1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6")
    );
    assert_eq!(
        config.api.auth.project_domain_name.as_deref(),
        Some("service_domain")
    );
}

#[test]
fn charm_style_deprecated_host_warns_once() {
    let loaded = loaded("charm-style.conf");
    let deprecations: Vec<_> = loaded
        .warnings
        .iter()
        .filter(|w| w.message.contains("deprecated"))
        .collect();
    assert_eq!(deprecations.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(deprecations[0].option.as_deref(), Some("host"));
    assert_eq!(
        deprecations[0].origin,
        Some(Origin::File {
            path: fixture("charm-style.conf"),
            line: Some(6)
        })
    );
    assert_eq!(
        loaded.warnings.len(),
        1,
        "pacemaker options and foreign sections are silent: {:?}",
        loaded.warnings
    );
}

#[test]
fn kolla_style_loads() {
    let config = loaded("kolla-style.conf").config;
    assert_eq!(config.api.tls.cafile, None);
    assert!(!config.api.tls.insecure);
    assert_eq!(config.api.auth.user_domain_id.as_deref(), Some("default"));
    assert_eq!(
        config.api.auth.project_domain_id.as_deref(),
        Some("default")
    );
    assert_eq!(
        config.default.log_dir,
        Some(PathBuf::from("/var/log/kolla/masakari"))
    );
    assert_eq!(
        config.api.auth.password.as_ref().map(|p| p.expose()),
        Some("example-password")
    );
}

#[test]
fn syntax_traps_broken_reports_every_error() {
    let errors = load("syntax-traps-broken.conf").expect_err("must be rejected");
    let options = invalid_options(&errors);
    assert_eq!(
        options,
        [
            ("DEFAULT".to_owned(), "debug".to_owned()),
            ("host".to_owned(), "api_retry_interval".to_owned()),
            ("api".to_owned(), "password".to_owned()),
            ("kubernetes".to_owned(), "monitoring_node_labels".to_owned()),
        ],
        "{errors}"
    );
    assert_eq!(errors.len(), 4, "{errors}");
    let text = errors.to_string();
    let path = fixture("syntax-traps-broken.conf").display().to_string();
    assert!(
        text.contains(&format!(
            "{path}:2: [DEFAULT] debug: invalid value \"True # enabled during the incident\""
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{path}:18: [host] api_retry_interval: invalid value \"10 ; seconds\""
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{path}:8: [api] password:")),
        "{text}"
    );
    assert!(
        text.contains("write $$ for a literal dollar sign"),
        "{text}"
    );
    assert!(!text.contains("R3d"), "the password leaked: {text}");
    assert!(!text.contains("ky&pa"), "the password leaked: {text}");
}

#[test]
fn syntax_traps_broken_values_that_parse() {
    // The same file without the broken lines gives the values that did parse.
    let text = std::fs::read_to_string(fixture("syntax-traps-broken.conf")).expect("fixture");
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with("debug = True") && !line.starts_with("api_retry_interval"))
        .filter(|line| !line.starts_with("monitoring_node_labels"))
        .map(|line| {
            if line.starts_with("password") {
                "password = replaced"
            } else {
                line
            }
        })
        .filter(|line| !line.starts_with("    masakari"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kept.conf");
    std::fs::write(&path, kept.join("\n")).expect("write");
    let env = HashMap::from([("HOME".to_owned(), "/nonexistent".to_owned())]);
    let loaded = config::load(&Sources::new(vec![SourceArg::File(path)]), &env).expect("loads");
    assert_eq!(
        loaded.config.api.auth.project_domain_name.as_deref(),
        Some("Default")
    );
    assert_eq!(loaded.config.host.monitoring_samples, 5);
    assert!(
        !loaded.config.default.debug,
        "[default] debug = False must not reach [DEFAULT]"
    );
    let default_warning = loaded
        .warnings
        .iter()
        .find(|w| w.section == "default")
        .expect("warning for [default]");
    assert!(
        default_warning
            .message
            .contains("[default] is not [DEFAULT]"),
        "{default_warning}"
    );
}

#[test]
fn syntax_traps_fixed_loads() {
    let config = loaded("syntax-traps-fixed.conf").config;
    assert!(config.default.debug);
    assert_eq!(
        config.api.auth.password.as_ref().map(|p| p.expose()),
        Some("R3d$ky&pa$$word")
    );
    assert_eq!(
        config.kubernetes.monitoring_node_labels,
        "openstack-compute-node=enabled,masakari=enabled"
    );
    assert_eq!(config.host.monitoring_interval, Duration::from_secs(30));
    assert_eq!(config.host.monitoring_samples, 5);
    assert_eq!(config.host.api_retry_interval, Duration::from_secs(10));
    assert_eq!(config.api.auth.project_name.as_deref(), Some("service"));
    assert_eq!(
        config.api.auth.project_domain_name.as_deref(),
        Some("Default")
    );
    assert_eq!(config.api.auth.auth_url, "http://192.0.2.5:5000/v3/");
}

#[test]
fn leading_space_rejected_at_line_2() {
    let errors = load("leading-space.conf").expect_err("must be rejected");
    assert_eq!(
        errors.0,
        [ConfigError::Syntax {
            path: fixture("leading-space.conf"),
            line: 2,
            message: "Unexpected continuation line".to_owned()
        }]
    );
}

#[test]
fn openstack_helm_loads() {
    let config = loaded("openstack-helm.conf").config;
    assert_eq!(config.api.auth.auth_type, AuthType::Password);
    assert_eq!(
        config.api.auth.auth_url,
        "http://keystone-api.openstack.svc.cluster.local:5000/v3"
    );
    assert_eq!(config.api.auth.user_domain_name.as_deref(), Some("service"));
    assert_eq!(config.host.monitoring_samples, 3);
    assert_eq!(
        config.kubernetes.monitoring_node_labels,
        "openstack-compute-node=enabled"
    );
    assert_eq!(
        config.default.hostname,
        "masakari-hostmonitor-7c9f6d5b8-x2lqp"
    );
}

#[test]
fn kolla_ansible_loads() {
    let loaded = loaded("kolla-ansible.conf");
    let config = loaded.config;
    assert!(config.default.debug);
    assert_eq!(config.api.region, "RegionTwo");
    assert_eq!(
        config.api.tls.cafile,
        Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt"))
    );
    assert_eq!(
        config.kubernetes.monitoring_node_labels,
        "openstack-compute-node=enabled"
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn charm_with_auth_section_loads() {
    let loaded = loaded("charm.conf");
    let auth = &loaded.config.api.auth;
    assert_eq!(auth.auth_url, "https://192.0.2.30:35357");
    assert_eq!(auth.username.as_deref(), Some("masakari-monitors"));
    assert_eq!(auth.project_domain_name.as_deref(), Some("service_domain"));
    assert_eq!(loaded.config.default.hostname, "compute-3.maas");
    assert_eq!(
        loaded.config.kubernetes.monitoring_node_labels,
        "juju-application=nova-compute"
    );
    let origin = loaded
        .effective
        .iter()
        .find(|o| o.name == "auth_url")
        .map(|o| o.origin.clone());
    assert_eq!(
        origin,
        Some(Origin::File {
            path: fixture("charm.conf"),
            line: Some(18)
        })
    );
    let texts: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].ends_with("[DEFAULT] host: deprecated name; use hostname instead"),
        "{texts:?}"
    );
}

#[test]
fn generated_sample_loads_with_defaults() {
    let loaded = loaded("generated-sample.conf");
    let mut expected = config::Config::default();
    expected.default.hostname = loaded.config.default.hostname.clone();
    assert_eq!(loaded.config, expected);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn auth_section_reads_plugin_options() {
    let loaded = loaded("auth-section.conf");
    let auth = &loaded.config.api.auth;
    assert_eq!(auth.auth_type, AuthType::V3ApplicationCredential);
    assert_eq!(
        auth.application_credential_id.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(
        auth.username, None,
        "[api] username is not read when auth_section is set"
    );
    let ignored = loaded
        .warnings
        .iter()
        .find(|w| w.option.as_deref() == Some("username"))
        .expect("warning");
    assert!(ignored.message.contains("auth_section"), "{ignored}");
    assert_eq!(
        loaded.config.kubernetes.host_name_source,
        HostNameSource::NodeName
    );
}
