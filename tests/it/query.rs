//! The query API against the local stack: monitors written through the real broker and read
//! back at once, history/summary/probes/alerts/export over known data in ClickHouse (including
//! a merged-sketch p99 over 2 h against the exact p99 of the values, and a corrected window
//! counted once), GraphQL over the same data, and a WebSocket subscriber receiving a window
//! produced to the windows topic.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use futures::{SinkExt, StreamExt};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use uuid::Uuid;
use vigil_processor::row::{ProbeRow, WindowRow};
use vigil_query::{AppState, router};
use vigil_schema::sketch::Sketch;
use vigil_schema::{Timestamp, WindowSummary};

use crate::common::{TestDb, clickhouse_url, kafka_brokers, kafka_config, unique_name};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const ALPHA: f64 = 0.01;

pub(crate) struct Stack {
    pub(crate) db: TestDb,
    pub(crate) state: AppState,
    pub(crate) topics: vigil_schema::TopicNames,
    token: CancellationToken,
}

/// A migrated test database and a query service over it, with topics of its own.
pub(crate) async fn stack(test: &str) -> Stack {
    let db = TestDb::new(test).await;
    vigil_schema::migration::migrate(&crate::common::clickhouse(), &db.name)
        .await
        .unwrap();
    let mut config = vigil_query::Config::default();
    config.kafka.brokers = kafka_brokers();
    config.kafka.topic_prefix = unique_name("it", test);
    config.clickhouse.url = clickhouse_url();
    config.clickhouse.database = db.name.clone();
    let token = CancellationToken::new();
    let service = vigil_query::connect(&config, &token).await.unwrap();
    vigil_query::wait_ready(&service, Duration::from_secs(30))
        .await
        .unwrap();
    let topics = config.topics();
    Stack {
        db,
        state: AppState::new(service, config, None),
        topics,
        token,
    }
}

impl Stack {
    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Vec<u8>) {
        let request = Request::builder().method(method).uri(uri);
        let request = match body {
            Some(b) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }

    pub(crate) async fn json(&self, uri: &str) -> Value {
        let (status, body) = self.call(Method::GET, uri, None).await;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "{uri}: {value}");
        value
    }

    pub(crate) async fn create(&self, id: &str, tags: &[&str]) {
        let spec = json!({"id": id, "name": id, "url": "https://example.com/", "tags": tags});
        let (status, body) = self
            .call(Method::POST, "/api/v1/monitors", Some(spec))
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }

    pub(crate) async fn finish(self) {
        self.token.cancel();
        self.db.drop_database().await;
    }
}

/// Deterministic pseudo-random numbers in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Lower nearest-rank quantile, the definition the sketch's bound refers to.
fn exact(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
}

#[allow(clippy::too_many_arguments, reason = "one row's distinguishing values")]
fn window_row(
    monitor: &str,
    region: &str,
    start: i64,
    len: i64,
    version: u64,
    values: &[f64],
    failures: u64,
    dns_mean: f64,
) -> WindowRow {
    let mut sketch = Sketch::new(ALPHA);
    for &v in values {
        sketch.add(v);
    }
    let data = sketch.to_data();
    let count = values.len() as u64;
    let q = |p| sketch.quantile(p).unwrap_or(0.0);
    let mut errors = BTreeMap::new();
    if failures > 0 {
        errors.insert("timeout".to_owned(), failures);
    }
    WindowRow {
        monitor_id: monitor.into(),
        region: region.into(),
        window_start: start,
        window_end: start + len,
        version,
        count,
        ok_count: count - failures,
        availability: (count - failures) as f64 / count as f64,
        errors,
        status_1xx: 0,
        status_2xx: count - failures,
        status_3xx: 0,
        status_4xx: 0,
        status_5xx: 0,
        total_min_us: values.iter().copied().fold(f64::INFINITY, f64::min) as u64,
        total_max_us: values.iter().copied().fold(0.0, f64::max) as u64,
        total_mean_us: values.iter().sum::<f64>() / count as f64,
        p50_us: q(0.5),
        p75_us: q(0.75),
        p90_us: q(0.9),
        p95_us: q(0.95),
        p99_us: q(0.99),
        p999_us: q(0.999),
        dns_mean_us: dns_mean,
        connect_mean_us: 0.0,
        tls_mean_us: 0.0,
        ttfb_mean_us: 0.0,
        ttfb_p95_us: 0.0,
        dns_count: count,
        connect_count: 0,
        tls_count: 0,
        ttfb_count: 0,
        assertion_failures: 0,
        sketch_alpha: ALPHA,
        sketch_keys: data.keys,
        sketch_counts: data.counts,
        sketch_zero_count: data.zero_count,
        ttfb_sketch_keys: Vec::new(),
        ttfb_sketch_counts: Vec::new(),
        ttfb_sketch_zero_count: 0,
        anomaly_latency: 0.0,
        anomaly_errors: 0.0,
        anomaly_score: if region == "us" { 0.25 } else { 0.0 },
        anomaly_reason: String::new(),
    }
}

