//! Keystone v3 authentication: token requests, token caching and the Masakari endpoint.
//!
//! [`KeystoneClient`] caches one token and renews it when less than [`MIN_TOKEN_LIFE`] remains
//! or after Masakari returns 401. A `tokio::sync::Mutex` around the token state makes
//! concurrent callers share one token request.

mod catalog;
mod discovery;
mod http;
mod request;

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{debug, info, warn};

pub use catalog::{CatalogEndpoint, CatalogService, SERVICE_TYPE, select_endpoint};
pub use http::build_http_client;

use crate::config::{ApiSection, AuthConfig, AuthType};
use crate::metrics::Metrics;
use crate::secret::Secret;

/// A token is renewed when less than this much of its life remains (keystoneauth's
/// `MIN_TOKEN_LIFE_SECONDS`).
pub const MIN_TOKEN_LIFE: Duration = Duration::from_secs(120);

/// Keystone failures.
///
/// [`KeystoneError::is_retryable`] decides which are worth retrying. Server errors, timeouts
/// and connection failures are retryable, but rejected credentials and configuration errors
/// are not.
#[derive(Debug, thiserror::Error)]
pub enum KeystoneError {
    #[error("invalid [api] {option}: {problem}")]
    InvalidConfig {
        option: &'static str,
        problem: &'static str,
    },
    #[error("failed to read TLS file {path}")]
    TlsFileUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid PEM data in TLS file {path}")]
    TlsFileInvalid {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("failed to build the HTTP client")]
    ClientBuildFailed(#[source] reqwest::Error),
    #[error(
        "Keystone version discovery at {auth_url} failed and its path does not start with /v3; \
         set [api] auth_url to the Keystone v3 URL"
    )]
    DiscoveryFailed { auth_url: String },
    #[error(
        "Keystone rejected the credentials (401) at {url}; check the [api] user, password or \
         application credential"
    )]
    InvalidCredentials { url: String },
    #[error(
        "Keystone rejected the token request to {url} with status {status}; check the [api] auth options"
    )]
    TokenRequestRejected { url: String, status: u16 },
    /// A 5xx reply to a token or discovery request.
    #[error("Keystone returned status {status} for {url}")]
    TokenRequestFailed { url: String, status: u16 },
    #[error("request to {url} timed out after {timeout:?}")]
    TimedOut { url: String, timeout: Duration },
    #[error("request to {url} failed")]
    ConnectionFailed {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("invalid token response from {url}: {problem}")]
    InvalidResponse { url: String, problem: &'static str },
    #[error(
        "{interface} endpoint for {service_type} service in region {region:?} not found in the \
         token catalog; check [api] region and api_interface, or set [api] endpoint_override"
    )]
    EndpointNotFound {
        service_type: &'static str,
        interface: &'static str,
        region: String,
    },
}

impl KeystoneError {
    /// Returns whether the same request may succeed later without a configuration change.
    pub fn is_retryable(&self) -> bool {
        match self {
            KeystoneError::TokenRequestFailed { .. }
            | KeystoneError::TimedOut { .. }
            | KeystoneError::ConnectionFailed { .. }
            | KeystoneError::InvalidResponse { .. } => true,
            // Keystone replied, but with no v3 API: asking again gives the same reply.
            KeystoneError::DiscoveryFailed { .. }
            | KeystoneError::InvalidConfig { .. }
            | KeystoneError::TlsFileUnreadable { .. }
            | KeystoneError::TlsFileInvalid { .. }
            | KeystoneError::ClientBuildFailed(_)
            | KeystoneError::InvalidCredentials { .. }
            | KeystoneError::TokenRequestRejected { .. }
            | KeystoneError::EndpointNotFound { .. } => false,
        }
    }

    /// Maps a failed `reqwest` send to a timeout or connection error.
    pub(crate) fn from_send(url: &str, timeout: Duration, error: reqwest::Error) -> Self {
        if error.is_timeout() {
            KeystoneError::TimedOut {
                url: url.to_owned(),
                timeout,
            }
        } else {
            KeystoneError::ConnectionFailed {
                url: url.to_owned(),
                source: error,
            }
        }
    }
}

/// A token and the Masakari endpoint to use it with.
#[derive(Debug, Clone)]
pub struct AuthSession {
    pub token: Secret,
    /// Masakari endpoint URL, from the catalog or `[api] endpoint_override`.
    pub endpoint: String,
    /// Counts token requests, so a caller holding a rejected token can tell whether another
    /// caller already replaced it.
    generation: u64,
}

/// Keystone client with a cached token.
pub struct KeystoneClient {
    http: reqwest::Client,
    auth: AuthConfig,
    interface: &'static str,
    region: String,
    endpoint_override: Option<String>,
    timeout: Duration,
    metrics: Metrics,
    state: Mutex<TokenState>,
}

