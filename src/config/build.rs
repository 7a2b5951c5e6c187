//! Builds the typed [`Config`] from resolved options and checks bounds and combinations.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::model::*;
use super::reader::Reader;
use crate::label_selector;

/// Reads every section. Errors collect in `reader.errors`.
pub fn build(reader: &mut Reader<'_>) -> Config {
    let defaults = Config::default();
    Config {
        default: default_section(reader, &defaults.default),
        host: host_section(reader, &defaults.host),
        api: super::api::api_section(reader, &defaults.api),
        kubernetes: kubernetes_section(reader, &defaults.kubernetes),
        circuit_breaker: breaker_section(reader, &defaults.circuit_breaker),
        leader_election: leader_section(reader, &defaults.leader_election),
        admin: admin_section(reader, &defaults.admin),
    }
}

fn default_section(reader: &mut Reader<'_>, defaults: &DefaultSection) -> DefaultSection {
    const S: &str = "DEFAULT";
    DefaultSection {
        debug: reader.bool(S, "debug", defaults.debug),
        use_json: reader.bool(S, "use_json", defaults.use_json),
        log_file: reader.string(S, "log_file").map(PathBuf::from),
        log_dir: reader.string(S, "log_dir").map(PathBuf::from),
        hostname: reader
            .string(S, "hostname")
            .unwrap_or_else(|| defaults.hostname.clone()),
        graceful_shutdown_timeout: reader.seconds(
            S,
            "graceful_shutdown_timeout",
            0,
            defaults.graceful_shutdown_timeout,
        ),
    }
}

fn host_section(reader: &mut Reader<'_>, defaults: &HostSection) -> HostSection {
    const S: &str = "host";
    if let Some(value) = reader.value(S, "monitoring_driver")
        && let Some(driver) = value
            .text
            .as_deref()
            .filter(|driver| !driver.is_empty() && *driver != "kubernetes")
    {
        let reason = format!(
            "this program only has the kubernetes driver; the {driver:?} driver belongs to the Python masakari-hostmonitor, so run that for it, or set monitoring_driver = kubernetes"
        );
        reader.invalid(&value, "monitoring_driver", &reason);
    }
    let max_deliveries = reader.int(
        S,
        "max_concurrent_deliveries",
        1,
        defaults.max_concurrent_deliveries as i64,
    );
    HostSection {
        monitoring_interval: reader.seconds(
            S,
            "monitoring_interval",
            1,
            defaults.monitoring_interval,
        ),
        monitoring_samples: reader.int(
            S,
            "monitoring_samples",
            1,
            defaults.monitoring_samples as i64,
        ) as usize,
        api_retry_max: reader
            .parse(S, "api_retry_max", |text| {
                super::convert::integer(text, 0).and_then(|n| {
                    n.map(u32::try_from)
                        .transpose()
                        .map_err(|_| "too large".to_owned())
                })
            })
            .unwrap_or(defaults.api_retry_max),
        api_retry_interval: reader.seconds(S, "api_retry_interval", 0, defaults.api_retry_interval),
        api_slow_retry_interval: reader.seconds(
            S,
            "api_slow_retry_interval",
            1,
            defaults.api_slow_retry_interval,
        ),
        max_concurrent_deliveries: max_deliveries as usize,
    }
}

fn kubernetes_section(reader: &mut Reader<'_>, defaults: &KubernetesSection) -> KubernetesSection {
    const S: &str = "kubernetes";
    let labels = reader.value(S, "monitoring_node_labels");
    let monitoring_node_labels = match labels {
        Some(value) => {
            let text = value.text.clone().unwrap_or_default();
            if let Err(reason) = label_selector::validate(&text) {
                reader.invalid(
                    &value,
                    "monitoring_node_labels",
                    &format!("not a Kubernetes label selector: {reason}"),
                );
            }
            text.trim().to_owned()
        }
        None => defaults.monitoring_node_labels.clone(),
    };
    KubernetesSection {
        monitoring_node_labels,
        kubeconfig: reader.string(S, "kubeconfig").map(PathBuf::from),
        down_ready_statuses: reader
            .parse(S, "down_ready_statuses", ready_statuses)
            .unwrap_or_else(|| defaults.down_ready_statuses.clone()),
        startup_down_horizon: reader.seconds(
            S,
            "startup_down_horizon",
            0,
            defaults.startup_down_horizon,
        ),
        cache_freshness_limit: reader.seconds(
            S,
            "cache_freshness_limit",
            1,
            defaults.cache_freshness_limit,
        ),
        host_name_source: host_name_source(reader),
        host_name_strip_domain: reader.bool(
            S,
            "host_name_strip_domain",
            defaults.host_name_strip_domain,
        ),
    }
}

