//! Alert rule handler tests: the whole router driven with `oneshot`, Kafka from rdkafka's
//! in-process mock cluster (rule writes go through the real producer, rules topic and view),
//! ClickHouse pointed at a closed port (never reached by these routes).

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use futures::StreamExt;
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use vigil_query::auth::{Principal, Role};
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
    config.auth.keys = [
        ("dash", VIEWER, Role::Viewer),
        ("ops", EDITOR, Role::Editor),
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
    let token = CancellationToken::new();
    let service = vigil_query::connect(&config, &token).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !service.view().is_caught_up() || !service.rule_view().is_caught_up() {
        assert!(
            std::time::Instant::now() < deadline,
            "views never caught up"
        );
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

/// A p99 rule on `monitors`, with the given severity.
fn rule(id: &str, monitors: &[&str], severity: &str) -> Value {
    json!({"id": id, "monitors": monitors, "severity": severity,
           "condition": {"latency_percentile": {"percentile": 99, "above": "800ms"}},
           "for": "5m", "summary": "p99 of {{monitor}} is {{value}}"})
}

fn ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

fn error_fields(problem: &Value) -> Vec<(&str, &str)> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_crud_reads_its_own_writes_with_exact_statuses() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    use Method as M;

    // 401 without a key; 403 for a viewer writing.
    let (status, headers, body) = call(&h, M::GET, "/api/v1/rules", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["type"], "urn:vigil:problem:unauthenticated");
    let (status, _, body) = call(
        &h,
        M::POST,
        "/api/v1/rules",
        Some(VIEWER),
        Some(rule("a", &[], "info")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["detail"],
        "this operation needs the editor role; the key has viewer"
    );

    // Create, then read immediately: defaults are filled in.
    let (status, headers, body) = call(
        &h,
        M::POST,
        "/api/v1/rules",
        Some(EDITOR),
        Some(rule("p99-b", &["api"], "critical")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(headers[header::LOCATION], "/api/v1/rules/p99-b");
    assert_eq!(
        body,
        json!({"id": "p99-b", "name": "", "monitors": ["api"], "tags": [], "regions": [],
               "condition": {"latency_percentile": {"percentile": 99.0, "above": "800ms",
                             "recover_below": null, "window": "5m"}},
               "for": "5m", "keep_firing_for": "0s", "quorum": null, "severity": "critical",
               "summary": "p99 of {{monitor}} is {{value}}", "labels": {}, "enabled": true})
    );
    let (status, _, got) = call(&h, M::GET, "/api/v1/rules/p99-b", Some(VIEWER), None).await;
    assert_eq!((status, &got), (StatusCode::OK, &body));
    for (id, monitors, severity) in [("p99-a", &["web"], "warning"), ("p99-c", &["api"], "info")] {
        let (status, _, body) = call(
            &h,
            M::POST,
            "/api/v1/rules",
            Some(EDITOR),
            Some(rule(id, monitors, severity)),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // 409 on an existing id, 422 naming every invalid field, 400 on a body that is not JSON.
    let (status, _, body) = call(
        &h,
        M::POST,
        "/api/v1/rules",
        Some(EDITOR),
        Some(rule("p99-b", &[], "info")),
    )
    .await;
    assert_eq!(
        (status, body["type"].as_str(), body["detail"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:vigil:problem:conflict"),
            Some("rule \"p99-b\" already exists")
        )
    );
    let mut bad = rule("bad", &["api", "Not A Slug"], "info");
    bad["condition"]["latency_percentile"]["percentile"] = json!(120);
    bad["for"] = json!("2d");
    bad["summary"] = json!("{{host}}");
    let (status, headers, body) = call(&h, M::POST, "/api/v1/rules", Some(EDITOR), Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["type"], "urn:vigil:problem:invalid-spec");
    let fields = error_fields(&body);
    let names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        names,
        [
            "monitors[1]",
            "condition.latency_percentile.percentile",
            "for",
            "summary"
        ]
    );
    assert_eq!(fields[1].1, "must be in (0, 100), got 120");
    assert_eq!(fields[2].1, "must be ≤ 24h, got 2d");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("invalid rule spec: monitors[1]: must be 1–64 characters"),
        "{body}"
    );
    let (status, _, body) = call(
        &h,
        M::POST,
        "/api/v1/rules",
        Some(EDITOR),
        Some(json!({"id": "x", "condition": {"latency": {}}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["type"], "urn:vigil:problem:bad-body");
    let request = Request::post("/api/v1/rules")
        .header(header::AUTHORIZATION, format!("Bearer {EDITOR}"))
        .body(Body::from("{nope"))
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Update: 403 for a viewer, 404 for unknown, 422 when the body names another id, 200.
    let (status, _, _) = call(
        &h,
        M::PUT,
        "/api/v1/rules/p99-a",
        Some(VIEWER),
        Some(rule("p99-a", &[], "info")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = call(
        &h,
        M::PUT,
        "/api/v1/rules/nope",
        Some(EDITOR),
        Some(rule("nope", &[], "info")),
    )
    .await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("rule \"nope\" not found"))
    );
    let (status, _, body) = call(
        &h,
        M::PUT,
        "/api/v1/rules/p99-a",
        Some(EDITOR),
        Some(rule("p99-c", &[], "info")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error_fields(&body),
        [(
            "id",
            "must match the rule being replaced (\"p99-a\"), got \"p99-c\""
        )]
    );
    let mut disabled = rule("p99-a", &["web"], "warning");
    disabled["enabled"] = json!(false);
    disabled["for"] = json!("10m");
    let (status, _, body) = call(
        &h,
        M::PUT,
        "/api/v1/rules/p99-a",
        Some(EDITOR),
        Some(disabled),
    )
    .await;
    assert_eq!(
        (status, body["for"].as_str(), body["enabled"].as_bool()),
        (StatusCode::OK, Some("10m"), Some(false))
    );
    let (_, _, body) = call(&h, M::GET, "/api/v1/rules/p99-a", Some(VIEWER), None).await;
    assert_eq!(body["for"], "10m");

    // List: ordered by id, filtered, paginated.
    let (status, _, body) = call(&h, M::GET, "/api/v1/rules", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), ["p99-a", "p99-b", "p99-c"]);
    assert!(body["next_cursor"].is_null());
    for (query, expected) in [
        ("status=disabled", &["p99-a"][..]),
        ("status=enabled", &["p99-b", "p99-c"]),
        ("severity=critical", &["p99-b"]),
    ] {
        let (_, _, body) = call(
            &h,
            M::GET,
            &format!("/api/v1/rules?{query}"),
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(ids(&body), expected, "{query}");
    }
    let (_, _, page1) = call(&h, M::GET, "/api/v1/rules?limit=2", Some(VIEWER), None).await;
    assert_eq!(ids(&page1), ["p99-a", "p99-b"]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, _, page2) = call(
        &h,
        M::GET,
        &format!("/api/v1/rules?limit=2&cursor={cursor}"),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(ids(&page2), ["p99-c"]);
    assert!(page2["next_cursor"].is_null());

    // Delete: 403 for a viewer, 204, then it is gone, and a second delete is 404.
    let (status, _, _) = call(&h, M::DELETE, "/api/v1/rules/p99-c", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(&h, M::DELETE, "/api/v1/rules/p99-c", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, body) = call(&h, M::GET, "/api/v1/rules/p99-c", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["type"], "urn:vigil:problem:not-found");
    let (status, _, _) = call(&h, M::DELETE, "/api/v1/rules/p99-c", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, body) = call(&h, M::GET, "/api/v1/rules", Some(VIEWER), None).await;
    assert_eq!(ids(&body), ["p99-a", "p99-b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_filter_follows_ids_tags_and_catch_alls() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let monitor = json!({"id": "api", "name": "API", "url": "https://example.com/",
                         "tags": ["prod"]});
    let (status, _, _) = call(
        &h,
        Method::POST,
        "/api/v1/monitors",
        Some(EDITOR),
        Some(monitor),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut by_tag = rule("by-tag", &[], "info");
    by_tag["tags"] = json!(["prod"]);
    for spec in [
        rule("by-id", &["api"], "info"),
        by_tag,
        rule("everything", &[], "info"),
        rule("other", &["web"], "info"),
    ] {
        let (status, _, body) =
            call(&h, Method::POST, "/api/v1/rules", Some(EDITOR), Some(spec)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, _, body) = call(
        &h,
        Method::GET,
        "/api/v1/rules?monitor=api",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(ids(&body), ["by-id", "by-tag", "everything"]);
    let (status, _, body) = call(
        &h,
        Method::GET,
        "/api/v1/rules?monitor=ghost",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("monitor \"ghost\" not found"))
    );
    for (uri, parameter) in [
        ("/api/v1/rules?severity=page", "severity"),
        ("/api/v1/rules?status=on", "status"),
        ("/api/v1/rules?limit=0", "limit"),
        ("/api/v1/rules?limit=ten", "limit"),
        ("/api/v1/rules?cursor=zz", "cursor"),
        ("/api/v1/rules?monitr=api", "monitr"),
    ] {
        let (status, headers, body) = call(&h, Method::GET, uri, Some(VIEWER), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(body["parameter"], parameter, "{uri}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_rules_are_validated_like_rest() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let gql = |key: &'static str, query: &str| {
        let body = json!({"query": query});
        let h = &h;
        async move {
            call(h, Method::POST, "/graphql", Some(key), Some(body))
                .await
                .2
        }
    };
    let create = r#"mutation { createRule(spec: {id: "g1", monitors: ["api"], severity: "critical",
        condition: {availability: {below: 0.99}}, labels: {team: "web"}}) {
        id kind severity for condition labels enabled } }"#;
    let body = gql(VIEWER, create).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let body = gql(EDITOR, create).await;
    assert_eq!(
        body["data"]["createRule"],
        json!({"id": "g1", "kind": "availability", "severity": "CRITICAL", "for": "0s",
               "condition": {"availability": {"below": 0.99, "recover_above": null,
                             "window": "5m"}},
               "labels": {"team": "web"}, "enabled": true}),
        "{body}"
    );
    let body = gql(EDITOR, create).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "CONFLICT",
        "{body}"
    );
    let invalid = r#"mutation { createRule(spec: {id: "g2",
        condition: {availability: {below: 1.5}}, quorum: 0}) { id } }"#;
    let body = gql(EDITOR, invalid).await;
    let extensions = &body["errors"][0]["extensions"];
    assert_eq!(extensions["code"], "INVALID_SPEC", "{body}");
    assert_eq!(
        extensions["fieldErrors"],
        json!([
            {"field": "condition.availability.below", "reason": "must be in [0, 1], got 1.5"},
            {"field": "quorum", "reason": "must be ≥ 1"},
        ])
    );

    let body = gql(
        VIEWER,
        r#"{ rules(severity: "critical") { items { id monitors } nextCursor }
             rule(id: "g1") { name spec } missing: rule(id: "nope") { id } }"#,
    )
    .await;
    assert_eq!(
        body["data"]["rules"],
        json!({"items": [{"id": "g1", "monitors": ["api"]}], "nextCursor": null}),
        "{body}"
    );
    assert_eq!(body["data"]["rule"]["spec"]["severity"], "critical");
    assert!(body["data"]["missing"].is_null());

    let update = r#"mutation { updateRule(id: "g1", spec: {id: "g1",
        condition: {no_data: {intervals: 5}}}) { kind severity } }"#;
    let body = gql(EDITOR, update).await;
    assert_eq!(
        body["data"]["updateRule"],
        json!({"kind": "no_data", "severity": "WARNING"}),
        "{body}"
    );
    let body = gql(
        EDITOR,
        r#"mutation { updateRule(id: "nope", spec: {id: "nope", condition: {no_data: {}}}) { id } }"#,
    )
    .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
    let body = gql(EDITOR, r#"mutation { deleteRule(id: "g1") }"#).await;
    assert_eq!(body["data"]["deleteRule"], true, "{body}");
    let body = gql(EDITOR, r#"mutation { deleteRule(id: "g1") }"#).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_changes_reach_subscribers() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let request =
        async_graphql::Request::new("subscription { ruleChanged { kind id rule { severity } } }")
            .data(Principal {
                name: "dash".into(),
                role: Role::Viewer,
            });
    let mut stream = h.state.schema.execute_stream(request);
    let hub = h.state.service.hub().clone();
    let first = tokio::spawn(async move {
        let first = stream.next().await.unwrap();
        let second = stream.next().await.unwrap();
        (first, second)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hub.rules.receiver_count() < 1 {
        assert!(std::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, _, _) = call(
        &h,
        Method::POST,
        "/api/v1/rules",
        Some(EDITOR),
        Some(rule("live", &[], "critical")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = call(&h, Method::DELETE, "/api/v1/rules/live", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (first, second) = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.data.into_json().unwrap(),
        json!({"ruleChanged": {"kind": "UPSERTED", "id": "live", "rule": {"severity": "CRITICAL"}}})
    );
    assert_eq!(
        second.data.into_json().unwrap(),
        json!({"ruleChanged": {"kind": "DELETED", "id": "live", "rule": null}})
    );
}
