//! Loader behaviour: sources and precedence, environment overrides, substitution, TOML,
//! bounds, combinations, warnings and secrets.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use masakari_hostmonitor::config::{
    self, AuthType, ConfigError, ConfigErrors, HostNameSource, Loaded, Origin, ReadyStatus,
    SourceArg, Sources, Threshold, render_effective,
};

const SECRET: &str = "s3cr3t-Value-42";

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().expect("tempdir"))
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.entry("HOME".to_owned())
        .or_insert_with(|| "/nonexistent".to_owned());
    env
}

fn load_args(args: Vec<SourceArg>, env: &HashMap<String, String>) -> Result<Loaded, ConfigErrors> {
    config::load(&Sources::new(args), env)
}

fn load_text(text: &str) -> Result<Loaded, ConfigErrors> {
    let dir = Dir::new();
    load_args(vec![SourceArg::File(dir.file("m.conf", text))], &env(&[]))
}

fn errors_of(text: &str) -> String {
    load_text(text).expect_err("must be rejected").to_string()
}

#[test]
fn later_files_and_dirs_win() {
    let dir = Dir::new();
    let file = dir.file(
        "f.conf",
        "[host]\nmonitoring_interval = 11\nmonitoring_samples = 2\n",
    );
    dir.file("d/20-b.conf", "[host]\nmonitoring_interval = 33\n");
    dir.file(
        "d/10-a.conf",
        "[host]\nmonitoring_interval = 22\napi_retry_max = 4\n",
    );
    dir.file("d/30-c.txt", "[host]\nmonitoring_interval = 99\n");
    let conf_dir = dir.path("d");

    let loaded = load_args(
        vec![
            SourceArg::File(file.clone()),
            SourceArg::Dir(conf_dir.clone()),
        ],
        &env(&[]),
    )
    .expect("loads");
    assert_eq!(
        loaded.config.host.monitoring_interval,
        Duration::from_secs(33)
    );
    assert_eq!(loaded.config.host.monitoring_samples, 2);
    assert_eq!(loaded.config.host.api_retry_max, 4);

    let loaded = load_args(
        vec![SourceArg::Dir(conf_dir), SourceArg::File(file)],
        &env(&[]),
    )
    .expect("loads");
    assert_eq!(
        loaded.config.host.monitoring_interval,
        Duration::from_secs(11)
    );
}

#[test]
fn default_search_reads_home_files() {
    let dir = Dir::new();
    dir.file(
        ".masakarimonitors/masakarimonitors.conf",
        "[host]\nmonitoring_interval = 7\n",
    );
    dir.file(
        "masakarimonitors.conf",
        "[host]\nmonitoring_interval = 8\nmonitoring_samples = 4\n",
    );
    dir.file("masakari-hostmonitor.conf", "[host]\napi_retry_max = 3\n");
    dir.file(
        ".masakarimonitors/masakarimonitors.conf.d/1.conf",
        "[host]\napi_retry_interval = 9\n",
    );
    let home = dir.0.path().display().to_string();
    let loaded = load_args(Vec::new(), &env(&[("HOME", &home)])).expect("loads");
    // The first masakarimonitors.conf found wins the search, so ~/masakarimonitors.conf is not read.
    assert_eq!(
        loaded.config.host.monitoring_interval,
        Duration::from_secs(7)
    );
    assert_eq!(loaded.config.host.monitoring_samples, 1);
    assert_eq!(loaded.config.host.api_retry_max, 3);
    assert_eq!(
        loaded.config.host.api_retry_interval,
        Duration::from_secs(9)
    );
}

#[test]
fn missing_file_and_dir_are_errors() {
    let dir = Dir::new();
    let errors = load_args(
        vec![
            SourceArg::File(dir.path("absent.conf")),
            SourceArg::Dir(dir.path("absent.d")),
        ],
        &env(&[]),
    )
    .expect_err("rejected");
    assert_eq!(errors.len(), 2, "{errors}");
    assert!(
        matches!(&errors.0[0], ConfigError::Unreadable { path, .. } if path.ends_with("absent.conf"))
    );
    assert!(
        matches!(&errors.0[1], ConfigError::Unreadable { path, .. } if path.ends_with("absent.d"))
    );
}

