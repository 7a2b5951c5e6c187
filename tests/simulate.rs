//! The simulator end to end: every example scenario through the library, and the built binary's
//! output and exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use masakari_hostmonitor::simulate::summary::Outcome;
use masakari_hostmonitor::simulate::{self, Options, Scenario, Summary};

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples directory readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    paths
}

fn run_example(name: &str) -> Summary {
    let scenario = simulate::load(Some(name)).expect("built-in scenario valid");
    simulate::run(&scenario, Options::default()).expect("scenario ran")
}

fn failed_expectations(summary: &Summary) -> Vec<String> {
    summary
        .expectations
        .iter()
        .filter(|e| !e.passed)
        .map(|e| format!("{}: {}", e.expectation, e.detail))
        .collect()
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_masakari-hostmonitor"))
}

#[test]
fn every_example_meets_its_expectations() {
    let paths = examples();
    assert!(paths.len() >= 5, "examples found: {paths:?}");
    for path in paths {
        let scenario = Scenario::from_file(&path).expect("example valid");
        assert!(
            !scenario.expectations.is_empty(),
            "{} has no expectations",
            path.display()
        );
        let summary = simulate::run(&scenario, Options::default()).expect("example ran");
        assert_eq!(
            failed_expectations(&summary),
            Vec::<String>::new(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn every_example_is_built_in() {
    for path in examples() {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let built_in = simulate::BUILT_IN
            .iter()
            .find(|(name, _)| *name == stem)
            .unwrap_or_else(|| panic!("{stem} is not built in"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(built_in.1, text, "{stem}");
    }
}

#[test]
fn single_failure_timeline() {
    let summary = run_example("single-host-failure");

    assert_eq!(summary.failures.len(), 1);
    let failure = &summary.failures[0];
    assert_eq!(failure.host, "compute-2");
    assert_eq!(failure.failed_at, Some(Duration::from_secs(120)));
    // Three Down readings at 2m10s, 2m20s and 2m30s.
    assert_eq!(failure.declared_failed_at, Some(Duration::from_secs(150)));
    assert_eq!(failure.notified_at, Some(Duration::from_secs(150)));
    assert_eq!(failure.detection_delay, Some(Duration::from_secs(30)));
    assert_eq!(failure.outcome, Outcome::Notified);
    assert!(summary.breaker.is_empty());
    assert_eq!(summary.ticks, 60);
}

#[test]
fn rack_loss_held_then_single_failure_notified() {
    let summary = run_example("rack-loss-breaker");

    let states: Vec<(&str, Duration)> = summary.breaker.iter().map(|r| (r.state, r.at)).collect();
    assert_eq!(
        states,
        [
            ("opened", Duration::from_secs(70)),
            ("closed", Duration::from_secs(370)),
        ]
    );
    let held = summary
        .failures
        .iter()
        .filter(|f| f.outcome == Outcome::Held)
        .count();
    assert_eq!(held, 4);
    let accepted: Vec<&str> = summary.accepted().map(|n| n.host.as_str()).collect();
    assert_eq!(accepted, ["compute-9"]);
}

#[test]
fn masakari_outage_delivers_once_after_return() {
    let summary = run_example("masakari-down");

    let accepted: Vec<Duration> = summary.accepted().map(|n| n.at).collect();
    assert_eq!(accepted.len(), 1);
    assert!(accepted[0] > Duration::from_secs(360), "{accepted:?}");
    assert!(summary.masakari_requests > 1);
}

#[test]
fn runs_are_deterministic() {
    for name in ["single-host-failure", "rack-loss-breaker", "masakari-down"] {
        let first = without_uuids(run_example(name).to_json());
        let second = without_uuids(run_example(name).to_json());
        assert_eq!(first, second, "{name}");
    }
}

fn without_uuids(mut json: serde_json::Value) -> serde_json::Value {
    if let Some(notifications) = json["notifications"].as_array_mut() {
        for notification in notifications {
            notification["notification_uuid"] = serde_json::Value::Null;
        }
    }
    json
}

#[test]
fn wrong_expectation_reported() {
    let text = simulate::BUILT_IN
        .iter()
        .find(|(name, _)| *name == "single-host-failure")
        .unwrap()
        .1
        .replace("within = \"45s\"", "within = \"20s\"");
    let scenario = Scenario::from_toml(&text, "test", "test").unwrap();
    let summary = simulate::run(&scenario, Options::default()).unwrap();

    assert!(!summary.passed());
    let failed = failed_expectations(&summary);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains("compute-2 notified"), "{failed:?}");
    assert!(failed[0].contains("more than 20s"), "{failed:?}");
}

#[test]
fn binary_default_scenario() {
    let output = binary().arg("simulate").output().expect("binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Scenario rack-loss-breaker"), "{stdout}");
    assert!(stdout.contains("compute-9  202"), "{stdout}");
    assert!(stdout.contains("opened (4 down, threshold 3"), "{stdout}");
    assert!(
        stdout.contains("Circuit breaker opened"),
        "logs missing: {stdout}"
    );
    assert!(stdout.contains("8 of 8 expectations passed"), "{stdout}");
}

#[test]
fn binary_exits_1_on_failed_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong.toml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flapping-host.toml"),
    )
    .unwrap()
    .replace("not_notified = \"compute-1\"", "notified = \"compute-1\"");
    std::fs::write(&path, text).unwrap();

    let output = binary().arg("simulate").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  compute-1 notified: Masakari received no notification"),
        "{stdout}"
    );
}

#[test]
fn binary_json_summary_on_stdout() {
    let output = binary()
        .args(["simulate", "single-host-failure", "--output", "json"])
        .output()
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(0));
    assert_eq!(summary["scenario"], "single-host-failure");
    assert_eq!(summary["passed"], true);
    assert_eq!(summary["clock"], "virtual");
    assert_eq!(summary["failures"][0]["host"], "compute-2");
    assert_eq!(summary["failures"][0]["outcome"], "notified");
    assert_eq!(summary["failures"][0]["detection_delay"], 30.0);
    assert!(stderr.contains("Host failed"), "logs missing: {stderr}");
}

