//! A fake cluster for daemon tests: the fake Kubernetes API with a few ready Nodes, the fake
//! Keystone and Masakari, and a configuration pointing at both.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use masakari_hostmonitor::config::{AuthType, Config};
use masakari_hostmonitor::fake::kube_api::{FakeKubeApi, NodeFixture};
use masakari_hostmonitor::fake::openstack::FakeOpenStack;
use masakari_hostmonitor::secret::Secret;

pub struct Cluster {
    pub kube: FakeKubeApi,
    pub openstack: FakeOpenStack,
}

impl Cluster {
    /// Starts both fakes with Nodes `compute-0` .. `compute-{nodes - 1}`, all Ready.
    pub async fn start(nodes: usize) -> Cluster {
        let kube = FakeKubeApi::start().await;
        for index in 0..nodes {
            let node = NodeFixture::ready(&format!("compute-{index}")).to_json();
            kube.apply_node(node).expect("node applied");
        }
        let openstack = FakeOpenStack::start()
            .await
            .expect("fake OpenStack started");
        Cluster { kube, openstack }
    }

    /// Builds a configuration for these fakes: 1 s ticks, leader election and admin server off.
    pub fn config(&self, samples: usize) -> Config {
        let mut config = Config::default();
        config.host.monitoring_interval = Duration::from_secs(1);
        config.host.monitoring_samples = samples;
        config.host.api_retry_interval = Duration::from_secs(1);
        config.api.auth.auth_type = AuthType::V3Password;
        config.api.auth.auth_url = self.openstack.auth_url();
        config.api.auth.username = Some("masakari".to_owned());
        config.api.auth.password = Some(Secret::new("test-password"));
        config.api.auth.user_domain_name = Some("Default".to_owned());
        config.api.auth.project_name = Some("service".to_owned());
        config.api.auth.project_domain_name = Some("Default".to_owned());
        config.api.timeout = Duration::from_secs(10);
        config.leader_election.enabled = false;
        config.admin.enabled = false;
        config
    }

    /// Statuses Masakari returned for notifications about `host`, in arrival order.
    pub fn statuses(&self, host: &str) -> Vec<u16> {
        self.openstack
            .received()
            .iter()
            .filter(|n| n.hostname == host)
            .map(|n| n.status)
            .collect()
    }

    /// Writes a kubeconfig for the fake API server and returns its path.
    pub fn write_kubeconfig(&self, dir: &Path) -> std::path::PathBuf {
        write_kubeconfig(self.kube.addr(), dir)
    }
}

/// Writes `dir/kubeconfig` for a plain-HTTP API server at `server` and returns its path.
pub fn write_kubeconfig(server: SocketAddr, dir: &Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{server}\nusers:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n"
    );
    std::fs::write(&path, text).expect("kubeconfig written");
    path
}

/// Returns a loopback address with a port that was free a moment ago.
pub fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local address")
}

/// Polls `condition` every 50 ms until it is true or `limit` passes, and returns whether it
/// became true.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GETs `path` from an admin server, returning status and body, or `None` if unreachable.
pub async fn admin_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .ok()?
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}
