//! masakari-hostmonitor: a Kubernetes-native host monitor for OpenStack Masakari.
//!
//! Data flows through the components in this order:
//!
//! 1. [`config`] reads `masakarimonitors.conf` (oslo.config INI) or TOML into one typed model.
//! 2. [`node_source`] watches Kubernetes Nodes into a compact cache and samples it once per tick.
//! 3. [`window`] keeps each host's last `monitoring_samples` readings.
//! 4. [`detector`] decides when a host is `Failed` (edge-triggered, with the start-up rule).
//! 5. [`breaker`] suspends evacuation while too many hosts are down at once.
//! 6. [`monitor`] is the tick loop that owns the three above and emits decisions.
//! 7. [`delivery`] queues notifications and retries them without ever blocking a tick.
//! 8. [`masakari`] posts COMPUTE_HOST notifications, authenticated by [`keystone`].
//!
//! Around them: [`leader`] election on a Lease, the [`admin`] HTTP server for health and
//! [`metrics`], [`shutdown`] handling, [`telemetry`] (log setup), and [`simulate`], which runs
//! all of it against the in-process fakes in [`fake`].

pub mod admin;
pub mod breaker;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod detector;
pub mod fake;
pub mod keystone;
pub mod label_selector;
pub mod leader;
pub mod masakari;
pub mod metrics;
pub mod monitor;
pub mod node_source;
pub mod secret;
pub mod shutdown;
pub mod simulate;
pub mod telemetry;
pub mod window;
