//! Keystone client against a wiremock Keystone on 127.0.0.1, on the real clock (wiremock
//! serves real sockets, which a paused clock would race against the request timeout).

use std::sync::Arc;
use std::time::Duration;

use masakari_hostmonitor::config::{ApiSection, AuthType, Config, Interface};
use masakari_hostmonitor::keystone::{KeystoneClient, KeystoneError, build_http_client};
use masakari_hostmonitor::metrics::Metrics;
use masakari_hostmonitor::secret::Secret;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn api(auth_type: AuthType, auth_url: String) -> ApiSection {
    let mut api = Config::default().api;
    api.auth.auth_type = auth_type;
    api.auth.auth_url = auth_url;
    api.timeout = Duration::from_secs(5);
    api
}

fn password_api(auth_type: AuthType, auth_url: String) -> ApiSection {
    let mut api = api(auth_type, auth_url);
    api.auth.username = Some("masakari".into());
    api.auth.user_domain_name = Some("Default".into());
    api.auth.password = Some(Secret::new("pw-1"));
    api.auth.project_name = Some("service".into());
    api.auth.project_domain_name = Some("Default".into());
    api
}

fn client(api: &ApiSection) -> KeystoneClient {
    KeystoneClient::new(
        api,
        build_http_client(api).unwrap(),
        Metrics::unregistered(),
    )
    .unwrap()
}

fn catalog(masakari_url: &str) -> Value {
    json!([
        {"type": "identity", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "url": "http://keystone/v3"}]},
        {"type": "instance-ha", "endpoints": [
            {"interface": "internal", "region_id": "RegionOne", "url": "http://internal/v1"},
            {"interface": "public", "region_id": "RegionOne", "url": masakari_url}]}
    ])
}

fn token_reply(token: &str, lifetime: Duration) -> ResponseTemplate {
    let expires_at = jiff::Timestamp::now() + jiff::SignedDuration::try_from(lifetime).unwrap();
    ResponseTemplate::new(201)
        .insert_header("X-Subject-Token", token)
        .set_body_json(json!({"token": {
            "expires_at": expires_at.to_string(),
            "catalog": catalog("http://masakari/v1/p1")
        }}))
}

fn password_body() -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "masakari", "domain": {"name": "Default"}, "password": "pw-1"}}},
        "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}
    }})
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn v3password_sends_exact_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .and(header("content-type", "application/json"))
        .and(body_json(password_body()))
        .respond_with(token_reply("tok-1", HOUR))
        .expect(1)
        .mount(&server)
        .await;

    let keystone = client(&password_api(
        AuthType::V3Password,
        format!("{}/v3", server.uri()),
    ));
    let session = keystone.session().await.unwrap();

    assert_eq!(session.token.expose(), "tok-1");
    assert_eq!(session.endpoint, "http://masakari/v1/p1");
}

#[tokio::test]
async fn v3password_without_version_appends_v3() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/identity/v3/auth/tokens"))
        .and(body_json(password_body()))
        .respond_with(token_reply("tok-1", HOUR))
        .expect(1)
        .mount(&server)
        .await;

    let keystone = client(&password_api(
        AuthType::V3Password,
        format!("{}/identity/", server.uri()),
    ));
    assert_eq!(keystone.session().await.unwrap().token.expose(), "tok-1");
}

#[tokio::test]
async fn application_credential_sends_exact_body() {
    let server = MockServer::start().await;
    let expected = json!({"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": "ac-1", "secret": "ac-secret"}}}});
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .and(body_json(expected))
        .respond_with(token_reply("tok-1", HOUR))
        .expect(1)
        .mount(&server)
        .await;

    let mut api = api(AuthType::V3ApplicationCredential, server.uri());
    api.auth.application_credential_id = Some("ac-1".into());
    api.auth.application_credential_secret = Some(Secret::new("ac-secret"));
    // Scope options are ignored: Keystone rejects a scoped application credential request.
    api.auth.project_id = Some("p1".into());
    assert_eq!(
        client(&api).session().await.unwrap().token.expose(),
        "tok-1"
    );
}

