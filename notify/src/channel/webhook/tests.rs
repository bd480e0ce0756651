use serde_json::json;
use standardwebhooks::Webhook;

use super::*;
use crate::channel::fixture::{
    NEW_SECRET, SECRET, channel, context, notification, resolved, secrets,
};

fn hooks(extra: serde_json::Value) -> ChannelSpec {
    let mut kind = json!({"url": "https://hooks.example.com/vigil", "secret": "${secret:HOOK}"});
    if let (Some(kind), Some(extra)) = (kind.as_object_mut(), extra.as_object()) {
        kind.extend(extra.clone());
    }
    channel(json!({"id": "hooks", "kind": {"webhook": kind}}))
}

fn header_map(request: &HttpRequest) -> http::HeaderMap {
    request
        .headers
        .iter()
        .map(|(k, v)| {
            (
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_payload_of_a_firing() {
    let s = secrets();
    let n = notification("hooks");
    let body: serde_json::Value =
        serde_json::from_slice(&body(&hooks(json!({})), &n, &context(&s)).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "type": "alert.firing",
            "timestamp": "2026-03-01T10:00:30Z",
            "data": {
                "version": "1",
                "channel": "hooks",
                "group_key": "root.0:{rule=\"checkout-p99\"}",
                "status": "firing",
                "reason": "new",
                "title": "[FIRING:1] checkout-p99 on checkout-api",
                "group_labels": {"rule": "checkout-p99"},
                "common_labels": {
                    "kind": "latency_percentile", "monitor": "checkout-api",
                    "region": "eu-west", "rule": "checkout-p99", "severity": "critical",
                    "team": "payments"
                },
                "external_url": "https://vigil.example.com",
                "truncated_alerts": 0,
                "alerts": [{
                    "key": "checkout-p99/checkout-api/eu-west",
                    "status": "firing",
                    "transition_id": "01920000-0000-7000-8000-000000000001",
                    "rule": "checkout-p99",
                    "monitor": "checkout-api",
                    "region": "eu-west",
                    "kind": "latency_percentile",
                    "severity": "critical",
                    "value": 950000.0,
                    "threshold": 800000.0,
                    "summary": "p99 of checkout-api is 950ms (> 800ms)",
                    "text": "p99 of checkout-api is 950ms (> 800ms) (critical, firing since \
                             2026-03-01T10:00:00Z)",
                    "labels": {
                        "kind": "latency_percentile", "monitor": "checkout-api",
                        "region": "eu-west", "rule": "checkout-p99", "severity": "critical",
                        "team": "payments"
                    },
                    "starts_at": "2026-03-01T10:00:00Z",
                    "ends_at": null,
                    "url": "https://vigil.example.com/api/v1/alerts?rule=checkout-p99\
                            &monitor=checkout-api"
                }]
            }
        })
    );
}

#[test]
fn the_payload_of_a_resolve() {
    let s = secrets();
    let n = resolved("hooks");
    let body: serde_json::Value =
        serde_json::from_slice(&body(&hooks(json!({})), &n, &context(&s)).unwrap()).unwrap();
    assert_eq!(body["type"], "alert.resolved");
    assert_eq!(body["data"]["status"], "resolved");
    assert_eq!(body["data"]["reason"], "resolved");
    assert_eq!(
        body["data"]["title"],
        "[RESOLVED] checkout-p99 on checkout-api"
    );
    let alert = &body["data"]["alerts"][0];
    assert_eq!(alert["status"], "resolved");
    assert_eq!(alert["starts_at"], "2026-03-01T10:00:00Z");
    assert_eq!(alert["ends_at"], "2026-03-01T10:20:00Z");
    assert_eq!(
        alert["transition_id"],
        "01920000-0000-7000-8000-000000000002"
    );
    assert_eq!(alert["value"], 420_000.0);
}

#[test]
fn signatures_verify_with_the_standard_webhooks_crate() {
    let s = secrets();
    let mut ctx = context(&s);
    // The verifier accepts timestamps within five minutes of its own clock.
    ctx.now = Timestamp::now();
    let spec = hooks(json!({"headers": {"Authorization": "Bearer ${secret:TOKEN}"}}));
    let n = notification("hooks");
    let request = request(&spec, &n, &ctx).unwrap();
    assert_eq!(request.url, "https://hooks.example.com/vigil");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), Some("Bearer t0k3n"));
    assert_eq!(
        request.header("webhook-id"),
        Some(n.idempotency_key.to_string().as_str())
    );
    assert_eq!(
        request.header("webhook-timestamp"),
        Some((ctx.now.as_millis() / 1000).to_string().as_str())
    );
    let headers = header_map(&request);
    Webhook::new(SECRET)
        .unwrap()
        .verify(&request.body, &headers)
        .unwrap();
    assert!(
        Webhook::new(NEW_SECRET)
            .unwrap()
            .verify(&request.body, &headers)
            .is_err(),
        "another secret does not verify"
    );
    let mut tampered = request.body.clone();
    tampered[10] ^= 1;
    assert!(
        Webhook::new(SECRET)
            .unwrap()
            .verify(&tampered, &headers)
            .is_err()
    );
}

