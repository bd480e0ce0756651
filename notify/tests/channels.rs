//! The notification stage end to end against a local HTTP receiver on 127.0.0.1: transitions
//! go through routing and grouping, notifications are built and sent by each channel kind, and
//! the receiver's answers drive the retry policy.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router as HttpRouter;
use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use standardwebhooks::Webhook;
use uuid::Uuid;
use vigil_notify::delivery::{self, Answer};
use vigil_notify::{
    Context, Inputs, MemorySecrets, Notification, RetryPolicy, Router, Sender, State, Suppressor,
};
use vigil_schema::{
    AlertKind, AlertState, AlertTransition, ChannelSpec, DeliveryStatus, RouteSpec, Severity,
    Timestamp,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Debug, Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Seen>>>);

impl Receiver {
    fn on(&self, path: &str) -> Vec<Seen> {
        let seen = self.0.lock().unwrap();
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }
}

async fn receive(
    Extract(receiver): Extract<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let earlier = {
        let mut seen = receiver.0.lock().unwrap();
        let earlier = seen.iter().filter(|s| s.path == path).count();
        seen.push(Seen {
            path: path.clone(),
            headers,
            body,
        });
        earlier
    };
    match (path.as_str(), earlier) {
        ("/flaky", 0) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "7")],
            "slow down",
        )
            .into_response(),
        ("/flaky", 1) => (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response(),
        ("/gone", _) => (StatusCode::GONE, "this hook was deleted").into_response(),
        ("/bad", _) => (StatusCode::BAD_REQUEST, "unexpected payload").into_response(),
        ("/slow", _) => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK.into_response()
        }
        ("/pd", _) => (StatusCode::ACCEPTED, r#"{"status":"success"}"#).into_response(),
        _ => StatusCode::OK.into_response(),
    }
}

/// Starts the receiver; returns its base URL.
async fn serve() -> (String, Receiver) {
    let receiver = Receiver::default();
    let app = HttpRouter::new()
        .fallback(receive)
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), receiver)
}

fn channels(base: &str) -> BTreeMap<String, ChannelSpec> {
    [
        json!({"id": "hook", "kind": {"webhook": {"url": format!("{base}/hook"),
            "secret": "${secret:HOOK}", "headers": {"X-Team": "payments"}}}}),
        json!({"id": "chat", "kind": {"slack": {"url": "${secret:SLACK}"}}}),
        json!({"id": "pager", "kind": {"pagerduty": {"routing_key": "${secret:PD}",
            "url": format!("{base}/pd")}}}),
        json!({"id": "am", "kind": {"alertmanager": {"url": format!("{base}/am")}}}),
    ]
    .into_iter()
    .map(|v| {
        let spec: ChannelSpec = serde_json::from_value(v).unwrap();
        assert_eq!(vigil_notify::check::channel(&spec), Ok(()));
        (spec.id.clone(), spec)
    })
    .collect()
}

fn transition(to: AlertState, at: Timestamp) -> AlertTransition {
    AlertTransition {
        transition_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{to:?}{at}").as_bytes()),
        rule_id: "checkout-p99".into(),
        monitor_id: "checkout-api".into(),
        region: Some("eu-west".into()),
        kind: AlertKind::LatencyPercentile,
        from: if to == AlertState::Firing {
            AlertState::Pending
        } else {
            AlertState::Firing
        },
        to,
        at,
        value: 950_000.0,
        threshold: 800_000.0,
        severity: Severity::Critical,
        labels: [("team".to_owned(), "payments".to_owned())].into(),
        message: "p99 of checkout-api is 950ms".into(),
    }
}

fn json_body(seen: &Seen) -> Value {
    serde_json::from_slice(&seen.body).unwrap()
}

fn secrets(base: &str) -> MemorySecrets {
    MemorySecrets::new()
        .with("HOOK", SECRET)
        .with("SLACK", format!("{base}/slack/services/T0/B0/SECRETPATH"))
        .with("PD", "R0UTINGKEY")
}