#[test]
fn environment_beats_files() {
    let dir = Dir::new();
    let file = dir.file(
        "m.conf",
        "[api]\nauth_url = http://k:5000/v3\nusername = file-user\npassword = p\n",
    );
    let env = env(&[
        ("OS_API__USERNAME", "env-user"),
        ("OS_DEFAULT__DEBUG", "yes"),
        ("OS_HOST__MONITORING_SAMPLES", "4"),
    ]);
    let loaded = load_args(vec![SourceArg::File(file)], &env).expect("loads");
    assert_eq!(loaded.config.api.auth.username.as_deref(), Some("env-user"));
    assert!(loaded.config.default.debug);
    assert_eq!(loaded.config.host.monitoring_samples, 4);
    let origin = loaded
        .effective
        .iter()
        .find(|o| o.name == "username")
        .map(|o| o.origin.clone());
    assert_eq!(
        origin,
        Some(Origin::Environment("OS_API__USERNAME".to_owned()))
    );
}

#[test]
fn environment_value_errors_name_the_variable() {
    let loaded = load_args(Vec::new(), &env(&[("OS_HOST__MONITORING_INTERVAL", "0")]));
    let text = loaded.expect_err("rejected").to_string();
    assert!(
        text.contains(
            "environment variable OS_HOST__MONITORING_INTERVAL: [host] monitoring_interval"
        ),
        "{text}"
    );
    assert!(text.contains("at least 1"), "{text}");
}

#[test]
fn substitution_follows_oslo() {
    let loaded = load_text(
        "[DEFAULT]\nhostname = compute-9\n\n[api]\nauth_url = http://k:5000/v3\nusername = $hostname-svc\n\
         password = p\\$1$$2\nregion = ${kubernetes.monitoring_node_labels}\nproject_name = ${username}x\n\
         [kubernetes]\nmonitoring_node_labels = zone\n[libvirt]\nconnection_uri = qemu:///system\n\
         [leader_election]\nidentity = ${libvirt.connection_uri}\n",
    )
    .expect("loads");
    let auth = &loaded.config.api.auth;
    assert_eq!(auth.username.as_deref(), Some("compute-9-svc"));
    assert_eq!(auth.password.as_ref().map(|p| p.expose()), Some("p$1$2"));
    assert_eq!(auth.project_name.as_deref(), Some("compute-9-svcx"));
    assert_eq!(loaded.config.api.region, "zone");
    assert_eq!(
        loaded.config.leader_election.identity.as_deref(),
        Some("qemu:///system")
    );
}

#[test]
fn substitution_of_defaults_and_unknowns() {
    let loaded =
        load_text("[api]\nregion = $api_interface-${host.monitoring_interval}\n").expect("loads");
    assert_eq!(loaded.config.api.region, "public-60");

    let text = errors_of("[api]\nregion = $nosuch\n");
    assert!(
        text.contains("[api] region: refers to unknown option $nosuch"),
        "{text}"
    );

    let text = errors_of("[api]\nregion = $username\nusername = $region\n");
    assert!(text.contains("refers back"), "{text}");
}

#[test]
fn unknown_options_warn_with_file_and_line() {
    let dir = Dir::new();
    let file = dir.file(
        "m.conf",
        "[host]\nmonitoring_driver = kubernetes\ndisable_ipmi_checks = True\n[kubernets]\nx = 1\n",
    );
    let loaded = load_args(vec![SourceArg::File(file.clone())], &env(&[])).expect("loads");
    let texts: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    let path = file.display();
    assert!(
        texts.contains(&format!(
            "{path}:3: [host] disable_ipmi_checks: unknown option ignored"
        )),
        "{texts:?}"
    );
    assert!(
        texts.contains(&format!("{path}:4: [kubernets]: unknown section ignored")),
        "{texts:?}"
    );
    assert_eq!(texts.len(), 2, "{texts:?}");
}