#[derive(Debug, Default)]
struct TokenState {
    v3_root: Option<String>,
    current: Option<CachedToken>,
    generation: u64,
}

#[derive(Debug)]
struct CachedToken {
    session: AuthSession,
    /// `expires_at` converted to the tokio clock when the token arrived.
    expires: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: Timestamp,
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

impl KeystoneClient {
    /// Creates the client; checks the credentials' shape now so a configuration error shows
    /// at start-up.
    pub fn new(
        api: &ApiSection,
        http: reqwest::Client,
        metrics: Metrics,
    ) -> Result<Self, KeystoneError> {
        if api.auth.auth_url.trim().is_empty() {
            return Err(KeystoneError::InvalidConfig {
                option: "auth_url",
                problem: "is required",
            });
        }
        request::token_request_body(&api.auth)?;
        Ok(KeystoneClient {
            http,
            auth: api.auth.clone(),
            interface: api.api_interface.as_str(),
            region: api.region.clone(),
            endpoint_override: api.endpoint_override.clone().filter(|url| !url.is_empty()),
            timeout: api.timeout,
            metrics,
            state: Mutex::new(TokenState::default()),
        })
    }

    /// Returns the cached session, requesting a new token when none is cached or the cached one
    /// has less than [`MIN_TOKEN_LIFE`] left.
    pub async fn session(&self) -> Result<AuthSession, KeystoneError> {
        let mut state = self.state.lock().await;
        if let Some(cached) = state.current.as_ref().filter(|c| c.is_fresh()) {
            return Ok(cached.session.clone());
        }
        self.authenticate(&mut state).await
    }

    /// Replaces a token the service rejected with 401. When another caller already replaced
    /// it, returns that newer session without a new request.
    pub async fn reauthenticate(
        &self,
        rejected: &AuthSession,
    ) -> Result<AuthSession, KeystoneError> {
        let mut state = self.state.lock().await;
        if let Some(cached) = state.current.as_ref()
            && cached.session.generation != rejected.generation
            && cached.is_fresh()
        {
            return Ok(cached.session.clone());
        }
        state.current = None;
        self.authenticate(&mut state).await
    }

    async fn authenticate(&self, state: &mut TokenState) -> Result<AuthSession, KeystoneError> {
        let result = self.request_token(state).await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(error) if error.is_retryable() => "failed",
            Err(_) => "rejected",
        };
        self.metrics
            .keystone_authentications
            .get_or_create(&crate::metrics::OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();

        let (token, expires_at, catalog) = result?;
        let endpoint = self.endpoint(&catalog)?;
        let remaining = expires_at.duration_since(Timestamp::now());
        let remaining = Duration::try_from(remaining).unwrap_or(Duration::ZERO);
        state.generation += 1;
        let session = AuthSession {
            token,
            endpoint,
            generation: state.generation,
        };
        info!(
            expires_at = %expires_at,
            endpoint = %session.endpoint,
            "Keystone token issued"
        );
        if remaining < MIN_TOKEN_LIFE {
            warn!(expires_at = %expires_at, "Keystone token expires within two minutes of issue");
        }
        state.current = Some(CachedToken {
            session: session.clone(),
            expires: Instant::now() + remaining,
        });
        Ok(session)
    }

    async fn request_token(
        &self,
        state: &mut TokenState,
    ) -> Result<(Secret, Timestamp, Vec<CatalogService>), KeystoneError> {
        let v3_root = match &state.v3_root {
            Some(root) => root.clone(),
            None => {
                let root = self.v3_root().await?;
                state.v3_root = Some(root.clone());
                root
            }
        };
        let url = request::token_url(&v3_root);
        let body = request::token_request_body(&self.auth)?;
        debug!(url = %url, "Requesting Keystone token");

        let response = self
            .http
            .post(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|error| KeystoneError::from_send(&url, self.timeout, error))?;
        let status = response.status().as_u16();
        match status {
            200 | 201 => {}
            401 => return Err(KeystoneError::InvalidCredentials { url }),
            400..=499 => return Err(KeystoneError::TokenRequestRejected { url, status }),
            _ => return Err(KeystoneError::TokenRequestFailed { url, status }),
        }

        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
            .map(Secret::new)
            .ok_or_else(|| KeystoneError::InvalidResponse {
                url: url.clone(),
                problem: "missing X-Subject-Token header",
            })?;
        let body: TokenResponse = response.json().await.map_err(|error| {
            if error.is_timeout() {
                KeystoneError::from_send(&url, self.timeout, error)
            } else {
                KeystoneError::InvalidResponse {
                    url: url.clone(),
                    problem: "body is not a token with expires_at",
                }
            }
        })?;
        Ok((token, body.token.expires_at, body.token.catalog))
    }

