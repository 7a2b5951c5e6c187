//! The option registry: every option this program reads or accepts, by section.
//!
//! Options marked [`Usage::Ignored`] are registered by masakari-monitors, oslo.log, oslo.service
//! or keystoneauth and may appear in existing files; they are accepted and have no effect here.

/// Type of an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    /// A string never printed: `password`, `application_credential_secret`, `token`.
    Secret,
    Bool,
    Int,
    Float,
    List,
}

/// Whether this program uses an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Used,
    /// Accepted for compatibility with masakari-monitors and oslo; no effect.
    Ignored,
    /// A keystoneauth plugin option, read from `[api] auth_section` when that is set. The mask
    /// lists the `auth_type` values that use it ([`PASSWORD`], [`V3PASSWORD`], [`V3APPCRED`]).
    Plugin(u8),
}

pub const PASSWORD: u8 = 1;
pub const V3PASSWORD: u8 = 2;
pub const V3APPCRED: u8 = 4;
const ALL: u8 = PASSWORD | V3PASSWORD | V3APPCRED;
const PASSWORDS: u8 = PASSWORD | V3PASSWORD;

/// Marks the default of `[DEFAULT] hostname`, which is the machine's host name.
pub const HOSTNAME_DEFAULT: &str = "<machine host name>";

/// One registered option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptSpec {
    pub section: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    /// The default as option text; `None` means unset.
    pub default: Option<&'static str>,
    /// Older names, tried in order after `name` within each file.
    pub deprecated: &'static [&'static str],
    pub usage: Usage,
}

const fn opt(
    section: &'static str,
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
) -> OptSpec {
    OptSpec {
        section,
        name,
        kind,
        default,
        deprecated: &[],
        usage: Usage::Used,
    }
}

const fn ignored(section: &'static str, name: &'static str, kind: Kind) -> OptSpec {
    OptSpec {
        section,
        name,
        kind,
        default: None,
        deprecated: &[],
        usage: Usage::Ignored,
    }
}

const fn plugin(name: &'static str, kind: Kind, mask: u8) -> OptSpec {
    OptSpec {
        section: "api",
        name,
        kind,
        default: None,
        deprecated: &[],
        usage: Usage::Plugin(mask),
    }
}

const fn deprecated(spec: OptSpec, names: &'static [&'static str]) -> OptSpec {
    OptSpec {
        deprecated: names,
        ..spec
    }
}

use Kind::{Bool, Float, Int, List, Secret, Str};

/// Sections whose options this program owns; unknown options in them are reported.
pub const OWNED_SECTIONS: &[&str] = &[
    "DEFAULT",
    "host",
    "api",
    "kubernetes",
    "circuit_breaker",
    "leader_election",
    "admin",
];

/// Sections masakari-monitors or the libraries it loads may render, which this program does not
/// read. They are accepted silently.
pub const FOREIGN_SECTIONS: &[&str] = &[
    "callback",
    "consul",
    "cors",
    "healthcheck",
    "instance",
    "introspectiveinstancemonitor",
    "keystone_authtoken",
    "libvirt",
    "oslo_concurrency",
    "oslo_middleware",
    "process",
    "service_credentials",
];

