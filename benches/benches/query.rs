//! The query API against the local stack (`scripts/stack up`; endpoints from
//! `VIGIL_KAFKA_BROKERS` and `VIGIL_CLICKHOUSE_URL`, loopback defaults):
//!
//! 1. "24 h of 1-minute windows for one monitor" over REST and over GraphQL, with API keys on,
//!    next to the same query fetched directly: through the same client Vigil uses (the
//!    clickhouse crate, RowBinary with LZ4, in process), and as the same statement posted to
//!    ClickHouse's HTTP endpoint (`FORMAT JSONEachRow`): requests/s, p50 and p99 latency, and
//!    the overhead ratio of each API to each direct fetch.
//! 2. Delivery latency of live windows to 1,000 concurrent GraphQL WebSocket subscribers: from
//!    just before the produce to `vigil.windows` until each subscriber has the message.
//!
//! `cargo bench -p vigil-benches --bench query` (sizes from `VIGIL_BENCH_REQUESTS`, default 200,
//! and `VIGIL_BENCH_SUBSCRIBERS`, default 1000).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;
use vigil_processor::row::WindowRow;
use vigil_query::params::{Resolution, TimeRange};
use vigil_query::service::{HistoryPage, HistoryQuery, Target};
use vigil_schema::sketch::Sketch;
use vigil_schema::{Timestamp, WindowSummary};

