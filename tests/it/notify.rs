//! The notification stage on the local stack: transitions on the alerts topic reach a signed
//! webhook receiver through routing and grouping; the stage is killed in the middle of a burst
//! (its task aborted: no final write, nothing committed since the last step) and restarted
//! from its changelog. Every transition reaches the receiver at least once, every signature
//! verifies with an independent implementation, a repeated notification carries the same
//! idempotency key as the original, and every attempt is in the `deliveries` table.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use standardwebhooks::Webhook;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vigil_notify::{MemorySecrets, Sender};
use vigil_schema::{
    AlertKind, AlertState, AlertTransition, ChannelSpec, RouteSpec, Severity, Timestamp,
    TopicNames, encode,
};

use crate::common::{TestDb, kafka_brokers, kafka_config, unique_name};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receive(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> &'static str {
    seen.lock().unwrap().push((headers, body));
    "ok"
}

fn transition(alert: u32, to: AlertState, at: i64) -> AlertTransition {
    let from = if to == AlertState::Firing {
        AlertState::Ok
    } else {
        AlertState::Firing
    };
    AlertTransition {
        transition_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{alert}/{to:?}").as_bytes()),
        rule_id: "down".into(),
        monitor_id: format!("m{alert:03}"),
        region: Some("eu".into()),
        kind: AlertKind::ConsecutiveFailures,
        from,
        to,
        at: Timestamp::from_millis(at),
        value: 3.0,
        threshold: 3.0,
        severity: Severity::Critical,
        labels: BTreeMap::new(),
        message: format!("m{alert:03} failed 3 checks in a row"),
    }
}

fn settings(names: &TopicNames, db: &TestDb) -> vigil_notify::stage::Settings {
    vigil_notify::stage::Settings {
        config: vigil_notify::Config::default(),
        brokers: kafka_brokers(),
        topics: names.clone(),
        clickhouse: db.client.clone(),
        group_id: format!("{}_notify", names.alerts),
        secrets: Arc::new(MemorySecrets::new().with("HOOK", SECRET)),
        sender: Sender::new(Duration::from_secs(5)).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_in_a_burst_loses_no_transition_and_keeps_idempotency_keys() {
    crate::common::init_logs();
    let names = TopicNames::with_prefix(&unique_name("it", "notify"));
    let admin: AdminClient<DefaultClientContext> = kafka_config().create().unwrap();
    vigil_schema::kafka::ensure_topics(&admin, &names.specs(), Duration::from_secs(10), 1)
        .await
        .unwrap();
    let db = TestDb::new("notify").await;
    vigil_schema::migration::migrate(&crate::common::clickhouse(), &db.name)
        .await
        .unwrap();

    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let producer: FutureProducer = kafka_config().set("acks", "all").create().unwrap();
    let send = |topic: String, key: String, value: Vec<u8>| {
        let producer = producer.clone();
        async move {
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&value),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
    };
    let hook: ChannelSpec = serde_json::from_value(json!({"id": "hook", "kind": {"webhook": {
        "url": format!("{base}/hook"), "secret": "${secret:HOOK}"}}}))
    .unwrap();
    send(
        names.channels.clone(),
        "hook".into(),
        encode(&hook).unwrap(),
    )
    .await;
    let routes: RouteSpec = serde_json::from_value(json!({
        "receiver": ["hook"], "group_by": ["monitor"], "group_wait": "0s",
        "group_interval": "1s"}))
    .unwrap();
    send(
        names.routes.clone(),
        "root".into(),
        encode(&routes).unwrap(),
    )
    .await;

    // 40 alerts fire, then resolve; the stage is killed halfway through each burst.
    let t0 = Timestamp::now().as_millis();
    let all: Vec<AlertTransition> = (0..40)
        .map(|a| transition(a, AlertState::Firing, t0 + i64::from(a)))
        .chain((0..40).map(|a| transition(a, AlertState::Ok, t0 + 60_000 + i64::from(a))))
        .collect();
    let mut stage = None;
    for (i, chunk) in all.chunks(20).enumerate() {
        if stage.is_none() {
            let (ready, mut started) = tokio::sync::watch::channel(false);
            let run =
                vigil_notify::stage::run(settings(&names, &db), CancellationToken::new(), ready);
            stage = Some(tokio::spawn(run));
            tokio::time::timeout(Duration::from_secs(60), started.wait_for(|r| *r))
                .await
                .unwrap()
                .unwrap();
        }
        for t in chunk {
            send(names.alerts.clone(), t.rule_id.clone(), encode(t).unwrap()).await;
        }
        tokio::time::sleep(Duration::from_millis(300 + 400 * (i as u64 % 2))).await;
        if i % 2 == 0 {
            // kill -9 in effect: the task stops at its next await, nothing is flushed.
            if let Some(running) = stage.take() {
                running.abort();
                let _aborted = running.await;
            }
        }
    }
    if stage.is_none() {
        let (ready, _started) = tokio::sync::watch::channel(false);
        let run = vigil_notify::stage::run(settings(&names, &db), CancellationToken::new(), ready);
        stage = Some(tokio::spawn(run));
    }

    let want: BTreeSet<Uuid> = all.iter().map(|t| t.transition_id).collect();
    let verifier = Webhook::new(SECRET).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let requests = seen.lock().unwrap().clone();
        let mut delivered = BTreeSet::new();
        let mut by_key: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
        for (headers, body) in &requests {
            verifier
                .verify(body, headers)
                .expect("every request verifies with the standardwebhooks crate");
            let body: Value = serde_json::from_slice(body).unwrap();
            let ids: BTreeSet<Uuid> = body["data"]["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["transition_id"].as_str().unwrap().parse().unwrap())
                .collect();
            let key = headers["webhook-id"].to_str().unwrap().to_owned();
            let earlier = by_key.entry(key.clone()).or_insert_with(|| ids.clone());
            assert_eq!(
                earlier, &ids,
                "webhook-id {key} always names the same transitions"
            );
            delivered.extend(ids);
        }
        if delivered.is_superset(&want) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} transitions delivered",
            delivered.intersection(&want).count(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Every attempt is recorded; the successful ones at least once per notification.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent: u64 = db
            .client
            .query("SELECT count() FROM deliveries FINAL WHERE status = 'sent' AND channel_id = 'hook'")
            .fetch_one()
            .await
            .unwrap();
        let requests = seen.lock().unwrap().len() as u64;
        if sent > 0 && sent <= requests {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries table: {sent} sent rows"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if let Some(running) = stage {
        running.abort();
    }
    db.drop_database().await;
}