#[tokio::test]
async fn firing_and_resolve_reach_every_channel_kind() {
    let (base, receiver) = serve().await;
    let channels = channels(&base);
    let routes: RouteSpec =
        serde_json::from_value(json!({"receiver": ["hook", "chat", "pager", "am"]})).unwrap();
    let router = Router::new(&routes).unwrap();
    let suppressor = Suppressor::new();
    let inputs = Inputs {
        router: &router,
        channels: &channels,
        suppressor: &suppressor,
    };
    let secrets = secrets(&base);
    let sender = Sender::new(Duration::from_secs(5)).unwrap();
    let mut state = State::new();

    // Event time and the notifier's clock are now, so signatures verify.
    let start = Timestamp::now();
    state.observe(&inputs, &transition(AlertState::Firing, start), start);
    let due = state.next_wakeup().unwrap();
    assert_eq!(due.as_millis() - start.as_millis(), 30_000, "group_wait");
    let fired = state.tick(&inputs, due);
    assert_eq!(fired.len(), 4);
    send_all(&sender, &channels, &fired, &secrets).await;

    let hook = &receiver.on("/hook")[0];
    assert_eq!(hook.headers["content-type"], "application/json");
    assert_eq!(hook.headers["x-team"], "payments");
    let sent = fired.iter().find(|n| n.channel_id == "hook").unwrap();
    assert_eq!(
        hook.headers["webhook-id"],
        sent.idempotency_key.to_string().as_str()
    );
    Webhook::new(SECRET)
        .unwrap()
        .verify(&hook.body, &hook.headers)
        .expect("the receiver verifies the signature");
    let body = json_body(hook);
    assert_eq!(body["type"], "alert.firing");
    assert_eq!(
        body["data"]["alerts"][0]["key"],
        "checkout-p99/checkout-api/eu-west"
    );

    let slack = &receiver.on("/slack/services/T0/B0/SECRETPATH")[0];
    assert_eq!(
        json_body(slack)["text"],
        "[FIRING:1] checkout-p99 on checkout-api"
    );
    assert_eq!(json_body(slack)["attachments"][0]["color"], "#e01e5a");

    let pd = json_body(&receiver.on("/pd")[0]);
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["routing_key"], "R0UTINGKEY");
    assert_eq!(pd["dedup_key"], "vigil/checkout-p99/checkout-api/eu-west");

    let am = json_body(&receiver.on("/am")[0]);
    assert_eq!(am["version"], "4");
    assert_eq!(am["status"], "firing");
    assert_eq!(am["receiver"], "am");
    assert_eq!(am["alerts"][0]["labels"]["alertname"], "checkout-p99");

    // The resolve.
    let later = Timestamp(start.as_millis() + 60_000);
    state.observe(&inputs, &transition(AlertState::Ok, later), later);
    let due = state.next_wakeup().unwrap();
    let resolved = state.tick(&inputs, due);
    assert_eq!(resolved.len(), 4);
    send_all(&sender, &channels, &resolved, &secrets).await;
    assert_eq!(
        json_body(&receiver.on("/hook")[1])["type"],
        "alert.resolved"
    );
    let pd = json_body(&receiver.on("/pd")[1]);
    assert_eq!(pd["event_action"], "resolve");
    assert_eq!(pd["dedup_key"], "vigil/checkout-p99/checkout-api/eu-west");
    assert_eq!(json_body(&receiver.on("/am")[1])["status"], "resolved");
    assert_eq!(state.next_wakeup(), None);
}

/// Sends every notification once, expecting acceptance.
async fn send_all(
    sender: &Sender,
    channels: &BTreeMap<String, ChannelSpec>,
    notifications: &[Notification],
    secrets: &MemorySecrets,
) {
    for n in notifications {
        let ctx = Context {
            external_url: "https://vigil.example.com",
            secrets,
            now: Timestamp::now(),
        };
        let outcome = sender.send(&channels[&n.channel_id], n, &ctx).await;
        let decision = delivery::decide(
            &RetryPolicy::default(),
            n.idempotency_key,
            1,
            &outcome,
            ctx.now,
        );
        assert_eq!(
            decision.status,
            DeliveryStatus::Sent,
            "{}: {outcome:?}",
            n.channel_id
        );
    }
}

/// A notification for a webhook at `path`, and its channel.
fn hook_at(base: &str, path: &str) -> (ChannelSpec, Notification) {
    let spec: ChannelSpec = serde_json::from_value(json!({"id": "hook", "kind": {"webhook": {
        "url": format!("{base}{path}"), "secret": "${secret:HOOK}"}}}))
    .unwrap();
    let t = transition(AlertState::Firing, Timestamp::now());
    let n = Notification {
        channel_id: "hook".into(),
        group_key: "root:{}".into(),
        group_labels: BTreeMap::new(),
        reason: vigil_notify::Reason::New,
        alerts: vec![vigil_notify::Alert::firing(&t)],
        at: t.at,
        idempotency_key: delivery::idempotency_key("hook", &[t.transition_id], 0),
    };
    (spec, n)
}

