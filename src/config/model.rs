//! The typed, validated configuration every component reads.
//!
//! Field docs give meaning, unit and default. The loader fills these structs from oslo.config INI or
//! TOML files; [`Config::default`] gives the defaults, which tests and the simulator start from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

/// The whole configuration, one struct per section.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub default: DefaultSection,
    pub host: HostSection,
    pub api: ApiSection,
    pub kubernetes: KubernetesSection,
    pub circuit_breaker: BreakerSection,
    pub leader_election: LeaderElectionSection,
    pub admin: AdminSection,
}

/// `[DEFAULT]`: logging and process options shared with oslo.log and oslo.service.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultSection {
    /// `debug`: log at DEBUG instead of INFO. Default false.
    pub debug: bool,
    /// `use_json`: one JSON object per log line. Default false.
    pub use_json: bool,
    /// `log_file`: log to this file instead of standard output. Default unset.
    pub log_file: Option<PathBuf>,
    /// `log_dir`: directory for `log_file`, or for `masakari-hostmonitor.log` when `log_file` is
    /// unset. Default unset.
    pub log_dir: Option<PathBuf>,
    /// `hostname`: this process's name in logs. Default: the machine's host name.
    pub hostname: String,
    /// `graceful_shutdown_timeout`: seconds pending deliveries get after SIGTERM. Default 60.
    pub graceful_shutdown_timeout: Duration,
}

/// `[host]`: monitoring cadence and notification retries.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSection {
    /// `monitoring_interval`: seconds between two ticks. Default 60, at least 1.
    pub monitoring_interval: Duration,
    /// `monitoring_samples`: consecutive `Down` readings that make a host `Failed`. Default 1,
    /// at least 1.
    pub monitoring_samples: usize,
    /// `api_retry_max`: fast retries of a failed notification. Default 12.
    pub api_retry_max: u32,
    /// `api_retry_interval`: seconds between fast retries. Default 10.
    pub api_retry_interval: Duration,
    /// `api_slow_retry_interval`: seconds between retries once the fast ones are used up; the
    /// notification is never dropped while its host is still failed. Default 60.
    pub api_slow_retry_interval: Duration,
    /// `max_concurrent_deliveries`: notifications sent to Masakari at the same time. Default 32.
    pub max_concurrent_deliveries: usize,
}

/// `[api]`: Keystone authentication and the Masakari endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSection {
    /// `region`: catalog region of the Masakari endpoint. Default `RegionOne`.
    pub region: String,
    /// `api_interface`: catalog interface. Default `public`.
    pub api_interface: Interface,
    /// `endpoint_override`: Masakari URL to use instead of the catalog's. Default unset.
    pub endpoint_override: Option<String>,
    /// Keystone authentication.
    pub auth: AuthConfig,
    /// TLS settings for Keystone and Masakari.
    pub tls: TlsConfig,
    /// `timeout`: seconds allowed for one HTTP request. Default 30, which allows for the Masakari
    /// API's own random delay of up to 5 s.
    pub timeout: Duration,
}

/// Catalog interface (`[api] api_interface`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    Public,
    Internal,
    Admin,
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

/// `[api] auth_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// `password`: keystoneauth's generic password plugin, with version discovery when
    /// `auth_url` has no version. The masakari-monitors default.
    Password,
    /// `v3password`.
    V3Password,
    /// `v3applicationcredential`.
    V3ApplicationCredential,
}

/// Keystone credentials and scope, as keystoneauth names them in `[api]`.
///
/// Both the id and the name of a domain are kept when both are set; keystoneauth sends the id
/// and so should the Keystone client.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    pub auth_type: AuthType,
    /// `auth_url`: Keystone URL, with or without `/v3`. Empty when unset: the loader accepts
    /// that so `--dry-run` can run without Keystone, and sending requires it.
    pub auth_url: String,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub user_domain_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub password: Option<Secret>,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub domain_id: Option<String>,
    pub domain_name: Option<String>,
    pub system_scope: Option<String>,
    pub trust_id: Option<String>,
    /// `default_domain_id`: the generic `password` plugin's fallback for user and project domains.
    pub default_domain_id: Option<String>,
    pub default_domain_name: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub application_credential_secret: Option<Secret>,
}

/// TLS options of `[api]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsConfig {
    /// `cafile`: PEM bundle to trust instead of the system store. Empty means unset.
    pub cafile: Option<PathBuf>,
    /// `certfile`: client certificate (PEM); may also hold the key.
    pub certfile: Option<PathBuf>,
    /// `keyfile`: client private key (PEM).
    pub keyfile: Option<PathBuf>,
    /// `insecure`: skip server certificate verification. Default false.
    pub insecure: bool,
}

/// The source of a Node's Masakari host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostNameSource {
    /// The Node name (default).
    NodeName,
    /// The value of this label; Nodes without it fall back to the Node name.
    Label(String),
    /// The value of this annotation; Nodes without it fall back to the Node name.
    Annotation(String),
}

