//! The kustomize manifests under deploy/: least-privilege RBAC, the Deployment's safety settings,
//! and (when kubectl is installed) that the base and the documented overlay render.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

const ADMIN_PORT: u64 = 9797;
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
const SERVICE_ACCOUNT: &str = "masakari-hostmonitor";

/// One manifest object and the file it came from.
struct Object {
    file: String,
    value: Value,
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn parse_documents(text: &str, origin: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|error| panic!("{origin}: {error}"))
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read deploy/") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Reads every object under deploy/, except the Kustomization itself.
fn objects() -> Vec<Object> {
    let mut objects = Vec::new();
    for path in yaml_files(&deploy_dir()) {
        let text = std::fs::read_to_string(&path).expect("read manifest");
        let file = path.display().to_string();
        for value in parse_documents(&text, &file) {
            assert!(value["kind"].is_string(), "{file}: object without kind");
            if value["kind"] != "Kustomization" {
                objects.push(Object {
                    file: file.clone(),
                    value,
                });
            }
        }
    }
    objects
}

fn find<'a>(objects: &'a [Object], kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|object| object.value["kind"] == kind)
        .map(|object| &object.value)
        .collect()
}

fn only<'a>(objects: &'a [Object], kind: &str) -> &'a Value {
    let found = find(objects, kind);
    assert_eq!(found.len(), 1, "expected one {kind}");
    found[0]
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// (role kind, role namespace, API group, resource, verb) for every rule of every role.
fn granted(objects: &[Object]) -> BTreeSet<(String, String, String, String, String)> {
    let mut grants = BTreeSet::new();
    for role in find(objects, "ClusterRole")
        .into_iter()
        .chain(find(objects, "Role"))
    {
        let kind = role["kind"].as_str().unwrap_or_default();
        let namespace = role["metadata"]["namespace"].as_str().unwrap_or_default();
        for rule in role["rules"].as_array().expect("rules") {
            let keys: BTreeSet<&str> = rule
                .as_object()
                .expect("rule")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["apiGroups", "resources", "verbs"]),
                "rule with resourceNames, nonResourceURLs or missing fields"
            );
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        grants.insert((
                            kind.to_owned(),
                            namespace.to_owned(),
                            group.to_owned(),
                            resource.to_owned(),
                            verb.to_owned(),
                        ));
                    }
                }
            }
        }
    }
    grants
}

#[test]
fn rbac_grants_exactly_what_the_monitor_needs() {
    let objects = objects();
    let grant = |kind: &str, namespace: &str, group: &str, resource: &str, verb: &str| {
        (
            kind.to_owned(),
            namespace.to_owned(),
            group.to_owned(),
            resource.to_owned(),
            verb.to_owned(),
        )
    };
    let mut expected = BTreeSet::new();
    for verb in ["get", "list", "watch"] {
        expected.insert(grant("ClusterRole", "", "", "nodes", verb));
        expected.insert(grant(
            "Role",
            NODE_LEASE_NAMESPACE,
            "coordination.k8s.io",
            "leases",
            verb,
        ));
    }
    for verb in ["get", "create", "update"] {
        expected.insert(grant("Role", "", "coordination.k8s.io", "leases", verb));
    }
    assert_eq!(granted(&objects), expected);
}

#[test]
fn rbac_bindings_name_roles_and_service_account() {
    let objects = objects();
    let bindings: Vec<&Value> = find(&objects, "ClusterRoleBinding")
        .into_iter()
        .chain(find(&objects, "RoleBinding"))
        .collect();
    assert_eq!(bindings.len(), 3);

    for binding in bindings {
        let name = binding["metadata"]["name"].as_str().unwrap_or_default();
        let role_kind = binding["roleRef"]["kind"].as_str().expect("roleRef.kind");
        let role_name = binding["roleRef"]["name"].as_str().expect("roleRef.name");
        let namespace = &binding["metadata"]["namespace"];
        let role = find(&objects, role_kind)
            .into_iter()
            .find(|role| role["metadata"]["name"] == role_name)
            .unwrap_or_else(|| panic!("{name}: role {role_name} not in deploy/"));
        assert_eq!(&role["metadata"]["namespace"], namespace, "{name}");

        let subjects = binding["subjects"].as_array().expect("subjects");
        assert_eq!(subjects.len(), 1, "{name}");
        assert_eq!(subjects[0]["kind"], "ServiceAccount", "{name}");
        assert_eq!(subjects[0]["name"], SERVICE_ACCOUNT, "{name}");
    }
}