    /// Finds the v3 root: the explicit plugins derive it from `auth_url`; the generic
    /// `password` plugin discovers it unless `auth_url` ends in `/v3`.
    async fn v3_root(&self) -> Result<String, KeystoneError> {
        let auth_url = self.auth.auth_url.trim();
        if self.auth.auth_type != AuthType::Password {
            return Ok(request::explicit_v3_root(auth_url));
        }
        if discovery::names_v3(auth_url) {
            return Ok(auth_url.trim_end_matches('/').to_owned());
        }
        let discovered = self.discover(auth_url).await;
        if let Ok(Some(root)) = discovered {
            return Ok(root);
        }
        if let Some(root) = discovery::v3_root_from_path(auth_url) {
            return Ok(root);
        }
        match discovered {
            // Keystone was unreachable or failing: a later try may succeed.
            Err(error) => Err(error),
            Ok(_) => Err(KeystoneError::DiscoveryFailed {
                auth_url: auth_url.to_owned(),
            }),
        }
    }

    /// Reads the discovery document at `auth_url`. Returns an error when Keystone timed out,
    /// refused the connection or returned 5xx, and `None` when its reply names no v3 API.
    async fn discover(&self, auth_url: &str) -> Result<Option<String>, KeystoneError> {
        let response = self
            .http
            .get(auth_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                let error = KeystoneError::from_send(auth_url, self.timeout, error);
                warn!(url = %auth_url, error = %error, "Keystone version discovery failed");
                return Err(error);
            }
        };
        // Keystone returns 300 Multiple Choices for its root URL.
        let status = response.status().as_u16();
        if status >= 500 {
            warn!(url = %auth_url, status, "Keystone version discovery failed");
            return Err(KeystoneError::TokenRequestFailed {
                url: auth_url.to_owned(),
                status,
            });
        }
        if !(200..=300).contains(&status) {
            warn!(url = %auth_url, status, "Keystone version discovery failed");
            return Ok(None);
        }
        let Ok(document) = response.json::<serde_json::Value>().await else {
            warn!(url = %auth_url, "Keystone discovery document is not JSON");
            return Ok(None);
        };
        let link = discovery::v3_link(&document);
        match &link {
            Some(link) => debug!(url = %auth_url, v3 = %link, "Keystone version discovered"),
            None => warn!(url = %auth_url, "Keystone discovery document lists no v3 API"),
        }
        Ok(link.map(|link| link.trim_end_matches('/').to_owned()))
    }

    fn endpoint(&self, catalog: &[CatalogService]) -> Result<String, KeystoneError> {
        if let Some(url) = &self.endpoint_override {
            return Ok(url.clone());
        }
        select_endpoint(catalog, self.interface, &self.region).ok_or_else(|| {
            KeystoneError::EndpointNotFound {
                service_type: SERVICE_TYPE,
                interface: self.interface,
                region: self.region.clone(),
            }
        })
    }
}

impl std::fmt::Debug for KeystoneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `auth` is left out: its Secret fields are redacted, but the user names are not
        // needed to tell clients apart.
        f.debug_struct("KeystoneClient")
            .field("auth_url", &self.auth.auth_url)
            .field("auth_type", &self.auth.auth_type)
            .field("interface", &self.interface)
            .field("region", &self.region)
            .field("endpoint_override", &self.endpoint_override)
            .finish_non_exhaustive()
    }
}

impl CachedToken {
    fn is_fresh(&self) -> bool {
        self.expires.saturating_duration_since(Instant::now()) >= MIN_TOKEN_LIFE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(lifetime: Duration) -> CachedToken {
        CachedToken {
            session: AuthSession {
                token: Secret::new("tok-secret"),
                endpoint: "http://masakari/v1".into(),
                generation: 1,
            },
            expires: Instant::now() + lifetime,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn token_stale_two_minutes_before_expiry() {
        let token = cached(Duration::from_secs(300));
        assert!(token.is_fresh());

        tokio::time::advance(Duration::from_secs(180)).await;
        assert!(token.is_fresh(), "exactly 120 s left is still fresh");

        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!token.is_fresh());
    }

    #[tokio::test(start_paused = true)]
    async fn expired_token_is_stale() {
        let token = cached(Duration::from_secs(10));
        assert!(!token.is_fresh());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(!token.is_fresh());
    }

    #[test]
    fn session_debug_hides_token() {
        let session = cached(Duration::ZERO).session;
        let debug = format!("{session:?}");
        assert!(!debug.contains("tok-secret"), "{debug}");
        assert!(debug.contains("Secret(***)"), "{debug}");
    }
}
