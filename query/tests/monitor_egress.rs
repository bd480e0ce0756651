//! Monitor writes are held to the probes' egress policy: a literal non-public host or a
//! `${VAR}` reference the policy does not allow is a 422 naming the field, on create and on
//! replace; what the operator allow-lists is accepted. Kafka from rdkafka's in-process mock
//! cluster, ClickHouse never reached.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use vigil_query::{AppState, Config, router};
use vigil_schema::EgressPolicy;

async fn call(state: &AppState, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn monitor(id: &str, url: &str, headers: Value) -> Value {
    json!({"id": id, "name": id, "url": url, "headers": headers})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_writes_are_checked_against_the_egress_policy() {
    let cluster = MockCluster::new(1).unwrap();
    let mut config = Config::default();
    config.kafka.brokers = cluster.bootstrap_servers();
    config.kafka.topic_prefix = "t".into();
    config.kafka.request_timeout = Duration::from_secs(5);
    config.clickhouse.url = "http://127.0.0.1:9".into();
    config.egress = EgressPolicy {
        allow: vec!["127.0.0.1:8090".parse().unwrap()],
        env_allow: vec!["TENANT_ID".into()],
    };
    for topic in config.topics().specs() {
        cluster
            .create_topic(&topic.name, topic.partitions, 1)
            .unwrap();
    }
    let token = CancellationToken::new();
    let _stop = token.clone().drop_guard();
    let service = vigil_query::connect(&config, &token).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !service.view().is_caught_up() {
        assert!(std::time::Instant::now() < deadline, "view never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let state = AppState::new(service, config, None);
    let field = |body: &Value| body["errors"][0]["field"].as_str().unwrap().to_owned();

    for (url, headers, bad_field) in [
        ("http://169.254.169.254/latest/meta-data/", json!({}), "url"),
        ("http://127.0.0.1:8123/?query=SELECT%201", json!({}), "url"),
        ("http://10.0.0.1/", json!({}), "url"),
        ("http://[::1]:8123/", json!({}), "url"),
        ("http://localhost:8090/", json!({}), "url"),
        (
            "https://collector.example/",
            json!({"X-Key": "${VIGIL_API_KEY}"}),
            "headers.X-Key",
        ),
    ] {
        let body = monitor("blocked", url, headers);
        let (status, body) = call(&state, Method::POST, "/api/v1/monitors", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(field(&body), bad_field, "{body}");
    }

    let allowed = monitor(
        "demo",
        "http://127.0.0.1:8090/api/fast",
        json!({"X-Tenant": "${TENANT_ID}", "X-Key": "${secret:demo-key}"}),
    );
    let (status, body) = call(&state, Method::POST, "/api/v1/monitors", allowed).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let moved = monitor("demo", "http://127.0.0.1:8123/", json!({}));
    let (status, body) = call(&state, Method::PUT, "/api/v1/monitors/demo", moved).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field(&body), "url");
}