#[tokio::test]
async fn generic_password_discovers_under_prefix() {
    let server = MockServer::start().await;
    let discovery = json!({"versions": {"values": [
        {"id": "v3.14", "status": "stable",
         "links": [{"rel": "self", "href": format!("{}/identity/v3/", server.uri())}]}
    ]}});
    Mock::given(method("GET"))
        .and(path("/identity"))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(300).set_body_json(discovery))
        .expect(1)
        .mount(&server)
        .await;
    let mut api = password_api(AuthType::Password, format!("{}/identity", server.uri()));
    api.auth.user_domain_name = None;
    api.auth.project_domain_name = None;
    api.auth.default_domain_id = Some("default".into());
    let expected = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "masakari", "domain": {"id": "default"}, "password": "pw-1"}}},
        "scope": {"project": {"name": "service", "domain": {"id": "default"}}}
    }});
    Mock::given(method("POST"))
        .and(path("/identity/v3/auth/tokens"))
        .and(body_json(expected))
        .respond_with(token_reply("tok-1", Duration::from_secs(60)))
        .expect(2)
        .mount(&server)
        .await;

    let keystone = client(&api);
    keystone.session().await.unwrap();
    // The short-lived token forces a second request; discovery is not repeated.
    keystone.session().await.unwrap();
}

#[tokio::test]
async fn generic_password_with_v3_skips_discovery() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/identity/v3/auth/tokens"))
        .and(body_json(password_body()))
        .respond_with(token_reply("tok-1", HOUR))
        .expect(1)
        .mount(&server)
        .await;

    let keystone = client(&password_api(
        AuthType::Password,
        format!("{}/identity/v3", server.uri()),
    ));
    keystone.session().await.unwrap();
}

#[tokio::test]
async fn failed_discovery_falls_back_on_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3.0"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3.0/auth/tokens"))
        .respond_with(token_reply("tok-1", HOUR))
        .expect(1)
        .mount(&server)
        .await;

    let keystone = client(&password_api(
        AuthType::Password,
        format!("{}/v3.0", server.uri()),
    ));
    keystone.session().await.unwrap();
}

#[tokio::test]
async fn failed_discovery_without_v3_path_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/identity"))
        .respond_with(ResponseTemplate::new(200).set_body_string("not json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(token_reply("tok-1", HOUR))
        .expect(0)
        .mount(&server)
        .await;

    let keystone = client(&password_api(
        AuthType::Password,
        format!("{}/identity", server.uri()),
    ));
    let error = keystone.session().await.unwrap_err();
    assert!(
        matches!(error, KeystoneError::DiscoveryFailed { .. }),
        "{error}"
    );
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("/identity"));
}

#[tokio::test]
async fn failing_discovery_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/identity"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(token_reply("tok-1", HOUR))
        .expect(0)
        .mount(&server)
        .await;

    let keystone = client(&password_api(
        AuthType::Password,
        format!("{}/identity", server.uri()),
    ));
    let error = keystone.session().await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("503"), "{error}");
}

#[tokio::test]
async fn token_reused_until_near_expiry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(token_reply("tok-1", Duration::from_secs(121 + 60)))
        .expect(1)
        .mount(&server)
        .await;

    let keystone = client(&password_api(AuthType::V3Password, server.uri()));
    for _ in 0..3 {
        assert_eq!(keystone.session().await.unwrap().token.expose(), "tok-1");
    }
}

#[tokio::test]
async fn token_near_expiry_is_renewed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(token_reply("tok-old", Duration::from_secs(100)))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(token_reply("tok-new", HOUR))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;

    let keystone = client(&password_api(AuthType::V3Password, server.uri()));
    assert_eq!(keystone.session().await.unwrap().token.expose(), "tok-old");
    assert_eq!(keystone.session().await.unwrap().token.expose(), "tok-new");
    assert_eq!(keystone.session().await.unwrap().token.expose(), "tok-new");
}

#[tokio::test]
async fn concurrent_callers_share_one_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(token_reply("tok-1", HOUR).set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&server)
        .await;

    let keystone = Arc::new(client(&password_api(AuthType::V3Password, server.uri())));
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let keystone = keystone.clone();
            tokio::spawn(async move {
                keystone
                    .session()
                    .await
                    .map(|s| s.token.expose().to_owned())
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), "tok-1");
    }
}