async fn insert<T>(client: &clickhouse::Client, table: &str, rows: &[T])
where
    T: clickhouse::Row + serde::Serialize + clickhouse::RowOwned,
    for<'a> T: clickhouse::RowWrite<Value<'a> = T>,
{
    let mut insert = client.insert::<T>(table).await.unwrap();
    for row in rows {
        insert.write(row).await.unwrap();
    }
    insert.end().await.unwrap();
}

/// 2 h of one-minute windows for `api` in two regions, 50 checks per window and region; in
/// `us` every tenth check is a timeout. Returns every latency, per region.
async fn seed_windows(db: &TestDb, base: i64) -> BTreeMap<&'static str, Vec<f64>> {
    let mut rng = Lcg(42);
    let mut all: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut minute_rows = Vec::new();
    let mut hour_values: BTreeMap<(&str, i64), (Vec<f64>, u64)> = BTreeMap::new();
    for minute in 0..120 {
        let start = base + minute * MINUTE;
        for (region, dns) in [("eu", 100.0), ("us", 300.0)] {
            let values: Vec<f64> = (0..50)
                .map(|_| {
                    let x = rng.next();
                    (2_000.0 + 400_000.0 * x.powi(6)).round()
                })
                .collect();
            let failures = if region == "us" { 5 } else { 0 };
            minute_rows.push(window_row(
                "api", region, start, MINUTE, 2, &values, failures, dns,
            ));
            let hour = hour_values
                .entry((region, base + (minute / 60) * HOUR))
                .or_default();
            hour.0.extend_from_slice(&values);
            hour.1 += failures;
            all.entry(region).or_default().extend(values);
        }
    }
    // A stale version of the first eu window, as a replay or correction would leave behind:
    // FINAL must keep only version 2.
    let stale = window_row("api", "eu", base, MINUTE, 1, &[1.0; 999], 0, 0.0);
    insert(&db.client, "windows_1m", &[stale]).await;
    insert(&db.client, "windows_1m", &minute_rows).await;
    let hour_rows: Vec<WindowRow> = hour_values
        .iter()
        .map(|((region, start), (values, failures))| {
            let dns = if *region == "us" { 300.0 } else { 100.0 };
            window_row("api", region, *start, HOUR, 1, values, *failures, dns)
        })
        .collect();
    insert(&db.client, "windows_1h", &hour_rows).await;
    all
}

fn within(estimate: f64, exact: f64) -> bool {
    (estimate - exact).abs() <= ALPHA * exact * (1.0 + 1e-9)
}