pub static OPTIONS: &[OptSpec] = &[
    // [DEFAULT], used.
    opt("DEFAULT", "debug", Bool, Some("false")),
    opt("DEFAULT", "use_json", Bool, Some("false")),
    deprecated(opt("DEFAULT", "log_file", Str, None), &["logfile"]),
    deprecated(opt("DEFAULT", "log_dir", Str, None), &["logdir"]),
    deprecated(
        opt("DEFAULT", "hostname", Str, Some(HOSTNAME_DEFAULT)),
        &["host"],
    ),
    opt("DEFAULT", "graceful_shutdown_timeout", Int, Some("60")),
    // [DEFAULT], masakari-monitors, oslo.service and oslo.log options without effect here.
    ignored("DEFAULT", "instancemonitor_manager", Str),
    ignored("DEFAULT", "introspectiveinstancemonitor_manager", Str),
    ignored("DEFAULT", "processmonitor_manager", Str),
    ignored("DEFAULT", "hostmonitor_manager", Str),
    ignored("DEFAULT", "tempdir", Str),
    ignored("DEFAULT", "monkey_patch", Bool),
    ignored("DEFAULT", "monkey_patch_modules", List),
    ignored("DEFAULT", "log_options", Bool),
    ignored("DEFAULT", "backdoor_port", Str),
    ignored("DEFAULT", "backdoor_socket", Str),
    deprecated(
        ignored("DEFAULT", "log_config_append", Str),
        &["log-config", "log_config"],
    ),
    ignored("DEFAULT", "log_date_format", Str),
    ignored("DEFAULT", "watch_log_file", Bool),
    ignored("DEFAULT", "use_syslog", Bool),
    ignored("DEFAULT", "use_journal", Bool),
    ignored("DEFAULT", "use_eventlog", Bool),
    ignored("DEFAULT", "syslog_log_facility", Str),
    ignored("DEFAULT", "use_stderr", Bool),
    ignored("DEFAULT", "log_color", Bool),
    ignored("DEFAULT", "log_rotation_type", Str),
    ignored("DEFAULT", "log_rotate_interval", Int),
    ignored("DEFAULT", "log_rotate_interval_type", Str),
    ignored("DEFAULT", "max_logfile_count", Int),
    ignored("DEFAULT", "max_logfile_size_mb", Int),
    ignored("DEFAULT", "default_log_levels", List),
    ignored("DEFAULT", "logging_context_format_string", Str),
    ignored("DEFAULT", "logging_default_format_string", Str),
    ignored("DEFAULT", "logging_debug_format_suffix", Str),
    ignored("DEFAULT", "logging_exception_prefix", Str),
    ignored("DEFAULT", "logging_user_identity_format", Str),
    ignored("DEFAULT", "instance_format", Str),
    ignored("DEFAULT", "instance_uuid_format", Str),
    ignored("DEFAULT", "publish_errors", Bool),
    ignored("DEFAULT", "rate_limit_interval", Int),
    ignored("DEFAULT", "rate_limit_burst", Int),
    ignored("DEFAULT", "rate_limit_except_level", Str),
    ignored("DEFAULT", "fatal_deprecations", Bool),
    // [host]
    opt("host", "monitoring_driver", Str, None),
    opt("host", "monitoring_interval", Int, Some("60")),
    opt("host", "monitoring_samples", Int, Some("1")),
    opt("host", "api_retry_max", Int, Some("12")),
    opt("host", "api_retry_interval", Int, Some("10")),
    opt("host", "api_slow_retry_interval", Int, Some("60")),
    opt("host", "max_concurrent_deliveries", Int, Some("32")),
    ignored("host", "disable_ipmi_check", Bool),
    ignored("host", "restrict_to_remotes", Bool),
    ignored("host", "ipmi_timeout", Int),
    ignored("host", "ipmi_retry_max", Int),
    ignored("host", "ipmi_retry_interval", Int),
    ignored("host", "stonith_wait", Int),
    ignored("host", "tcpdump_timeout", Int),
    ignored("host", "corosync_multicast_interfaces", List),
    ignored("host", "corosync_multicast_ports", List),
    ignored("host", "pacemaker_node_type", Str),
    // [api]: masakari-monitors' own options and the keystoneauth session options.
    opt("api", "region", Str, Some("RegionOne")),
    ignored("api", "api_version", Str),
    opt("api", "api_interface", Str, Some("public")),
    opt("api", "endpoint_override", Str, None),
    opt("api", "cafile", Str, None),
    opt("api", "certfile", Str, None),
    opt("api", "keyfile", Str, None),
    opt("api", "insecure", Bool, Some("false")),
    opt("api", "timeout", Float, Some("30")),
    ignored("api", "collect_timing", Bool),
    ignored("api", "split_loggers", Bool),
    opt("api", "auth_section", Str, None),
    // [api] keystoneauth plugin options; `auth_type` is read with them from `auth_section`.
    deprecated(
        OptSpec {
            default: Some("password"),
            ..plugin("auth_type", Str, ALL)
        },
        &["auth_plugin"],
    ),
    plugin("auth_url", Str, ALL),
    plugin("system_scope", Str, ALL),
    plugin("domain_id", Str, ALL),
    plugin("domain_name", Str, ALL),
    deprecated(plugin("project_id", Str, ALL), &["tenant_id", "tenant-id"]),
    deprecated(
        plugin("project_name", Str, ALL),
        &["tenant_name", "tenant-name"],
    ),
    plugin("project_domain_id", Str, ALL),
    plugin("project_domain_name", Str, ALL),
    plugin("trust_id", Str, ALL),
    plugin("default_domain_id", Str, PASSWORD),
    plugin("default_domain_name", Str, PASSWORD),
    plugin("user_id", Str, ALL),
    deprecated(plugin("username", Str, ALL), &["user_name", "user-name"]),
    plugin("user_domain_id", Str, ALL),
    plugin("user_domain_name", Str, ALL),
    plugin("password", Secret, PASSWORDS),
    plugin("application_credential_id", Str, V3APPCRED),
    plugin("application_credential_name", Str, V3APPCRED),
    plugin("application_credential_secret", Secret, V3APPCRED),
    plugin("token", Secret, 0),
    // [kubernetes]
    opt("kubernetes", "monitoring_node_labels", Str, Some("")),
    opt("kubernetes", "kubeconfig", Str, None),
    opt(
        "kubernetes",
        "down_ready_statuses",
        List,
        Some("False,Unknown"),
    ),
    opt("kubernetes", "startup_down_horizon", Int, Some("600")),
    opt("kubernetes", "cache_freshness_limit", Int, Some("30")),
    opt("kubernetes", "host_name_label", Str, None),
    opt("kubernetes", "host_name_annotation", Str, None),
    opt("kubernetes", "host_name_strip_domain", Bool, Some("false")),
    // [circuit_breaker]
    opt("circuit_breaker", "enabled", Bool, Some("true")),
    opt("circuit_breaker", "threshold", Str, Some("50%")),
    opt("circuit_breaker", "stabilization_period", Int, Some("300")),
    // [leader_election]
    opt("leader_election", "enabled", Bool, Some("true")),
    opt(
        "leader_election",
        "lease_name",
        Str,
        Some("masakari-hostmonitor"),
    ),
    opt("leader_election", "namespace", Str, None),
    opt("leader_election", "identity", Str, None),
    opt("leader_election", "lease_duration", Int, Some("15")),
    opt("leader_election", "renew_deadline", Int, Some("10")),
    opt("leader_election", "retry_period", Int, Some("2")),
    // [admin]
    opt("admin", "enabled", Bool, Some("true")),
    opt("admin", "listen_address", Str, Some("0.0.0.0:9797")),
];