#[test]
fn deprecated_names_set_current_options() {
    let loaded = load_text(
        "[DEFAULT]\nlogfile = /var/log/m.log\nlogdir = /var/log\n[api]\nauth_plugin = v3password\n\
         auth_url = http://k:5000/v3\nuser-name = u\nuser_domain_name = D\npassword = p\ntenant_name = t\n\
         project_domain_name = D\ntenant_id = abc\n",
    )
    .expect("loads");
    let config = &loaded.config;
    assert_eq!(
        config.default.log_file,
        Some(PathBuf::from("/var/log/m.log"))
    );
    assert_eq!(config.default.log_dir, Some(PathBuf::from("/var/log")));
    assert_eq!(config.api.auth.auth_type, AuthType::V3Password);
    assert_eq!(config.api.auth.username.as_deref(), Some("u"));
    assert_eq!(config.api.auth.project_name.as_deref(), Some("t"));
    assert_eq!(config.api.auth.project_id.as_deref(), Some("abc"));
    let deprecated = loaded
        .warnings
        .iter()
        .filter(|w| w.message.starts_with("deprecated name"))
        .count();
    assert_eq!(deprecated, 6, "{:?}", loaded.warnings);
}

#[test]
fn current_name_beats_deprecated_in_same_file() {
    let loaded = load_text("[DEFAULT]\nhost = old\nhostname = new\n").expect("loads");
    assert_eq!(loaded.config.default.hostname, "new");
}

#[test]
fn other_monitoring_driver_is_rejected() {
    let text = errors_of("[host]\nmonitoring_driver = default\n");
    assert!(
        text.contains("[host] monitoring_driver: invalid value \"default\""),
        "{text}"
    );
    assert!(text.contains("only has the kubernetes driver"), "{text}");
    assert!(text.contains("Python masakari-hostmonitor"), "{text}");
}

