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

use crate::common::{TestDb, VigilProcess, kafka_brokers, kafka_config, unique_name};

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

async fn topics_and_db() -> (TopicNames, TestDb) {
    topics_and_db_named(&unique_name("it", "notify")).await
}

async fn topics_and_db_named(prefix: &str) -> (TopicNames, TestDb) {
    crate::common::init_logs();
    let names = TopicNames::with_prefix(prefix);
    let admin: AdminClient<DefaultClientContext> = kafka_config().create().unwrap();
    vigil_schema::kafka::ensure_topics(&admin, &names.specs(), Duration::from_secs(10), 1)
        .await
        .unwrap();
    let db = TestDb::new("notify").await;
    vigil_schema::migration::migrate(&crate::common::clickhouse(), &db.name)
        .await
        .unwrap();
    (names, db)
}

/// The transitions in the requests so far; checks every signature with an independent
/// implementation, and that a `webhook-id` always names the same transitions.
fn delivered(seen: &Seen) -> BTreeSet<Uuid> {
    let verifier = Webhook::new(SECRET).unwrap();
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
    delivered
}

async fn wait_until_delivered(seen: &Seen, want: &BTreeSet<Uuid>) {
    // Generous: every step also writes the deliveries table, which is slow while other tests
    // load the same ClickHouse engine.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let delivered = delivered(seen);
        if delivered.is_superset(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} transitions delivered",
            delivered.intersection(want).count(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn publish(producer: &FutureProducer, topic: String, key: String, value: Vec<u8>) {
    producer
        .send(
            FutureRecord::to(&topic).key(&key).payload(&value),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_in_a_burst_loses_no_transition_and_keeps_idempotency_keys() {
    let (names, db) = topics_and_db().await;

    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let producer: FutureProducer = kafka_config().set("acks", "all").create().unwrap();
    let send = |topic: String, key: String, value: Vec<u8>| publish(&producer, topic, key, value);
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
    wait_until_delivered(&seen, &want).await;
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

/// The JSON bodies the receiver got.
fn bodies(seen: &Seen) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(_, body)| serde_json::from_slice(body).unwrap())
        .collect()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_answering_410_is_disabled_with_an_alert_of_its_own() {
    let (names, db) = topics_and_db().await;
    let seen: Seen = Arc::default();
    let gone_hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hits = Arc::clone(&gone_hits);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .route(
            "/gone",
            axum::routing::post(move || {
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { (axum::http::StatusCode::GONE, "this hook was removed") }
            }),
        )
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let producer: FutureProducer = kafka_config().set("acks", "all").create().unwrap();
    let channel = |id: &str, path: &str| -> ChannelSpec {
        serde_json::from_value(json!({"id": id, "kind": {"webhook": {
            "url": format!("{base}{path}"), "secret": "${secret:HOOK}"}}}))
        .unwrap()
    };
    for spec in [channel("hook", "/hook"), channel("old", "/gone")] {
        publish(
            &producer,
            names.channels.clone(),
            spec.id.clone(),
            encode(&spec).unwrap(),
        )
        .await;
    }
    let routes: RouteSpec = serde_json::from_value(json!({
        "receiver": ["old", "hook"], "group_by": ["rule", "monitor"], "group_wait": "0s",
        "group_interval": "1s"}))
    .unwrap();
    publish(
        &producer,
        names.routes.clone(),
        "root".into(),
        encode(&routes).unwrap(),
    )
    .await;

    let (ready, mut started) = tokio::sync::watch::channel(false);
    let stage = tokio::spawn(vigil_notify::stage::run(
        settings(&names, &db),
        CancellationToken::new(),
        ready,
    ));
    tokio::time::timeout(Duration::from_secs(60), started.wait_for(|r| *r))
        .await
        .unwrap()
        .unwrap();
    let t0 = Timestamp::now().as_millis();
    let first = transition(1, AlertState::Firing, t0);
    publish(
        &producer,
        names.alerts.clone(),
        "down".into(),
        encode(&first).unwrap(),
    )
    .await;

    // The 410 disables `old` at once (no retry) and raises the notifier's own alert, which the
    // routes bring to `hook`.
    let own = |b: &Value, state: &str| {
        b["type"] == format!("alert.{state}")
            && b["data"]["alerts"][0]["rule"] == "vigil.channel-disabled"
    };
    eventually("the channel-disabled alert at the hook", || {
        bodies(&seen).iter().any(|b| own(b, "firing"))
    })
    .await;
    let alert = bodies(&seen)
        .into_iter()
        .find(|b| own(b, "firing"))
        .unwrap();
    let a = &alert["data"]["alerts"][0];
    assert_eq!(a["monitor"], "channel:old");
    assert_eq!(a["kind"], "channel_disabled");
    assert_eq!(a["labels"]["channel"], "old");
    assert_eq!(a["severity"], "critical");
    assert!(
        a["summary"]
            .as_str()
            .unwrap()
            .contains("this hook was removed"),
        "{a}"
    );
    assert_eq!(gone_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(
        bodies(&seen)
            .iter()
            .any(|b| b["data"]["alerts"][0]["rule"] == "down")
    );

    // Nothing more goes to the disabled channel.
    let second = transition(2, AlertState::Firing, t0 + 1);
    publish(
        &producer,
        names.alerts.clone(),
        "down".into(),
        encode(&second).unwrap(),
    )
    .await;
    eventually("the second alert at the hook", || {
        bodies(&seen)
            .iter()
            .any(|b| b["data"]["alerts"][0]["monitor"] == "m002")
    })
    .await;
    assert_eq!(gone_hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A fixed URL enables the channel again and resolves the alert.
    let fixed = channel("old", "/hook");
    publish(
        &producer,
        names.channels.clone(),
        "old".into(),
        encode(&fixed).unwrap(),
    )
    .await;
    eventually("the resolve of the channel-disabled alert", || {
        bodies(&seen).iter().any(|b| own(b, "resolved"))
    })
    .await;
    let third = transition(3, AlertState::Firing, t0 + 2);
    publish(
        &producer,
        names.alerts.clone(),
        "down".into(),
        encode(&third).unwrap(),
    )
    .await;
    eventually("the third alert on both channels", || {
        bodies(&seen)
            .iter()
            .filter(|b| b["data"]["alerts"][0]["monitor"] == "m003")
            .count()
            == 2
    })
    .await;

    // Both of its transitions are in the alerts table, and the 410 in the deliveries table.
    let rows: Vec<(String, String)> = db
        .client
        .query(
            "SELECT from_state, to_state FROM alerts FINAL \
             WHERE rule_id = 'vigil.channel-disabled' AND monitor_id = 'channel:old' ORDER BY at",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        rows,
        [
            ("ok".to_owned(), "firing".to_owned()),
            ("firing".to_owned(), "ok".to_owned())
        ]
    );
    let disabled: u64 = db
        .client
        .query(
            "SELECT count() FROM deliveries FINAL WHERE channel_id = 'old' AND status = 'disabled'",
        )
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(disabled, 1);
    stage.abort();
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_vigil_notify_loses_nothing_and_reminders_continue() {
    let prefix = unique_name("it", "notify_kill");
    let (names, db) = topics_and_db_named(&prefix).await;
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let producer: FutureProducer = kafka_config().set("acks", "all").create().unwrap();
    let hook: ChannelSpec = serde_json::from_value(json!({"id": "hook", "kind": {"webhook": {
        "url": format!("{base}/hook"), "secret": "${secret:HOOK}"}}}))
    .unwrap();
    publish(
        &producer,
        names.channels.clone(),
        "hook".into(),
        encode(&hook).unwrap(),
    )
    .await;
    let routes: RouteSpec = serde_json::from_value(json!({
        "receiver": ["hook"], "group_by": ["monitor"], "group_wait": "0s",
        "group_interval": "1s", "repeat_interval": "3s"}))
    .unwrap();
    publish(
        &producer,
        names.routes.clone(),
        "root".into(),
        encode(&routes).unwrap(),
    )
    .await;

    let vigil = VigilProcess::new(&prefix, &db.name, "").env("VIGIL_SECRET_HOOK", SECRET);
    // A port free now (the restarted process listens on the same one).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let readyz = format!("http://{listen}/readyz");
    // Started, and ready: configuration loaded and state restored.
    let spawn = || async {
        let process = vigil
            .command(&["notify", "--listen", &listen])
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = reqwest::get(&readyz)
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return process;
            }
            assert!(
                Instant::now() < deadline,
                "vigil notify not ready; log in {}",
                vigil.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };

    // 60 alerts fire, then 40 of them resolve, in bursts of 20; `vigil notify` is killed with
    // SIGKILL in the middle of every burst and started again.
    let t0 = Timestamp::now().as_millis();
    let all: Vec<AlertTransition> = (0..60)
        .map(|a| transition(a, AlertState::Firing, t0 + i64::from(a)))
        .chain((0..40).map(|a| transition(a, AlertState::Ok, t0 + 60_000 + i64::from(a))))
        .collect();
    let mut seed = 0x5EED_u64;
    let mut process = spawn().await;
    for chunk in all.chunks(20) {
        for (i, t) in chunk.iter().enumerate() {
            publish(
                &producer,
                names.alerts.clone(),
                t.rule_id.clone(),
                encode(t).unwrap(),
            )
            .await;
            if i == 10 {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                tokio::time::sleep(Duration::from_millis(300 + (seed >> 33) % 900)).await;
                process.start_kill().unwrap();
                let status = process.wait().await.unwrap();
                assert_eq!(
                    std::os::unix::process::ExitStatusExt::signal(&status),
                    Some(9),
                    "killed by SIGKILL; log in {}",
                    vigil.dir.display()
                );
                process = spawn().await;
            }
        }
    }
    let want: BTreeSet<Uuid> = all.iter().map(|t| t.transition_id).collect();
    wait_until_delivered(&seen, &want).await;

    // Reminder timers continue from the restored state: every alert still firing is reminded
    // (reason `repeat`) after the last restart, and no resolved one is.
    let restarted = seen.lock().unwrap().len();
    eventually("reminders of the 20 alerts still firing", || {
        let reminded: BTreeSet<String> = bodies(&seen)[restarted..]
            .iter()
            .filter(|b| b["data"]["reason"] == "repeat")
            .flat_map(|b| b["data"]["alerts"].as_array().unwrap().clone())
            .map(|a| a["monitor"].as_str().unwrap().to_owned())
            .collect();
        let want: BTreeSet<String> = (40..60).map(|a| format!("m{a:03}")).collect();
        assert!(
            reminded.iter().all(|m| want.contains(m)),
            "a resolved alert was reminded: {reminded:?}"
        );
        reminded == want
    })
    .await;
    process.start_kill().unwrap();
    let _killed = process.wait().await;
    db.drop_database().await;
}