/// Returns the option registered as `section`/`name` (current names only).
pub fn find(section: &str, name: &str) -> Option<&'static OptSpec> {
    OPTIONS
        .iter()
        .find(|spec| spec.section == section && spec.name == name)
}

/// Returns the option a key in a file stands for, by current or deprecated name.
pub fn find_by_key(section: &str, key: &str) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|spec| {
        spec.section == section && (spec.name == key || spec.deprecated.contains(&key))
    })
}

/// Returns whether this program or masakari-monitors defines `section`.
pub fn is_known_section(section: &str) -> bool {
    OWNED_SECTIONS.contains(&section) || FOREIGN_SECTIONS.contains(&section)
}

/// Returns the [`Usage::Plugin`] mask bit of an `auth_type` name.
pub fn plugin_bit(auth_type: &str) -> Option<u8> {
    match auth_type {
        "password" => Some(PASSWORD),
        "v3password" => Some(V3PASSWORD),
        "v3applicationcredential" => Some(V3APPCRED),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_has_no_duplicates() {
        for (index, spec) in OPTIONS.iter().enumerate() {
            let clash = OPTIONS[index + 1..]
                .iter()
                .any(|other| other.section == spec.section && other.name == spec.name);
            assert!(!clash, "[{}] {} registered twice", spec.section, spec.name);
        }
    }

    #[test]
    fn deprecated_names_resolve() {
        assert_eq!(
            find_by_key("DEFAULT", "host").map(|s| s.name),
            Some("hostname")
        );
        assert_eq!(
            find_by_key("api", "tenant-name").map(|s| s.name),
            Some("project_name")
        );
        assert_eq!(
            find_by_key("api", "auth_plugin").map(|s| s.name),
            Some("auth_type")
        );
        assert_eq!(find_by_key("host", "disable_ipmi_checks"), None);
    }
}
