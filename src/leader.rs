//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's algorithm.
//!
//! Every replica runs the elector; only the one whose identity holds an unexpired Lease may send
//! notifications. Expiry is judged on the local clock from when this replica last saw the Lease
//! record change (client-go's `observedTime`), so replicas need not agree on wall time. Writes
//! use the Lease's `resourceVersion`, so two replicas racing for it cannot both win.

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::LeaderElectionSection;
use crate::metrics::Metrics;
use crate::telemetry::error_chain;

const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// client-go's `JitterFactor`: a candidate waits up to 2.2 retry periods between attempts.
const JITTER_FACTOR: f64 = 1.2;

/// Errors of one acquire or renew attempt. Every one is retried at the next retry period.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("Lease request failed")]
    LeaseRequestFailed(#[source] kube::Error),
    #[error("Lease request timed out")]
    LeaseRequestTimedOut,
}

/// Resolved election settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderSettings {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderSettings {
    /// Resolves the namespace (option, `POD_NAMESPACE`, the service-account namespace file, then
    /// `default`) and the identity (option, `POD_NAME`, then `fallback_identity`).
    pub fn resolve(config: &LeaderElectionSection, fallback_identity: &str) -> Self {
        let namespace = config
            .namespace
            .clone()
            .or_else(|| non_empty_env("POD_NAMESPACE"))
            .or_else(|| {
                std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                    .ok()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "default".to_owned());
        let identity = config
            .identity
            .clone()
            .or_else(|| non_empty_env("POD_NAME"))
            .unwrap_or_else(|| fallback_identity.to_owned());
        LeaderSettings {
            namespace,
            lease_name: config.lease_name.clone(),
            identity,
            lease_duration: config.lease_duration,
            renew_deadline: config.renew_deadline,
            retry_period: config.retry_period,
        }
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The Lease fields that decide leadership; a change of any of them refreshes `observed_at`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Record {
    holder: String,
    duration_seconds: i32,
    renew_time: Option<Timestamp>,
    transitions: i32,
}

impl Record {
    fn from_lease(lease: &Lease) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        Record {
            holder: spec.holder_identity.unwrap_or_default(),
            duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
            renew_time: spec.renew_time.map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    /// This replica holds the Lease until at least `lease_duration` from now.
    Holding,
    /// Another replica holds an unexpired Lease.
    HeldBy(String),
    /// Someone else wrote the Lease between our read and our write.
    LostRace,
}

/// The election state machine of one replica.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaderSettings,
    observed: Option<(Record, Instant)>,
    known_holder: Option<String>,
    last_renewal: Option<Instant>,
    leader: watch::Sender<bool>,
    metrics: Metrics,
}

impl LeaderElector {
    pub fn new(
        client: kube::Client,
        settings: LeaderSettings,
        leader: watch::Sender<bool>,
        metrics: Metrics,
    ) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
            known_holder: None,
            last_renewal: None,
            leader,
            metrics,
        }
    }

    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Runs the election until `shutdown` completes, then releases the Lease if held.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        info!(
            identity = %self.settings.identity,
            lease = %self.settings.lease_name,
            namespace = %self.settings.namespace,
            "Leader election started"
        );
        loop {
            self.attempt_once().await;
            let wait = self.next_wait();
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.release().await;
    }

    /// Runs one acquire-or-renew attempt and updates the published leadership.
    pub async fn attempt_once(&mut self) {
        // The renewal can take effect on the server as soon as the request leaves: count the
        // renew deadline from here, not from the response.
        let started = Instant::now();
        let budget = self.attempt_budget();
        let result = match tokio::time::timeout(budget, self.try_acquire_or_renew()).await {
            Ok(result) => result,
            Err(_) => Err(LeaderError::LeaseRequestTimedOut),
        };
        match result {
            Ok(Attempt::Holding) => {
                self.last_renewal = Some(started);
                self.set_leader(true);
            }
            Ok(Attempt::HeldBy(_)) => self.set_leader(false),
            Ok(Attempt::LostRace) => self.step_down_if_expired(),
            Err(error) => {
                warn!(
                    identity = %self.settings.identity,
                    error = %error_chain(&error),
                    "Lease acquire or renew failed"
                );
                self.step_down_if_expired();
            }
        }
    }

    /// Returns the time one attempt may take: what is left of the renew deadline for a leader,
    /// one renew deadline for a candidate.
    fn attempt_budget(&self) -> Duration {
        match self.last_renewal {
            Some(renewed) if self.is_leader() => self
                .settings
                .renew_deadline
                .saturating_sub(renewed.elapsed())
                .max(Duration::from_millis(100)),
            _ => self.settings.renew_deadline,
        }
    }

    fn step_down_if_expired(&mut self) {
        let expired = self
            .last_renewal
            .is_none_or(|renewed| renewed.elapsed() >= self.settings.renew_deadline);
        if self.is_leader() && expired {
            warn!(
                identity = %self.settings.identity,
                renew_deadline_secs = self.settings.renew_deadline.as_secs_f64(),
                "Lease not renewed within the renew deadline, stopped sending"
            );
            self.set_leader(false);
        }
    }

    fn next_wait(&self) -> Duration {
        let retry = self.settings.retry_period;
        if self.is_leader() {
            return retry;
        }
        let jitter = rand::rng().random_range(0.0..JITTER_FACTOR);
        retry.mul_f64(1.0 + jitter)
    }

    fn set_leader(&mut self, leader: bool) {
        let changed = self.leader.send_replace(leader) != leader;
        self.metrics.leader.set(i64::from(leader));
        if changed {
            self.metrics.leader_transitions.inc();
            if leader {
                info!(identity = %self.settings.identity, "Became leader, sending notifications");
            } else {
                info!(identity = %self.settings.identity, "No longer leader, not sending notifications");
            }
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, LeaderError> {
        let wall = Timestamp::now();
        let name = self.settings.lease_name.clone();
        let existing = self
            .api
            .get_opt(&name)
            .await
            .map_err(LeaderError::LeaseRequestFailed)?;
        // A candidate judges expiry from when it saw the record: after the GET, never before.
        let now = Instant::now();

        let Some(mut lease) = existing else {
            let lease = self.new_lease(wall);
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created, now);
                    Ok(Attempt::Holding)
                }
                Err(error) if is_conflict(&error) => Ok(Attempt::LostRace),
                Err(error) => Err(LeaderError::LeaseRequestFailed(error)),
            };
        };

        self.observe(&lease, now);
        let record = Record::from_lease(&lease);
        if let Some(holder) = self.held_by_other(&record, now) {
            return Ok(Attempt::HeldBy(holder));
        }

        lease.spec = Some(self.next_spec(&lease, wall));
        match self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await
        {
            Ok(replaced) => {
                self.observe(&replaced, now);
                Ok(Attempt::Holding)
            }
            Err(error) if is_conflict(&error) => Ok(Attempt::LostRace),
            Err(error) => Err(LeaderError::LeaseRequestFailed(error)),
        }
    }

    /// Records the Lease as seen now, logging a change of holder.
    fn observe(&mut self, lease: &Lease, now: Instant) {
        let record = Record::from_lease(lease);
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|(seen, _)| *seen != record);
        if changed {
            self.observed = Some((record.clone(), now));
        }
        let holder = Some(record.holder.clone()).filter(|h| !h.is_empty());
        if holder != self.known_holder {
            info!(
                identity = %self.settings.identity,
                previous = self.known_holder.as_deref().unwrap_or("none"),
                current = holder.as_deref().unwrap_or("none"),
                "Leader changed"
            );
            self.known_holder = holder;
        }
    }

    fn held_by_other(&self, record: &Record, now: Instant) -> Option<String> {
        if record.holder.is_empty() || record.holder == self.settings.identity {
            return None;
        }
        let (_, observed_at) = self.observed.as_ref()?;
        let duration = Duration::from_secs(u64::try_from(record.duration_seconds).unwrap_or(0));
        (now < *observed_at + duration).then(|| record.holder.clone())
    }

    fn new_lease(&self, wall: Timestamp) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.settings.lease_name.clone()),
                namespace: Some(self.settings.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.settings.identity.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(MicroTime(wall)),
                renew_time: Some(MicroTime(wall)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    fn next_spec(&self, lease: &Lease, wall: Timestamp) -> LeaseSpec {
        let mut spec = lease.spec.clone().unwrap_or_default();
        let ours = spec.holder_identity.as_deref() == Some(self.settings.identity.as_str());
        if !ours {
            spec.acquire_time = Some(MicroTime(wall));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.holder_identity = Some(self.settings.identity.clone());
        }
        spec.lease_duration_seconds = Some(self.duration_seconds());
        spec.renew_time = Some(MicroTime(wall));
        spec
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.settings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// Gives the Lease up on shutdown so the other replica takes over without waiting for expiry.
    async fn release(&mut self) {
        if !self.is_leader() {
            return;
        }
        self.set_leader(false);
        let name = self.settings.lease_name.clone();
        let released = async {
            let mut lease = self.api.get(&name).await?;
            let mut spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
                return Ok(false);
            }
            spec.holder_identity = Some(String::new());
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            lease.spec = Some(spec);
            self.api
                .replace(&name, &PostParams::default(), &lease)
                .await?;
            Ok::<bool, kube::Error>(true)
        };
        match tokio::time::timeout(self.settings.renew_deadline, released).await {
            Ok(Ok(true)) => info!(identity = %self.settings.identity, "Lease released"),
            Ok(Ok(false)) => {
                debug!(identity = %self.settings.identity, "Lease already held by another replica")
            }
            Ok(Err(error)) => {
                warn!(identity = %self.settings.identity, error = %error, "Lease release failed, it expires by itself")
            }
            Err(_) => {
                warn!(identity = %self.settings.identity, "Lease release timed out, it expires by itself")
            }
        }
    }
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}