#[test]
fn bounds_are_checked_all_at_once() {
    let text = errors_of(
        "[host]\nmonitoring_interval = 0\nmonitoring_samples = 0\napi_retry_interval = -1\n\
         [kubernetes]\ndown_ready_statuses = False,Maybe\nmonitoring_node_labels = a b\n\
         host_name_label = example.com/host\nhost_name_annotation = example.com/host\n\
         [circuit_breaker]\nthreshold = 0%\n[leader_election]\nlease_duration = 10\nrenew_deadline = 10\n\
         [admin]\nlisten_address = localhost\n[api]\napi_interface = private\ntimeout = 0\nauth_type = token\n",
    );
    for expected in [
        "[host] monitoring_interval",
        "[host] monitoring_samples",
        "[host] api_retry_interval",
        "[kubernetes] down_ready_statuses",
        "[kubernetes] monitoring_node_labels",
        "[kubernetes]: host_name_label and host_name_annotation are mutually exclusive",
        "[circuit_breaker] threshold",
        "[leader_election]: renew_deadline must be less than lease_duration",
        "[admin] listen_address",
        "[api] api_interface: invalid value \"private\": expected public, internal or admin",
        "[api] timeout",
        "[api] auth_type: invalid value \"token\": expected password, v3password or v3applicationcredential",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(text.lines().count(), 12, "{text}");
}

#[test]
fn typed_values_convert() {
    let loaded = load_text(
        "[kubernetes]\ndown_ready_statuses = Unknown,\nhost_name_label = topology.kubernetes.io/hostname\n\
         startup_down_horizon = 0\n[circuit_breaker]\nthreshold = 5\n[admin]\nlisten_address = [::1]:9000\n\
         [api]\ntimeout = 2.5\ninsecure = on\n[host]\nmonitoring_interval =\n",
    )
    .expect("loads");
    let config = loaded.config;
    assert_eq!(
        config.kubernetes.down_ready_statuses,
        [ReadyStatus::Unknown]
    );
    assert_eq!(
        config.kubernetes.host_name_source,
        HostNameSource::Label("topology.kubernetes.io/hostname".to_owned())
    );
    assert_eq!(config.kubernetes.startup_down_horizon, Duration::ZERO);
    assert_eq!(config.circuit_breaker.threshold, Threshold::Count(5));
    assert_eq!(
        config.admin.listen_address,
        "[::1]:9000".parse().expect("address")
    );
    assert_eq!(config.api.timeout, Duration::from_millis(2500));
    assert!(config.api.tls.insecure);
    assert_eq!(
        config.host.monitoring_interval,
        Duration::from_secs(60),
        "an empty integer is unset"
    );
}

#[test]
fn keystone_loader_checks() {
    let base = "[api]\nauth_url = http://k:5000/v3\n";
    let text = errors_of(&format!(
        "{base}auth_type = v3password\nusername = u\npassword = p\nproject_name = p\n"
    ));
    assert!(
        text.contains("username needs user_domain_id or user_domain_name"),
        "{text}"
    );
    assert!(
        text.contains("project_name needs project_domain_id or project_domain_name"),
        "{text}"
    );

    let text = errors_of(&format!(
        "{base}auth_type = v3applicationcredential\napplication_credential_name = n\n"
    ));
    assert!(
        text.contains("application_credential_secret is required"),
        "{text}"
    );
    assert!(text.contains("needs username or user_id"), "{text}");

    let text = errors_of(&format!("{base}username = u\n"));
    assert!(text.contains("password is required"), "{text}");

    // The generic password plugin has no domain checks.
    let loaded = load_text(&format!(
        "{base}username = u\npassword = p\nproject_name = p\n"
    ))
    .expect("loads");
    assert_eq!(loaded.config.api.auth.auth_type, AuthType::Password);
}

#[test]
fn missing_auth_url_is_left_to_the_caller() {
    let loaded = load_text("[api]\nusername = u\n").expect("loads");
    assert_eq!(loaded.config.api.auth.auth_url, "");
}

#[test]
fn unused_plugin_options_warn() {
    let loaded = load_text(
        "[api]\nauth_url = http://k:5000/v3\nusername = u\npassword = p\napplication_credential_id = x\n",
    )
    .expect("loads");
    let warning = loaded
        .warnings
        .iter()
        .find(|w| w.option.as_deref() == Some("application_credential_id"));
    assert!(
        warning.is_some_and(|w| w.message.contains("not an option of auth_type password")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn secrets_never_printed() {
    let dir = Dir::new();
    let file = dir.file(
        "m.conf",
        &format!("[api]\nauth_url = http://k:5000/v3\nusername = u\npassword = {SECRET}\ntoken = {SECRET}\n"),
    );
    let env = env(&[("OS_API__APPLICATION_CREDENTIAL_SECRET", SECRET)]);
    let loaded = load_args(vec![SourceArg::File(file)], &env).expect("loads");
    assert_eq!(
        loaded.config.api.auth.password.as_ref().map(|p| p.expose()),
        Some(SECRET)
    );
    for text in [
        format!("{:?}", loaded.config),
        format!("{:?}", loaded.effective),
        format!("{:?}", loaded.warnings),
        render_effective(&loaded.effective),
    ] {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
    }
    assert!(render_effective(&loaded.effective).contains("password = \"***\""));
}

#[test]
fn invalid_secret_not_printed() {
    let errors = load_text(&format!(
        "[api]\npassword = ${SECRET}\napplication_credential_secret = x$y{SECRET}\n"
    ))
    .expect_err("rejected");
    assert!(!format!("{errors:?}").contains("s3cr3t"), "{errors:?}");
    let text = errors.to_string();
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
}

#[test]
fn toml_and_ini_give_same_config() {
    let dir = Dir::new();
    let ini = dir.file(
        "m.conf",
        "[DEFAULT]\ndebug = true\nhostname = h\n[api]\nauth_url = http://k:5000/v3\nusername = u\npassword = p$$1\n\
         insecure = yes\ntimeout = 12.5\n[host]\nmonitoring_interval = 15\n[kubernetes]\n\
         down_ready_statuses = Unknown\nmonitoring_node_labels = a=b\n[circuit_breaker]\nthreshold = 3\n",
    );
    let toml = dir.file(
        "m.toml",
        "[DEFAULT]\ndebug = true\nhostname = \"h\"\n[api]\nauth_url = \"http://k:5000/v3\"\nusername = \"u\"\n\
         password = \"p$$1\"\ninsecure = true\ntimeout = 12.5\n[host]\nmonitoring_interval = 15\n[kubernetes]\n\
         down_ready_statuses = [\"Unknown\"]\nmonitoring_node_labels = \"a=b\"\n[circuit_breaker]\nthreshold = 3\n",
    );
    let from_ini = load_args(vec![SourceArg::File(ini)], &env(&[])).expect("ini loads");
    let from_toml = load_args(vec![SourceArg::File(toml.clone())], &env(&[])).expect("toml loads");
    assert_eq!(from_ini.config, from_toml.config);
    assert_eq!(
        from_toml
            .config
            .api
            .auth
            .password
            .as_ref()
            .map(|p| p.expose()),
        Some("p$1")
    );
    let origin = from_toml
        .effective
        .iter()
        .find(|o| o.name == "monitoring_interval")
        .map(|o| o.origin.clone());
    assert_eq!(
        origin,
        Some(Origin::File {
            path: toml,
            line: Some(11)
        })
    );
}

#[test]
fn toml_errors_have_lines() {
    let dir = Dir::new();
    let toml = dir.file("m.toml", "[host]\nmonitoring_samples = 0\n");
    let errors = load_args(vec![SourceArg::File(toml.clone())], &env(&[])).expect_err("rejected");
    assert!(
        errors
            .to_string()
            .starts_with(&format!("{}:2: [host] monitoring_samples", toml.display())),
        "{errors}"
    );
}

#[test]
fn toml_table_for_scenarios() {
    let table: toml::Table =
        toml::from_str("[host]\nmonitoring_samples = 3\n[circuit_breaker]\nthreshold = \"25%\"\n")
            .expect("toml");
    let loaded = config::load_toml_table(&table, "scenario rack-loss").expect("loads");
    assert_eq!(loaded.config.host.monitoring_samples, 3);
    assert_eq!(
        loaded.config.circuit_breaker.threshold,
        Threshold::Percent(25)
    );

    let table: toml::Table = toml::from_str("[host]\nmonitoring_samples = 0\n").expect("toml");
    let errors = config::load_toml_table(&table, "scenario x").expect_err("rejected");
    assert!(
        errors
            .to_string()
            .starts_with("scenario x: [host] monitoring_samples"),
        "{errors}"
    );
}

#[test]
fn empty_configuration_gives_defaults() {
    let loaded = load_text("").expect("loads");
    let mut expected = config::Config::default();
    expected.default.hostname = loaded.config.default.hostname.clone();
    assert_eq!(loaded.config, expected);
    assert!(!loaded.config.default.hostname.is_empty());
}

#[test]
fn auth_section_takes_environment_overrides() {
    let dir = Dir::new();
    let file = dir.file(
        "m.conf",
        "[api]\nauth_section = Keystone_Authtoken\nauth_type = v3password\n\
         [keystone_authtoken]\nauth_url = http://k:5000/v3\nusername = u\nuser_domain_id = default\npassword = file\n",
    );
    let env = env(&[("OS_KEYSTONE_AUTHTOKEN__PASSWORD", "from-env")]);
    let loaded = load_args(vec![SourceArg::File(file)], &env).expect("loads");
    let auth = &loaded.config.api.auth;
    assert_eq!(
        auth.auth_type,
        AuthType::V3Password,
        "auth_type falls back to [api]"
    );
    assert_eq!(auth.password.as_ref().map(|p| p.expose()), Some("from-env"));
    let section = loaded
        .effective
        .iter()
        .find(|o| o.name == "password")
        .map(|o| o.section.clone());
    assert_eq!(section.as_deref(), Some("keystone_authtoken"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}
