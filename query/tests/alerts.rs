//! Alert, error-budget and backtest handler tests: the whole router driven with `oneshot`, Kafka
//! from rdkafka's in-process mock cluster (rules and monitors written through the real topics
//! and views, transitions through the alerts topic and hub), ClickHouse pointed at a closed port
//! (every answer here is decided before a query, or is the documented 500 when one is sent) or
//! at a listener that never answers (a backtest that runs out of time while a second one is
//! turned away). Results over real data are checked in `tests/it/alerts_api.rs`.

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

async fn harness_with(
    cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    clickhouse_url: &str,
    backtest_timeout: Duration,
) -> Harness {
    let mut config = Config::default();
    config.kafka.brokers = cluster.bootstrap_servers();
    config.kafka.topic_prefix = "t".into();
    config.kafka.request_timeout = Duration::from_secs(5);
    config.clickhouse.url = clickhouse_url.into();
    config.backtest.timeout = backtest_timeout;
    config.http.max_body_bytes = 64 * 1024;
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
    while !service.view().is_caught_up()
        || !service.rule_view().is_caught_up()
        || !service.hub().is_ready()
    {
        assert!(std::time::Instant::now() < deadline, "never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Harness {
        state: AppState::new(service, config, None),
        _token: token.drop_guard(),
    }
}

async fn harness(cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>) -> Harness {
    harness_with(cluster, "http://127.0.0.1:9", Duration::from_secs(60)).await
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

async fn gql(h: &Harness, key: &str, query: &str) -> Value {
    let body = json!({"query": query});
    call(h, Method::POST, "/graphql", Some(key), Some(body))
        .await
        .2
}

async fn create(h: &Harness, uri: &str, body: Value) {
    let (status, _, body) = call(h, Method::POST, uri, Some(EDITOR), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn burn_rule(id: &str, monitors: &[&str], regions: &[&str]) -> Value {
    json!({"id": id, "monitors": monitors, "regions": regions,
           "condition": {"burn_rate": {"slo": "availability", "objective": 0.999}}})
}

fn error_fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_reads_check_roles_and_parameters_before_clickhouse() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    for uri in ["/api/v1/alerts", "/api/v1/alerts/active"] {
        let (status, headers, body) = call(&h, Method::GET, uri, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(body["type"], "urn:vigil:problem:unauthenticated");
    }
    for (uri, parameter) in [
        ("/api/v1/alerts?state=resolved", "state"),
        ("/api/v1/alerts?severity=page", "severity"),
        ("/api/v1/alerts?limit=0", "limit"),
        ("/api/v1/alerts?limit=1001", "limit"),
        ("/api/v1/alerts?cursor=zz", "cursor"),
        ("/api/v1/alerts?from=yesterday", "from"),
        ("/api/v1/alerts?from=now-1h&to=now-2h", "to"),
        ("/api/v1/alerts?rules=a", "rules"),
        ("/api/v1/alerts/active?severity=high", "severity"),
        ("/api/v1/alerts/active?limit=ten", "limit"),
        ("/api/v1/alerts/active?cursor=00", "cursor"),
        ("/api/v1/alerts/active?state=firing", "state"),
    ] {
        let (status, headers, body) = call(&h, Method::GET, uri, Some(VIEWER), None).await;
        // Well-formed but unusable (a range ending before it starts, a cursor of the right
        // shape this API did not issue) is a 422; anything the document rules out a 400.
        let unusable = uri.ends_with("to=now-2h") || uri.ends_with("cursor=00");
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
    // A valid request reaches ClickHouse (a closed port here): the documented 500, no detail.
    for uri in [
        "/api/v1/alerts?rule=r&monitor=m&region=&state=firing&severity=critical",
        "/api/v1/alerts/active?severity=warning",
    ] {
        let (status, _, body) = call(&h, Method::GET, uri, Some(VIEWER), None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert_eq!(body["detail"], "internal error; see the service log");
    }

    let body = gql(
        &h,
        VIEWER,
        r#"{ alerts(state: "resolved") { nextCursor } }"#,
    )
    .await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(
        (&ext["code"], &ext["parameter"]),
        (&json!("BAD_REQUEST"), &json!("state"))
    );
    let body = gql(&h, VIEWER, r#"{ activeAlerts(first: 0) { nextCursor } }"#).await;
    assert_eq!(
        body["errors"][0]["extensions"]["parameter"], "limit",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_budgets_are_for_burn_rate_rules_on_monitors_they_select() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    create(
        &h,
        "/api/v1/monitors",
        json!({"id": "api", "name": "API", "url": "https://example.com/"}),
    )
    .await;
    create(
        &h,
        "/api/v1/monitors",
        json!({"id": "web", "name": "Web", "url": "https://example.com/"}),
    )
    .await;
    create(
        &h,
        "/api/v1/rules",
        burn_rule("slo-api", &["api"], &["eu", "us"]),
    )
    .await;
    create(&h, "/api/v1/rules", burn_rule("slo-none", &["gone"], &[])).await;
    create(
        &h,
        "/api/v1/rules",
        json!({"id": "p99", "condition": {"latency_percentile": {"percentile": 99, "above": "1s"}}}),
    )
    .await;

    let cases = [
        (
            "/api/v1/rules/nope/budget",
            StatusCode::NOT_FOUND,
            "rule \"nope\" not found",
        ),
        (
            "/api/v1/rules/p99/budget",
            StatusCode::UNPROCESSABLE_ENTITY,
            "rule \"p99\" is a latency_percentile rule; error budgets are defined for \
             burn_rate rules only",
        ),
        (
            "/api/v1/rules/slo-api/budget?monitor=ghost",
            StatusCode::NOT_FOUND,
            "monitor \"ghost\" not found",
        ),
        (
            "/api/v1/rules/slo-api/budget?monitor=web",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid parameter `monitor`: rule \"slo-api\" does not apply to monitor \"web\"",
        ),
        (
            "/api/v1/rules/slo-api/budget?region=ap",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid parameter `region`: rule \"slo-api\" does not look at region \"ap\"",
        ),
    ];
    for (uri, want, detail) in cases {
        let (status, headers, body) = call(&h, Method::GET, uri, Some(VIEWER), None).await;
        assert_eq!(
            (status, body["detail"].as_str()),
            (want, Some(detail)),
            "{uri}"
        );
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    }
    let (_, _, body) = call(
        &h,
        Method::GET,
        "/api/v1/rules/p99/budget",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(body["type"], "urn:vigil:problem:not-applicable");
    let (status, _, body) = call(
        &h,
        Method::GET,
        "/api/v1/rules/slo-api/budget?monitr=api",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["parameter"]),
        (StatusCode::BAD_REQUEST, &json!("monitr"))
    );

    // A rule selecting no existing monitor has nothing to count (no query is sent).
    let (status, _, body) = call(
        &h,
        Method::GET,
        "/api/v1/rules/slo-none/budget",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            &body["rule_id"],
            &body["slo"],
            &body["threshold_us"],
            &body["objective"]
        ),
        (
            &json!("slo-none"),
            &json!("availability"),
            &Value::Null,
            &json!(0.999)
        )
    );
    assert_eq!(
        (&body["period"], &body["series"]),
        (&json!("30days"), &json!([]))
    );
    // One that does reaches ClickHouse (a closed port here).
    let (status, _, _) = call(
        &h,
        Method::GET,
        "/api/v1/rules/slo-api/budget?region=eu",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    let body = gql(&h, VIEWER, r#"{ errorBudget(ruleId: "p99") { ruleId } }"#).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_APPLICABLE",
        "{body}"
    );
    let body = gql(
        &h,
        VIEWER,
        r#"{ errorBudget(ruleId: "slo-none") { ruleId slo objective series { total } } }"#,
    )
    .await;
    assert_eq!(
        body["data"]["errorBudget"],
        json!({"ruleId": "slo-none", "slo": "availability", "objective": 0.999, "series": []})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtest_requests_are_validated_like_rule_writes() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let good = json!({"rules": [burn_rule("a", &[], &[])], "from": "1h"});
    let (status, _, _) = call(
        &h,
        Method::POST,
        "/api/v1/rules/backtest",
        None,
        Some(good.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = call(
        &h,
        Method::POST,
        "/api/v1/rules/backtest",
        Some(VIEWER),
        Some(good),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["detail"],
        "this operation needs the editor role; the key has viewer"
    );

    let mut bad = burn_rule("b", &["Not A Slug"], &[]);
    bad["condition"]["burn_rate"]["objective"] = json!(1.5);
    let (status, headers, body) = call(
        &h,
        Method::POST,
        "/api/v1/rules/backtest",
        Some(EDITOR),
        Some(json!({"rules": [burn_rule("a", &[], &[]), bad]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["type"], "urn:vigil:problem:invalid-spec");
    assert_eq!(
        error_fields(&body),
        [
            "rules[1].monitors[0]",
            "rules[1].condition.burn_rate.objective",
        ]
    );
    // A rule that does not decode is a malformed body, named by its index.
    let (status, _, body) = call(
        &h,
        Method::POST,
        "/api/v1/rules/backtest",
        Some(EDITOR),
        Some(json!({"rules": [burn_rule("a", &[], &[]), {"id": "c"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["type"], "urn:vigil:problem:bad-body");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("rules[1]: missing field `condition`"),
        "{body}"
    );
    for (body, parameter) in [
        (
            json!({"rules": [], "default_rule": true, "from": "8d"}),
            "from",
        ),
        (
            json!({"rules": [], "default_rule": true, "from": "now", "to": "1h"}),
            "to",
        ),
        (
            json!({"rules": [], "default_rule": true, "max_transitions": 20_000}),
            "max_transitions",
        ),
    ] {
        let (status, _, got) = call(
            &h,
            Method::POST,
            "/api/v1/rules/backtest",
            Some(EDITOR),
            Some(body),
        )
        .await;
        // A range too long or ending before it starts is unusable (422); a limit past the
        // documented maximum is malformed (400).
        let want = if parameter == "max_transitions" {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(status, want, "{got}");
        assert_eq!(got["parameter"], parameter, "{got}");
    }
    let request = Request::post("/api/v1/rules/backtest")
        .header(header::AUTHORIZATION, format!("Bearer {EDITOR}"))
        .body(Body::from("{nope"))
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let huge = json!({"rules": [], "default_rule": true, "padding": "x".repeat(100 * 1024)});
    let (status, _, _) = call(
        &h,
        Method::POST,
        "/api/v1/rules/backtest",
        Some(EDITOR),
        Some(huge),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let body = gql(
        &h,
        EDITOR,
        r#"mutation { backtestRules(input: {rules: [{id: "x", condition: {availability: {below: 2}}}]}) { events } }"#,
    )
    .await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["code"], "INVALID_SPEC", "{body}");
    assert_eq!(
        ext["fieldErrors"][0]["field"],
        "rules[0].condition.availability.below"
    );
    let body = gql(
        &h,
        VIEWER,
        r#"mutation { backtestRules(input: {default_rule: true}) { events } }"#,
    )
    .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
}

/// Accepts connections and never answers, so whoever waits on it waits until its own timeout.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

/// A backtest request run in the background: status, headers, body and how long it took.
fn spawn_backtest(
    h: &Harness,
    body: Value,
) -> tokio::task::JoinHandle<(StatusCode, axum::http::HeaderMap, Value, Duration)> {
    let state = h.state.clone();
    tokio::spawn(async move {
        let request = Request::post("/api/v1/rules/backtest")
            .header(header::AUTHORIZATION, format!("Bearer {EDITOR}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let started = std::time::Instant::now();
        let response = router(state).oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        (status, headers, body, started.elapsed())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_backtest_at_a_time_and_each_is_bounded_in_time() {
    let cluster = MockCluster::new(1).unwrap();
    let (url, hole) = black_hole().await;
    let h = harness_with(&cluster, &url, Duration::from_secs(3)).await;
    let body = json!({"rules": [burn_rule("a", &[], &[])], "from": "1h"});
    // Whichever starts first holds the slot (its seeding query never returns) until its
    // timeout; the other is turned away at once.
    let first = spawn_backtest(&h, body.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = spawn_backtest(&h, body.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy_gql = gql(
        &h,
        EDITOR,
        r#"mutation { backtestRules(input: {default_rule: true}) { events } }"#,
    )
    .await;
    let ext = &busy_gql["errors"][0]["extensions"];
    assert_eq!(ext["code"], "BUSY", "{busy_gql}");
    assert!(
        (1..=3).contains(&ext["retryAfter"].as_u64().unwrap()),
        "{busy_gql}"
    );
    let mut answers = vec![first.await.unwrap(), second.await.unwrap()];
    answers.sort_by_key(|a| a.0);
    let [
        (busy_status, headers, busy, busy_elapsed),
        (status, _, timed_out, elapsed),
    ] = <[_; 2]>::try_from(answers).unwrap();

    assert_eq!(busy_status, StatusCode::TOO_MANY_REQUESTS, "{busy}");
    assert!(busy_elapsed < Duration::from_secs(1));
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&retry), "Retry-After {retry}");
    assert_eq!(busy["type"], "urn:vigil:problem:busy");

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{timed_out}");
    assert_eq!(timed_out["type"], "urn:vigil:problem:timeout");
    assert_eq!(
        timed_out["detail"],
        "the backtest did not finish within 3s; narrow it down and retry"
    );
    assert!(elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(10));
    // The slot is free again: the next one runs (and runs out of time the same way).
    let (status, _, _) = call(
        &h,
        Method::POST,
        "/api/v1/rules/backtest",
        Some(EDITOR),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    hole.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_subscribers_choose_rules_monitors_and_severities() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let principal = || Principal {
        name: "dash".into(),
        role: Role::Viewer,
    };
    let request = async_graphql::Request::new(
        r#"subscription { alertChanged(ruleId: "slow", severity: "critical") {
            ruleId monitorId severity labels to } }"#,
    )
    .data(principal());
    let mut stream = h.state.schema.execute_stream(request);
    let bad = async_graphql::Request::new(
        r#"subscription { alertChanged(severity: "page") { ruleId } }"#,
    )
    .data(principal());
    let rejected = h.state.schema.execute_stream(bad).next().await.unwrap();
    assert_eq!(
        rejected.errors[0].message,
        "invalid parameter `severity`: expected `info`, `warning` or `critical`, got \"page\""
    );
    let hub = h.state.service.hub().clone();
    let received = tokio::spawn(async move { stream.next().await.unwrap() });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hub.alerts.receiver_count() < 1 {
        assert!(std::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .unwrap();
    for (n, rule, severity) in [
        (1, "other", "critical"),
        (2, "slow", "warning"),
        (3, "slow", "critical"),
    ] {
        let alert: vigil_schema::AlertTransition = serde_json::from_value(json!({
            "transition_id": format!("00000000-0000-0000-0000-00000000000{n}"), "rule_id": rule,
            "monitor_id": "p1", "region": "eu", "kind": "latency_percentile", "from": "ok",
            "to": "firing", "at": 0, "value": 812.5, "threshold": 500.0, "severity": severity,
            "labels": {"team": "web"}, "message": "p99 high"
        }))
        .unwrap();
        let bytes = vigil_schema::encode(&alert).unwrap();
        producer
            .send(
                FutureRecord::to("t.alerts").key(rule).payload(&bytes),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
    }
    let first = tokio::time::timeout(Duration::from_secs(10), received)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.data.into_json().unwrap(),
        json!({"alertChanged": {"ruleId": "slow", "monitorId": "p1", "severity": "CRITICAL",
                                "labels": {"team": "web"}, "to": "firing"}})
    );
}
