//! The shipped sample files load and describe the same configuration.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use masakari_hostmonitor::config::{self, Loaded, SourceArg, Sources};

/// Loads a sample under its installed name (without `.sample`), which decides INI or TOML.
fn load_sample(name: &str) -> Loaded {
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("etc/masakarimonitors")
        .join(name);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name.trim_end_matches(".sample"));
    std::fs::copy(&sample, &path).expect("copy sample");
    let env = HashMap::from([("HOME".to_owned(), "/nonexistent".to_owned())]);
    config::load(&Sources::new(vec![SourceArg::File(path)]), &env)
        .unwrap_or_else(|errors| panic!("{name}:\n{errors}"))
}

#[test]
fn samples_load_to_same_config() {
    let ini = load_sample("masakarimonitors.conf.sample");
    let toml = load_sample("masakarimonitors.toml.sample");
    assert_eq!(ini.config, toml.config);
    assert!(ini.warnings.is_empty(), "{:?}", ini.warnings);
    assert!(toml.warnings.is_empty(), "{:?}", toml.warnings);
}

#[test]
fn sample_values_are_read() {
    let config = load_sample("masakarimonitors.conf.sample").config;
    assert_eq!(config.host.monitoring_interval, Duration::from_secs(30));
    assert_eq!(config.host.monitoring_samples, 3);
    assert_eq!(
        config.api.auth.password.as_ref().map(|p| p.expose()),
        Some("example-pa$word")
    );
    assert_eq!(
        config.kubernetes.monitoring_node_labels,
        "openstack-compute-node=enabled"
    );
}

#[test]
fn commented_defaults_match_the_model() {
    // Uncommenting every "#option = value" default line must not change the configuration.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("etc/masakarimonitors/masakarimonitors.conf.sample");
    let text = std::fs::read_to_string(&path).expect("sample");
    let uncommented: Vec<String> = text
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest)
                if rest.contains(" = ")
                    && !rest.starts_with(' ')
                    && !rest.contains("<None>")
                    && !rest.contains("<hostname>") =>
            {
                rest.to_owned()
            }
            _ => line.to_owned(),
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let uncommented_path = dir.path().join("all.conf");
    std::fs::write(&uncommented_path, uncommented.join("\n")).expect("write");
    let env = HashMap::from([("HOME".to_owned(), "/nonexistent".to_owned())]);
    let all =
        config::load(&Sources::new(vec![SourceArg::File(uncommented_path)]), &env).expect("loads");
    assert_eq!(
        all.config,
        load_sample("masakarimonitors.conf.sample").config
    );
    let set_in_file = all
        .effective
        .iter()
        .filter(|o| matches!(o.origin, config::Origin::File { .. }))
        .count();
    assert!(
        set_in_file > 30,
        "only {set_in_file} options were uncommented"
    );
}
