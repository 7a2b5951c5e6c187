//! The HTTP client shared by Keystone and Masakari requests, with the `[api]` TLS options.

use std::path::Path;
use std::sync::Once;

use reqwest::{Certificate, Client, Identity};
use tracing::warn;

use super::KeystoneError;
use crate::config::ApiSection;

static INSECURE_WARNING: Once = Once::new();

/// Builds the client: the system trust store plus `cafile`, a client identity from
/// `certfile` (and `keyfile`), no verification when `insecure` is set, and `timeout` on every
/// request.
pub fn build_http_client(api: &ApiSection) -> Result<Client, KeystoneError> {
    let tls = &api.tls;
    let mut builder = Client::builder()
        .use_rustls_tls()
        .tls_built_in_native_certs(true)
        .timeout(api.timeout)
        // A followed 301/302/303 turns the POST into a GET whose 200 would read as delivered.
        .redirect(reqwest::redirect::Policy::none());

    if let Some(cafile) = non_empty(tls.cafile.as_deref()) {
        let pem = read(cafile)?;
        let certificates =
            Certificate::from_pem_bundle(&pem).map_err(|source| KeystoneError::TlsFileInvalid {
                path: cafile.to_owned(),
                source,
            })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }

    if let Some(certfile) = non_empty(tls.certfile.as_deref()) {
        // rustls reads the certificate chain and the key from one PEM buffer.
        let mut pem = read(certfile)?;
        if let Some(keyfile) = non_empty(tls.keyfile.as_deref()) {
            pem.push(b'\n');
            pem.extend(read(keyfile)?);
        }
        let identity =
            Identity::from_pem(&pem).map_err(|source| KeystoneError::TlsFileInvalid {
                path: certfile.to_owned(),
                source,
            })?;
        builder = builder.identity(identity);
    }

    if tls.insecure {
        INSECURE_WARNING.call_once(|| {
            warn!("TLS certificate verification is disabled ([api] insecure = true); use only for testing");
        });
        builder = builder.danger_accept_invalid_certs(true);
    }

    builder.build().map_err(KeystoneError::ClientBuildFailed)
}

fn non_empty(path: Option<&Path>) -> Option<&Path> {
    path.filter(|p| !p.as_os_str().is_empty())
}

fn read(path: &Path) -> Result<Vec<u8>, KeystoneError> {
    std::fs::read(path).map_err(|source| KeystoneError::TlsFileUnreadable {
        path: path.to_owned(),
        source,
    })
}
