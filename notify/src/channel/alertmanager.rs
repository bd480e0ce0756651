//! The Alertmanager channel: Alertmanager's webhook payload, version 4, so receivers written
//! for Alertmanager (`alertmanager-webhook-*`, chat bridges, ticketing hooks) work unchanged.
//!
//! Alerts carry Alertmanager's conventions: the rule id as `alertname`, the summary, value and
//! threshold as annotations, `endsAt` = `0001-01-01T00:00:00Z` while firing, and Alertmanager's
//! label fingerprint (FNV-1a 64 over the sorted labels).

use serde_json::{Value, json};
use vigil_schema::Timestamp;

use super::{Context, HttpRequest, MAX_ALERTS, alert_url};
use crate::Result;
use crate::alert::{Alert, Labels};
use crate::group::Notification;
use crate::template::number;

/// Alertmanager's "zero time", the `endsAt` of a firing alert.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// An alert's labels as Alertmanager sees them: Vigil's plus `alertname`.
pub fn labels(alert: &Alert) -> Labels {
    let mut labels = alert.labels.clone();
    labels.insert("alertname".into(), alert.transition.rule_id.clone());
    labels
}

fn annotations(alert: &Alert) -> Labels {
    let t = &alert.transition;
    Labels::from([
        ("summary".to_owned(), t.message.clone()),
        ("value".to_owned(), number(t.value)),
        ("threshold".to_owned(), number(t.threshold)),
    ])
}

/// Alertmanager's fingerprint of a label set: FNV-1a 64 over name, 0xff, value, 0xff for each
/// label in name order, as 16 hex digits.
pub fn fingerprint(labels: &Labels) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, value) in labels {
        for b in name
            .bytes()
            .chain([0xff])
            .chain(value.bytes())
            .chain([0xff])
        {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn common(maps: impl Iterator<Item = Labels>) -> Labels {
    let mut maps = maps;
    let mut common = maps.next().unwrap_or_default();
    for m in maps {
        common.retain(|k, v| m.get(k) == Some(v));
    }
    common
}

/// The payload.
pub fn payload(n: &Notification, ctx: &Context<'_>) -> Value {
    let alerts: Vec<Value> = n
        .alerts
        .iter()
        .take(MAX_ALERTS)
        .map(|a| {
            let labels = labels(a);
            json!({
                "status": a.status(),
                "labels": labels,
                "annotations": annotations(a),
                "startsAt": a.starts_at,
                "endsAt": a.ends_at.map_or_else(|| Value::from(ZERO_TIME), |at: Timestamp| {
                    Value::from(at.to_string())
                }),
                "generatorURL": alert_url(ctx.external_url, a),
                "fingerprint": fingerprint(&labels),
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.alerts.len().saturating_sub(MAX_ALERTS),
        "status": n.status(),
        "receiver": n.channel_id,
        "groupLabels": n.group_labels,
        "commonLabels": common(n.alerts.iter().map(labels)),
        "commonAnnotations": common(n.alerts.iter().map(annotations)),
        "externalURL": ctx.external_url.trim_end_matches('/'),
        "alerts": alerts,
    })
}

/// The request.
pub fn request(url: &str, n: &Notification, ctx: &Context<'_>) -> Result<HttpRequest> {
    Ok(HttpRequest {
        url: url.to_owned(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&payload(n, ctx))?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::channel::fixture::{context, notification, resolved, secrets};

    #[test]
    fn version_4_payload() {
        let s = secrets();
        let n = notification("am");
        let labels = json!({
            "alertname": "checkout-p99", "kind": "latency_percentile",
            "monitor": "checkout-api", "region": "eu-west", "rule": "checkout-p99",
            "severity": "critical", "team": "payments"
        });
        let annotations = json!({
            "summary": "p99 of checkout-api is 950ms (> 800ms)",
            "value": "950000", "threshold": "800000"
        });
        assert_eq!(
            payload(&n, &context(&s)),
            json!({
                "version": "4",
                "groupKey": "root.0:{rule=\"checkout-p99\"}",
                "truncatedAlerts": 0,
                "status": "firing",
                "receiver": "am",
                "groupLabels": {"rule": "checkout-p99"},
                "commonLabels": labels,
                "commonAnnotations": annotations,
                "externalURL": "https://vigil.example.com",
                "alerts": [{
                    "status": "firing",
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": "2026-03-01T10:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "https://vigil.example.com/api/v1/alerts\
                                     ?rule=checkout-p99&monitor=checkout-api",
                    "fingerprint": fingerprint(&super::labels(&n.alerts[0])),
                }]
            })
        );
        let done = payload(&resolved("am"), &context(&s));
        assert_eq!(done["status"], "resolved");
        assert_eq!(done["alerts"][0]["status"], "resolved");
        assert_eq!(done["alerts"][0]["endsAt"], "2026-03-01T10:20:00Z");
        assert_eq!(
            done["alerts"][0]["fingerprint"],
            payload(&n, &context(&s))["alerts"][0]["fingerprint"],
            "the same alert keeps its fingerprint"
        );
    }

    #[test]
    fn fingerprints_are_alertmanagers() {
        // FNV-1a 64 of "alertname" 0xff "up" 0xff, computed independently.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in b"alertname\xffup\xff" {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        let one = Labels::from([("alertname".to_owned(), "up".to_owned())]);
        assert_eq!(fingerprint(&one), format!("{h:016x}"));
        assert_eq!(fingerprint(&Labels::new()), "cbf29ce484222325");
        let mut two = one.clone();
        two.insert("job".into(), "api".into());
        assert_ne!(fingerprint(&two), fingerprint(&one));
        assert_eq!(fingerprint(&two).len(), 16);
    }

    #[test]
    fn common_labels_and_annotations_keep_only_shared_values() {
        let s = secrets();
        let mut n = notification("am");
        let mut other = n.alerts[0].clone();
        other.labels.insert("region".into(), "us-east".into());
        other.transition.message = "another".into();
        n.alerts.push(other);
        let p = payload(&n, &context(&s));
        assert_eq!(p["commonLabels"].get("region"), None);
        assert_eq!(p["commonLabels"]["team"], "payments");
        assert_eq!(
            p["commonAnnotations"],
            json!({"value": "950000", "threshold": "800000"})
        );
    }
}
