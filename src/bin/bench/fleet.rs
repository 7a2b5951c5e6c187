//! The benchmark's cluster: Nodes of a realistic size, and the changes applied to them.

use masakari_hostmonitor::fake::kube_api::NodeFixture;
use serde_json::Value;

/// Label every benchmark Node carries; the monitor selects on it, as production configurations
/// select compute Nodes.
pub const COMPUTE_LABEL: (&str, &str) = ("openstack-compute-node", "enabled");

/// Returns the `[kubernetes] monitoring_node_labels` value matching [`COMPUTE_LABEL`].
pub fn label_selector() -> String {
    format!("{}={}", COMPUTE_LABEL.0, COMPUTE_LABEL.1)
}

/// Name of the Node at `index`.
pub fn node_name(index: usize) -> String {
    format!("compute-{index:05}")
}

/// Builds `count` Ready Nodes of about `node_bytes` bytes of JSON each, padded with container
/// images as a kubelet reports them in `status.images`.
pub fn build(count: usize, node_bytes: usize) -> Vec<Value> {
    let images = images_for(node_bytes);
    (0..count)
        .map(|index| {
            NodeFixture::ready(&node_name(index))
                .label(COMPUTE_LABEL.0, COMPUTE_LABEL.1)
                .with_images(images)
                .to_json()
        })
        .collect()
}

/// Returns the image count that brings one Node to about `node_bytes` bytes.
pub fn images_for(node_bytes: usize) -> usize {
    let size = |images: usize| {
        let node = NodeFixture::ready(&node_name(0))
            .label(COMPUTE_LABEL.0, COMPUTE_LABEL.1)
            .with_images(images)
            .to_json();
        serde_json::to_vec(&node).map_or(0, |bytes| bytes.len())
    };
    let base = size(0);
    let per_image = size(10).saturating_sub(base).div_ceil(10).max(1);
    node_bytes.saturating_sub(base) / per_image
}

/// Sets `lastHeartbeatTime` of every condition to `now`, as a kubelet status update that changes
/// no status does.
pub fn touch_heartbeat(node: &mut Value, now: &str) {
    let Some(conditions) = node
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for condition in conditions {
        if let Some(fields) = condition.as_object_mut() {
            fields.insert(
                "lastHeartbeatTime".to_owned(),
                Value::String(now.to_owned()),
            );
        }
    }
}

/// Returns the serialised size of a Node in bytes.
pub fn json_size(node: &Value) -> usize {
    serde_json::to_vec(node).map_or(0, |bytes| bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_reaches_requested_size() {
        let nodes = build(3, 15_000);
        assert_eq!(nodes.len(), 3);
        for node in &nodes {
            let size = json_size(node);
            assert!((14_000..=15_000).contains(&size), "node size {size}");
        }
        assert_eq!(nodes[2]["metadata"]["name"], "compute-00002");
        assert_eq!(nodes[0]["metadata"]["labels"][COMPUTE_LABEL.0], "enabled");
    }

    #[test]
    fn touch_heartbeat_changes_only_heartbeats() {
        let mut node = build(1, 0).remove(0);
        let before = node.clone();
        touch_heartbeat(&mut node, "2026-12-01T00:00:00Z");
        let conditions = node["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 4);
        for (after, before) in conditions
            .iter()
            .zip(before["status"]["conditions"].as_array().unwrap())
        {
            assert_eq!(after["lastHeartbeatTime"], "2026-12-01T00:00:00Z");
            assert_eq!(after["lastTransitionTime"], before["lastTransitionTime"]);
            assert_eq!(after["status"], before["status"]);
        }
    }
}