#[tokio::test]
async fn reauthenticate_replaces_rejected_token_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(token_reply("tok-1", HOUR))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(token_reply("tok-2", HOUR))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;

    let keystone = client(&password_api(AuthType::V3Password, server.uri()));
    let rejected = keystone.session().await.unwrap();
    let renewed = keystone.reauthenticate(&rejected).await.unwrap();
    assert_eq!(renewed.token.expose(), "tok-2");
    // A second caller holding the same rejected token gets the new one without a request.
    let again = keystone.reauthenticate(&rejected).await.unwrap();
    assert_eq!(again.token.expose(), "tok-2");
}

#[tokio::test]
async fn error_statuses_are_classified() {
    let cases = [
        (401, false, "rejected the credentials"),
        (403, false, "403"),
        (404, false, "404"),
        (503, true, "503"),
    ];
    for (status, retryable, text) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status))
            .expect(1)
            .mount(&server)
            .await;
        let keystone = client(&password_api(AuthType::V3Password, server.uri()));
        let error = keystone.session().await.unwrap_err();
        assert_eq!(error.is_retryable(), retryable, "status {status}: {error}");
        assert!(error.to_string().contains(text), "status {status}: {error}");
    }
}

#[tokio::test]
async fn timeout_and_connection_errors_are_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_reply("tok-1", HOUR).set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let mut api = password_api(AuthType::V3Password, server.uri());
    api.timeout = Duration::from_millis(200);
    let error = client(&api).session().await.unwrap_err();
    assert!(matches!(error, KeystoneError::TimedOut { .. }), "{error}");
    assert!(error.is_retryable());

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let api = password_api(AuthType::V3Password, format!("http://{closed}"));
    let error = client(&api).session().await.unwrap_err();
    assert!(
        matches!(error, KeystoneError::ConnectionFailed { .. }),
        "{error}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn missing_endpoint_names_type_interface_region() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_reply("tok-1", HOUR))
        .expect(1)
        .mount(&server)
        .await;
    let mut api = password_api(AuthType::V3Password, server.uri());
    api.api_interface = Interface::Admin;
    api.region = "RegionTwo".into();

    let error = client(&api).session().await.unwrap_err();
    let text = error.to_string();
    assert!(!error.is_retryable());
    assert!(text.contains("instance-ha"), "{text}");
    assert!(text.contains("admin"), "{text}");
    assert!(text.contains("RegionTwo"), "{text}");
}

#[tokio::test]
async fn endpoint_override_skips_catalog() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_reply("tok-1", HOUR))
        .expect(1)
        .mount(&server)
        .await;
    let mut api = password_api(AuthType::V3Password, server.uri());
    api.region = "Nowhere".into();
    api.endpoint_override = Some("http://override/v1".into());

    assert_eq!(
        client(&api).session().await.unwrap().endpoint,
        "http://override/v1"
    );
}

#[test]
fn invalid_configuration_fails_at_creation() {
    let api = api(AuthType::V3Password, "http://keystone/v3".into());
    let http = build_http_client(&api).unwrap();
    let error = KeystoneClient::new(&api, http.clone(), Metrics::unregistered()).unwrap_err();
    assert!(error.to_string().contains("password"), "{error}");

    let api = password_api(AuthType::V3Password, String::new());
    let error = KeystoneClient::new(&api, http, Metrics::unregistered()).unwrap_err();
    assert!(error.to_string().contains("auth_url"), "{error}");
}

#[test]
fn tls_files_are_checked() {
    let mut api = api(AuthType::V3Password, "http://keystone/v3".into());
    api.tls.cafile = Some("/nonexistent/ca.pem".into());
    let error = build_http_client(&api).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("ca.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    api.tls.cafile = Some(garbage);
    assert!(build_http_client(&api).is_err());

    api.tls.cafile = Some("".into());
    api.tls.insecure = true;
    assert!(build_http_client(&api).is_ok());
}
