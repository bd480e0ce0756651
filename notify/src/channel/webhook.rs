//! The webhook channel: Vigil's JSON payload, signed the Standard Webhooks way.
//!
//! ```text
//! POST {url}
//! content-type: application/json
//! webhook-id: <idempotency key, the same on every retry>
//! webhook-timestamp: <unix seconds of the attempt>
//! webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"> [v1,<…> …]
//! ```
//!
//! The secret is `whsec_` + base64 of the key. While a secret is rotated the resolved value
//! holds several, separated by spaces, and the header carries one signature per secret, so
//! receivers accept the request with either the old or the new one.
//!
//! The body (unless the channel's `body` template replaces it):
//!
//! ```json
//! {
//!   "type": "alert.firing",                 // or "alert.resolved": nothing fires any more
//!   "timestamp": "2026-03-01T10:00:30Z",    // when the notification was decided
//!   "data": {
//!     "version": "1",
//!     "channel": "hooks",
//!     "group_key": "root.0:{rule=\"checkout-p99\"}",
//!     "status": "firing",
//!     "reason": "new",                      // new | resolved | repeat | escalation
//!     "title": "[FIRING:1] checkout-p99 on checkout-api",
//!     "group_labels": {"rule": "checkout-p99"},
//!     "common_labels": {…},
//!     "external_url": "https://vigil.example.com",
//!     "truncated_alerts": 0,
//!     "alerts": [{
//!       "key": "checkout-p99/checkout-api/eu-west",
//!       "status": "firing",
//!       "transition_id": "…",
//!       "rule": "checkout-p99", "monitor": "checkout-api", "region": "eu-west",
//!       "kind": "latency_percentile", "severity": "critical",
//!       "value": 950000.0, "threshold": 800000.0,
//!       "summary": "…", "text": "…",
//!       "labels": {…},
//!       "starts_at": "2026-03-01T10:00:00Z", "ends_at": null,
//!       "url": "https://vigil.example.com/api/v1/alerts?rule=checkout-p99&monitor=checkout-api"
//!     }]
//!   }
//! }
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use serde::Serialize;
use uuid::Uuid;
use vigil_schema::{ChannelKind, ChannelSpec, Timestamp};

use super::{Context, HttpRequest, MAX_ALERTS, alert_url, text, title};
use crate::alert::{Alert, Labels};
use crate::group::Notification;
use crate::secret;
use crate::template::{Escape, Fields, Template};
use crate::{Error, Result};

/// The payload.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    /// `alert.firing` or `alert.resolved`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When the notification was decided.
    pub timestamp: Timestamp,
    /// The notification.
    pub data: Data<'a>,
}

/// The payload's `data`.
#[derive(Debug, Serialize)]
pub struct Data<'a> {
    /// Payload layout version.
    pub version: &'static str,
    /// The channel's id.
    pub channel: &'a str,
    /// The group.
    pub group_key: &'a str,
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// Why it is sent.
    pub reason: &'static str,
    /// The rendered title.
    pub title: String,
    /// The group's labels.
    pub group_labels: &'a Labels,
    /// Labels shared by every alert.
    pub common_labels: Labels,
    /// Vigil's URL.
    pub external_url: &'a str,
    /// Alerts left out beyond [`MAX_ALERTS`].
    pub truncated_alerts: usize,
    /// The alerts, firing first.
    pub alerts: Vec<AlertData<'a>>,
}

/// One alert of the payload.
#[derive(Debug, Serialize)]
pub struct AlertData<'a> {
    /// The alert's key.
    pub key: &'a str,
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// Its latest transition.
    pub transition_id: Uuid,
    /// Rule id.
    pub rule: &'a str,
    /// Monitor id.
    pub monitor: &'a str,
    /// Region (`null` for a quorum alert).
    pub region: Option<&'a str>,
    /// Rule kind.
    pub kind: &'static str,
    /// Severity.
    pub severity: &'static str,
    /// Observed value.
    pub value: f64,
    /// Threshold.
    pub threshold: f64,
    /// The rule's summary.
    pub summary: &'a str,
    /// The rendered text.
    pub text: String,
    /// Labels.
    pub labels: &'a Labels,
    /// When it started firing.
    pub starts_at: Timestamp,
    /// When it resolved.
    pub ends_at: Option<Timestamp>,
    /// The alert in Vigil.
    pub url: String,
}

