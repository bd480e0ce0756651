//! The demo's webhook receiver: `POST /hooks/vigil` on the demo target, where `vigil up --demo`
//! routes its alerts. It checks every request's Standard Webhooks signature with the
//! `standardwebhooks` crate (an implementation independent of Vigil's signer), prints what it
//! got to stdout, and answers 401 to anything unsigned or tampered with.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use serde_json::Value;
use tracing::warn;

/// Where the demo's webhook channel posts.
pub(crate) const PATH: &str = "/hooks/vigil";

/// A fresh signing secret in the `whsec_<base64>` form.
pub(crate) fn new_secret() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The receiver's routes, verifying with `secret`.
pub(crate) fn router(secret: &str) -> anyhow::Result<Router> {
    let webhook = standardwebhooks::Webhook::new(secret)
        .map_err(|e| anyhow::anyhow!("demo webhook secret: {e:?}"))?;
    Ok(Router::new()
        .route(PATH, post(receive))
        .with_state(Arc::new(webhook)))
}

async fn receive(
    State(webhook): State<Arc<standardwebhooks::Webhook>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if let Err(e) = webhook.verify(&body, &headers) {
        warn!(error = ?e, "Demo webhook: signature did not verify; rejected.");
        return StatusCode::UNAUTHORIZED;
    }
    println!("{}", describe(&body));
    StatusCode::NO_CONTENT
}

/// One line per notification: its type and each alert's rule, monitor and summary.
fn describe(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return "demo webhook: notification received (signature verified, body not JSON)".into();
    };
    let alerts: Vec<String> = v["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{} {} — {}",
                a["status"].as_str().unwrap_or("?"),
                a["key"].as_str().unwrap_or("?"),
                a["summary"].as_str().unwrap_or("")
            )
        })
        .collect();
    format!(
        "demo webhook: {} (signature verified): {}",
        v["type"].as_str().unwrap_or("notification"),
        alerts.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_standard_webhooks_form_and_differ() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("whsec_") && a != b);
        assert!(standardwebhooks::Webhook::new(&a).is_ok());
    }

    #[test]
    fn describes_alerts_by_key_and_message() {
        let body = br#"{"type":"alert.firing","data":{"alerts":[
            {"key":"demo-flaky-errors/demo-flaky/local","status":"firing",
             "summary":"5xx share 2% above 1%"}]}}"#;
        assert_eq!(
            describe(body),
            "demo webhook: alert.firing (signature verified): \
             firing demo-flaky-errors/demo-flaky/local — 5xx share 2% above 1%"
        );
    }
}