fn ready_statuses(text: &str) -> Result<Option<Vec<ReadyStatus>>, String> {
    let items = super::convert::list(text);
    if items.is_empty() {
        return Err("expected a non-empty list of True, False and Unknown".to_owned());
    }
    let mut statuses = Vec::new();
    for item in items {
        let status = match item.to_ascii_lowercase().as_str() {
            "true" => ReadyStatus::True,
            "false" => ReadyStatus::False,
            "unknown" => ReadyStatus::Unknown,
            _ => {
                return Err(format!(
                    "{item:?} is not a Ready status; expected True, False or Unknown"
                ));
            }
        };
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    Ok(Some(statuses))
}

fn host_name_source(reader: &mut Reader<'_>) -> HostNameSource {
    const S: &str = "kubernetes";
    let mut key = |name: &str| {
        let value = reader.value(S, name)?;
        let text = value.text.clone().filter(|text| !text.is_empty())?;
        let valid = !text.contains([',', '=', '!', ' ']) && label_selector::validate(&text).is_ok();
        if !valid {
            reader.invalid(
                &value,
                name,
                "expected a label or annotation key such as example.com/host-name",
            );
        }
        Some(text)
    };
    let label = key("host_name_label");
    let annotation = key("host_name_annotation");
    match (label, annotation) {
        (Some(_), Some(_)) => {
            let message =
                "host_name_label and host_name_annotation are mutually exclusive; set at most one"
                    .to_owned();
            reader.inconsistent(S, message);
            HostNameSource::NodeName
        }
        (Some(label), None) => HostNameSource::Label(label),
        (None, Some(annotation)) => HostNameSource::Annotation(annotation),
        (None, None) => HostNameSource::NodeName,
    }
}

fn breaker_section(reader: &mut Reader<'_>, defaults: &BreakerSection) -> BreakerSection {
    const S: &str = "circuit_breaker";
    BreakerSection {
        enabled: reader.bool(S, "enabled", defaults.enabled),
        threshold: reader
            .parse(S, "threshold", threshold)
            .unwrap_or(defaults.threshold),
        stabilization_period: reader.seconds(
            S,
            "stabilization_period",
            0,
            defaults.stabilization_period,
        ),
    }
}

/// Parses `5` (hosts, at least 1) or `50%` (1 to 100 percent of monitored hosts).
fn threshold(text: &str) -> Result<Option<Threshold>, String> {
    let text = text.trim();
    let reason = || {
        "expected a host count of at least 1 (such as 5) or a percentage from 1% to 100%".to_owned()
    };
    if let Some(percent) = text.strip_suffix('%') {
        let percent: u8 = percent.trim().parse().map_err(|_| reason())?;
        if !(1..=100).contains(&percent) {
            return Err(reason());
        }
        return Ok(Some(Threshold::Percent(percent)));
    }
    match text.parse::<usize>() {
        Ok(count) if count >= 1 => Ok(Some(Threshold::Count(count))),
        _ => Err(reason()),
    }
}

fn leader_section(
    reader: &mut Reader<'_>,
    defaults: &LeaderElectionSection,
) -> LeaderElectionSection {
    const S: &str = "leader_election";
    let section = LeaderElectionSection {
        enabled: reader.bool(S, "enabled", defaults.enabled),
        lease_name: reader
            .string(S, "lease_name")
            .unwrap_or_else(|| defaults.lease_name.clone()),
        namespace: reader.string(S, "namespace"),
        identity: reader.string(S, "identity"),
        lease_duration: reader.seconds(S, "lease_duration", 1, defaults.lease_duration),
        renew_deadline: reader.seconds(S, "renew_deadline", 1, defaults.renew_deadline),
        retry_period: reader.seconds(S, "retry_period", 1, defaults.retry_period),
    };
    if section.renew_deadline >= section.lease_duration {
        reader.inconsistent(
            S,
            "renew_deadline must be less than lease_duration".to_owned(),
        );
    }
    // client-go's rule: the deadline must leave room for a jittered retry (factor 1.2).
    if section.renew_deadline.as_secs_f64() <= 1.2 * section.retry_period.as_secs_f64() {
        reader.inconsistent(
            S,
            "renew_deadline must be more than 1.2 times retry_period".to_owned(),
        );
    }
    section
}

fn admin_section(reader: &mut Reader<'_>, defaults: &AdminSection) -> AdminSection {
    const S: &str = "admin";
    AdminSection {
        enabled: reader.bool(S, "enabled", defaults.enabled),
        listen_address: reader
            .parse(S, "listen_address", |text| {
                text.trim().parse::<SocketAddr>().map(Some).map_err(|_| {
                    "expected an IP address and port such as 0.0.0.0:9797 or [::]:9797".to_owned()
                })
            })
            .unwrap_or(defaults.listen_address),
    }
}
