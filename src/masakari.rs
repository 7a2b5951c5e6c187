//! Masakari client: posts COMPUTE_HOST notifications and classifies each response.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use reqwest::header::{ACCEPT, HeaderValue};
use serde::Serialize;
use serde_json::Value;
use tracing::{debug, warn};

use crate::config::ApiSection;
use crate::delivery::{Notification, Notifier, Outcome};
use crate::keystone::{AuthSession, KeystoneClient, KeystoneError, build_http_client};
use crate::metrics::Metrics;
use crate::telemetry::error_chain;

/// Longest Masakari error message kept in an outcome; longer ones are cut.
const MAX_MESSAGE_CHARS: usize = 500;

/// Masakari request failures that produced no HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum MasakariError {
    #[error("notification request to {url} timed out after {timeout:?}")]
    TimedOut { url: String, timeout: Duration },
    #[error("notification request to {url} failed")]
    RequestFailed {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

/// The `notification` object of `POST /notifications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationBody {
    #[serde(rename = "type")]
    pub notification_type: &'static str,
    pub hostname: String,
    /// `YYYY-MM-DDTHH:MM:SS.ffffff` in UTC without a zone, as the Python monitor sends it.
    pub generated_time: String,
    pub payload: Payload,
}

/// The COMPUTE_HOST payload: the host stopped and is safe to evacuate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payload {
    pub event: &'static str,
    pub cluster_status: &'static str,
    pub host_status: &'static str,
}

#[derive(Serialize)]
struct Envelope<'a> {
    notification: &'a NotificationBody,
}

impl NotificationBody {
    pub fn new(notification: &Notification) -> Self {
        NotificationBody {
            notification_type: "COMPUTE_HOST",
            hostname: notification.host.clone(),
            generated_time: format_generated_time(notification.generated_time),
            payload: Payload {
                event: "STOPPED",
                cluster_status: "OFFLINE",
                host_status: "NORMAL",
            },
        }
    }
}

/// Formats a timestamp as `YYYY-MM-DDTHH:MM:SS.ffffff` in UTC.
pub fn format_generated_time(time: Timestamp) -> String {
    let utc = time.to_zoned(TimeZone::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        utc.year(),
        utc.month(),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.subsec_nanosecond() / 1_000
    )
}

/// Result of one POST, before classification.
enum Reply {
    Status {
        status: u16,
        body: String,
    },
    Failed(MasakariError),
    /// No token could be obtained.
    NoToken(KeystoneError),
}

/// Posts notifications with a Keystone token.
#[derive(Debug, Clone)]
pub struct MasakariClient {
    http: reqwest::Client,
    keystone: Arc<KeystoneClient>,
    timeout: Duration,
}

impl MasakariClient {
    pub fn new(http: reqwest::Client, keystone: Arc<KeystoneClient>, timeout: Duration) -> Self {
        MasakariClient {
            http,
            keystone,
            timeout,
        }
    }

    /// Builds the HTTP client and the Keystone client from `[api]`.
    pub fn from_config(api: &ApiSection, metrics: Metrics) -> Result<Self, KeystoneError> {
        let http = build_http_client(api)?;
        let keystone = KeystoneClient::new(api, http.clone(), metrics)?;
        Ok(Self::new(http, Arc::new(keystone), api.timeout))
    }

    /// Sends one notification. A 401 leads to one new token and one more try.
    pub async fn notify(&self, notification: &Notification) -> Outcome {
        let body = NotificationBody::new(notification);
        let session = match self.keystone.session().await {
            Ok(session) => session,
            Err(error) => return classify(Reply::NoToken(error)),
        };

        let reply = self.post(&session, &body).await;
        if !matches!(reply, Reply::Status { status: 401, .. }) {
            return classify(reply);
        }

        warn!(host = %body.hostname, "Masakari rejected the token (401), authenticating again");
        let session = match self.keystone.reauthenticate(&session).await {
            Ok(session) => session,
            Err(error) => return classify(Reply::NoToken(error)),
        };
        classify(self.post(&session, &body).await)
    }

    async fn post(&self, session: &AuthSession, body: &NotificationBody) -> Reply {
        let url = format!("{}/notifications", session.endpoint.trim_end_matches('/'));
        let Ok(mut token) = HeaderValue::from_str(session.token.expose()) else {
            return Reply::NoToken(KeystoneError::InvalidResponse {
                url: url.clone(),
                problem: "token is not a valid header value",
            });
        };
        token.set_sensitive(true);
        debug!(host = %body.hostname, url = %url, "Sending notification");

        let sent = self
            .http
            .post(&url)
            .header("X-Auth-Token", token)
            .header(ACCEPT, "application/json")
            .json(&Envelope { notification: body })
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Reply::Failed(self.send_error(url, error)),
        };
        let status = response.status().as_u16();
        match response.text().await {
            Ok(body) => Reply::Status { status, body },
            Err(error) => Reply::Failed(self.send_error(url, error)),
        }
    }

    fn send_error(&self, url: String, error: reqwest::Error) -> MasakariError {
        if error.is_timeout() {
            MasakariError::TimedOut {
                url,
                timeout: self.timeout,
            }
        } else {
            MasakariError::RequestFailed { url, source: error }
        }
    }
}

impl Notifier for MasakariClient {
    fn send<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Outcome> {
        Box::pin(self.notify(notification))
    }
}

