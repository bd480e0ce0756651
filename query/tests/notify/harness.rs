//! The harness of the notification configuration handler tests: the whole router driven with
//! `oneshot`, Kafka from rdkafka's in-process mock cluster (writes go through the real
//! producer, topics and views), ClickHouse pointed at a closed port (never reached by these
//! routes).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use rdkafka::mocking::MockCluster;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use vigil_notify::SecretResolver;
use vigil_query::auth::Role;
use vigil_query::config::ApiKeyConfig;
use vigil_query::{AppState, Config, router};

pub(crate) const VIEWER: &str = "viewer-key-0123456789";
pub(crate) const EDITOR: &str = "editor-key-0123456789";
pub(crate) const ADMIN: &str = "admin-key-0123456789";

pub(crate) struct Harness {
    state: AppState,
    _token: tokio_util::sync::DropGuard,
}

pub(crate) async fn harness(
    cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
) -> Harness {
    harness_with(cluster, |_| {}, None).await
}

/// A harness whose configuration `configure` adjusts, resolving secrets from `secrets`.
pub(crate) async fn harness_with(
    cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    configure: impl FnOnce(&mut Config),
    secrets: Option<Arc<dyn SecretResolver>>,
) -> Harness {
    let mut config = Config::default();
    config.kafka.brokers = cluster.bootstrap_servers();
    config.kafka.topic_prefix = "t".into();
    config.kafka.request_timeout = Duration::from_secs(5);
    config.clickhouse.url = "http://127.0.0.1:9".into();
    config.auth.keys = [
        ("dash", VIEWER, Role::Viewer),
        ("ops", EDITOR, Role::Editor),
        ("root", ADMIN, Role::Admin),
    ]
    .into_iter()
    .map(|(name, key, role)| ApiKeyConfig {
        name: name.into(),
        key: key.into(),
        role,
        expires: None,
    })
    .collect();
    for topic in config.topics().specs() {
        cluster
            .create_topic(&topic.name, topic.partitions, 1)
            .unwrap();
    }
    configure(&mut config);
    let token = CancellationToken::new();
    let service = vigil_query::connect(&config, &token).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !service.notify_views().is_caught_up() {
        assert!(
            std::time::Instant::now() < deadline,
            "views never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut state = AppState::new(service, config, None);
    if let Some(secrets) = secrets {
        state = state.with_secrets(secrets);
    }
    Harness {
        state,
        _token: token.drop_guard(),
    }
}

impl Harness {
    /// The router's state.
    #[allow(dead_code, reason = "not every test file reads the state")]
    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }
}

/// A POST of raw `body` with `headers`, without an API key.
#[allow(dead_code, reason = "not every test file posts raw bodies")]
pub(crate) async fn post_raw(
    h: &Harness,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(Method::POST).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::from(body.to_vec())).unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

pub(crate) async fn call(
    h: &Harness,
    method: Method,
    uri: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let request = match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, value)
}

pub(crate) fn ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

pub(crate) fn error_fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect()
}
