//! Handler tests of the commands to the notification stage and of the delivery log:
//! acknowledgements and redeliveries with their statuses and roles, the command written to the
//! commands topic, and the delivery listing's parameters (harness in `notify/harness.rs`;
//! ClickHouse is a closed port, so a listing or a redelivery lookup that passes its checks is
//! the documented 500).

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "notify/harness.rs"]
#[allow(dead_code, reason = "a shared harness; not every helper is used here")]
mod harness;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use vigil_schema::{NotifyCommand, decode};

use harness::{EDITOR, VIEWER, call, error_fields, harness, harness_with, post_raw};

fn ack(rule: &str, monitor: &str) -> Value {
    json!({"rule_id": rule, "monitor_id": monitor, "region": "eu", "comment": "on it"})
}

/// Every command on the commands topic so far.
fn commands(
    cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
) -> Vec<NotifyCommand> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "commands-reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("t.notify-commands", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(m) => out.push(decode(m.unwrap().payload().unwrap()).unwrap()),
            None if !out.is_empty() => break,
            None => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_check_roles_fields_and_existence_then_write_a_command() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    use Method as M;
    let url = "/api/v1/alerts/ack";

    let (status, _, _) = call(&h, M::POST, url, None, Some(ack("p99", "api"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = call(&h, M::POST, url, Some(VIEWER), Some(ack("p99", "api"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) = call(&h, M::POST, url, Some(EDITOR), Some(json!("{"))).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a JSON string is no body: {body}"
    );

    // 422 naming every bad field, before any lookup.
    let bad = json!({"rule_id": "P99", "monitor_id": "api", "region": "",
                     "comment": "x".repeat(1001)});
    let (status, _, body) = call(&h, M::POST, url, Some(EDITOR), Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&body), ["rule_id", "region", "comment"]);
    let (status, _, body) = call(
        &h,
        M::POST,
        url,
        Some(EDITOR),
        Some(json!({"rule_id": "p99", "monitor_id": "api", "author": "me"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the author is the caller");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `author`"),
        "{body}"
    );

    // 404 while the rule, then the monitor, does not exist.
    let (status, _, body) = call(&h, M::POST, url, Some(EDITOR), Some(ack("p99", "api"))).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("rule \"p99\" not found"))
    );
    let monitor = json!({"id": "api", "name": "API", "url": "https://example.com/"});
    let (status, _, _) = call(&h, M::POST, "/api/v1/monitors", Some(EDITOR), Some(monitor)).await;
    assert_eq!(status, StatusCode::CREATED);
    let rule = json!({"id": "p99", "monitors": ["api"], "severity": "critical",
        "condition": {"latency_percentile": {"percentile": 99, "above": "800ms"}}});
    let (status, _, body) = call(&h, M::POST, "/api/v1/rules", Some(EDITOR), Some(rule)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _, body) = call(&h, M::POST, url, Some(EDITOR), Some(ack("p99", "web"))).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("monitor \"web\" not found"))
    );

    let (status, _, body) = call(&h, M::POST, url, Some(EDITOR), Some(ack("p99", "api"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (&body["kind"], &body["key"], &body["author"]),
        (&json!("ack"), &json!("p99/api/eu"), &json!("ops"))
    );
    let written = commands(&cluster);
    assert_eq!(written.len(), 1);
    let NotifyCommand::Ack(a) = &written[0] else {
        panic!("expected an acknowledgement, got {written:?}")
    };
    assert_eq!(
        (
            a.rule_id.as_str(),
            a.monitor_id.as_str(),
            a.region.as_deref()
        ),
        ("p99", "api", Some("eu"))
    );
    assert_eq!((a.author.as_str(), a.comment.as_str()), ("ops", "on it"));
    assert_eq!(a.command_id.to_string(), body["command_id"]);

    // The GraphQL mutation goes through the same checks.
    let query = json!({"query": "mutation { acknowledgeAlert(ruleId: \"p99\", monitorId: \"nope\") { key } }"});
    let (status, _, body) = call(&h, M::POST, "/graphql", Some(EDITOR), Some(query)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{body}"
    );
    let query = json!({"query": "mutation { acknowledgeAlert(ruleId: \"p99\", monitorId: \"api\") { kind key } }"});
    let (_, _, body) = call(&h, M::POST, "/graphql", Some(VIEWER), Some(query.clone())).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let (_, _, body) = call(&h, M::POST, "/graphql", Some(EDITOR), Some(query)).await;
    assert_eq!(
        body["data"]["acknowledgeAlert"],
        json!({"kind": "ack", "key": "p99/api"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_check_roles_and_the_id() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    use Method as M;
    let url = "/api/v1/deliveries/0190f0a4-0000-7000-8000-000000000001/redeliver";
    let (status, _, _) = call(&h, M::POST, url, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(&h, M::POST, url, Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = call(
        &h,
        M::POST,
        "/api/v1/deliveries/not-a-uuid/redeliver",
        Some(EDITOR),
        None,
    )
    .await;
    assert_eq!(
        (status, body["type"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("urn:vigil:problem:bad-parameter")
        )
    );
    assert!(
        body["detail"].as_str().unwrap().contains("delivery_id"),
        "{body}"
    );
    // The lookup needs ClickHouse, which is not there: the documented 500, nothing written.
    let (status, _, _) = call(&h, M::POST, url, Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let query = json!({"query": "mutation { redeliver(deliveryId: \"x\") { key } }"});
    let (_, _, body) = call(&h, M::POST, "/graphql", Some(EDITOR), Some(query)).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_listing_parameters() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    use Method as M;
    let (status, _, _) = call(&h, M::GET, "/api/v1/deliveries", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for (query, parameter) in [
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("from=yesterday", "from"),
        ("from=now-1h&to=now-2h", "from"),
        ("cursor=zz", "cursor"),
        ("chanel=hooks", "chanel"),
    ] {
        let uri = format!("/api/v1/deliveries?{query}");
        let (status, _, body) = call(&h, M::GET, &uri, Some(VIEWER), None).await;
        let (want, kind) = if query.ends_with("to=now-2h") {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid-parameter")
        } else {
            (StatusCode::BAD_REQUEST, "bad-parameter")
        };
        assert_eq!(status, want, "{query}: {body}");
        assert_eq!(body["type"], format!("urn:vigil:problem:{kind}"), "{query}");
        assert!(
            body["detail"].as_str().unwrap().contains(parameter),
            "{query}: {body}"
        );
    }
    // Valid parameters reach ClickHouse (a closed port here).
    let uri = "/api/v1/deliveries?channel=hooks&status=failed&from=now-1h&to=now&limit=5";
    let (status, _, _) = call(&h, M::GET, uri, Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let query = json!({"query": "{ deliveries(status: \"lost\") { nextCursor } }"});
    let (_, _, body) = call(&h, M::POST, "/graphql", Some(VIEWER), Some(query)).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
}

/// A PagerDuty v3 webhook event.
fn pagerduty_event(kind: &str, incident_key: &str) -> Vec<u8> {
    json!({"event": {
        "id": "5ac64822-4adc-4fda-ade0-410becf0de4f", "event_type": kind,
        "resource_type": "incident", "occurred_at": "2026-05-20T14:00:00.000Z",
        "agent": {"id": "PXPGF42", "summary": "Earline Greenholt", "type": "user_reference"},
        "data": {"id": "PT4KHLK", "type": "incident", "number": 1234, "status": "acknowledged",
            "incident_key": incident_key, "title": "The server is on fire.",
            "html_url": "https://example.pagerduty.com/incidents/PT4KHLK"}}})
    .to_string()
    .into_bytes()
}

fn pagerduty_signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!("v1={}", hex::encode(ring::hmac::sign(&key, body).as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_acknowledgements_are_verified_then_acknowledge_the_alert() {
    let url = "/api/v1/integrations/pagerduty";
    let ack = pagerduty_event("incident.acknowledged", "vigil/p99/api/eu");

    // Not configured: 404.
    let other = MockCluster::new(1).unwrap();
    let h = harness(&other).await;
    let signature = pagerduty_signature("pd-secret", &ack);
    let (status, body) = post_raw(&h, url, &[("x-pagerduty-signature", &signature)], &ack).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let cluster = MockCluster::new(1).unwrap();
    let secrets = vigil_notify::MemorySecrets::new().with("PD_WEBHOOK", "pd-secret");
    let h = harness_with(
        &cluster,
        |c| {
            c.integrations.pagerduty_webhook_secret =
                Some(vigil_schema::event::SecretRef::to("PD_WEBHOOK"));
        },
        Some(std::sync::Arc::new(secrets)),
    )
    .await;
    let monitor = json!({"id": "api", "name": "API", "url": "https://example.com/"});
    let (status, _, _) = call(
        &h,
        Method::POST,
        "/api/v1/monitors",
        Some(EDITOR),
        Some(monitor),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let rule = json!({"id": "p99", "monitors": ["api"], "severity": "critical",
        "condition": {"latency_percentile": {"percentile": 99, "above": "800ms"}}});
    let (status, _, _) = call(&h, Method::POST, "/api/v1/rules", Some(EDITOR), Some(rule)).await;
    assert_eq!(status, StatusCode::CREATED);

    // Unsigned, signed with another secret, or signed over other bytes: 401, nothing written.
    let wrong = pagerduty_signature("not-the-secret", &ack);
    let tampered = pagerduty_signature("pd-secret", b"{}");
    for headers in [
        vec![],
        vec![("x-pagerduty-signature", wrong.as_str())],
        vec![("x-pagerduty-signature", tampered.as_str())],
    ] {
        let (status, body) = post_raw(&h, url, &headers, &ack).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(body["type"], "urn:vigil:problem:bad-signature");
    }
    // Signed but not an event: 400.
    let junk = b"not json";
    let (status, body) = post_raw(
        &h,
        url,
        &[(
            "x-pagerduty-signature",
            &pagerduty_signature("pd-secret", junk),
        )],
        junk,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Verified events with nothing to do: 204.
    for event in [
        pagerduty_event("pagey.ping", ""),
        pagerduty_event("incident.triggered", "vigil/p99/api/eu"),
        pagerduty_event("incident.acknowledged", "someone-elses-key"),
        pagerduty_event("incident.acknowledged", "vigil/deleted-rule/api"),
    ] {
        // Several signatures, as during a secret rotation: one verifies.
        let signatures = format!(
            "{},{}",
            pagerduty_signature("old-secret", &event),
            pagerduty_signature("pd-secret", &event)
        );
        let (status, body) =
            post_raw(&h, url, &[("x-pagerduty-signature", &signatures)], &event).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    assert!(commands(&cluster).is_empty());

    // The acknowledgement of a Vigil incident acknowledges the alert.
    let (status, body) = post_raw(&h, url, &[("x-pagerduty-signature", &signature)], &ack).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["key"], "p99/api/eu");
    let written = commands(&cluster);
    assert_eq!(written.len(), 1);
    let NotifyCommand::Ack(a) = &written[0] else {
        panic!("expected an acknowledgement, got {written:?}")
    };
    assert_eq!(
        (
            a.rule_id.as_str(),
            a.monitor_id.as_str(),
            a.region.as_deref()
        ),
        ("p99", "api", Some("eu"))
    );
    assert_eq!(a.author, "pagerduty:Earline Greenholt");
    assert_eq!(
        a.comment,
        "acknowledged in PagerDuty incident #1234 https://example.pagerduty.com/incidents/PT4KHLK"
    );
}
