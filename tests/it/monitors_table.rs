//! The `monitors` table materialized from the monitors topic by the processor's follower:
//! monitors written the way `vigil apply` writes them appear with their latest spec (version =
//! offset), deletes stay as rows with `deleted = 1`, and literal secrets never reach the table.

use std::time::{Duration, Instant};

use clickhouse::Row;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use vigil_schema::{MonitorSpec, TopicNames, encode};

use crate::common::{TestDb, kafka_brokers, kafka_config, unique_name};

#[derive(Debug, Row, Deserialize, PartialEq)]
struct MonitorRow {
    monitor_id: String,
    name: String,
    tags: Vec<String>,
    url: String,
    interval_ms: u64,
    deleted: bool,
    spec: String,
}

fn spec(id: &str, name: &str, tags: &[&str]) -> MonitorSpec {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": name, "tags": tags, "interval": "15s",
        "url": format!("https://ops:pa55word@{id}.example.com/health"),
        "headers": {"X-Api-Key": "literal-key"},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_topic_is_materialized_with_deletes_and_no_secrets() {
    let names = TopicNames::with_prefix(&unique_name("it", "monitors_table"));
    let admin: AdminClient<DefaultClientContext> = kafka_config().create().unwrap();
    vigil_schema::kafka::ensure_topics(&admin, &names.specs(), Duration::from_secs(10), 1)
        .await
        .unwrap();
    let db = TestDb::new("monitors_table").await;
    vigil_schema::migration::migrate(&crate::common::clickhouse(), &db.name)
        .await
        .unwrap();
    let producer: FutureProducer = kafka_config().set("acks", "all").create().unwrap();
    let send = |key: &str, value: Option<Vec<u8>>| {
        let producer = producer.clone();
        let (topic, key) = (names.monitors.clone(), key.to_owned());
        async move {
            let mut record = FutureRecord::<String, Vec<u8>>::to(&topic).key(&key);
            if let Some(v) = &value {
                record = record.payload(v);
            }
            producer
                .send(record, Duration::from_secs(10))
                .await
                .unwrap();
        }
    };
    send("a", Some(encode(&spec("a", "A", &["x"])).unwrap())).await;
    send("b", Some(encode(&spec("b", "B", &["y"])).unwrap())).await;
    send(
        "a",
        Some(encode(&spec("a", "A renamed", &["x", "z"])).unwrap()),
    )
    .await;
    send("b", None).await;

    let token = CancellationToken::new();
    let follower = {
        let (topic, client, token) = (names.monitors.clone(), db.client.clone(), token.clone());
        tokio::spawn(async move {
            vigil_processor::monitors_table::run(&kafka_brokers(), &topic, client, token).await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows: Vec<MonitorRow> = db
            .client
            .query(
                "SELECT monitor_id, name, tags, url, interval_ms, deleted, spec \
                 FROM monitors FINAL ORDER BY monitor_id",
            )
            .fetch_all()
            .await
            .unwrap();
        if rows.len() == 2 && rows[1].deleted {
            break rows;
        }
        assert!(Instant::now() < deadline, "monitors table: {rows:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    token.cancel();
    follower.await.unwrap().unwrap();
    assert_eq!(rows[0].monitor_id, "a");
    assert_eq!(rows[0].name, "A renamed");
    assert_eq!(rows[0].tags, ["x", "z"]);
    assert_eq!(rows[0].url, "https://[redacted]@a.example.com/health");
    assert_eq!(rows[0].interval_ms, 15_000);
    assert!(!rows[0].deleted);
    assert!(!rows[0].spec.contains("pa55word") && !rows[0].spec.contains("literal-key"));
    assert_eq!((rows[1].monitor_id.as_str(), rows[1].deleted), ("b", true));
    db.drop_database().await;
}
