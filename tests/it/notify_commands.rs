//! Commands to the notification stage on the local stack: a firing alert routed to one webhook
//! with an escalation to a second after 2s is acknowledged (a command on the commands topic)
//! before then, and the second never hears of it; a redelivery command re-sends a delivered
//! notification with the same `webhook-id` and the next attempt number; a redelivery of an
//! unknown key is recorded as a failed attempt saying why.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vigil_notify::{MemorySecrets, Sender};
use vigil_schema::{
    AlertAck, AlertKind, AlertState, AlertTransition, ChannelSpec, NotifyCommand, Redeliver,
    RouteSpec, Severity, Timestamp, TopicNames, encode,
};

use crate::common::{TestDb, kafka_brokers, kafka_config, unique_name};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// (path, webhook-id) of every request received.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn receive(
    State(seen): State<Seen>,
    Path(path): Path<String>,
    headers: HeaderMap,
    _body: Bytes,
) -> &'static str {
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    seen.lock().unwrap().push((path, id));
    "ok"
}

fn firing(at: i64) -> AlertTransition {
    AlertTransition {
        transition_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("ack-{at}").as_bytes()),
        rule_id: "down".into(),
        monitor_id: "checkout".into(),
        region: Some("eu".into()),
        kind: AlertKind::ConsecutiveFailures,
        from: AlertState::Pending,
        to: AlertState::Firing,
        at: Timestamp::from_millis(at),
        value: 3.0,
        threshold: 3.0,
        severity: Severity::Critical,
        labels: BTreeMap::new(),
        message: "checkout failed 3 checks in a row".into(),
    }
}

fn redeliver(key: Uuid) -> NotifyCommand {
    NotifyCommand::Redeliver(Redeliver {
        command_id: Uuid::now_v7(),
        delivery_id: Uuid::nil(),
        idempotency_key: key,
        channel_id: "first".into(),
        author: "ops".into(),
        at: Timestamp::now(),
    })
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_stops_the_escalation_and_a_redelivery_resends_with_the_same_id() {
    crate::common::init_logs();
    let names = TopicNames::with_prefix(&unique_name("it", "notify_commands"));
    let admin: AdminClient<DefaultClientContext> = kafka_config().create().unwrap();
    vigil_schema::kafka::ensure_topics(&admin, &names.specs(), Duration::from_secs(10), 1)
        .await
        .unwrap();
    let db = TestDb::new("notify_commands").await;
    vigil_schema::migration::migrate(&crate::common::clickhouse(), &db.name)
        .await
        .unwrap();

    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/{path}", axum::routing::post(receive))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let producer: FutureProducer = kafka_config().set("acks", "all").create().unwrap();
    let send = async |topic: &str, key: &str, value: Vec<u8>| {
        producer
            .send(
                FutureRecord::to(topic).key(key).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    };
    for id in ["first", "second"] {
        let hook: ChannelSpec = serde_json::from_value(json!({"id": id, "kind": {"webhook": {
            "url": format!("{base}/{id}"), "secret": "${secret:HOOK}"}}}))
        .unwrap();
        send(&names.channels, id, encode(&hook).unwrap()).await;
    }
    let routes: RouteSpec = serde_json::from_value(json!({
        "receiver": ["first"], "group_by": ["monitor"], "group_wait": "0s",
        "group_interval": "1s", "escalate": {"after": "2s", "to": ["second"]}}))
    .unwrap();
    send(&names.routes, "root", encode(&routes).unwrap()).await;

    let settings = vigil_notify::stage::Settings {
        config: vigil_notify::Config::default(),
        brokers: kafka_brokers(),
        topics: names.clone(),
        clickhouse: db.client.clone(),
        group_id: format!("{}_notify", names.alerts),
        secrets: Arc::new(MemorySecrets::new().with("HOOK", SECRET)),
        sender: Sender::new(Duration::from_secs(5)).unwrap(),
    };
    let (ready, mut started) = tokio::sync::watch::channel(false);
    let token = CancellationToken::new();
    let stage = tokio::spawn(vigil_notify::stage::run(settings, token.clone(), ready));
    tokio::time::timeout(Duration::from_secs(60), started.wait_for(|r| *r))
        .await
        .unwrap()
        .unwrap();

    // Fires; reaches the first channel; acknowledged well before the 2s escalation.
    let t = firing(Timestamp::now().as_millis());
    send(&names.alerts, &t.rule_id, encode(&t).unwrap()).await;
    let received = |path: &str| -> Vec<String> {
        let seen = seen.lock().unwrap();
        seen.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, id)| id.clone())
            .collect()
    };
    wait_for(
        "the first notification",
        Duration::from_secs(10),
        async || !received("first").is_empty(),
    )
    .await;
    let ack = NotifyCommand::Ack(AlertAck {
        command_id: Uuid::now_v7(),
        rule_id: "down".into(),
        monitor_id: "checkout".into(),
        region: None,
        author: "ops".into(),
        comment: "looking".into(),
        at: Timestamp::now(),
    });
    send(&names.notify_commands, &ack.key(), encode(&ack).unwrap()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        received("second"),
        Vec::<String>::new(),
        "escalated despite the ack"
    );

    // A redelivery re-sends with the same webhook-id as the next attempt.
    let key = received("first")[0].clone();
    let command = redeliver(key.parse().unwrap());
    send(
        &names.notify_commands,
        &command.key(),
        encode(&command).unwrap(),
    )
    .await;
    wait_for("the redelivery", Duration::from_secs(10), async || {
        received("first").iter().filter(|id| **id == key).count() >= 2
    })
    .await;
    let unknown = redeliver(Uuid::from_u128(42));
    send(
        &names.notify_commands,
        &unknown.key(),
        encode(&unknown).unwrap(),
    )
    .await;

    wait_for(
        "the attempts in the deliveries table",
        Duration::from_secs(20),
        async || {
            let rows: Vec<(u32, String, String)> = db
                .client
                .query(
                    "SELECT attempt, toString(status), error FROM deliveries FINAL \
                 WHERE channel_id = 'first' AND idempotency_key = toUUID(?) ORDER BY attempt",
                )
                .bind(&key)
                .fetch_all()
                .await
                .unwrap();
            let failed: Vec<String> = db
                .client
                .query(
                    "SELECT error FROM deliveries FINAL WHERE status = 'failed' \
                 AND idempotency_key = toUUID(?)",
                )
                .bind(Uuid::from_u128(42).to_string())
                .fetch_all()
                .await
                .unwrap();
            rows.len() == 2
                && rows[1].0 == rows[0].0 + 1
                && rows.iter().all(|r| r.1 == "sent")
                && failed.len() == 1
                && failed[0].contains("holds no notification with this idempotency key")
        },
    )
    .await;
    assert_eq!(received("second"), Vec::<String>::new());

    token.cancel();
    stage.await.unwrap().unwrap();
    db.drop_database().await;
}