const MINUTE: i64 = 60_000;
const CONCURRENCY: usize = 4;
const BENCH_KEY: &str = "bench-key-0123456789abcdef";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("query bench failed: {e}");
        std::process::exit(1);
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run() -> Result<(), BoxError> {
    let ch_url = env_or("VIGIL_CLICKHOUSE_URL", "http://127.0.0.1:8123");
    let brokers = env_or("VIGIL_KAFKA_BROKERS", "127.0.0.1:9092");
    let requests: usize = env_or("VIGIL_BENCH_REQUESTS", "200").parse()?;
    let subscribers: usize = env_or("VIGIL_BENCH_SUBSCRIBERS", "1000").parse()?;
    let stamp = Timestamp::now().as_millis();
    let name = format!("bench_query_{stamp}");

    let admin = clickhouse::Client::default().with_url(&ch_url);
    admin
        .query(&format!("CREATE DATABASE {name}"))
        .execute()
        .await?;
    vigil_schema::migration::migrate(&admin, &name).await?;

    let mut config = vigil_query::Config::default();
    config.kafka.brokers = brokers.clone();
    config.kafka.topic_prefix = name.clone();
    config.clickhouse.url = ch_url.clone();
    config.clickhouse.database = name.clone();
    config.subscriptions.buffer = 4096;
    // Keys on, as in any deployment the API is reachable in.
    config.auth.keys = vec![vigil_query::config::ApiKeyConfig {
        name: "bench".into(),
        key: BENCH_KEY.into(),
        role: vigil_query::auth::Role::Viewer,
        expires: None,
    }];
    // Rate limits on (their cost is part of the API's), but high enough for one loopback
    // address and one key to stand for the 1,000 clients subscribing at once.
    config.rate_limit = vigil_schema::ratelimit::RateLimitConfig {
        per_key: 100_000,
        per_key_burst: 100_000,
        per_address: 100_000,
        per_address_burst: 100_000,
    };
    let token = CancellationToken::new();
    let service = vigil_query::connect(&config, &token).await?;
    vigil_query::wait_ready(&service, Duration::from_secs(30)).await?;
    service
        .create_monitor(json!({"id": "bench", "name": "Bench", "url": "https://example.com/"}))
        .await?;

    // 24 h of one-minute windows, 60 checks each.
    let base = (stamp / MINUTE - 24 * 60 - 5) * MINUTE;
    let rows: Vec<WindowRow> = (0..24 * 60)
        .map(|i| window_row(base + i * MINUTE, i))
        .collect();
    let db = admin.clone().with_database(&name);
    let mut insert = db.insert::<WindowRow>("windows_1m").await?;
    for row in &rows {
        insert.write(row).await?;
    }
    insert.end().await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = vigil_query::AppState::new(service.clone(), config.clone(), None);
    let server = tokio::spawn(vigil_query::serve(listener, state, token.clone()));

    let from = Timestamp::from_millis(base).to_string();
    let to = Timestamp::from_millis(base + 24 * 60 * MINUTE).to_string();
    let q = HistoryQuery {
        target: Target::Monitor("bench".into()),
        region: None,
        range: TimeRange {
            from: Timestamp::from_millis(base),
            to: Timestamp::from_millis(base + 24 * 60 * MINUTE),
        },
        resolution: Resolution::Minute,
        // The API's default page, so the direct statement is the one the API sends.
        page: Some(HistoryPage {
            after: None,
            limit: config.limits.max_history_points,
        }),
    };
    let statement = format!("{} FORMAT JSONEachRow", service.history_statement(&q)?);
    let client = {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {BENCH_KEY}").parse()?,
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()?
    };
    let rest_url =
        format!("http://{addr}/api/v1/monitors/bench/history?from={from}&to={to}&resolution=1m");
    let check: Value = client.get(&rest_url).send().await?.json().await?;
    let points = check["points"].as_array().map_or(0, Vec::len);
    if points != 24 * 60 {
        return Err(format!("expected 1440 points, got {points}: {check}").into());
    }
    let gql_body = json!({"query": format!(
        r#"{{ history(monitorId: "bench", from: "{from}", to: "{to}", resolution: "1m") {{ points {{ monitorId start count okCount errorCount availability errors {{ kind count }} status4xx status5xx p50Us p90Us p95Us p99Us totalMeanUs dnsMeanUs connectMeanUs tlsMeanUs ttfbMeanUs anomalyScore }} }} }}"#
    )});
    let ch_endpoint = format!("{ch_url}/?database={name}");
    let check: Value = client
        .post(format!("http://{addr}/graphql"))
        .json(&gql_body)
        .send()
        .await?
        .json()
        .await?;
    let points = check["data"]["history"]["points"]
        .as_array()
        .map_or(0, Vec::len);
    if points != 24 * 60 {
        return Err(format!("GraphQL: expected 1440 points, got {points}: {check}").into());
    }

    println!(
        "query bench: 24 h of 1m windows (1440 points), {requests} requests, concurrency {CONCURRENCY}"
    );
    let same_client = measure(requests, || {
        let (service, q) = (service.clone(), q.clone());
        async move {
            let history = service.history(&q).await?;
            Ok(history.points.len())
        }
    })
    .await?;
    let direct = measure(requests, || {
        let request = client.post(&ch_endpoint).body(statement.clone());
        async move {
            Ok(request
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await
                .map(|b| b.len())?)
        }
    })
    .await?;
    let rest = measure(requests, || {
        let request = client.get(&rest_url);
        async move {
            Ok(request
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await
                .map(|b| b.len())?)
        }
    })
    .await?;
    let graphql = measure(requests, || {
        let request = client
            .post(format!("http://{addr}/graphql"))
            .json(&gql_body);
        async move {
            Ok(request
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await
                .map(|b| b.len())?)
        }
    })
    .await?;
    for (label, stats) in [
        ("same client (rows)", &same_client),
        ("clickhouse direct", &direct),
        ("REST", &rest),
        ("GraphQL", &graphql),
    ] {
        println!(
            "  {label:<18} {:>7.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  body {} B",
            stats.rps, stats.p50_ms, stats.p99_ms, stats.bytes
        );
    }
    for (base_label, base) in [("same client", &same_client), ("JSONEachRow", &direct)] {
        for (label, stats) in [("REST", &rest), ("GraphQL", &graphql)] {
            println!(
                "  overhead {label:<8} vs {base_label:<12} p50 {:.2}x  p99 {:.2}x  throughput {:.2}x (target <= 1.5x)",
                stats.p50_ms / base.p50_ms,
                stats.p99_ms / base.p99_ms,
                base.rps / stats.rps
            );
        }
    }

    fan_out(&service, &brokers, &config, addr, subscribers).await?;

    token.cancel();
    server.await??;
    admin
        .query(&format!("DROP DATABASE {name}"))
        .execute()
        .await?;
    Ok(())
}

