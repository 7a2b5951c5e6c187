//! The `[[expect]]` entries: their raw form and their validation.

use std::time::Duration;

use serde::Deserialize;

use super::{Checker, RawDuration};
use crate::simulate::scenario::{Expectation, Scenario, ScenarioError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpectation {
    notified: Option<String>,
    not_notified: Option<OneOrMany>,
    notifications: Option<usize>,
    breaker: Option<BreakerKind>,
    within: Option<RawDuration>,
    by: Option<RawDuration>,
    times: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BreakerKind {
    Opens,
    Closes,
    StaysClosed,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Checker<'_> {
    pub(super) fn expectation(
        &self,
        location: &str,
        raw: RawExpectation,
    ) -> Result<Vec<Expectation>, ScenarioError> {
        let kinds = [
            raw.notified.is_some(),
            raw.not_notified.is_some(),
            raw.notifications.is_some(),
            raw.breaker.is_some(),
        ];
        if kinds.iter().filter(|set| **set).count() != 1 {
            return Err(self.invalid(
                location,
                "set exactly one of `notified`, `not_notified`, `notifications` or `breaker`",
            ));
        }
        let within = self.optional_duration(location, "within", raw.within.as_ref())?;
        let by = self.optional_duration(location, "by", raw.by.as_ref())?;
        if raw.notified.is_none() && (within.is_some() || raw.times.is_some()) {
            return Err(self.invalid(location, "`within` and `times` only apply to `notified`"));
        }
        let by_allowed = raw.notified.is_some()
            || matches!(raw.breaker, Some(BreakerKind::Opens | BreakerKind::Closes));
        if by.is_some() && !by_allowed {
            return Err(self.invalid(
                location,
                "`by` only applies to `notified` and to `breaker` = \"opens\" or \"closes\"",
            ));
        }

        let expectations = if let Some(host) = raw.notified {
            vec![Expectation::Notified {
                host,
                within,
                by,
                times: raw.times,
            }]
        } else if let Some(hosts) = raw.not_notified {
            let hosts = match hosts {
                OneOrMany::One(host) => vec![host],
                OneOrMany::Many(hosts) => hosts,
            };
            hosts
                .into_iter()
                .map(|host| Expectation::NotNotified { host })
                .collect()
        } else if let Some(count) = raw.notifications {
            vec![Expectation::Notifications { count }]
        } else {
            match raw.breaker {
                Some(BreakerKind::Opens) => vec![Expectation::BreakerOpens { by }],
                Some(BreakerKind::Closes) => vec![Expectation::BreakerCloses { by }],
                Some(BreakerKind::StaysClosed) | None => vec![Expectation::BreakerStaysClosed],
            }
        };
        Ok(expectations)
    }

    fn optional_duration(
        &self,
        location: &str,
        key: &str,
        raw: Option<&RawDuration>,
    ) -> Result<Option<Duration>, ScenarioError> {
        raw.map(|raw| self.duration(&format!("{location}.{key}"), raw))
            .transpose()
    }

    /// Rejects expectations about hosts the scenario never creates, which would pass or fail
    /// for the wrong reason. Skipped when `[config.kubernetes]` maps host names from labels,
    /// annotations or domains, because then host names differ from node names.
    pub(super) fn check_expected_hosts(&self, scenario: &Scenario) -> Result<(), ScenarioError> {
        let maps_names = scenario
            .config
            .get("kubernetes")
            .and_then(toml::Value::as_table)
            .is_some_and(|section| {
                section.contains_key("host_name_label")
                    || section.contains_key("host_name_annotation")
                    || section.contains_key("host_name_strip_domain")
            });
        if maps_names {
            return Ok(());
        }
        let known = scenario.all_node_names();
        for expectation in &scenario.expectations {
            let host = match expectation {
                Expectation::Notified { host, .. } | Expectation::NotNotified { host } => host,
                _ => continue,
            };
            if !known.contains(host.as_str()) {
                return Err(self.invalid(
                    "expect",
                    format!("host {host:?} is not a node of this scenario"),
                ));
            }
        }
        Ok(())
    }
}