/// Decides what a reply means for the notification. The delivery queue acts on the result and
/// nothing else.
fn classify(reply: Reply) -> Outcome {
    match reply {
        Reply::Status { status: 202, body } => Outcome::Delivered {
            notification_uuid: notification_uuid(&body),
        },
        // Masakari returns 202, but any success status means the notification was accepted.
        Reply::Status {
            status: 200..=299,
            body,
        } => Outcome::Delivered {
            notification_uuid: notification_uuid(&body),
        },
        Reply::Status {
            status: status @ 300..=399,
            body,
        } => Outcome::ConfigError {
            reason: format!(
                "Masakari endpoint answered {status} (redirect, not followed): {}; set the \
                 catalog endpoint or [api] endpoint_override to the final URL",
                error_message(&body)
            ),
        },
        Reply::Status { status: 409, body } => Outcome::AlreadyKnown {
            message: error_message(&body),
        },
        Reply::Status { status: 400, body } => Outcome::Rejected {
            message: error_message(&body),
        },
        Reply::Status { status: 401, body } => Outcome::ConfigError {
            reason: format!(
                "Masakari rejected a new token (401): {}; check the Keystone user and the \
                 service's keystone_authtoken settings",
                error_message(&body)
            ),
        },
        Reply::Status {
            status: status @ (403 | 404),
            body,
        } => Outcome::ConfigError {
            reason: format!(
                "Masakari returned {status}: {}; check the user's role (admin is required by \
                 default policy) and the endpoint URL",
                error_message(&body)
            ),
        },
        Reply::Status { status, body } => Outcome::Retryable {
            reason: format!("Masakari returned {status}: {}", error_message(&body)),
        },
        Reply::Failed(error) => Outcome::Retryable {
            reason: error_chain(&error),
        },
        Reply::NoToken(error) if error.is_retryable() => Outcome::Retryable {
            reason: error_chain(&error),
        },
        Reply::NoToken(error) => Outcome::ConfigError {
            reason: error_chain(&error),
        },
    }
}

fn notification_uuid(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    value
        .get("notification")?
        .get("notification_uuid")?
        .as_str()
        .map(str::to_owned)
}

/// Reads `message` from a Masakari fault body `{"<faultName>": {"code": ..., "message": ...}}`;
/// falls back on the start of the raw body.
fn error_message(body: &str) -> String {
    let message = serde_json::from_str::<Value>(body).ok().and_then(|value| {
        value
            .as_object()?
            .values()
            .find_map(|fault| fault.get("message")?.as_str().map(str::to_owned))
    });
    let message = message.unwrap_or_else(|| body.trim().to_owned());
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, body: &str) -> Outcome {
        classify(Reply::Status {
            status,
            body: body.to_owned(),
        })
    }

    #[test]
    fn generated_time_format() {
        let time: Timestamp = "2026-08-01T12:00:03.1234567Z".parse().unwrap();
        assert_eq!(format_generated_time(time), "2026-08-01T12:00:03.123456");
        let time: Timestamp = "2026-08-01T12:00:03Z".parse().unwrap();
        assert_eq!(format_generated_time(time), "2026-08-01T12:00:03.000000");
    }

    #[test]
    fn body_shape() {
        let notification = Notification {
            host: "compute-0".into(),
            generated_time: "2026-08-01T12:00:00Z".parse().unwrap(),
        };
        let body = serde_json::to_value(Envelope {
            notification: &NotificationBody::new(&notification),
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"notification": {"type": "COMPUTE_HOST", "hostname": "compute-0",
                "generated_time": "2026-08-01T12:00:00.000000",
                "payload": {"event": "STOPPED", "cluster_status": "OFFLINE", "host_status": "NORMAL"}}})
        );
    }

    #[test]
    fn classify_statuses() {
        assert_eq!(
            status(202, r#"{"notification": {"notification_uuid": "u-1"}}"#),
            Outcome::Delivered {
                notification_uuid: Some("u-1".into())
            }
        );
        assert_eq!(
            status(
                409,
                r#"{"conflictingRequest": {"code": 409, "message": "duplicate"}}"#
            ),
            Outcome::AlreadyKnown {
                message: "duplicate".into()
            }
        );
        assert_eq!(
            status(
                400,
                r#"{"badRequest": {"code": 400, "message": "Host with name h could not be found."}}"#
            ),
            Outcome::Rejected {
                message: "Host with name h could not be found.".into()
            }
        );
        assert!(matches!(status(401, ""), Outcome::ConfigError { .. }));
        assert!(matches!(status(403, ""), Outcome::ConfigError { .. }));
        assert!(matches!(status(404, ""), Outcome::ConfigError { .. }));
        assert!(matches!(status(500, ""), Outcome::Retryable { .. }));
        assert!(matches!(
            status(503, "<html>busy</html>"),
            Outcome::Retryable { .. }
        ));
        assert!(matches!(status(429, ""), Outcome::Retryable { .. }));
    }

    #[test]
    fn long_message_is_cut() {
        let body = "x".repeat(2000);
        let Outcome::Rejected { message } = status(400, &body) else {
            panic!("400 must be rejected");
        };
        assert_eq!(message.len(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn keystone_errors_split_by_retryability() {
        let retryable = classify(Reply::NoToken(KeystoneError::TokenRequestFailed {
            url: "http://k/v3/auth/tokens".into(),
            status: 503,
        }));
        assert!(matches!(retryable, Outcome::Retryable { .. }));
        let permanent = classify(Reply::NoToken(KeystoneError::InvalidCredentials {
            url: "http://k/v3/auth/tokens".into(),
        }));
        assert!(matches!(permanent, Outcome::ConfigError { .. }));
    }
}