#[test]
fn manifests_namespace_agnostic_except_node_lease_rbac() {
    for object in objects() {
        let namespace = &object.value["metadata"]["namespace"];
        let name = object.value["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        if name == "masakari-hostmonitor-node-lease" {
            assert_eq!(namespace, NODE_LEASE_NAMESPACE, "{}", object.file);
        } else {
            assert!(namespace.is_null(), "{}: namespace set", object.file);
        }
    }
}

#[test]
fn kustomization_lists_every_manifest() {
    let text = std::fs::read_to_string(deploy_dir().join("kustomization.yaml")).expect("read");
    let kustomization = &parse_documents(&text, "kustomization.yaml")[0];
    let listed: BTreeSet<&str> = strings(&kustomization["resources"]).into_iter().collect();
    let present: BTreeSet<String> = yaml_files(&deploy_dir())
        .iter()
        .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
        .filter(|name| name != "kustomization.yaml")
        .collect();
    let present: BTreeSet<&str> = present.iter().map(String::as_str).collect();
    assert_eq!(listed, present);
}

fn container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1);
    &containers[0]
}

#[test]
fn deployment_runs_two_spread_replicas() {
    let objects = objects();
    let deployment = only(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);

    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], SERVICE_ACCOUNT);
    let preferred =
        &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
    assert_eq!(
        preferred[0]["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );

    let budget = only(&objects, "PodDisruptionBudget");
    assert_eq!(budget["spec"]["minAvailable"], 1);
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    assert_eq!(&budget["spec"]["selector"]["matchLabels"], selector);
    assert_eq!(
        &preferred[0]["podAffinityTerm"]["labelSelector"]["matchLabels"],
        selector
    );
}

#[test]
fn deployment_security_context_locked_down() {
    let objects = objects();
    let deployment = only(&objects, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(pod["runAsNonRoot"], true);
    assert_eq!(pod["seccompProfile"]["type"], "RuntimeDefault");

    let security = &container(deployment)["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(strings(&security["capabilities"]["drop"]), vec!["ALL"]);
    assert!(security["capabilities"]["add"].is_null());
    assert!(security["privileged"].is_null() || security["privileged"] == false);

    let resources = &container(deployment)["resources"];
    for key in ["requests", "limits"] {
        assert!(resources[key]["cpu"].is_string(), "{key}.cpu");
        assert!(resources[key]["memory"].is_string(), "{key}.memory");
    }
}

#[test]
fn deployment_probes_on_admin_port() {
    let objects = objects();
    let container = container(only(&objects, "Deployment"));
    let ports = container["ports"].as_array().expect("ports");
    let admin = ports
        .iter()
        .find(|port| port["name"] == "admin")
        .expect("admin port");
    assert_eq!(admin["containerPort"], ADMIN_PORT);

    let liveness = &container["livenessProbe"]["httpGet"];
    assert_eq!(liveness["path"], "/healthz");
    assert_eq!(liveness["port"], "admin");
    let readiness = &container["readinessProbe"]["httpGet"];
    assert_eq!(readiness["path"], "/readyz");
    assert_eq!(readiness["port"], "admin");

    let service = only(&objects, "Service");
    assert_eq!(service["spec"]["ports"][0]["port"], ADMIN_PORT);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "admin");
}

#[test]
fn deployment_config_env_and_shutdown() {
    let objects = objects();
    let deployment = only(&objects, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = container(deployment);

    assert_eq!(
        strings(&container["args"]),
        vec![
            "--config-file",
            "/etc/masakarimonitors/masakarimonitors.conf"
        ]
    );
    let env = container["env"].as_array().expect("env");
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let variable = env
            .iter()
            .find(|variable| variable["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(variable["valueFrom"]["fieldRef"]["fieldPath"], field);
    }

    // Above the default graceful_shutdown_timeout of 60 s.
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    assert!(grace > 60, "terminationGracePeriodSeconds {grace}");

    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/etc/masakarimonitors");
    assert_eq!(mount["readOnly"], true);
    let volume = &pod["volumes"][0];
    assert_eq!(volume["name"], mount["name"]);
    let secret_name = volume["secret"]["secretName"]
        .as_str()
        .expect("secret volume");

    let secret = only(&objects, "Secret");
    assert_eq!(secret["metadata"]["name"], secret_name);
    let config = secret["stringData"]["masakarimonitors.conf"]
        .as_str()
        .expect("masakarimonitors.conf");
    assert!(config.contains("[api]"));
    assert!(config.contains("password = <password>"));
    assert!(config.contains("listen_address = 0.0.0.0:9797"));
}

fn kubectl_available() -> bool {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        eprintln!("kubectl not on PATH: kustomize rendering skipped");
    }
    found
}

fn kustomize(dir: &Path) -> Vec<Value> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 output");
    parse_documents(&text, "kubectl kustomize")
}

#[test]
fn base_renders_with_kubectl() {
    if !kubectl_available() {
        return;
    }
    let rendered = kustomize(&deploy_dir());
    let kinds: BTreeSet<&str> = rendered
        .iter()
        .filter_map(|object| object["kind"].as_str())
        .collect();
    for kind in [
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "Role",
        "Secret",
    ] {
        assert!(kinds.contains(kind), "{kind} not rendered");
    }
}

/// Returns the fenced block that follows the line naming `file` in docs/operations.md.
fn documented_overlay_file(docs: &str, file: &str) -> String {
    let marker = format!("`overlay/{file}`");
    let after = docs
        .split_once(&marker)
        .unwrap_or_else(|| panic!("{marker} not in docs/operations.md"))
        .1;
    let block = after
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .unwrap_or_else(|| panic!("no yaml block after {marker}"))
        .0;
    block.to_owned()
}

#[test]
fn documented_overlay_keeps_node_lease_namespace() {
    if !kubectl_available() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/operations.md")).expect("read docs");
    // kustomize accepts only relative paths to a base, so the overlay lives in the repository.
    let overlay = tempfile::Builder::new()
        .prefix(".overlay-test-")
        .tempdir_in(root)
        .expect("overlay dir");
    for file in [
        "kustomization.yaml",
        "namespace.yaml",
        "node-lease-subject.yaml",
    ] {
        let mut text = documented_overlay_file(&docs, file);
        if file == "kustomization.yaml" {
            text = text.replace("../masakari-hostmonitor/deploy", "../deploy");
        }
        std::fs::write(overlay.path().join(file), text).expect("write overlay");
    }

    let rendered = kustomize(overlay.path());
    for object in &rendered {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let namespace = &object["metadata"]["namespace"];
        if kind == "ClusterRole" || kind == "ClusterRoleBinding" {
            assert!(namespace.is_null(), "{kind} {name}");
        } else if name == "masakari-hostmonitor-node-lease" {
            assert_eq!(namespace, NODE_LEASE_NAMESPACE, "{kind} {name}");
        } else {
            assert_eq!(namespace, "openstack", "{kind} {name}");
        }
        if kind.ends_with("Binding") {
            assert_eq!(
                object["subjects"][0]["namespace"], "openstack",
                "{kind} {name}"
            );
        }
    }
}
