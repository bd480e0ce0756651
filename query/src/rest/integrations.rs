//! Webhooks other systems send to Vigil: PagerDuty's acknowledgements
//! (`POST /api/v1/integrations/pagerduty`).
//!
//! A PagerDuty webhook subscription (v3) signs every request with its secret:
//! `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>[,v1=<…>]` (several during a secret
//! rotation). A request whose signatures do not include one made with the configured secret is
//! refused with 401 before its body is read as JSON. Of the verified events, an
//! `incident.acknowledged` of an incident Vigil opened (its `incident_key` is the `dedup_key`
//! Vigil sent, `vigil/<rule>/<monitor>[/<region>]`) acknowledges that alert, which stops its
//! escalation (the same command as `POST /api/v1/alerts/ack`, authored `pagerduty:<who>`).
//! Every other verified event, and an acknowledgement of an alert Vigil no longer knows, is
//! answered 204 so PagerDuty does not retry it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ring::hmac;
use serde::Deserialize;
use tracing::{debug, info};

use crate::error::Problem;
use crate::model::CommandAccepted;
use crate::state::AppState;
use crate::{Error, Result};

/// The header PagerDuty signs with.
pub const SIGNATURE_HEADER: &str = "x-pagerduty-signature";
/// The prefix of the `dedup_key` (and so the `incident_key`) of Vigil's PagerDuty events.
pub const DEDUP_PREFIX: &str = "vigil/";
/// Longest comment an acknowledgement carries.
const MAX_COMMENT: usize = 1000;

/// Whether one of the `v1=` signatures of `header` is the HMAC-SHA256 of `body` with `secret`
/// (compared in constant time).
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    header
        .split(',')
        .filter_map(|s| s.trim().strip_prefix("v1="))
        .filter_map(|hex_sig| hex::decode(hex_sig).ok())
        .any(|sig| hmac::verify(&key, body, &sig).is_ok())
}

#[derive(Debug, Deserialize)]
struct Envelope {
    event: Event,
}

#[derive(Debug, Deserialize)]
struct Event {
    event_type: String,
    #[serde(default)]
    agent: Option<Reference>,
    #[serde(default)]
    data: Option<Incident>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Incident {
    #[serde(default)]
    incident_key: Option<String>,
    #[serde(default)]
    number: Option<u64>,
    #[serde(default)]
    html_url: Option<String>,
}

/// The (rule, monitor, region) of a Vigil `dedup_key`.
fn alert_of(key: &str) -> Option<(&str, &str, Option<&str>)> {
    let mut parts = key.strip_prefix(DEDUP_PREFIX)?.splitn(3, '/');
    let rule = parts.next().filter(|s| !s.is_empty())?;
    let monitor = parts.next().filter(|s| !s.is_empty())?;
    Some((rule, monitor, parts.next()))
}

/// Receive a PagerDuty webhook (v3): an acknowledgement of an incident Vigil opened
/// acknowledges the alert (its escalation stops). Authenticated by the subscription's
/// signature, not an API key.
#[utoipa::path(post, path = "/api/v1/integrations/pagerduty", tag = "alerts",
    request_body(content = String, description = "A PagerDuty v3 webhook event, as PagerDuty sends it", content_type = "application/json"),
    params(("X-PagerDuty-Signature" = String, Header, description = "`v1=<hex HMAC-SHA256>` signatures, comma-separated")),
    responses(
        (status = 202, description = "An acknowledgement of a Vigil alert: the command was written to the notification stage", body = CommandAccepted),
        (status = 204, description = "A verified event with nothing to do"),
        (status = 400, description = "Not a PagerDuty webhook event", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No signature made with the configured secret", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "PagerDuty webhooks are not configured", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn pagerduty(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let not_configured = || Error::NotFound {
        kind: "integration",
        id: "pagerduty".into(),
    };
    let reference = state
        .config
        .integrations
        .pagerduty_webhook_secret
        .as_ref()
        .ok_or_else(not_configured)?;
    let secret = reference
        .name()
        .and_then(|name| state.secrets.resolve(name))
        .ok_or_else(|| Error::Unavailable(format!("the secret {reference} is not set")))?;
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::BadSignature("missing X-PagerDuty-Signature".into()))?;
    if !verify(secret.as_bytes(), signature, &body) {
        return Err(Error::BadSignature(
            "no X-PagerDuty-Signature made with the configured secret".into(),
        ));
    }
    let Envelope { event } = serde_json::from_slice(&body)
        .map_err(|e| Error::BadBody(format!("not a PagerDuty webhook event: {e}")))?;
    let incident = event.data.as_ref();
    let key = incident.and_then(|i| i.incident_key.as_deref());
    let alert = key.and_then(alert_of);
    let (rule, monitor, region) = match (event.event_type.as_str(), alert) {
        ("incident.acknowledged", Some(alert)) => alert,
        (kind, _) => {
            debug!(kind, ?key, "PagerDuty event with nothing to do.");
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    };
    let who = event
        .agent
        .and_then(|a| a.summary)
        .unwrap_or_else(|| "unknown".into());
    let mut comment = format!(
        "acknowledged in PagerDuty incident #{} {}",
        incident.and_then(|i| i.number).unwrap_or_default(),
        incident
            .and_then(|i| i.html_url.as_deref())
            .unwrap_or_default()
    );
    comment.truncate(comment.trim_end().len());
    if comment.len() > MAX_COMMENT {
        let mut end = MAX_COMMENT;
        while !comment.is_char_boundary(end) {
            end -= 1;
        }
        comment.truncate(end);
    }
    let input = serde_json::json!({
        "rule_id": rule, "monitor_id": monitor, "region": region, "comment": comment,
    });
    let author: String = format!("pagerduty:{who}").chars().take(200).collect();
    match state.service.acknowledge_alert(input, &author).await {
        Ok(accepted) => {
            info!(
                rule,
                monitor,
                ?region,
                author,
                "Alert acknowledged from PagerDuty."
            );
            Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
        }
        // An alert of a rule or monitor deleted since, or a key Vigil would not write.
        Err(Error::NotFound { .. } | Error::InvalidSpec { .. }) => {
            debug!(?key, "PagerDuty acknowledged an alert Vigil does not know.");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_any_listed_secret_only() {
        let body = br#"{"event":{}}"#;
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"s3cret");
        let good = hex::encode(hmac::sign(&key, body).as_ref());
        assert!(verify(b"s3cret", &format!("v1={good}"), body));
        assert!(verify(b"s3cret", &format!("v1=00ff, v1={good}"), body));
        assert!(!verify(b"other", &format!("v1={good}"), body));
        assert!(!verify(b"s3cret", &format!("v1={good}"), b"{}"));
        assert!(!verify(b"s3cret", &format!("v0={good}"), body));
        assert!(!verify(b"s3cret", "v1=zz", body));
        assert!(!verify(b"s3cret", "", body));
    }

    #[test]
    fn dedup_keys_name_alerts() {
        assert_eq!(
            alert_of("vigil/p99/api/eu"),
            Some(("p99", "api", Some("eu")))
        );
        assert_eq!(alert_of("vigil/down/api"), Some(("down", "api", None)));
        assert_eq!(alert_of("vigil/down"), None);
        assert_eq!(alert_of("other/p99/api"), None);
        assert_eq!(alert_of("vigil//api"), None);
    }
}
