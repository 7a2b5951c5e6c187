//! The `[api]` TLS options against a TLS Keystone on 127.0.0.1 whose certificates come from a
//! test CA in `tests/fixtures/tls` (valid until 2126).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use masakari_hostmonitor::config::{ApiSection, AuthType, Config};
use masakari_hostmonitor::keystone::{KeystoneClient, KeystoneError, build_http_client};
use masakari_hostmonitor::metrics::Metrics;
use masakari_hostmonitor::secret::Secret;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// Starts a TLS server that replies to every request with a Keystone token, and returns its URL.
async fn start_keystone(require_client_certificate: bool) -> String {
    // Deprecated only for lacking post-quantum key exchange, which a loopback test server does
    // not need; ring is the provider reqwest and kube use here.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let config = if require_client_certificate {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(fixture("ca.pem")).unwrap() {
            roots.add(ca.unwrap()).unwrap();
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap()
    } else {
        builder
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap()
    };

    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A failed handshake is what some tests expect: drop the connection.
                if let Ok(stream) = acceptor.accept(tcp).await {
                    answer_with_token(stream).await;
                }
            });
        }
    });
    format!("https://127.0.0.1:{}/v3", address.port())
}

/// Reads one HTTP/1.1 request and writes a 201 token reply.
async fn answer_with_token(mut stream: impl AsyncReadExt + AsyncWriteExt + Unpin) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let Ok(read) = stream.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        request.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&request);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                break;
            }
        }
    }
    let expires_at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let body = format!(r#"{{"token": {{"expires_at": "{expires_at}", "catalog": []}}}}"#);
    let reply = format!(
        "HTTP/1.1 201 Created\r\nX-Subject-Token: tok-tls\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn api(auth_url: String) -> ApiSection {
    let mut api = Config::default().api;
    api.auth.auth_type = AuthType::V3Password;
    api.auth.auth_url = auth_url;
    api.auth.user_id = Some("u1".into());
    api.auth.password = Some(Secret::new("pw"));
    api.endpoint_override = Some("https://masakari.invalid/v1".into());
    api.timeout = Duration::from_secs(5);
    api
}

async fn request_token(api: &ApiSection) -> Result<String, KeystoneError> {
    let keystone = KeystoneClient::new(api, build_http_client(api)?, Metrics::unregistered())?;
    Ok(keystone.session().await?.token.expose().to_owned())
}

#[tokio::test]
async fn untrusted_server_is_rejected() {
    let url = start_keystone(false).await;
    let error = request_token(&api(url)).await.unwrap_err();
    assert!(
        matches!(error, KeystoneError::ConnectionFailed { .. }),
        "{error}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn cafile_trusts_server() {
    let url = start_keystone(false).await;
    let mut api = api(url);
    api.tls.cafile = Some(fixture("ca.pem"));
    assert_eq!(request_token(&api).await.unwrap(), "tok-tls");
}

#[tokio::test]
async fn insecure_skips_verification() {
    let url = start_keystone(false).await;
    let mut api = api(url);
    api.tls.insecure = true;
    assert_eq!(request_token(&api).await.unwrap(), "tok-tls");
}

#[tokio::test]
async fn client_certificate_from_cert_and_key_files() {
    let url = start_keystone(true).await;
    let mut api = api(url);
    api.tls.cafile = Some(fixture("ca.pem"));
    assert!(
        request_token(&api).await.is_err(),
        "the server requires a client certificate"
    );

    api.tls.certfile = Some(fixture("client.pem"));
    api.tls.keyfile = Some(fixture("client.key"));
    assert_eq!(request_token(&api).await.unwrap(), "tok-tls");
}

#[tokio::test]
async fn client_certificate_from_combined_file() {
    let url = start_keystone(true).await;
    let mut api = api(url);
    api.tls.cafile = Some(fixture("ca.pem"));
    api.tls.certfile = Some(fixture("client-combined.pem"));
    assert_eq!(request_token(&api).await.unwrap(), "tok-tls");
}

#[test]
fn certfile_without_key_is_invalid() {
    let mut api = api("https://127.0.0.1/v3".into());
    api.tls.certfile = Some(fixture("client.pem"));
    let error = build_http_client(&api).unwrap_err();
    assert!(
        matches!(error, KeystoneError::TlsFileInvalid { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("client.pem"), "{error}");
}