/// A Ready condition status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadyStatus {
    True,
    False,
    Unknown,
}

/// `[kubernetes]`: the node source.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesSection {
    /// `monitoring_node_labels`: label selector of the monitored Nodes. Default empty (all).
    pub monitoring_node_labels: String,
    /// `kubeconfig`: kubeconfig file; unset means `KUBECONFIG`, `~/.kube/config`, then the
    /// in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// `down_ready_statuses`: Ready statuses read as `Down`. Default `False,Unknown`.
    pub down_ready_statuses: Vec<ReadyStatus>,
    /// `startup_down_horizon`: seconds; a host found down at start-up is notified only if its
    /// Ready condition left `True` less than this long ago. Default 600.
    pub startup_down_horizon: Duration,
    /// `cache_freshness_limit`: seconds the watch may stay broken before every reading is
    /// `NoData`. Default 30.
    pub cache_freshness_limit: Duration,
    /// `host_name_label` / `host_name_annotation`: see [`HostNameSource`].
    pub host_name_source: HostNameSource,
    /// `host_name_strip_domain`: keep only the part before the first `.`. Default false.
    pub host_name_strip_domain: bool,
}

/// Breaker threshold: a host count or a percentage of monitored hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    Count(usize),
    /// Percent of monitored hosts, rounded up; 1 to 100.
    Percent(u8),
}

/// `[circuit_breaker]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSection {
    /// `enabled`: default true.
    pub enabled: bool,
    /// `threshold`: the breaker opens when this many hosts read `Down`. Default `50%`.
    pub threshold: Threshold,
    /// `stabilization_period`: seconds below the threshold before the breaker closes. Default 300.
    pub stabilization_period: Duration,
}

/// `[leader_election]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderElectionSection {
    /// `enabled`: default true. When false this replica always sends.
    pub enabled: bool,
    /// `lease_name`: default `masakari-hostmonitor`.
    pub lease_name: String,
    /// `namespace`: default the pod's namespace (service-account file), else `default`.
    pub namespace: Option<String>,
    /// `identity`: default the `POD_NAME` environment variable, else `[DEFAULT] hostname`.
    pub identity: Option<String>,
    /// `lease_duration`: seconds. Default 15.
    pub lease_duration: Duration,
    /// `renew_deadline`: seconds. Default 10.
    pub renew_deadline: Duration,
    /// `retry_period`: seconds. Default 2.
    pub retry_period: Duration,
}

/// `[admin]`: the health and metrics HTTP server.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminSection {
    /// `enabled`: default true.
    pub enabled: bool,
    /// `listen_address`: default `0.0.0.0:9797`.
    pub listen_address: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default: DefaultSection {
                debug: false,
                use_json: false,
                log_file: None,
                log_dir: None,
                hostname: "localhost".to_owned(),
                graceful_shutdown_timeout: Duration::from_secs(60),
            },
            host: HostSection {
                monitoring_interval: Duration::from_secs(60),
                monitoring_samples: 1,
                api_retry_max: 12,
                api_retry_interval: Duration::from_secs(10),
                api_slow_retry_interval: Duration::from_secs(60),
                max_concurrent_deliveries: 32,
            },
            api: ApiSection {
                region: "RegionOne".to_owned(),
                api_interface: Interface::Public,
                endpoint_override: None,
                auth: AuthConfig {
                    auth_type: AuthType::Password,
                    auth_url: String::new(),
                    user_id: None,
                    username: None,
                    user_domain_id: None,
                    user_domain_name: None,
                    password: None,
                    project_id: None,
                    project_name: None,
                    project_domain_id: None,
                    project_domain_name: None,
                    domain_id: None,
                    domain_name: None,
                    system_scope: None,
                    trust_id: None,
                    default_domain_id: None,
                    default_domain_name: None,
                    application_credential_id: None,
                    application_credential_name: None,
                    application_credential_secret: None,
                },
                tls: TlsConfig::default(),
                timeout: Duration::from_secs(30),
            },
            kubernetes: KubernetesSection {
                monitoring_node_labels: String::new(),
                kubeconfig: None,
                down_ready_statuses: vec![ReadyStatus::False, ReadyStatus::Unknown],
                startup_down_horizon: Duration::from_secs(600),
                cache_freshness_limit: Duration::from_secs(30),
                host_name_source: HostNameSource::NodeName,
                host_name_strip_domain: false,
            },
            circuit_breaker: BreakerSection {
                enabled: true,
                threshold: Threshold::Percent(50),
                stabilization_period: Duration::from_secs(300),
            },
            leader_election: LeaderElectionSection {
                enabled: true,
                lease_name: "masakari-hostmonitor".to_owned(),
                namespace: None,
                identity: None,
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            },
            admin: AdminSection {
                enabled: true,
                listen_address: SocketAddr::from(([0, 0, 0, 0], 9797)),
            },
        }
    }
}
