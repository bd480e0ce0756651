//! The PagerDuty channel: Events API v2, one event per alert.
//!
//! A firing alert is a `trigger`, a resolved one a `resolve`, both with the alert's stable
//! `dedup_key` (`vigil/<alert key>`), so PagerDuty keeps one incident per alert however often it
//! is re-sent. Severities map one to one (critical, warning, info); `links` point back to Vigil.

use serde_json::{Value, json};
use vigil_schema::{ChannelKind, ChannelSpec, Severity};

use super::{Context, HttpRequest, alert_url, truncate};
use crate::alert::Alert;
use crate::group::Notification;
use crate::template::{DEFAULT_TITLE, Escape, Fields, Template, number};
use crate::{Error, Result, secret};

/// Longest summary PagerDuty accepts.
const MAX_SUMMARY: usize = 1024;

/// The incident key of an alert.
pub fn dedup_key(alert: &Alert) -> String {
    format!("vigil/{}", alert.key)
}

/// PagerDuty's severity of a Vigil severity.
pub const fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// The event for one alert.
pub fn event(spec: &ChannelSpec, alert: &Alert, routing_key: &str, base: &str) -> Value {
    if !alert.is_firing() {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key(alert),
        });
    }
    let t = &alert.transition;
    let url = alert_url(base, alert);
    let template = spec
        .title
        .as_deref()
        .and_then(|s| Template::parse(s).ok())
        .or_else(|| Template::parse(DEFAULT_TITLE).ok())
        .unwrap_or_default();
    let summary = template.render(
        &Fields {
            alert,
            count: 1,
            resolved: false,
            url: &url,
        },
        Escape::Plain,
    );
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(alert),
        "payload": {
            "summary": truncate(&summary, MAX_SUMMARY),
            "source": t.monitor_id,
            "severity": severity(t.severity),
            "timestamp": alert.starts_at,
            "component": t.monitor_id,
            "group": t.region.as_deref().unwrap_or("all regions"),
            "class": t.kind.as_str(),
            "custom_details": {
                "rule": t.rule_id,
                "summary": t.message,
                "value": number(t.value),
                "threshold": number(t.threshold),
                "labels": alert.labels,
            },
        },
        "client": "Vigil",
    });
    if !url.is_empty() {
        event["client_url"] = Value::from(base.trim_end_matches('/'));
        event["links"] = json!([{"href": url, "text": "Open in Vigil"}]);
    }
    event
}

/// One request per alert, firing ones first.
pub fn requests(
    spec: &ChannelSpec,
    n: &Notification,
    ctx: &Context<'_>,
) -> Result<Vec<HttpRequest>> {
    let ChannelKind::Pagerduty {
        routing_key,
        url,
        links_base,
    } = &spec.kind
    else {
        return Err(Error::Config(format!(
            "channel {} is not pagerduty",
            spec.id
        )));
    };
    let key = secret::resolve(ctx.secrets, routing_key)?;
    let base = links_base.as_deref().unwrap_or(ctx.external_url);
    n.alerts
        .iter()
        .map(|a| {
            Ok(HttpRequest {
                url: url.clone(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: serde_json::to_vec(&event(spec, a, &key, base))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::channel::fixture::{channel, context, notification, resolved, secrets};

    fn pd(links_base: Option<&str>) -> ChannelSpec {
        let mut kind = json!({"routing_key": "${secret:PD_KEY}"});
        if let Some(base) = links_base {
            kind["links_base"] = json!(base);
        }
        channel(json!({"id": "pager", "kind": {"pagerduty": kind}}))
    }

    #[test]
    fn trigger_event() {
        let s = secrets();
        let requests = requests(&pd(None), &notification("pager"), &context(&s)).unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].url, "https://events.pagerduty.com/v2/enqueue");
        let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(
            body,
            json!({
                "routing_key": "R0UTINGKEY0000000000000000000000",
                "event_action": "trigger",
                "dedup_key": "vigil/checkout-p99/checkout-api/eu-west",
                "payload": {
                    "summary": "[FIRING:1] checkout-p99 on checkout-api",
                    "source": "checkout-api",
                    "severity": "critical",
                    "timestamp": "2026-03-01T10:00:00Z",
                    "component": "checkout-api",
                    "group": "eu-west",
                    "class": "latency_percentile",
                    "custom_details": {
                        "rule": "checkout-p99",
                        "summary": "p99 of checkout-api is 950ms (> 800ms)",
                        "value": "950000",
                        "threshold": "800000",
                        "labels": {
                            "kind": "latency_percentile", "monitor": "checkout-api",
                            "region": "eu-west", "rule": "checkout-p99",
                            "severity": "critical", "team": "payments"
                        },
                    },
                },
                "client": "Vigil",
                "client_url": "https://vigil.example.com",
                "links": [{
                    "href": "https://vigil.example.com/api/v1/alerts?rule=checkout-p99\
                             &monitor=checkout-api",
                    "text": "Open in Vigil"
                }],
            })
        );
    }

    #[test]
    fn resolve_event_with_the_same_dedup_key() {
        let s = secrets();
        let fired = requests(&pd(None), &notification("pager"), &context(&s)).unwrap();
        let done = requests(&pd(None), &resolved("pager"), &context(&s)).unwrap();
        let fired: Value = serde_json::from_slice(&fired[0].body).unwrap();
        let done: Value = serde_json::from_slice(&done[0].body).unwrap();
        assert_eq!(
            done,
            json!({
                "routing_key": "R0UTINGKEY0000000000000000000000",
                "event_action": "resolve",
                "dedup_key": "vigil/checkout-p99/checkout-api/eu-west",
            })
        );
        assert_eq!(done["dedup_key"], fired["dedup_key"]);
    }

    #[test]
    fn severities_and_links_base() {
        assert_eq!(
            [Severity::Critical, Severity::Warning, Severity::Info].map(severity),
            ["critical", "warning", "info"]
        );
        let s = secrets();
        let mut n = notification("pager");
        n.alerts[0].transition.severity = Severity::Info;
        n.alerts.push(resolved("pager").alerts[0].clone());
        let requests = requests(&pd(Some("https://status.example.org")), &n, &context(&s)).unwrap();
        assert_eq!(requests.len(), 2, "one event per alert");
        let first: Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(first["payload"]["severity"], "info");
        assert_eq!(first["client_url"], "https://status.example.org");
        assert!(
            first["links"][0]["href"]
                .as_str()
                .unwrap()
                .starts_with("https://status.example.org/api/v1/alerts?")
        );
        let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
        assert_eq!(second["event_action"], "resolve");
    }
}
