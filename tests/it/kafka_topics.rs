//! Topic creation on the local broker, and events round-tripping through it in their envelope.

use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use uuid::Uuid;
use vigil_schema::kafka::ensure_topics;
use vigil_schema::{Outcome, ProbeResult, Timestamp, Timings, TopicNames};

use crate::common::{kafka_config, unique_name};

const TIMEOUT: Duration = Duration::from_secs(10);

fn admin() -> AdminClient<DefaultClientContext> {
    kafka_config().create().unwrap()
}

#[tokio::test]
async fn creates_missing_topics_once() {
    let names = TopicNames::with_prefix(&unique_name("it", "topics"));
    let specs = names.specs();
    let created = ensure_topics(&admin(), &specs, TIMEOUT, 1).await.unwrap();
    let mut expected: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let mut got = created.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);

    let again = ensure_topics(&admin(), &specs, TIMEOUT, 1).await.unwrap();
    assert!(again.is_empty(), "{again:?}");

    let metadata = admin()
        .inner()
        .fetch_metadata(Some(&names.probes), TIMEOUT)
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 12);
}

#[tokio::test]
async fn probe_results_round_trip_through_the_broker() {
    let names = TopicNames::with_prefix(&unique_name("it", "roundtrip"));
    ensure_topics(&admin(), &names.specs(), TIMEOUT, 1)
        .await
        .unwrap();

    let producer: FutureProducer = kafka_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .unwrap();
    let events: Vec<ProbeResult> = (0..20)
        .map(|i| ProbeResult {
            event_id: Uuid::now_v7(),
            monitor_id: "checkout".into(),
            region: "local".into(),
            agent: "it".into(),
            scheduled_at: Timestamp(1_700_000_000_000 + i * 1_000),
            event_time: Timestamp(1_700_000_000_003 + i * 1_000),
            method: "GET".into(),
            url: "http://127.0.0.1:1/health".into(),
            status_code: Some(200),
            outcome: Outcome::Ok,
            error: None,
            timings: Timings {
                total_us: 1_000 + i as u64,
                ..Timings::default()
            },
            response_size: Some(2),
            assertions: Vec::new(),
            tls_cert_expiry: None,
            steps: Vec::new(),
        })
        .collect();
    for event in &events {
        let payload = vigil_schema::encode(event).unwrap();
        producer
            .send(
                FutureRecord::to(&names.probes)
                    .key(&event.monitor_id)
                    .payload(&payload),
                TIMEOUT,
            )
            .await
            .unwrap();
    }

    let consumer: StreamConsumer = kafka_config()
        .set("group.id", unique_name("it", "group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&names.probes]).unwrap();
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.len() < events.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of 20 events came back",
            received.len()
        );
        let Ok(msg) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await else {
            continue;
        };
        let msg = msg.unwrap();
        assert_eq!(msg.key(), Some(&b"checkout"[..]));
        received.push(vigil_schema::decode::<ProbeResult>(msg.payload().unwrap()).unwrap());
    }
    // One key, so one partition, so producer order.
    assert_eq!(received, events);
}
