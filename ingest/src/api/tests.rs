use std::io::Write as _;

use axum::body::to_bytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Message};
use tower::ServiceExt as _;
use vigil_schema::TopicNames;

use super::*;
use crate::KafkaConnection;
use crate::config::ProducerConfig;

const KEY: &str = "secret-key";

struct Fixture {
    mock: MockCluster<'static, DefaultProducerContext>,
    topics: TopicNames,
    state: ApiState,
}

fn fixture(config: ApiConfig) -> Fixture {
    let mock = MockCluster::new(1).unwrap();
    let topics = TopicNames::with_prefix("api-test");
    mock.create_topic(&topics.probes, 2, 1).unwrap();
    let kafka = KafkaConnection {
        brokers: mock.bootstrap_servers(),
        topics: topics.clone(),
        request_timeout: Duration::from_secs(5),
    };
    let producer = ProbeProducer::new(&kafka, &ProducerConfig::default()).unwrap();
    let view = MonitorView::from_specs([serde_json::from_value(serde_json::json!({
        "id": "known", "name": "Known", "url": "http://k/",
    }))
    .unwrap()]);
    let render: RenderMetrics = Arc::new(|| "vigil_test 1\n".to_owned());
    let config = ApiConfig {
        enabled: true,
        api_keys: vec![KEY.into()],
        ..config
    };
    let state = ApiState::new(config, producer, view, Some(render));
    Fixture {
        mock,
        topics,
        state,
    }
}

fn event(monitor: &str) -> serde_json::Value {
    let now = Timestamp::now().as_millis();
    serde_json::json!({
        "event_id": uuid::Uuid::now_v7(), "monitor_id": monitor, "region": "edge",
        "agent": "agent-1", "scheduled_at": now, "event_time": now, "method": "GET",
        "url": "https://x/", "status_code": 200, "outcome": "ok", "error": null,
        "timings": {"dns_us": 1, "connect_us": 2, "tls_us": 3, "ttfb_us": 4, "total_us": 20},
        "response_size": 5, "assertions": [], "tls_cert_expiry": null,
    })
}

fn post(body: Vec<u8>, headers: &[(&str, &str)]) -> Request {
    let mut builder = Request::post("/v1/events").header("authorization", format!("Bearer {KEY}"));
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Body::from(body)).unwrap()
}

async fn call(state: &ApiState, request: Request) -> (StatusCode, String, serde_json::Value) {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, content_type, json)
}

fn read_back(f: &Fixture, expected: usize) -> Vec<ProbeResult> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", f.mock.bootstrap_servers())
        .set("group.id", "api-test")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&f.topics.probes]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < expected && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let event: ProbeResult = vigil_schema::decode(m.payload().unwrap()).unwrap();
            assert_eq!(m.key(), Some(event.monitor_id.as_bytes()));
            got.push(event);
        }
    }
    got
}