#[tokio::test]
async fn history_summary_and_export_have_known_answers() {
    let s = stack("query_history").await;
    s.create("api", &["prod"]).await;
    s.create("idle", &["prod"]).await;
    let base = (Timestamp::now().as_millis() / HOUR - 3) * HOUR;
    let values = seed_windows(&s.db, base).await;
    let from = Timestamp::from_millis(base).to_string();
    let to = Timestamp::from_millis(base + 2 * HOUR).to_string();
    let range = format!("from={from}&to={to}");

    // 1-minute history: 120 points, regions merged, the stale version ignored.
    let h = s
        .json(&format!("/api/v1/monitors/api/history?{range}"))
        .await;
    assert_eq!(h["resolution"], "1m");
    let points = h["points"].as_array().unwrap();
    assert_eq!(points.len(), 120);
    assert_eq!(points[0]["start"], from.as_str());
    assert_eq!(
        points[0]["count"], 100,
        "FINAL keeps only the newest version"
    );
    assert_eq!(points[0]["ok_count"], 95);
    assert_eq!(points[0]["error_count"], 5);
    assert_eq!(points[0]["availability"], 0.95);
    assert_eq!(
        points[0]["errors"],
        json!([{"kind": "timeout", "count": 5}])
    );
    assert_eq!(points[0]["dns_mean_us"], 200.0);
    assert_eq!(points[0]["anomaly_score"], 0.25);
    let mut first: Vec<f64> = values["eu"][..50].to_vec();
    first.extend_from_slice(&values["us"][..50]);
    let p99 = points[0]["p99_us"].as_f64().unwrap();
    assert!(
        within(p99, exact(&first, 0.99)),
        "{p99} vs {}",
        exact(&first, 0.99)
    );

    // Summary over 2 h: merged sketches, not averaged percentiles.
    let everything: Vec<f64> = values.values().flatten().copied().collect();
    let summary = s
        .json(&format!("/api/v1/monitors/api/summary?{range}&target=0.99"))
        .await;
    assert_eq!(summary["resolution"], "1m");
    let overall = &summary["overall"];
    assert_eq!(overall["count"], 12_000);
    assert_eq!(overall["ok_count"], 11_400);
    assert_eq!(overall["uptime_percent"], 95.0);
    // 120 failures allowed at 99%, 600 spent.
    let budget = overall["error_budget_remaining"].as_f64().unwrap();
    assert!((budget - -4.0).abs() < 1e-9, "{budget}");
    for (field, q) in [("p50_us", 0.5), ("p95_us", 0.95), ("p99_us", 0.99)] {
        let got = overall[field].as_f64().unwrap();
        let want = exact(&everything, q);
        assert!(within(got, want), "{field}: merged {got} vs exact {want}");
    }
    let averaged: f64 = points
        .iter()
        .map(|p| p["p99_us"].as_f64().unwrap())
        .sum::<f64>()
        / 120.0;
    assert!(
        !within(averaged, exact(&everything, 0.99)),
        "the data must tell merged from averaged percentiles ({averaged})"
    );
    let regions = summary["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 2);
    assert_eq!(regions[0]["region"], "eu");
    assert_eq!(regions[0]["sla"]["uptime_percent"], 100.0);
    assert_eq!(regions[0]["sla"]["error_budget_remaining"], 1.0);
    let eu_p99 = regions[0]["sla"]["p99_us"].as_f64().unwrap();
    assert!(within(eu_p99, exact(&values["eu"], 0.99)));

    // Hourly resolution: 2 points, and the merged p99 is the same as from minutes (merging is
    // exact).
    let hourly = s
        .json(&format!(
            "/api/v1/monitors/api/history?{range}&resolution=1h"
        ))
        .await;
    assert_eq!(hourly["points"].as_array().unwrap().len(), 2);
    assert_eq!(hourly["points"][1]["count"], 6_000);
    let hourly_summary = s
        .json(&format!(
            "/api/v1/monitors/api/summary?{range}&resolution=1h&target=0.99"
        ))
        .await;
    assert_eq!(hourly_summary["overall"]["p99_us"], overall["p99_us"]);

    // Tag and all-monitor history; one region only.
    let tagged = s.json(&format!("/api/v1/history?{range}&tag=prod")).await;
    assert_eq!(tagged["points"].as_array().unwrap().len(), 120);
    assert_eq!(tagged["next_cursor"], Value::Null);

    // Pages: 120 points, 50 at a time, then the rest; together exactly the whole answer.
    let whole = s.json(&format!("/api/v1/history?{range}")).await;
    let mut paged: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let after = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let page = s
            .json(&format!("/api/v1/history?{range}&limit=50{after}"))
            .await;
        pages += 1;
        let points = page["points"].as_array().unwrap();
        assert!(points.len() <= 50);
        paged.extend(points.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(Value::Array(paged), whole["points"]);
    // GraphQL pages the same way.
    let query = format!(
        r#"{{ history(from: "{from}", to: "{to}", first: 100) {{ nextCursor points {{ start }} }} }}"#
    );
    let (status, body) = s
        .call(Method::POST, "/graphql", Some(json!({"query": query})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    let cursor = body["data"]["history"]["nextCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let query = format!(
        r#"{{ history(from: "{from}", to: "{to}", first: 100, after: "{cursor}") {{ nextCursor points {{ start }} }} }}"#
    );
    let (_, body) = s
        .call(Method::POST, "/graphql", Some(json!({"query": query})))
        .await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["data"]["history"]["points"].as_array().unwrap().len(),
        20,
        "{body}"
    );
    assert_eq!(body["data"]["history"]["nextCursor"], Value::Null);
    // Bad pages name the parameter: 400 when the document rules them out, 422 for a cursor
    // of the documented shape that this API did not issue.
    for (bad, want) in [
        ("limit=0", StatusCode::BAD_REQUEST),
        ("limit=10001", StatusCode::BAD_REQUEST),
        ("cursor=zz", StatusCode::BAD_REQUEST),
        ("cursor=41", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, body) = s
            .call(Method::GET, &format!("/api/v1/history?{range}&{bad}"), None)
            .await;
        assert_eq!(status, want, "{bad}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        let param = bad.split('=').next().unwrap();
        assert!(body.to_string().contains(param), "{bad}: {body}");
    }
    let none = s
        .json(&format!("/api/v1/history?{range}&tag=staging"))
        .await;
    assert_eq!(none["points"], json!([]));
    let eu = s
        .json(&format!("/api/v1/monitors/api/history?{range}&region=eu"))
        .await;
    assert_eq!(eu["points"][1]["count"], 50);
    assert_eq!(eu["points"][1]["dns_mean_us"], 100.0);

    // GraphQL reads the same numbers.
    let query = format!(
        r#"{{ summary(monitorId: "api", from: "{from}", to: "{to}", target: 0.99) {{ overall {{ count p99Us }} }} }}"#
    );
    let (status, body) = s
        .call(Method::POST, "/graphql", Some(json!({"query": query})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["data"]["summary"]["overall"]["p99Us"], overall["p99_us"],
        "{body}"
    );

    // Export: streamed CSV with a header and NDJSON, one line per point.
    let (status, csv) = s
        .call(
            Method::GET,
            &format!("/api/v1/monitors/api/export?{range}&format=csv"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 121);
    assert_eq!(lines[0], vigil_query::rest::CSV_HEADER.trim_end());
    assert!(
        lines[1].starts_with(&format!("api,{from},100,95,5,0.95,0,0,")),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(",0.25,timeout=5"), "{}", lines[1]);
    let (_, ndjson) = s
        .call(Method::GET, &format!("/api/v1/export?{range}"), None)
        .await;
    let ndjson = String::from_utf8(ndjson).unwrap();
    let rows: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 120);
    assert_eq!(rows[0], points[0]);
    s.finish().await;
}

fn probe_row(monitor: &str, i: i64, base: i64) -> ProbeRow {
    let failed = i % 5 == 0;
    ProbeRow {
        event_id: Uuid::from_u128(i as u128 + 1),
        monitor_id: monitor.into(),
        region: if i % 2 == 0 { "eu" } else { "us" }.into(),
        agent: "runner-1".into(),
        scheduled_at: base + i * 1_000,
        event_time: base + i * 1_000,
        method: "GET".into(),
        url: "https://example.com/".into(),
        status_code: if failed { 503 } else { 200 },
        outcome: if failed { "http_status" } else { "ok" }.into(),
        error: if failed {
            "status 503".into()
        } else {
            String::new()
        },
        dns_us: Some(10),
        connect_us: None,
        tls_us: None,
        ttfb_us: Some(900),
        total_us: 1_000 + i as u64,
        response_size: Some(12),
        assertion_conditions: Vec::new(),
        assertion_passed: Vec::new(),
        assertion_actuals: Vec::new(),
        tls_cert_expiry: None,
        steps: String::new(),
    }
}

#[tokio::test]
async fn probes_and_alerts_page_newest_first() {
    let s = stack("query_probes").await;
    s.create("api", &[]).await;
    let base = Timestamp::now().as_millis() - HOUR;
    let rows: Vec<ProbeRow> = (0..25).map(|i| probe_row("api", i, base)).collect();
    insert(&s.db.client, "probes", &rows).await;
    // A re-delivered check (same event id) is counted once.
    insert(&s.db.client, "probes", &rows[..3]).await;

    let mut seen = Vec::new();
    let mut uri = "/api/v1/monitors/api/probes?from=now-2h&limit=10".to_owned();
    loop {
        let page = s.json(&uri).await;
        let items = page["items"].as_array().unwrap();
        seen.extend(items.iter().map(|p| p["total_us"].as_u64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/monitors/api/probes?from=now-2h&limit=10&cursor={c}"),
            None => break,
        }
    }
    let expected: Vec<u64> = (0..25).rev().map(|i| 1_000 + i).collect();
    assert_eq!(seen, expected, "newest first, every check once");

    let failed = s
        .json("/api/v1/monitors/api/probes?from=now-2h&status=5xx")
        .await;
    let items = failed["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items[0]["status_code"], 503);
    assert_eq!(items[0]["outcome"], "http_status");
    assert_eq!(items[0]["error"], "status 503");
    assert_eq!(
        items[0]["event_time"],
        Timestamp::from_millis(base + 20_000).to_string()
    );
    let ok = s
        .json("/api/v1/monitors/api/probes?from=now-2h&outcome=ok&region=eu&limit=100")
        .await;
    assert_eq!(ok["items"].as_array().unwrap().len(), 10);
    assert!(ok["items"][0]["connect_us"].is_null());

    for (i, to_state) in ["pending", "firing", "ok"].iter().enumerate() {
        s.db.client
            .query(
                "INSERT INTO alerts (transition_id, rule_id, monitor_id, region, kind, from_state, \
                 to_state, at, value, threshold, message) VALUES (?, 'p99-slow', 'api', '', \
                 'latency_percentile', 'ok', ?, fromUnixTimestamp64Milli(toInt64(?)), ?, 500000, ?)",
            )
            .bind(Uuid::from_u128(i as u128 + 7).to_string())
            .bind(*to_state)
            .bind(base + i as i64 * MINUTE)
            .bind(600_000.0 + i as f64)
            .bind(format!("transition {i}"))
            .execute()
            .await
            .unwrap();
    }
    let alerts = s.json("/api/v1/alerts?monitor=api&from=now-2h").await;
    assert!(alerts["next_cursor"].is_null());
    let alerts = alerts["items"].as_array().unwrap();
    assert_eq!(alerts.len(), 3);
    assert_eq!(alerts[0]["to"], "ok");
    assert_eq!(alerts[0]["message"], "transition 2");
    assert!(alerts[0]["region"].is_null());
    assert_eq!(alerts[2]["value"], 600_000.0);
    let other = s.json("/api/v1/alerts?monitor=other&from=now-2h").await;
    assert_eq!(other, json!({"items": [], "next_cursor": null}));
    s.finish().await;
}

fn summary_event(monitor: &str, start: i64) -> WindowSummary {
    let mut sketch = Sketch::new(ALPHA);
    sketch.add(1_500.0);
    WindowSummary {
        monitor_id: monitor.into(),
        region: "eu".into(),
        window_start: Timestamp::from_millis(start),
        window_end: Timestamp::from_millis(start + MINUTE),
        version: 1,
        count: 1,
        ok_count: 1,
        availability: 1.0,
        errors: BTreeMap::new(),
        status_1xx: 0,
        status_2xx: 1,
        status_3xx: 0,
        status_4xx: 0,
        status_5xx: 0,
        total_min_us: 1_500,
        total_max_us: 1_500,
        total_mean_us: 1_500.0,
        p50_us: 1_500.0,
        p75_us: 1_500.0,
        p90_us: 1_500.0,
        p95_us: 1_500.0,
        p99_us: 1_500.0,
        p999_us: 1_500.0,
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

#[tokio::test]
async fn websocket_subscriber_receives_a_window_from_the_topic() {
    let s = stack("query_ws").await;
    s.create("live", &["edge"]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(vigil_query::serve(
        listener,
        s.state.clone(),
        s.token.clone(),
    ));

    let mut request = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::text(
        json!({"type": "connection_init"}).to_string(),
    ))
    .await
    .unwrap();
    let ack = ws.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"));
    let query = r#"subscription { windowClosed(tag: "edge") { monitorId start count p99Us } }"#;
    let subscribe = json!({"id": "w", "type": "subscribe", "payload": {"query": query}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.state.service.hub().windows.receiver_count() == 0 {
        assert!(Instant::now() < deadline, "subscription never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let producer: FutureProducer = kafka_config().create().unwrap();
    let start = (Timestamp::now().as_millis() / MINUTE) * MINUTE;
    let sent = Instant::now();
    for event in [
        summary_event("untagged", start),
        summary_event("live", start),
    ] {
        let bytes = vigil_schema::encode(&event).unwrap();
        producer
            .send(
                FutureRecord::to(&s.topics.windows)
                    .key(&event.monitor_id)
                    .payload(&bytes),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let message = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let m = ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
            if v["type"] == "next" {
                return v;
            }
        }
    })
    .await
    .expect("no window within 20 s");
    let latency = sent.elapsed();
    eprintln!("window delivered over WebSocket {latency:?} after the produce started");
    assert_eq!(
        message["payload"]["data"]["windowClosed"],
        json!({"monitorId": "live", "start": Timestamp::from_millis(start).to_string(),
               "count": 1, "p99Us": 1500.0})
    );
    // Shutdown closes live connections instead of waiting out the grace period for them.
    let stopping = Instant::now();
    s.token.cancel();
    server.await.unwrap().unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    let closed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap();
    assert!(
        matches!(closed, None | Some(Err(_)) | Some(Ok(Message::Close(_)))),
        "{closed:?}"
    );
    s.db.drop_database().await;
}

#[tokio::test]
async fn monitor_writes_are_read_back_at_once_through_the_broker() {
    let s = stack("query_monitors").await;
    for i in 0..5 {
        s.create(&format!("m{i}"), &[]).await;
        let got = s.json(&format!("/api/v1/monitors/m{i}")).await;
        assert_eq!(got["id"], format!("m{i}"));
    }
    let (status, _) = s
        .call(Method::POST, "/api/v1/monitors/m3/disable", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = s.json("/api/v1/monitors?status=enabled").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    let (status, _) = s.call(Method::DELETE, "/api/v1/monitors/m0", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.call(Method::GET, "/api/v1/monitors/m0", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A second process reads the same compacted topic from the beginning.
    let token = CancellationToken::new();
    let mut config = (*s.state.config).clone();
    config.kafka.topic_prefix = s.topics.monitors.trim_end_matches(".monitors").to_owned();
    let other = vigil_query::connect(&config, &token).await.unwrap();
    vigil_query::wait_ready(&other, Duration::from_secs(30))
        .await
        .unwrap();
    let mut ids: Vec<String> = other.view().all().iter().map(|m| m.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["m1", "m2", "m3", "m4"]);
    assert!(!other.view().get("m3").unwrap().enabled);
    token.cancel();
    s.finish().await;
}

fn probe_event(n: u64, t_ms: i64, total_us: u64) -> vigil_schema::ProbeResult {
    vigil_schema::ProbeResult {
        event_id: Uuid::from_u128(u128::from(n) + 1),
        monitor_id: "e2e".into(),
        region: "eu".into(),
        agent: "it".into(),
        scheduled_at: Timestamp::from_millis(t_ms),
        event_time: Timestamp::from_millis(t_ms),
        method: "GET".into(),
        url: "https://example.com/".into(),
        status_code: Some(200),
        outcome: vigil_schema::Outcome::Ok,
        error: None,
        timings: vigil_schema::Timings {
            total_us,
            ..Default::default()
        },
        response_size: Some(10),
        assertions: vec![],
        tls_cert_expiry: None,
        steps: Vec::new(),
    }
}

/// The whole path: probes produced, the processor closes the window and publishes it, the query
/// service fans it out, and a WebSocket client receives it.
#[tokio::test]
async fn websocket_subscriber_receives_the_window_the_processor_closes() {
    let s = stack("query_e2e").await;
    s.create("e2e", &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(vigil_query::serve(
        listener,
        s.state.clone(),
        s.token.clone(),
    ));
    let mut request = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::text(
        json!({"type": "connection_init"}).to_string(),
    ))
    .await
    .unwrap();
    let query =
        r#"subscription { windowClosed(monitorId: "e2e") { start count okCount p50Us p99Us } }"#;
    let start = json!({"id": "1", "type": "start", "payload": {"query": query}});
    ws.send(Message::text(start.to_string())).await.unwrap();

    let t0 = (Timestamp::now().as_millis() / MINUTE - 10) * MINUTE;
    let latencies: Vec<u64> = (1..=40).map(|i| 1_000 + i * 997 % 50_000).collect();
    let mut events: Vec<_> = latencies
        .iter()
        .enumerate()
        .map(|(i, us)| probe_event(i as u64, t0 + 1_000 + i as i64 * 1_000, *us))
        .collect();
    // Moves the watermark past the first window's end.
    events.push(probe_event(999, t0 + 3 * MINUTE, 5_000));
    let producer: FutureProducer = kafka_config().set("acks", "all").create().unwrap();
    for e in &events {
        let bytes = vigil_schema::encode(e).unwrap();
        producer
            .send(
                FutureRecord::to(&s.topics.probes)
                    .key("e2e")
                    .payload(&bytes),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let processor_token = CancellationToken::new();
    let processor = tokio::spawn(vigil_processor::run(
        vigil_processor::Settings {
            config: vigil_processor::Config {
                group_id: unique_name("it", "query_e2e_group"),
                window: Duration::from_secs(60),
                allowed_lateness: Duration::from_secs(5),
                batch_interval: Duration::from_millis(200),
                ..vigil_processor::Config::default()
            },
            brokers: kafka_brokers(),
            topics: s.topics.clone(),
            clickhouse: s.db.client.clone(),
            health: Default::default(),
        },
        processor_token.clone(),
    ));
    let started = Instant::now();
    let window = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let m = ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
            if v["type"] == "data" {
                return v["payload"]["data"]["windowClosed"].clone();
            }
        }
    })
    .await
    .expect("no window within 90 s");
    eprintln!(
        "processor-closed window reached the WebSocket client {:?} after the processor started",
        started.elapsed()
    );
    let values: Vec<f64> = latencies.iter().map(|&v| v as f64).collect();
    assert_eq!(window["start"], Timestamp::from_millis(t0).to_string());
    assert_eq!(window["count"], 40);
    assert_eq!(window["okCount"], 40);
    let p99 = window["p99Us"].as_f64().unwrap();
    assert!(
        within(p99, exact(&values, 0.99)),
        "{p99} vs {}",
        exact(&values, 0.99)
    );
    processor_token.cancel();
    processor.await.unwrap().unwrap();
    s.token.cancel();
    server.await.unwrap().unwrap();
    s.db.drop_database().await;
}