#[tokio::test]
async fn retries_follow_the_receivers_answers() {
    let (base, receiver) = serve().await;
    let secrets = secrets(&base);
    let sender = Sender::new(Duration::from_secs(5)).unwrap();
    let policy = RetryPolicy {
        jitter: 0.0,
        ..RetryPolicy::default()
    };
    let (spec, n) = hook_at(&base, "/flaky");
    let mut log = Vec::new();
    let mut now = Timestamp::now();
    for attempt in 1.. {
        let ctx = Context {
            external_url: "",
            secrets: &secrets,
            now,
        };
        let outcome = sender.send(&spec, &n, &ctx).await;
        let decision = delivery::decide(&policy, n.idempotency_key, attempt, &outcome, now);
        log.push(delivery::record(&n, attempt, &outcome, &decision, now));
        match decision.retry_at {
            Some(at) => now = at,
            None => break,
        }
    }
    let statuses: Vec<_> = log
        .iter()
        .map(|d| (d.attempt, d.status, d.http_status))
        .collect();
    assert_eq!(
        statuses,
        [
            (1, DeliveryStatus::Retrying, Some(429)),
            (2, DeliveryStatus::Retrying, Some(503)),
            (3, DeliveryStatus::Sent, Some(200)),
        ]
    );
    assert_eq!(
        log[0].retry_at.unwrap().as_millis() - log[0].at.as_millis(),
        7_000,
        "Retry-After: 7 beats the schedule's 5s"
    );
    assert_eq!(log[0].error.as_deref(), Some("HTTP 429: slow down"));
    assert_eq!(
        log[1].retry_at.unwrap().as_millis() - log[1].at.as_millis(),
        300_000,
        "then the schedule's 5m"
    );
    let seen = receiver.on("/flaky");
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|s| s.headers["webhook-id"] == n.idempotency_key.to_string().as_str()),
        "the same webhook-id on every attempt"
    );
    assert!(log.iter().all(|d| d.idempotency_key == n.idempotency_key));

    let (gone, n) = hook_at(&base, "/gone");
    let ctx = Context {
        external_url: "",
        secrets: &secrets,
        now: Timestamp::now(),
    };
    let outcome = sender.send(&gone, &n, &ctx).await;
    let decision = delivery::decide(&policy, n.idempotency_key, 1, &outcome, ctx.now);
    assert_eq!(decision.status, DeliveryStatus::Disabled);
    assert!(decision.disable_channel);
    assert_eq!(
        decision.error.as_deref(),
        Some("HTTP 410: this hook was deleted")
    );

    let (bad, n) = hook_at(&base, "/bad");
    let outcome = sender.send(&bad, &n, &ctx).await;
    let decision = delivery::decide(&policy, n.idempotency_key, 1, &outcome, ctx.now);
    assert_eq!(decision.status, DeliveryStatus::Failed);
    assert_eq!(decision.retry_at, None);
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retried_without_leaking_urls() {
    let (base, _receiver) = serve().await;
    let sender = Sender::new(Duration::from_millis(300)).unwrap();
    let secrets = secrets(&base);
    let ctx = Context {
        external_url: "",
        secrets: &secrets,
        now: Timestamp::now(),
    };
    let (slow, n) = hook_at(&base, "/slow");
    let outcome = sender.send(&slow, &n, &ctx).await;
    assert_eq!(
        outcome.answer,
        Answer::Transient("timed out after 300ms".into())
    );
    assert!(outcome.latency >= Duration::from_millis(300));
    let decision = delivery::decide(
        &RetryPolicy::default(),
        n.idempotency_key,
        1,
        &outcome,
        ctx.now,
    );
    assert_eq!(decision.status, DeliveryStatus::Retrying);

    // Slack's URL is a secret: a failure must not show it.
    let refused = MemorySecrets::new().with("SLACK", "http://127.0.0.1:9/services/SECRETPATH");
    let chat: ChannelSpec = serde_json::from_value(
        json!({"id": "chat", "kind": {"slack": {"url": "${secret:SLACK}"}}}),
    )
    .unwrap();
    let ctx = Context {
        external_url: "",
        secrets: &refused,
        now: Timestamp::now(),
    };
    let outcome = sender.send(&chat, &n, &ctx).await;
    let Answer::Transient(error) = &outcome.answer else {
        panic!("{outcome:?}")
    };
    assert!(
        !error.contains("SECRETPATH") && !error.contains("127.0.0.1:9"),
        "{error}"
    );
    assert!(error.contains("Connection refused"), "{error}");
    let missing = MemorySecrets::new();
    let ctx = Context {
        external_url: "",
        secrets: &missing,
        now: Timestamp::now(),
    };
    let outcome = sender.send(&chat, &n, &ctx).await;
    assert_eq!(
        outcome.answer,
        Answer::Permanent("secret SLACK is not set".into())
    );
}

#[tokio::test]
async fn console_lines_go_to_the_writer() {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let sender = Sender::new(Duration::from_secs(1))
        .unwrap()
        .with_console(Box::new(buffer.clone()));
    let spec: ChannelSpec =
        serde_json::from_value(json!({"id": "out", "kind": {"console": {}}})).unwrap();
    let (_, mut n) = hook_at("http://unused", "/");
    n.channel_id = "out".into();
    let secrets = MemorySecrets::new();
    let ctx = Context {
        external_url: "",
        secrets: &secrets,
        now: Timestamp::now(),
    };
    let outcome = sender.send(&spec, &n, &ctx).await;
    assert_eq!(outcome.answer, Answer::Accepted);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.starts_with("[out] [FIRING:1] checkout-p99 on checkout-api\n  - p99 of checkout-api"),
        "{text}"
    );
}