#[test]
fn binary_exits_2_on_invalid_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "duration = \"10m\"\n[fleet]\ncount = 2\n[config.host]\nmonitoring_interval = \"often\"\n",
    )
    .unwrap();

    let output = binary().arg("simulate").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("monitoring_interval"), "{stderr}");
}

#[test]
fn missing_scenario_file_rejected() {
    let output = binary()
        .args(["simulate", "/nonexistent/scenario.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("/nonexistent/scenario.toml"), "{stderr}");
}

#[test]
fn real_time_runs_on_wall_clock() {
    let scenario = Scenario::from_toml(
        r#"
        duration = "3s"
        [fleet]
        count = 2
        [config.host]
        monitoring_interval = 1
        monitoring_samples = 1
        [[events]]
        at = "1500ms"
        action = "set_ready"
        node = "compute-1"
        status = "False"
        [[expect]]
        notified = "compute-1"
        within = "2s"
        "#,
        "test",
        "real-time",
    )
    .unwrap();
    let started = std::time::Instant::now();

    let summary = simulate::run(&scenario, Options { real_time: true }).unwrap();

    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(summary.clock, "real");
    assert_eq!(failed_expectations(&summary), Vec::<String>::new());
}

#[test]
fn restart_applies_startup_horizon() {
    let summary = run_example("monitor-restart");

    let long_dead = summary
        .failures
        .iter()
        .find(|f| f.host == "compute-1")
        .expect("compute-1 episode");
    assert_eq!(long_dead.outcome, Outcome::SuppressedAtStartup);
    let in_progress = summary
        .failures
        .iter()
        .find(|f| f.host == "compute-2")
        .expect("compute-2 episode");
    assert_eq!(in_progress.outcome, Outcome::Notified);
    assert_eq!(
        in_progress.declared_failed_at,
        Some(Duration::from_secs(30))
    );
}

#[test]
fn leader_election_and_admin_enabled() {
    let scenario = Scenario::from_toml(
        r#"
        duration = "3m"
        [fleet]
        count = 4
        [config.host]
        monitoring_interval = 10
        monitoring_samples = 3
        [config.leader_election]
        enabled = true
        identity = "simulator-0"
        [config.admin]
        enabled = true
        listen_address = "127.0.0.1:0"
        [[events]]
        at = "1m"
        action = "set_ready"
        node = "compute-1"
        status = "False"
        [[expect]]
        notified = "compute-1"
        within = "45s"
        "#,
        "test",
        "leader",
    )
    .unwrap();

    let summary = simulate::run(&scenario, Options::default()).unwrap();

    assert_eq!(failed_expectations(&summary), Vec::<String>::new());
}

#[test]
fn admin_outside_loopback_rejected() {
    let scenario = Scenario::from_toml(
        r#"
        duration = "1m"
        [fleet]
        count = 2
        [config.admin]
        enabled = true
        listen_address = "0.0.0.0:9797"
        "#,
        "test",
        "admin",
    )
    .unwrap();

    let error = simulate::run(&scenario, Options::default()).unwrap_err();

    assert!(
        matches!(error, simulate::SimulateError::AdminNotLoopback { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn run_inside_runtime_rejected() {
    let scenario = simulate::load(Some("single-host-failure")).unwrap();

    let error = simulate::run(&scenario, Options::default()).unwrap_err();

    assert!(
        matches!(error, simulate::SimulateError::InsideRuntime),
        "{error}"
    );
}

#[test]
fn deleted_and_recreated_node() {
    let scenario = Scenario::from_toml(
        r#"
        duration = "6m"
        [fleet]
        count = 4
        [config.host]
        monitoring_interval = 10
        monitoring_samples = 3
        [[events]]
        at = "1m"
        action = "set_ready"
        node = "compute-3"
        status = "Unknown"
        [[events]]
        at = "1m15s"
        action = "delete_node"
        node = "compute-3"
        [[events]]
        at = "3m"
        action = "add_node"
        node = "compute-3"
        [[events]]
        at = "4m"
        action = "set_ready"
        node = "compute-3"
        status = "False"
        [[expect]]
        notified = "compute-3"
        within = "45s"
        times = 1
        "#,
        "test",
        "recreated",
    )
    .unwrap();

    let summary = simulate::run(&scenario, Options::default()).unwrap();

    assert_eq!(failed_expectations(&summary), Vec::<String>::new());
    let outcomes: Vec<(Option<Duration>, Outcome)> = summary
        .failures
        .iter()
        .map(|f| (f.failed_at, f.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                Some(Duration::from_secs(60)),
                Outcome::DeletedBeforeDetection
            ),
            (Some(Duration::from_secs(240)), Outcome::Notified),
        ]
    );
}

#[test]
fn unknown_scenario_name_lists_built_ins() {
    let output = binary().args(["simulate", "rack-los"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("\"rack-los\""), "{stderr}");
    assert!(
        stderr.contains("rack-loss-breaker, single-host-failure"),
        "{stderr}"
    );
}