#[tokio::test]
async fn accepts_a_json_array_after_kafka_acks_and_flags_unknown_monitors() {
    let f = fixture(ApiConfig::default());
    let events = vec![event("known"), event("stranger"), event("stranger")];
    let body = serde_json::to_vec(&events).unwrap();
    let (status, content_type, json) = call(
        &f.state,
        post(body, &[("content-type", "application/json")]),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    assert_eq!(content_type, "application/json");
    assert_eq!(
        json,
        serde_json::json!({"accepted": 3, "unknown_monitors": ["stranger"]})
    );
    let stored = read_back(&f, 3);
    assert_eq!(stored.len(), 3);
    let mut ids: Vec<String> = stored.iter().map(|e| e.event_id.to_string()).collect();
    let mut sent: Vec<String> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    sent.sort();
    assert_eq!(ids, sent);
}

#[tokio::test]
async fn rejects_invalid_events_individually() {
    let f = fixture(ApiConfig::default());
    let mut future = event("known");
    future["event_time"] = serde_json::json!(Timestamp::now().as_millis() + 3_600_000);
    let mut bad_status = event("known");
    bad_status["status_code"] = serde_json::json!(700);
    let mut bad_id = event("known");
    bad_id["monitor_id"] = serde_json::json!("Not A Slug");
    let mut bad_timing = event("known");
    bad_timing["timings"]["ttfb_us"] = serde_json::json!(999);
    let lines = [
        event("known").to_string(),
        "{not json".to_owned(),
        serde_json::json!({"monitor_id": "known"}).to_string(),
        future.to_string(),
        bad_status.to_string(),
        String::new(),
        bad_id.to_string(),
        bad_timing.to_string(),
        event("known").to_string(),
    ];
    let body = lines.join("\n").into_bytes();
    let (status, content_type, json) = call(
        &f.state,
        post(body, &[("content-type", "application/x-ndjson")]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(json["type"], "urn:vigil:problem:invalid-events");
    assert_eq!(json["status"], 422);
    assert_eq!(json["accepted"], serde_json::json!([0, 7]));
    let invalid: Vec<(u64, String)> = json["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let indices: Vec<u64> = invalid.iter().map(|e| e.0).collect();
    assert_eq!(
        indices,
        [1, 2, 3, 4, 5, 6],
        "blank lines are skipped: {invalid:?}"
    );
    assert!(invalid[0].1.starts_with("invalid JSON: "), "{invalid:?}");
    assert!(
        invalid[1].1.starts_with("missing field `event_id`"),
        "{invalid:?}"
    );
    assert!(invalid[2].1.starts_with("event_time: "), "{invalid:?}");
    assert!(
        invalid[2].1.ends_with("is more than 5m in the future"),
        "{invalid:?}"
    );
    assert_eq!(invalid[3].1, "status_code: must be 100–599, got 700");
    assert!(
        invalid[4].1.starts_with("monitor_id: must be 1–64"),
        "{invalid:?}"
    );
    assert_eq!(invalid[5].1, "timings.ttfb_us: exceeds total_us (20)");
    assert_eq!(read_back(&f, 2).len(), 2);
}

#[tokio::test]
async fn gzip_bodies_and_size_limits() {
    let f = fixture(ApiConfig {
        max_body_bytes: 4096,
        max_batch_events: 3,
        ..ApiConfig::default()
    });
    let gzip = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let body = serde_json::to_vec(&[event("known"), event("known")]).unwrap();
    let (status, _, json) =
        call(&f.state, post(gzip(&body), &[("content-encoding", "gzip")])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    assert_eq!(json["accepted"], 2);

    let four = serde_json::to_vec(&vec![event("known"); 4]).unwrap();
    let (status, content_type, json) = call(&f.state, post(four, &[])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(json["detail"], "batch has 4 events, the limit is 3");

    let (status, _, json) = call(&f.state, post(vec![b' '; 5000], &[])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json["detail"], "request body exceeds 4096 bytes");

    let bomb = gzip(&vec![b' '; 100_000]);
    assert!(bomb.len() < 4096);
    let (status, _, json) = call(&f.state, post(bomb, &[("content-encoding", "gzip")])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        json["detail"],
        "decompressed request body exceeds 4096 bytes"
    );

    let (status, _, json) = call(
        &f.state,
        post(b"{}".to_vec(), &[("content-encoding", "br")]),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{json}");
    let (status, _, json) = call(&f.state, post(b"[1,".to_vec(), &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["detail"]
            .as_str()
            .unwrap()
            .starts_with("body is not a JSON array")
    );
}

#[tokio::test]
async fn api_keys_are_required() {
    let f = fixture(ApiConfig::default());
    let body = serde_json::to_vec(&[event("known")]).unwrap();
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("x-api-key", "")],
    ] {
        let mut request = Request::post("/v1/events");
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let response = router(f.state.clone())
            .oneshot(request.body(Body::from(body.clone())).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
    let request = Request::post("/v1/events")
        .header("x-api-key", KEY)
        .body(Body::from(body))
        .unwrap();
    let (status, _, _) = call(&f.state, request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn kafka_down_means_503_listing_failures() {
    let f = fixture(ApiConfig {
        ack_timeout: Duration::from_millis(500),
        ..ApiConfig::default()
    });
    f.mock.broker_down(1).unwrap();
    let body = serde_json::to_vec(&[event("known"), event("known")]).unwrap();
    let (status, content_type, json) = call(&f.state, post(body, &[])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(json["accepted"], serde_json::json!([]));
    let failed = json["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["index"], 0);
    assert_eq!(failed[0]["reason"], "kafka: not acknowledged within 500ms");
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let f = fixture(ApiConfig::default());
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let response = router(f.state.clone())
        .oneshot(get("/healthz"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = router(f.state.clone())
        .oneshot(get("/readyz"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = router(f.state.clone())
        .oneshot(get("/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert_eq!(&body[..], b"vigil_test 1\n");

    let loading = ApiState::new(
        f.state.inner.config.clone(),
        f.state.inner.producer.clone(),
        MonitorView::new(),
        None,
    );
    let (status, _, json) = call(&loading, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json["detail"], "the monitors topic is still loading");
    let response = router(loading).oneshot(get("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
