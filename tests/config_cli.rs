//! The binary's command line: exit codes and what it prints.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_masakari-hostmonitor"))
        .args(args)
        .env("HOME", "/nonexistent")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("OS_API__PASSWORD")
        .output()
        .expect("binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn broken_config_exits_2_with_every_error() {
    let path = fixture("syntax-traps-broken.conf");
    let output = run(&["--config-file", path.to_str().expect("utf-8"), "--dry-run"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("invalid configuration (4 errors)"),
        "{stderr}"
    );
    assert!(stderr.contains("[DEFAULT] debug"), "{stderr}");
    assert!(stderr.contains("[host] api_retry_interval"), "{stderr}");
    assert!(stderr.contains("[api] password"), "{stderr}");
    assert!(
        stderr.contains("[kubernetes] monitoring_node_labels"),
        "{stderr}"
    );
    assert!(!stderr.contains("R3d"), "{stderr}");
}

#[test]
fn check_config_rejects_with_exit_2() {
    let path = fixture("leading-space.conf");
    let output = run(&[
        "check-config",
        "--config-file",
        path.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2: Unexpected continuation line",
            path.display()
        )),
        "{stderr}"
    );
}

#[test]
fn check_config_prints_values_and_origins() {
    let path = fixture("charm-style.conf");
    let output = run(&[
        "check-config",
        "--config-file",
        path.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("hostname = \"compute-0\"  ({}:6)", path.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("monitoring_interval = \"60\"  (default)"),
        "{stdout}"
    );
    assert!(stdout.contains("password = \"***\""), "{stdout}");
    assert!(stdout.contains("disable_ipmi_check = \"True\""), "{stdout}");
    assert!(stdout.contains("ignored by this program"), "{stdout}");
    assert!(!stdout.contains("Zq8-example-not-a-secret"), "{stdout}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("deprecated name; use hostname instead"),
        "{stderr}"
    );
}

#[test]
fn check_config_shows_environment_origin() {
    let path = fixture("kolla-style.conf");
    let output = Command::new(env!("CARGO_BIN_EXE_masakari-hostmonitor"))
        .args([
            "check-config",
            "--config-file",
            path.to_str().expect("utf-8"),
        ])
        .env("HOME", "/nonexistent")
        .env("OS_API__REGION", "RegionEnv")
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("region = \"RegionEnv\"  (environment variable OS_API__REGION)"),
        "{stdout}"
    );
}

#[test]
fn run_without_auth_url_needs_dry_run() {
    let path = fixture("generated-sample.conf");
    let path = path.to_str().expect("utf-8");
    let output = run(&["--config-file", path]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("auth_url is required"),
        "{}",
        text(&output.stderr)
    );

    // With --dry-run the missing auth_url is accepted and the daemon starts; without any
    // Kubernetes configuration (HOME points nowhere) it then stops at the client.
    let output = run(&["--config-file", path, "--dry-run"]);
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("auth_url is required"), "{stderr}");
    assert!(
        stderr.contains("Kubernetes client could not be created"),
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
}

#[test]
fn help_and_version() {
    let output = run(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    for flag in [
        "--config-file",
        "--config-dir",
        "--dry-run",
        "check-config",
        "simulate",
        "--version",
    ] {
        assert!(stdout.contains(flag), "{flag} missing from help:\n{stdout}");
    }
    let output = run(&["--version"]);
    assert_eq!(
        text(&output.stdout).trim(),
        format!("masakari-hostmonitor {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_error_exits_2() {
    let output = run(&["--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
}
