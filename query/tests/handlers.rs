//! Handler tests: the whole router driven with `oneshot`, Kafka from rdkafka's in-process mock
//! cluster (monitor writes go through the real producer, topic and view), ClickHouse pointed at
//! a closed port (these tests only reach it through `/readyz`).

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use vigil_query::auth::Role;
use vigil_query::config::ApiKeyConfig;
use vigil_query::{AppState, Config, router};

const VIEWER: &str = "viewer-key-0123456789";
const EDITOR: &str = "editor-key-0123456789";

struct Harness {
    state: AppState,
    _token: tokio_util::sync::DropGuard,
}

async fn harness(cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>) -> Harness {
    let mut config = Config::default();
    config.kafka.brokers = cluster.bootstrap_servers();
    config.kafka.topic_prefix = "t".into();
    config.kafka.request_timeout = Duration::from_secs(5);
    config.clickhouse.url = "http://127.0.0.1:9".into();
    // Monitor writes may reference this runner variable (`${API_KEY}`); no other.
    config.egress.env_allow = vec!["API_KEY".into()];
    config.auth.keys = vec![
        ApiKeyConfig {
            name: "dash".into(),
            key: VIEWER.into(),
            role: Role::Viewer,
            expires: None,
        },
        ApiKeyConfig {
            name: "ops".into(),
            key: EDITOR.into(),
            role: Role::Editor,
            expires: None,
        },
    ];
    config.graphql.max_depth = 4;
    config.graphql.max_query_bytes = 400;
    for topic in config.topics().specs() {
        cluster
            .create_topic(&topic.name, topic.partitions, 1)
            .unwrap();
    }
    let token = CancellationToken::new();
    let service = vigil_query::connect(&config, &token).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !service.view().is_caught_up() || !service.hub().is_ready() {
        assert!(std::time::Instant::now() < deadline, "view never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Harness {
        state: AppState::new(service, config, None),
        _token: token.drop_guard(),
    }
}

async fn call(
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

fn spec(id: &str, tags: &[&str]) -> Value {
    json!({"id": id, "name": format!("Name {id}"), "url": "https://example.com/health",
           "interval": "30s", "tags": tags})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_crud_reads_its_own_writes_with_exact_statuses() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    use Method as M;

    // 401 without a key, with a problem document and a challenge.
    let (status, headers, body) = call(&h, M::GET, "/api/v1/monitors", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer realm=\"vigil\"");
    assert_eq!(body["type"], "urn:vigil:problem:unauthenticated");
    // 403 for a viewer writing.
    let (status, _, body) = call(
        &h,
        M::POST,
        "/api/v1/monitors",
        Some(VIEWER),
        Some(spec("a", &[])),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["detail"],
        "this operation needs the editor role; the key has viewer"
    );

    // Create, then read immediately.
    let (status, headers, body) = call(
        &h,
        M::POST,
        "/api/v1/monitors",
        Some(EDITOR),
        Some(spec("api-b", &["prod"])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(headers[header::LOCATION], "/api/v1/monitors/api-b");
    assert_eq!(body["interval"], "30s");
    let (status, _, body) = call(&h, M::GET, "/api/v1/monitors/api-b", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "Name api-b");
    for id in ["api-a", "api-c"] {
        let (status, _, _) = call(
            &h,
            M::POST,
            "/api/v1/monitors",
            Some(EDITOR),
            Some(spec(id, &[])),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }

    // 409 on an existing id, 422 naming every invalid field, 400 on a body that is not JSON.
    let (status, _, body) = call(
        &h,
        M::POST,
        "/api/v1/monitors",
        Some(EDITOR),
        Some(spec("api-b", &[])),
    )
    .await;
    assert_eq!(
        (status, body["type"].as_str()),
        (StatusCode::CONFLICT, Some("urn:vigil:problem:conflict"))
    );
    let bad = json!({"id": "Bad Id", "name": "x", "url": "ftp://x"});
    let (status, _, body) = call(&h, M::POST, "/api/v1/monitors", Some(EDITOR), Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["id", "url"]);
    let request = Request::post("/api/v1/monitors")
        .header(header::AUTHORIZATION, format!("Bearer {EDITOR}"))
        .body(Body::from("{nope"))
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Update: 404 for unknown, 422 when the body names another id, 200 otherwise.
    let (status, _, _) = call(
        &h,
        M::PUT,
        "/api/v1/monitors/nope",
        Some(EDITOR),
        Some(spec("nope", &[])),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = call(
        &h,
        M::PUT,
        "/api/v1/monitors/api-a",
        Some(EDITOR),
        Some(spec("api-c", &[])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "id");
    let mut renamed = spec("api-a", &["prod"]);
    renamed["name"] = json!("Zulu");
    let (status, _, body) = call(
        &h,
        M::PUT,
        "/api/v1/monitors/api-a",
        Some(EDITOR),
        Some(renamed),
    )
    .await;
    assert_eq!(
        (status, body["name"].as_str()),
        (StatusCode::OK, Some("Zulu"))
    );

    // Disable, then filter by status and tag, sort and paginate.
    let (status, _, body) = call(
        &h,
        M::POST,
        "/api/v1/monitors/api-c/disable",
        Some(EDITOR),
        None,
    )
    .await;
    assert_eq!(
        (status, body["enabled"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let (_, _, body) = call(
        &h,
        M::GET,
        "/api/v1/monitors?status=disabled",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(ids(&body), ["api-c"]);
    let (_, _, body) = call(
        &h,
        M::GET,
        "/api/v1/monitors?tag=prod&sort=-id",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(ids(&body), ["api-b", "api-a"]);
    let (_, _, page1) = call(
        &h,
        M::GET,
        "/api/v1/monitors?sort=name&limit=2",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(ids(&page1), ["api-b", "api-c"]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, _, page2) = call(
        &h,
        M::GET,
        &format!("/api/v1/monitors?sort=name&limit=2&cursor={cursor}"),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(ids(&page2), ["api-a"]);
    assert!(page2["next_cursor"].is_null());
    let (status, _, body) =
        call(&h, M::GET, "/api/v1/monitors?sort=size", Some(VIEWER), None).await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("sort"))
    );

    // Delete, then it is gone.
    let (status, _, _) = call(&h, M::DELETE, "/api/v1/monitors/api-c", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, body) = call(&h, M::GET, "/api/v1/monitors/api-c", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["type"], "urn:vigil:problem:not-found");
    let (status, _, _) = call(&h, M::DELETE, "/api/v1/monitors/api-c", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_400_naming_the_parameter() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let (status, _, _) = call(
        &h,
        Method::POST,
        "/api/v1/monitors",
        Some(EDITOR),
        Some(spec("m", &[])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    for (uri, parameter) in [
        ("/api/v1/monitors/m/history?from=now-1h&to=now-2h", "to"),
        ("/api/v1/monitors/m/history?resolution=5m", "resolution"),
        (
            "/api/v1/monitors/m/history?from=now-30d&resolution=1m",
            "resolution",
        ),
        ("/api/v1/monitors/m/history?from=yesterday", "from"),
        ("/api/v1/monitors/m/history?frm=now-1h", "frm"),
        ("/api/v1/monitors/m/history?to=now&to=now", "to"),
        ("/api/v1/monitors/m/summary?target=1.5", "target"),
        ("/api/v1/monitors/m/probes?status=6xx", "status"),
        ("/api/v1/monitors/m/probes?outcome=slow", "outcome"),
        ("/api/v1/monitors/m/probes?limit=0", "limit"),
        ("/api/v1/monitors/m/probes?cursor=zz", "cursor"),
        ("/api/v1/monitors/m/export?format=xml", "format"),
        ("/api/v1/alerts?limit=ten", "limit"),
    ] {
        let (status, headers, body) = call(&h, Method::GET, uri, Some(VIEWER), None).await;
        // Well-formed but unusable (a range ending before it starts, a range too long for
        // the resolution) is a 422; anything the document rules out a 400.
        let unusable = uri.ends_with("to=now-2h") || uri.ends_with("from=now-30d&resolution=1m");
        let (want, kind) = if unusable {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid-parameter")
        } else {
            (StatusCode::BAD_REQUEST, "bad-parameter")
        };
        assert_eq!(status, want, "{uri}: {body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(body["type"], format!("urn:vigil:problem:{kind}"), "{uri}");
        assert_eq!(body["parameter"], parameter, "{uri}: {body}");
    }
    let (status, _, body) = call(
        &h,
        Method::GET,
        "/api/v1/monitors/unknown/history",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "monitor \"unknown\" not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_auth_limits_and_error_codes() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let gql = |key: Option<&'static str>, query: &str| {
        let body = json!({"query": query});
        let h = &h;
        async move { call(h, Method::POST, "/graphql", key, Some(body)).await }
    };
    let (status, _, body) = gql(None, "{ monitors { items { id } } }").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let create = r#"mutation { createMonitor(spec: {id: "g1", name: "G", url: "https://example.com/", tags: ["x"]}) { id interval } }"#;
    let (_, _, body) = gql(Some(VIEWER), create).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let (_, _, body) = gql(Some(EDITOR), create).await;
    assert_eq!(
        body["data"]["createMonitor"],
        json!({"id": "g1", "interval": "1m"}),
        "{body}"
    );
    let (_, _, body) = gql(Some(EDITOR), create).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "CONFLICT",
        "{body}"
    );
    let invalid =
        r#"mutation { createMonitor(spec: {id: "g2", name: "G", url: "ftp://x"}) { id } }"#;
    let (_, _, body) = gql(Some(EDITOR), invalid).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INVALID_SPEC",
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["fieldErrors"][0]["field"],
        "url"
    );

    let (_, _, body) = gql(
        Some(VIEWER),
        r#"{ monitors(tag: "x") { items { id tags } nextCursor } }"#,
    )
    .await;
    assert_eq!(
        body["data"]["monitors"],
        json!({"items": [{"id": "g1", "tags": ["x"]}], "nextCursor": null})
    );
    let (_, _, body) = gql(
        Some(VIEWER),
        r#"{ history(monitorId: "g1", from: "now-1h", to: "now-2h") { resolution } }"#,
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["parameter"], "to");

    // Depth 5 > limit 4.
    let (_, _, body) = gql(
        Some(VIEWER),
        "{ monitors { items { spec } } __schema { types { fields { type { name } } } } }",
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "QUERY_TOO_DEEP",
        "{body}"
    );
    let long = format!("{{ monitors {{ items {{ id }} }} }} #{}", "x".repeat(500));
    let (status, _, body) = gql(Some(VIEWER), &long).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["extensions"]["code"], "QUERY_TOO_LARGE");
    let (_, _, body) = gql(Some(VIEWER), "{ nope }").await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_routes_and_middleware() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let (status, _, body) = call(&h, Method::GET, "/healthz", None, None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, Some("ok\n")));
    // ClickHouse is unreachable in this harness, so not ready, with the reason.
    let (status, _, body) = call(&h, Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("clickhouse is unreachable"),
        "{body}"
    );
    let (status, _, _) = call(&h, Method::GET, "/metrics", None, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no recorder installed in this test"
    );
    // The pages themselves are tested in tests/web.rs.
    let (status, headers, _) = call(&h, Method::GET, "/docs", None, None).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "/docs/");
    let (status, _, body) = call(&h, Method::GET, "/graphql", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.as_str()
            .unwrap()
            .contains("/ui/assets/graphiql/init.js")
    );
    let (status, headers, body) = call(&h, Method::GET, "/nowhere", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["type"], "urn:vigil:problem:not-found");
    assert!(headers.contains_key("x-request-id"));

    // Request ids are propagated, responses compressed on request.
    let request = Request::get("/api/v1/openapi.json")
        .header("x-request-id", "abc-123")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_configurable() {
    let cluster = MockCluster::new(1).unwrap();
    let mut h = harness(&cluster).await;
    let mut config = (*h.state.config).clone();
    config.http.cors_origins = vec!["https://dash.example.com".into()];
    h.state.config = std::sync::Arc::new(config);
    let request = Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v1/monitors")
        .header(header::ORIGIN, "https://dash.example.com")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .body(Body::empty())
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://dash.example.com"
    );
}

fn window(monitor: &str, start_ms: i64) -> vigil_schema::WindowSummary {
    let mut sketch = vigil_schema::sketch::Sketch::new(0.01);
    for v in [1_000.0, 2_000.0, 3_000.0] {
        sketch.add(v);
    }
    vigil_schema::WindowSummary {
        monitor_id: monitor.into(),
        region: "eu".into(),
        window_start: vigil_schema::Timestamp::from_millis(start_ms),
        window_end: vigil_schema::Timestamp::from_millis(start_ms + 60_000),
        version: 1,
        count: 3,
        ok_count: 3,
        availability: 1.0,
        errors: Default::default(),
        status_1xx: 0,
        status_2xx: 3,
        status_3xx: 0,
        status_4xx: 0,
        status_5xx: 0,
        total_min_us: 1_000,
        total_max_us: 3_000,
        total_mean_us: 2_000.0,
        p50_us: 2_000.0,
        p75_us: 3_000.0,
        p90_us: 3_000.0,
        p95_us: 3_000.0,
        p99_us: 3_000.0,
        p999_us: 3_000.0,
        dns_mean_us: 0.0,
        connect_mean_us: 0.0,
        tls_mean_us: 0.0,
        ttfb_mean_us: 0.0,
        ttfb_p95_us: 0.0,
        assertion_failures: 0,
        sketch: sketch.to_data(),
        anomaly: None,
    }
}

async fn ws_subscribe(
    addr: std::net::SocketAddr,
    protocol: &str,
    key: &str,
    query: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    let init =
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {key}")}});
    ws.send(Message::text(init.to_string())).await.unwrap();
    let ack = ws.next().await.unwrap().unwrap();
    let ack: Value = serde_json::from_str(ack.to_text().unwrap()).unwrap();
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let start = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    let subscribe = json!({"id": "1", "type": start, "payload": {"query": query}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    ws
}

async fn next_json(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    use futures::StreamExt;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .unwrap()
            .unwrap();
        if let Ok(text) = message.to_text() {
            let value: Value = serde_json::from_str(text).unwrap();
            if value["type"] != "ka" && value["type"] != "ping" {
                return value;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_subscribers_receive_windows_from_the_topic_on_both_protocols() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let server = tokio::spawn(vigil_query::serve(listener, h.state.clone(), token.clone()));

    let query =
        r#"subscription { windowClosed(monitorId: "w1") { monitorId region start count p99Us } }"#;
    let mut modern = ws_subscribe(addr, "graphql-transport-ws", VIEWER, query).await;
    let mut legacy = ws_subscribe(addr, "graphql-ws", VIEWER, query).await;
    // Wait until both subscriptions hold receivers before producing.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.state.service.hub().windows.receiver_count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "subscriptions never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .unwrap();
    for w in [window("other", 0), window("w1", 60_000)] {
        let bytes = vigil_schema::encode(&w).unwrap();
        producer
            .send(
                FutureRecord::to("t.windows")
                    .key(&w.monitor_id)
                    .payload(&bytes),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
    }
    let expected = json!({"windowClosed": {"monitorId": "w1", "region": "eu",
        "start": "1970-01-01T00:01:00Z", "count": 3, "p99Us": 3000.0}});
    let got = next_json(&mut modern).await;
    assert_eq!(
        (got["type"].as_str(), &got["payload"]["data"]),
        (Some("next"), &expected),
        "{got}"
    );
    let got = next_json(&mut legacy).await;
    assert_eq!(
        (got["type"].as_str(), &got["payload"]["data"]),
        (Some("data"), &expected),
        "{got}"
    );
    token.cancel();
    drop((modern, legacy));
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_rejects_unknown_keys() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let server = tokio::spawn(vigil_query::serve(listener, h.state.clone(), token.clone()));
    let mut request = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({"type": "connection_init", "payload": {"authorization": "Bearer wrong-key-000000000"}});
    ws.send(Message::text(init.to_string())).await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match message {
        Message::Close(Some(frame)) => {
            // async-graphql closes a refused `connection_init` with 1002 and the reason.
            assert_eq!(u16::from(frame.code), 1002);
            assert_eq!(frame.reason.as_str(), "missing or unknown API key");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    token.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_see_secrets_redacted_and_metrics_render() {
    let cluster = MockCluster::new(1).unwrap();
    let mut h = harness(&cluster).await;
    let mut secret = spec("s1", &[]);
    secret["auth"] = json!({"type": "bearer", "token": "literal-token"});
    secret["headers"] = json!({"X-Key": "k-123", "X-Env": "${API_KEY}"});
    let (status, _, _) = call(
        &h,
        Method::POST,
        "/api/v1/monitors",
        Some(EDITOR),
        Some(secret),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, _, as_viewer) = call(&h, Method::GET, "/api/v1/monitors/s1", Some(VIEWER), None).await;
    assert_eq!(
        as_viewer["auth"],
        json!({"type": "bearer", "token": "[redacted]"})
    );
    assert_eq!(
        as_viewer["headers"],
        json!({"X-Env": "${API_KEY}", "X-Key": "[redacted]"})
    );
    let (_, _, as_editor) = call(&h, Method::GET, "/api/v1/monitors/s1", Some(EDITOR), None).await;
    assert_eq!(as_editor["auth"]["token"], "literal-token");
    let query = json!({"query": "{ monitors { items { spec } } }"});
    let (_, _, body) = call(&h, Method::POST, "/graphql", Some(VIEWER), Some(query)).await;
    assert_eq!(
        body["data"]["monitors"]["items"][0]["spec"]["auth"]["token"], "[redacted]",
        "{body}"
    );

    // With a recorder handle, /metrics renders Prometheus text (the recorder is not installed
    // globally here, so the exposition is empty but well-formed).
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    h.state.metrics = Some(recorder.handle());
    let request = Request::get("/metrics").body(Body::empty()).unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_probe_and_alert_subscriptions_deliver_their_events() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let server = tokio::spawn(vigil_query::serve(listener, h.state.clone(), token.clone()));
    let hub = h.state.service.hub().clone();
    let mut monitors = ws_subscribe(
        addr,
        "graphql-transport-ws",
        VIEWER,
        "subscription { monitorChanged { kind id monitor { name } } }",
    )
    .await;
    let mut probes = ws_subscribe(
        addr,
        "graphql-transport-ws",
        VIEWER,
        r#"subscription { probeCompleted(monitorId: "p1") { monitorId outcome statusCode totalUs } }"#,
    )
    .await;
    let mut alerts = ws_subscribe(
        addr,
        "graphql-transport-ws",
        VIEWER,
        "subscription { alertChanged { ruleId from to value } }",
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hub.monitors.receiver_count() < 1
        || hub.probes.receiver_count() < 1
        || hub.alerts.receiver_count() < 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "subscriptions never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (status, _, _) = call(
        &h,
        Method::POST,
        "/api/v1/monitors",
        Some(EDITOR),
        Some(spec("p1", &[])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = call(
        &h,
        Method::DELETE,
        "/api/v1/monitors/p1",
        Some(EDITOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = next_json(&mut monitors).await;
    assert_eq!(
        got["payload"]["data"]["monitorChanged"],
        json!({"kind": "UPSERTED", "id": "p1", "monitor": {"name": "Name p1"}})
    );
    let got = next_json(&mut monitors).await;
    assert_eq!(
        got["payload"]["data"]["monitorChanged"],
        json!({"kind": "DELETED", "id": "p1", "monitor": null})
    );

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .unwrap();
    let probe: vigil_schema::ProbeResult = serde_json::from_value(json!({
        "event_id": "00000000-0000-0000-0000-000000000001", "monitor_id": "p1", "region": "eu",
        "agent": "a", "scheduled_at": 0, "event_time": 0, "method": "GET",
        "url": "https://example.com/", "status_code": 503, "outcome": "http_status",
        "error": "status 503", "timings": {"dns_us": null, "connect_us": null, "tls_us": null,
        "ttfb_us": null, "total_us": 1234}, "response_size": null, "assertions": [],
        "tls_cert_expiry": null
    }))
    .unwrap();
    let bytes = vigil_schema::encode(&probe).unwrap();
    producer
        .send(
            FutureRecord::to("t.probes").key("p1").payload(&bytes),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let got = next_json(&mut probes).await;
    assert_eq!(
        got["payload"]["data"]["probeCompleted"],
        json!({"monitorId": "p1", "outcome": "http_status", "statusCode": 503, "totalUs": 1234})
    );

    let alert: vigil_schema::AlertTransition = serde_json::from_value(json!({
        "transition_id": "00000000-0000-0000-0000-000000000002", "rule_id": "slow",
        "monitor_id": "p1", "region": null, "kind": "latency_percentile", "from": "pending",
        "to": "firing", "at": 0, "value": 812.5, "threshold": 500.0, "message": "p99 high"
    }))
    .unwrap();
    let bytes = vigil_schema::encode(&alert).unwrap();
    producer
        .send(
            FutureRecord::to("t.alerts").key("slow").payload(&bytes),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let got = next_json(&mut alerts).await;
    assert_eq!(
        got["payload"]["data"]["alertChanged"],
        json!({"ruleId": "slow", "from": "pending", "to": "firing", "value": 812.5})
    );
    token.cancel();
    drop((monitors, probes, alerts));
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_bounded_in_time_and_in_number() {
    use axum::routing::get;
    use std::sync::Arc;
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let mut state = h.state.clone();
    let mut config = (*state.config).clone();
    config.http.request_timeout = Duration::from_millis(300);
    config.http.max_in_flight = 1;
    state.config = Arc::new(config);
    state.in_flight = vigil_query::overload::InFlight::new(1);
    let app = axum::Router::new()
        .route(
            "/slow/{ms}",
            get(
                |axum::extract::Path(ms): axum::extract::Path<u64>| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    "done"
                },
            ),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            vigil_query::overload::layer,
        ))
        .with_state(state);
    let get = |ms: u64| {
        let app = app.clone();
        async move {
            let response = app
                .oneshot(
                    Request::get(format!("/slow/{ms}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(get(10).await, (StatusCode::OK, "done".to_owned()));
    // Past the deadline: 503 with a problem naming it.
    let (status, body) = get(2_000).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.contains("the request did not finish within 300ms"),
        "{body}"
    );
    // One in flight at most: a second one meanwhile is refused at once.
    let first = tokio::spawn(get(200));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, body) = get(10).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("more than 1 requests in flight"), "{body}");
    assert_eq!(first.await.unwrap().0, StatusCode::OK);
    assert_eq!(get(10).await.0, StatusCode::OK);
}
