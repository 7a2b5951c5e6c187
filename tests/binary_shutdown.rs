//! The built binary against the fakes: it runs from a configuration file and kubeconfig, and
//! SIGTERM during a pending delivery exits cleanly within the graceful shutdown timeout.

mod support;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::cluster::{Cluster, admin_get, eventually, free_address};

const WAIT: Duration = Duration::from_secs(20);

/// Writes a configuration for the fakes and returns its path.
fn write_config(dir: &Path, cluster: &Cluster, admin: std::net::SocketAddr) -> std::path::PathBuf {
    let kubeconfig = cluster.write_kubeconfig(dir);
    let text = format!(
        "[DEFAULT]\n\
         graceful_shutdown_timeout = 3\n\
         use_json = true\n\
         [host]\n\
         monitoring_driver = kubernetes\n\
         monitoring_interval = 1\n\
         monitoring_samples = 2\n\
         api_retry_max = 2\n\
         api_retry_interval = 1\n\
         [api]\n\
         auth_type = v3password\n\
         auth_url = {auth_url}\n\
         username = masakari\n\
         password = test-password\n\
         user_domain_name = Default\n\
         project_name = service\n\
         project_domain_name = Default\n\
         timeout = 5\n\
         [kubernetes]\n\
         kubeconfig = {kubeconfig}\n\
         [leader_election]\n\
         enabled = false\n\
         [admin]\n\
         listen_address = {admin}\n",
        auth_url = cluster.openstack.auth_url(),
        kubeconfig = kubeconfig.display(),
    );
    let path = dir.join("masakarimonitors.conf");
    std::fs::write(&path, text).expect("config written");
    path
}

fn spawn_monitor(config: &Path, log: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_masakari-hostmonitor"))
        .arg("--config-file")
        .arg(config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log handle"))
        .stderr(log_file)
        .spawn()
        .expect("binary starts")
}

fn send_sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM");
}

/// Waits for the child to exit, for at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

async fn wait_ready(admin: std::net::SocketAddr) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if matches!(admin_get(admin, "/readyz").await, Some((200, _))) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_pending_delivery_exits_cleanly() {
    let cluster = Cluster::start(3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = free_address();
    let config = write_config(dir.path(), &cluster, admin);
    let log = dir.path().join("monitor.log");
    let mut child = spawn_monitor(&config, &log);
    assert!(wait_ready(admin).await, "ready; log:\n{}", read(&log));

    cluster.openstack.set_masakari_status(Some(503));
    cluster
        .kube
        .set_ready("compute-0", "Unknown", "NodeStatusUnknown")
        .expect("node updated");
    let attempted = eventually(WAIT, || !cluster.statuses("compute-0").is_empty()).await;
    assert!(attempted, "a delivery attempt reached Masakari");

    let signalled = Instant::now();
    send_sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15)).expect("exits");
    let took = signalled.elapsed();

    let output = read(&log);
    assert!(status.success(), "exit status {status:?}; log:\n{output}");
    // graceful_shutdown_timeout is 3 s; the rest is stopping the watch and the admin server.
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
    assert!(
        output.contains("Notifications not delivered before shutdown"),
        "log names the undelivered notification:\n{output}"
    );
    assert!(
        output.contains("compute-0"),
        "log names the host:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_signal_aborts_at_once() {
    let cluster = Cluster::start(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = free_address();
    let config = write_config(dir.path(), &cluster, admin);
    let log = dir.path().join("monitor.log");
    let mut child = spawn_monitor(&config, &log);
    assert!(wait_ready(admin).await, "ready; log:\n{}", read(&log));

    cluster.openstack.set_masakari_status(Some(503));
    cluster
        .kube
        .set_ready("compute-1", "Unknown", "NodeStatusUnknown")
        .expect("node updated");
    let attempted = eventually(WAIT, || !cluster.statuses("compute-1").is_empty()).await;
    assert!(attempted, "a delivery attempt reached Masakari");

    send_sigterm(&child);
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    send_sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(5)).expect("exits");
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "abort is immediate"
    );
    assert_eq!(status.code(), Some(143), "log:\n{}", read(&log));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
