//! In-process fakes of the Kubernetes API, Keystone and Masakari, for tests, the simulator and the benchmark.

pub mod kube_api;
pub mod openstack;
pub mod scripted;
