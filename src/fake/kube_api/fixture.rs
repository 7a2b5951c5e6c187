//! A builder of realistic Node objects for tests, the simulator and the benchmark.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use jiff::Timestamp;
use serde_json::{Value, json};

/// A Node as a kubelet and the node lifecycle controller write it: addresses, capacity,
/// nodeInfo and four conditions. Starts Ready.
#[derive(Debug, Clone)]
pub struct NodeFixture {
    name: String,
    uid: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    ready_status: &'static str,
    ready_reason: &'static str,
    ready_message: &'static str,
    /// Reason of the three pressure conditions.
    pressure_unknown_reason: Option<&'static str>,
    transition_time: Timestamp,
    images: usize,
}

const START: &str = "2026-11-20T08:00:00Z";

impl NodeFixture {
    /// Starts a Ready Node with the usual kubelet labels.
    pub fn ready(name: &str) -> Self {
        let labels = [
            ("beta.kubernetes.io/arch", "amd64"),
            ("beta.kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
            ("kubernetes.io/hostname", name),
            ("kubernetes.io/os", "linux"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        NodeFixture {
            name: name.to_owned(),
            uid: None,
            labels,
            annotations: BTreeMap::new(),
            ready_status: "True",
            ready_reason: "KubeletReady",
            ready_message: "kubelet is posting ready status",
            pressure_unknown_reason: None,
            transition_time: START.parse().unwrap_or_default(),
            images: 0,
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn labels<'a>(mut self, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        for (key, value) in labels {
            self.labels.insert(key.to_owned(), value.to_owned());
        }
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets the uid; by default it is derived from the name.
    pub fn uid(mut self, uid: &str) -> Self {
        self.uid = Some(uid.to_owned());
        self
    }

    /// Ready `False`, as the kubelet reports a runtime or network fault.
    pub fn not_ready(mut self) -> Self {
        self.ready_status = "False";
        self.ready_reason = "KubeletNotReady";
        self.ready_message = "container runtime network not ready: NetworkReady=false";
        self.pressure_unknown_reason = None;
        self
    }

    /// Ready `Unknown`, as the node lifecycle controller sets it when the kubelet stops posting.
    pub fn unknown(mut self) -> Self {
        self.ready_status = "Unknown";
        self.ready_reason = "NodeStatusUnknown";
        self.ready_message = "Kubelet stopped posting node status.";
        self.pressure_unknown_reason = Some("NodeStatusUnknown");
        self
    }

    /// Ready `Unknown` with reason `NodeStatusNeverUpdated`: the kubelet never posted status.
    pub fn never_updated(mut self) -> Self {
        self.ready_status = "Unknown";
        self.ready_reason = "NodeStatusNeverUpdated";
        self.ready_message = "Kubelet never posted node status.";
        self.pressure_unknown_reason = Some("NodeStatusNeverUpdated");
        self
    }

    /// `lastTransitionTime` of the Ready condition (and the pressure conditions).
    pub fn transition_time(mut self, time: Timestamp) -> Self {
        self.transition_time = time;
        self
    }

    /// Adds `count` container images to `status.images` (about 300 bytes each), to build
    /// Nodes of realistic size.
    pub fn with_images(mut self, count: usize) -> Self {
        self.images = count;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn to_json(&self) -> Value {
        let time = self.transition_time.to_string();
        let created = START;
        let uid = self.uid.clone().unwrap_or_else(|| uid_for(&self.name));
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "uid": uid,
                "creationTimestamp": created,
                "labels": self.labels,
                "annotations": self.all_annotations(),
            },
            "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": "192.0.2.10"},
                    {"type": "Hostname", "address": self.name},
                ],
                "capacity": capacity("64", "527958140Ki"),
                "allocatable": capacity("63", "525758140Ki"),
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": uid_for(&format!("{}-boot", self.name)),
                    "containerRuntimeVersion": "containerd://1.7.27",
                    "kernelVersion": "6.8.0-60-generic",
                    "kubeProxyVersion": "",
                    "kubeletVersion": "v1.33.2",
                    "machineID": "0f3b8d2c6a5e4e7fb0c1d2e3f4a5b6c7",
                    "operatingSystem": "linux",
                    "osImage": "Ubuntu 24.04.2 LTS",
                    "systemUUID": uid_for(&format!("{}-system", self.name)),
                },
                "conditions": self.conditions(&time),
                "images": self.images(),
            },
        })
    }

    fn all_annotations(&self) -> BTreeMap<String, String> {
        let mut annotations: BTreeMap<String, String> = [
            ("node.alpha.kubernetes.io/ttl", "0"),
            (
                "volumes.kubernetes.io/controller-managed-attach-detach",
                "true",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        annotations.extend(self.annotations.clone());
        annotations
    }

    fn conditions(&self, time: &str) -> Value {
        let pressure = |kind: &str, reason: &str, message: &str| match self.pressure_unknown_reason
        {
            Some(unknown) => json!({
                "type": kind, "status": "Unknown", "lastHeartbeatTime": time,
                "lastTransitionTime": time, "reason": unknown,
                "message": "Kubelet stopped posting node status.",
            }),
            None => json!({
                "type": kind, "status": "False", "lastHeartbeatTime": time,
                "lastTransitionTime": time, "reason": reason, "message": message,
            }),
        };
        json!([
            pressure("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            pressure("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            pressure("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            {
                "type": "Ready", "status": self.ready_status, "lastHeartbeatTime": time,
                "lastTransitionTime": time, "reason": self.ready_reason,
                "message": self.ready_message,
            },
        ])
    }

    fn images(&self) -> Value {
        (0..self.images)
            .map(|i| {
                json!({
                    "names": [
                        format!("registry.example.org/openstack/image-{i:05}@sha256:{:064x}", i),
                        format!("registry.example.org/openstack/image-{i:05}:2026.1"),
                    ],
                    "sizeBytes": 100_000_000 + i,
                })
            })
            .collect()
    }
}

fn capacity(cpu: &str, memory: &str) -> Value {
    json!({
        "cpu": cpu, "ephemeral-storage": "479151816Ki", "hugepages-1Gi": "0",
        "hugepages-2Mi": "0", "memory": memory, "pods": "110",
    })
}

/// Derives a stable uid-shaped string from `seed`.
fn uid_for(seed: &str) -> String {
    let mut hasher = DefaultHasher::new();
    seed.hash(&mut hasher);
    let a = hasher.finish();
    a.hash(&mut hasher);
    let b = hasher.finish();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_ready_node() {
        let node = NodeFixture::ready("compute-0")
            .label("role", "compute")
            .to_json();
        assert_eq!(node["metadata"]["name"], "compute-0");
        assert_eq!(node["metadata"]["labels"]["role"], "compute");
        let conditions = node["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 4);
        assert_eq!(conditions[3]["type"], "Ready");
        assert_eq!(conditions[3]["status"], "True");
    }

    #[test]
    fn fixture_states() {
        let cases = [
            (
                NodeFixture::ready("n").not_ready(),
                "False",
                "KubeletNotReady",
            ),
            (
                NodeFixture::ready("n").unknown(),
                "Unknown",
                "NodeStatusUnknown",
            ),
            (
                NodeFixture::ready("n").never_updated(),
                "Unknown",
                "NodeStatusNeverUpdated",
            ),
        ];
        for (fixture, status, reason) in cases {
            let node = fixture.to_json();
            assert_eq!(node["status"]["conditions"][3]["status"], status);
            assert_eq!(node["status"]["conditions"][3]["reason"], reason);
        }
    }

    #[test]
    fn fixture_uid_stable_per_name() {
        let a = NodeFixture::ready("a").to_json();
        let b = NodeFixture::ready("b").to_json();
        assert_eq!(
            a["metadata"]["uid"],
            NodeFixture::ready("a").to_json()["metadata"]["uid"]
        );
        assert_ne!(a["metadata"]["uid"], b["metadata"]["uid"]);
    }

    #[test]
    fn fixture_images_grow_size() {
        let small = serde_json::to_vec(&NodeFixture::ready("n").to_json())
            .unwrap()
            .len();
        let big = serde_json::to_vec(&NodeFixture::ready("n").with_images(500).to_json())
            .unwrap()
            .len();
        assert!(small < 4_000, "{small}");
        assert!(big > 100_000, "{big}");
    }
}
