//! Construction of the Kubernetes client from `[kubernetes] kubeconfig`.

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use super::SourceError;
use crate::config::KubernetesSection;

/// Builds the Kubernetes client: from `[kubernetes] kubeconfig` when set, else by kube's
/// inference (`KUBECONFIG`, `~/.kube/config`, then the in-cluster service account).
///
/// With the in-cluster service account, kube-client 5.0 re-reads the token file when the
/// cached token is less than ten seconds from its sixty-second reload time
/// (`kube-client/src/client/auth/mod.rs`, `TokenFile`), so a rotated projected token is picked
/// up without a restart.
pub async fn client(cfg: &KubernetesSection) -> Result<Client, SourceError> {
    let config = match &cfg.kubeconfig {
        Some(path) => {
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|source| SourceError::KubeconfigInvalid {
                    path: path.clone(),
                    source,
                })?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|source| SourceError::KubeconfigInvalid {
                    path: path.clone(),
                    source,
                })?
        }
        None => Config::infer().await.map_err(SourceError::ConfigNotFound)?,
    };
    Client::try_from(config).map_err(SourceError::ClientBuildFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn client_from_kubeconfig_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             clusters: [{name: k, cluster: {server: 'http://127.0.0.1:1'}}]\n\
             contexts: [{name: c, context: {cluster: k, user: u}}]\n\
             users: [{name: u, user: {token: abc}}]\n",
        )
        .unwrap();
        let mut cfg = crate::config::Config::default().kubernetes;
        cfg.kubeconfig = Some(path);
        let client = client(&cfg).await.expect("client built");
        assert_eq!(client.default_namespace(), "default");
    }

    #[tokio::test]
    async fn client_rejects_missing_kubeconfig() {
        let mut cfg = crate::config::Config::default().kubernetes;
        cfg.kubeconfig = Some("/nonexistent/kubeconfig".into());
        let Err(error) = client(&cfg).await else {
            panic!("a missing kubeconfig was accepted");
        };
        assert!(matches!(error, SourceError::KubeconfigInvalid { .. }));
        assert!(error.to_string().contains("/nonexistent/kubeconfig"));
    }
}