/// The payload of a notification.
pub fn payload<'a>(spec: &ChannelSpec, n: &'a Notification, ctx: &'a Context<'_>) -> Payload<'a> {
    let count = n.alerts.len();
    let alerts = n
        .alerts
        .iter()
        .take(MAX_ALERTS)
        .map(|a| alert_data(spec, a, count, ctx))
        .collect();
    Payload {
        kind: if n.status() == "firing" {
            "alert.firing"
        } else {
            "alert.resolved"
        },
        timestamp: n.at,
        data: Data {
            version: "1",
            channel: &n.channel_id,
            group_key: &n.group_key,
            status: n.status(),
            reason: n.reason.as_str(),
            title: title(spec, n, ctx, Escape::Plain),
            group_labels: &n.group_labels,
            common_labels: n.common_labels(),
            external_url: ctx.external_url.trim_end_matches('/'),
            truncated_alerts: count.saturating_sub(MAX_ALERTS),
            alerts,
        },
    }
}

fn alert_data<'a>(
    spec: &ChannelSpec,
    a: &'a Alert,
    count: usize,
    ctx: &Context<'_>,
) -> AlertData<'a> {
    let t = &a.transition;
    AlertData {
        key: a.key.as_str(),
        status: a.status(),
        transition_id: t.transition_id,
        rule: &t.rule_id,
        monitor: &t.monitor_id,
        region: t.region.as_deref(),
        kind: t.kind.as_str(),
        severity: t.severity.as_str(),
        value: t.value,
        threshold: t.threshold,
        summary: &t.message,
        text: text(spec, a, count, ctx, Escape::Plain),
        labels: &a.labels,
        starts_at: a.starts_at,
        ends_at: a.ends_at,
        url: alert_url(ctx.external_url, a),
    }
}

/// The body: the channel's `body` template (rendered with JSON escaping, checked to be JSON)
/// or the payload.
pub fn body(spec: &ChannelSpec, n: &Notification, ctx: &Context<'_>) -> Result<Vec<u8>> {
    let ChannelKind::Webhook {
        body: Some(source), ..
    } = &spec.kind
    else {
        return Ok(serde_json::to_vec(&payload(spec, n, ctx))?);
    };
    let template = Template::parse(source).map_err(|reason| Error::Template {
        field: "kind.webhook.body",
        reason,
    })?;
    let Some(first) = n.firing().next().or_else(|| n.alerts.first()) else {
        return Ok(b"{}".to_vec());
    };
    let url = alert_url(ctx.external_url, first);
    let rendered = template.render(
        &Fields {
            alert: first,
            count: n.alerts.len(),
            resolved: n.status() == "resolved",
            url: &url,
        },
        Escape::Json,
    );
    serde_json::from_str::<serde_json::Value>(&rendered).map_err(|e| Error::Template {
        field: "kind.webhook.body",
        reason: format!("does not render to JSON: {e}"),
    })?;
    Ok(rendered.into_bytes())
}

/// The signing keys in a secret value: one or more `whsec_<base64>`, space-separated.
pub fn keys(name: &str, value: &str) -> Result<Vec<Vec<u8>>> {
    let keys: Vec<Vec<u8>> = value
        .split_whitespace()
        .map(|s| {
            STANDARD
                .decode(s.strip_prefix("whsec_").unwrap_or(s))
                .map_err(|_| Error::BadSecret {
                    name: name.to_owned(),
                    reason: "expected whsec_<base64>, several separated by spaces".into(),
                })
        })
        .collect::<Result<_>>()?;
    if keys.is_empty() || keys.iter().any(Vec::is_empty) {
        return Err(Error::BadSecret {
            name: name.to_owned(),
            reason: "is empty".into(),
        });
    }
    Ok(keys)
}

/// The `webhook-signature` value: `v1,<base64>` per key, space-separated.
pub fn signature(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, key);
            let mut ctx = hmac::Context::with_key(&key);
            ctx.update(id.as_bytes());
            ctx.update(b".");
            ctx.update(timestamp.to_string().as_bytes());
            ctx.update(b".");
            ctx.update(body);
            format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The signed request.
pub fn request(spec: &ChannelSpec, n: &Notification, ctx: &Context<'_>) -> Result<HttpRequest> {
    let ChannelKind::Webhook {
        url,
        secret: secret_ref,
        headers,
        ..
    } = &spec.kind
    else {
        return Err(Error::Config(format!(
            "channel {} is not a webhook",
            spec.id
        )));
    };
    let body = body(spec, n, ctx)?;
    let keys = keys(
        secret_ref.name().unwrap_or_default(),
        &secret::resolve(ctx.secrets, secret_ref)?,
    )?;
    let id = n.idempotency_key.to_string();
    let timestamp = ctx.now.as_millis().div_euclid(1000);
    let mut all = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("webhook-id".to_owned(), id.clone()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        (
            "webhook-signature".to_owned(),
            signature(&keys, &id, timestamp, &body),
        ),
    ];
    for (name, value) in headers {
        all.push((name.clone(), secret::expand(ctx.secrets, value)?));
    }
    Ok(HttpRequest {
        url: url.clone(),
        headers: all,
        body,
    })
}

#[cfg(test)]
mod tests;
