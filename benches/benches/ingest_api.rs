//! Ingestion API throughput against the local broker: events per second accepted (202, so
//! acknowledged by Kafka) with batches of 1,000 JSON events, next to a bare rdkafka producer
//! writing the same encoded events to the same broker with the same settings.
//!
//! ```sh
//! scripts/stack up
//! cargo bench -p vigil-benches --bench ingest_api
//! VIGIL_BENCH_EVENTS=200000 VIGIL_BENCH_CLIENTS=4 cargo bench -p vigil-benches --bench ingest_api
//! ```
//!
//! Each run creates its own topics (`bench{millis}.*`).

#![allow(clippy::unwrap_used, reason = "bench binary")]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use vigil_ingest::api::ApiState;
use vigil_ingest::config::{ApiConfig, ProducerConfig};
use vigil_ingest::{KafkaConnection, MonitorView, ProbeProducer};
use vigil_schema::{ProbeResult, Timestamp, TopicNames};

const BATCH: usize = 1000;
const KEY: &str = "bench-key";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event(i: usize) -> ProbeResult {
    let now = Timestamp::now().as_millis();
    serde_json::from_value(serde_json::json!({
        "event_id": uuid::Uuid::now_v7(), "monitor_id": format!("bench-{}", i % 500),
        "region": "bench", "agent": "bench-agent", "scheduled_at": now, "event_time": now,
        "method": "GET", "url": "https://api.example.com/health", "status_code": 200,
        "outcome": "ok", "error": null,
        "timings": {"dns_us": 812, "connect_us": 1_204, "tls_us": 6_311, "ttfb_us": 21_090,
                    "total_us": 23_777},
        "response_size": 1_342,
        "assertions": [{"condition": "[STATUS] == 200", "passed": true, "actual": "200"}],
        "tls_cert_expiry": now + 90 * 86_400_000_i64,
    }))
    .unwrap()
}

async fn bare_producer(brokers: &str, topic: &str, events: &[ProbeResult]) -> f64 {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "2000000")
        .create()
        .unwrap();
    let payloads: Vec<Vec<u8>> = events
        .iter()
        .map(|e| vigil_schema::encode(e).unwrap())
        .collect();
    let start = Instant::now();
    let mut pending = Vec::with_capacity(events.len());
    for (event, payload) in events.iter().zip(&payloads) {
        let record = FutureRecord::<str, [u8]>::to(topic)
            .key(&event.monitor_id)
            .payload(payload);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for delivery in pending {
        delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    events.len() as f64 / start.elapsed().as_secs_f64()
}

async fn api(kafka: &KafkaConnection, events: &[ProbeResult], clients: usize) -> f64 {
    let producer = ProbeProducer::new(kafka, &ProducerConfig::default()).unwrap();
    let config = ApiConfig {
        enabled: true,
        api_keys: vec![KEY.into()],
        // Limits far above the load: measured with the limiter on, not throttled by it.
        rate_limit: vigil_schema::ratelimit::RateLimitConfig {
            per_key: 1_000_000,
            per_key_burst: 1_000_000,
            per_address: 1_000_000,
            per_address_burst: 1_000_000,
        },
        ..ApiConfig::default()
    };
    let state = ApiState::new(config, producer, MonitorView::from_specs([]), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let server = tokio::spawn(vigil_ingest::api::serve(listener, state, token.clone()));

    let bodies: Arc<Vec<Bytes>> = Arc::new(
        events
            .chunks(BATCH)
            .map(|chunk| Bytes::from(serde_json::to_vec(chunk).unwrap()))
            .collect(),
    );
    let start = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let bodies = Arc::clone(&bodies);
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            for body in bodies.iter().skip(client).step_by(clients) {
                let request = hyper::Request::post("/v1/events")
                    .header("host", addr.to_string())
                    .header("authorization", format!("Bearer {KEY}"))
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))
                    .unwrap();
                let response = sender.send_request(request).await.unwrap();
                let status = response.status();
                let text = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(status, 202, "{}", String::from_utf8_lossy(&text));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rate = events.len() as f64 / start.elapsed().as_secs_f64();
    token.cancel();
    server.await.unwrap().unwrap();
    rate
}

fn main() {
    let total = env("VIGIL_BENCH_EVENTS", 200_000) / BATCH * BATCH;
    let clients = env("VIGIL_BENCH_CLIENTS", 4).max(1);
    let brokers = std::env::var("VIGIL_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bare_topics = TopicNames::with_prefix(&format!("bench{millis}b"));
        let api_topics = TopicNames::with_prefix(&format!("bench{millis}a"));
        let connection = |topics: &TopicNames| KafkaConnection {
            brokers: brokers.clone(),
            topics: topics.clone(),
            request_timeout: Duration::from_secs(10),
        };
        let (bare_kafka, api_kafka) = (connection(&bare_topics), connection(&api_topics));
        vigil_ingest::ensure_topics(&bare_kafka, 1).await.unwrap();
        vigil_ingest::ensure_topics(&api_kafka, 1).await.unwrap();
        let events: Vec<ProbeResult> = (0..total).map(event).collect();

        let bare = bare_producer(&brokers, &bare_topics.probes, &events).await;
        let through_api = api(&api_kafka, &events, clients).await;
        println!("ingest_api: {total} events, batches of {BATCH}, {clients} concurrent clients");
        println!("  bare rdkafka producer: {bare:>9.0} events/s");
        println!(
            "  ingestion API:         {through_api:>9.0} events/s ({:.0}% of bare)",
            100.0 * through_api / bare
        );
    });
}
