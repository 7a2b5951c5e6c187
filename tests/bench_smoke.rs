//! Runs the benchmark binary at a tiny size against the monitor binary built with it, to keep
//! its measurement path working. Checks what was measured, never how fast.

use std::process::Command;

use serde_json::Value;

#[test]
fn bench_runs_at_tiny_size() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("bench.json");
    let result = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--nodes", "20", "--runs", "1", "--window", "2"])
        .args([
            "--node-bytes",
            "4000",
            "--detections",
            "2",
            "--mass-failures",
            "6",
        ])
        .args(["--churn-percent", "300"])
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_masakari-hostmonitor"))
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "bench failed:\n{stderr}");
    let table = String::from_utf8_lossy(&result.stdout);
    assert!(table.contains("20 nodes"), "{table}");
    assert!(table.contains("mass failure: all delivered"), "{table}");

    let report: Value = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!(report["sizes"], serde_json::json!([20]));
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["nodes"], 20);
    assert!(run["startup"]["list_requests"].as_u64().unwrap() >= 1);
    assert!(run["startup"]["bytes"].as_u64().unwrap() > 20 * 3_000);
    assert!(run["memory_steady"]["rss_mib"].as_f64().unwrap() > 0.0);
    assert!(run["steady"]["ticks"].as_f64().unwrap() >= 1.0);
    assert!(run["churn_updates"].as_u64().unwrap() >= 1);

    let after_log = run["detection"]["after_log_ms"].as_array().unwrap();
    assert_eq!(after_log.len(), 2);
    for latency in after_log {
        assert!(
            latency.as_f64().unwrap() >= 0.0,
            "negative latency {latency}"
        );
    }
    assert_eq!(run["mass_failure"]["hosts"], 6);
    assert_eq!(run["mass_failure"]["accepted"], 6);

    let rows = report["rows"].as_array().unwrap();
    for row in rows {
        assert!(
            row["values"][0].is_object(),
            "no value for {}",
            row["figure"]
        );
    }

    let reprinted = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("--report")
        .arg(&output)
        .arg("--markdown")
        .output()
        .unwrap();
    assert!(reprinted.status.success());
    let markdown = String::from_utf8_lossy(&reprinted.stdout);
    assert!(
        markdown.contains("| figure | unit | 20 nodes | target |"),
        "{markdown}"
    );
    let table_lines = markdown
        .lines()
        .filter(|line| line.starts_with('|'))
        .count();
    assert_eq!(table_lines, rows.len() + 2);
}