#[test]
fn rotation_signs_with_every_secret() {
    let s = secrets();
    let mut ctx = context(&s);
    ctx.now = Timestamp::now();
    let spec = hooks(json!({"secret": "${secret:HOOK_ROTATING}"}));
    let request = request(&spec, &notification("hooks"), &ctx).unwrap();
    let signatures: Vec<&str> = request
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(signatures.len(), 2);
    assert!(signatures.iter().all(|s| s.starts_with("v1,")));
    let headers = header_map(&request);
    for secret in [SECRET, NEW_SECRET] {
        Webhook::new(secret)
            .unwrap()
            .verify(&request.body, &headers)
            .unwrap_or_else(|e| panic!("{secret}: {e}"));
    }
}

#[test]
fn signature_matches_the_reference_implementation_bytewise() {
    // The example of the standardwebhooks crate, signed by both implementations.
    let (id, ts, body) = (
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        1_649_367_553,
        br#"{"email":"test@example.com","username":"test_user"}"#,
    );
    let reference = Webhook::new(NEW_SECRET)
        .unwrap()
        .sign(id, ts, body)
        .unwrap();
    let ours = signature(&keys("HOOK", NEW_SECRET).unwrap(), id, ts, body);
    assert_eq!(ours, reference);
    assert_eq!(ours, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
}

#[test]
fn bad_and_missing_secrets() {
    let s = secrets().with("BROKEN", "whsec_not base64!");
    let ctx = context(&s);
    let err = request(
        &hooks(json!({"secret": "${secret:BROKEN}"})),
        &notification("hooks"),
        &ctx,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "secret BROKEN is malformed: expected whsec_<base64>, several separated by spaces"
    );
    assert!(
        !err.to_string().contains("not base64"),
        "no value in errors"
    );
    let err = request(
        &hooks(json!({"secret": "${secret:GONE}"})),
        &notification("hooks"),
        &ctx,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "secret GONE is not set");
}

#[test]
fn a_body_template_escapes_values_as_json() {
    let s = secrets();
    let mut n = notification("hooks");
    n.alerts[0].transition.message = "5xx \"burst\"\n\\ <b>".into();
    let spec = hooks(json!({
        "body": "{\"text\": \"{{summary}}\", \"state\": \"{{state}}\", \"n\": {{count}}}"
    }));
    let body = body(&spec, &n, &context(&s)).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        value,
        json!({"text": "5xx \"burst\"\n\\ <b>", "state": "firing", "n": 1})
    );
    let broken = hooks(json!({"body": "{\"v\": {{summary}}}"}));
    let err = super::body(&broken, &n, &context(&s)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("template kind.webhook.body: does not render to JSON"),
        "{err}"
    );
}

#[test]
fn many_alerts_are_truncated() {
    let s = secrets();
    let mut n = notification("hooks");
    let first = n.alerts[0].clone();
    n.alerts = (0..MAX_ALERTS + 5)
        .map(|i| {
            let mut a = first.clone();
            a.transition.monitor_id = format!("m{i}");
            a
        })
        .collect();
    let body: serde_json::Value =
        serde_json::from_slice(&body(&hooks(json!({})), &n, &context(&s)).unwrap()).unwrap();
    assert_eq!(body["data"]["alerts"].as_array().unwrap().len(), MAX_ALERTS);
    assert_eq!(body["data"]["truncated_alerts"], 5);
    assert_eq!(body["data"]["title"], "[FIRING:105] checkout-p99 on m0");
}