struct Stats {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    bytes: usize,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((q * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

/// Runs `total` requests, `CONCURRENCY` at a time, after 10 warm-up requests.
async fn measure<F, Fut>(total: usize, make: F) -> Result<Stats, BoxError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize, BoxError>> + Send + 'static,
{
    for _ in 0..10 {
        make().await?;
    }
    let started = Instant::now();
    let results: Vec<Result<(Duration, usize), BoxError>> =
        futures::stream::iter((0..total).map(|_| {
            let request = make();
            async move {
                let t = Instant::now();
                request.await.map(|bytes| (t.elapsed(), bytes))
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(total);
    let mut bytes = 0;
    for result in results {
        let (latency, size) = result?;
        latencies.push(latency.as_secs_f64() * 1e3);
        bytes = size;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Stats {
        rps: total as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        bytes,
    })
}

/// Connects `n` WebSocket subscribers, produces 20 windows 100 ms apart, and reports the
/// delivery latency over every (subscriber, window) pair.
async fn fan_out(
    service: &vigil_query::Service,
    brokers: &str,
    config: &vigil_query::Config,
    addr: std::net::SocketAddr,
    n: usize,
) -> Result<(), BoxError> {
    const EVENTS: u64 = 20;
    let received: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let lagged = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let mut request = format!("ws://{addr}/graphql/ws").into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        ws.send(Message::text(
            json!({"type": "connection_init",
                "payload": {"authorization": format!("Bearer {BENCH_KEY}")}})
            .to_string(),
        ))
        .await?;
        let query = r#"subscription { windowClosed(monitorId: "bench") { version } }"#;
        ws.send(Message::text(
            json!({"id": "1", "type": "subscribe", "payload": {"query": query}}).to_string(),
        ))
        .await?;
        let received = Arc::clone(&received);
        let lagged = Arc::clone(&lagged);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(EVENTS as usize);
            while (mine.len() as u64) < EVENTS {
                let Ok(Some(Ok(message))) =
                    tokio::time::timeout(Duration::from_secs(30), ws.next()).await
                else {
                    break;
                };
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                if value["type"] != "next" {
                    continue;
                }
                if let Some(version) = value["payload"]["data"]["windowClosed"]["version"].as_u64()
                {
                    mine.push((version, Instant::now()));
                } else {
                    lagged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            received.lock().await.extend(mine);
            drop(ws.close(None).await);
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while service.hub().windows.receiver_count() < n {
        if Instant::now() > deadline {
            return Err("subscribers did not all start within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .create()?;
    let topic = config.topics().windows;
    let mut sent = BTreeMap::new();
    for version in 1..=EVENTS {
        let event = summary(version);
        let bytes = vigil_schema::encode(&event)?;
        sent.insert(version, Instant::now());
        producer
            .send(
                FutureRecord::to(&topic).key("bench").payload(&bytes),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for task in tasks {
        task.await?;
    }
    let received = received.lock().await;
    let mut latencies: Vec<f64> = received
        .iter()
        .filter_map(|(v, at)| {
            sent.get(v)
                .map(|s| at.duration_since(*s).as_secs_f64() * 1e3)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let expected = n as u64 * EVENTS;
    println!(
        "fan-out: {n} WebSocket subscribers x {EVENTS} windows: {} of {expected} delivered, {} lag notices",
        latencies.len(),
        lagged.load(std::sync::atomic::Ordering::Relaxed)
    );
    if latencies.is_empty() {
        return Err("no window was delivered".into());
    }
    println!(
        "  delivery latency p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms (target p99 < 500 ms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    Ok(())
}

fn window_row(start: i64, i: i64) -> WindowRow {
    let mut sketch = Sketch::new(0.01);
    for k in 0..60 {
        sketch.add(2_000.0 + ((i * 37 + k * 101) % 5_000) as f64);
    }
    let data = sketch.to_data();
    let q = |p| sketch.quantile(p).unwrap_or(0.0);
    WindowRow {
        monitor_id: "bench".into(),
        region: "eu".into(),
        window_start: start,
        window_end: start + MINUTE,
        version: 1,
        count: 60,
        ok_count: 59,
        availability: 59.0 / 60.0,
        errors: BTreeMap::from([("timeout".to_owned(), 1)]),
        status_1xx: 0,
        status_2xx: 59,
        status_3xx: 0,
        status_4xx: 0,
        status_5xx: 0,
        total_min_us: 2_000,
        total_max_us: 7_000,
        total_mean_us: 4_500.0,
        p50_us: q(0.5),
        p75_us: q(0.75),
        p90_us: q(0.9),
        p95_us: q(0.95),
        p99_us: q(0.99),
        p999_us: q(0.999),
        dns_mean_us: 50.0,
        connect_mean_us: 300.0,
        tls_mean_us: 900.0,
        ttfb_mean_us: 3_000.0,
        ttfb_p95_us: 4_000.0,
        dns_count: 60,
        connect_count: 60,
        tls_count: 60,
        ttfb_count: 59,
        assertion_failures: 0,
        sketch_alpha: 0.01,
        sketch_keys: data.keys,
        sketch_counts: data.counts,
        sketch_zero_count: data.zero_count,
        ttfb_sketch_keys: Vec::new(),
        ttfb_sketch_counts: Vec::new(),
        ttfb_sketch_zero_count: 0,
        anomaly_latency: 0.0,
        anomaly_errors: 0.0,
        anomaly_score: 0.0,
        anomaly_reason: String::new(),
    }
}

fn summary(version: u64) -> WindowSummary {
    let mut sketch = Sketch::new(0.01);
    sketch.add(1_500.0);
    let start = Timestamp::now().as_millis() / MINUTE * MINUTE;
    WindowSummary {
        monitor_id: "bench".into(),
        region: "eu".into(),
        window_start: Timestamp::from_millis(start),
        window_end: Timestamp::from_millis(start + MINUTE),
        version,
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
