//! End to end on the local stack (`scripts/stack up` first): probe events from Kafka to window
//! rows in ClickHouse through the processor, next to a bare rdkafka consumer reading the same
//! topic, and the lag from a window's end to its row being visible in ClickHouse.
//!
//! `cargo bench -p vigil-benches --bench processor_e2e` (env: `VIGIL_KAFKA_BROKERS`,
//! `VIGIL_CLICKHOUSE_URL`, `VIGIL_BENCH_EVENTS` default 200000; `VIGIL_BENCH_LOG` a
//! tracing filter for the processor's log).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clickhouse::{Client, Row};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use vigil_benches::probe_result;
use vigil_processor::{Config, Settings};
use vigil_schema::{Timestamp, TopicNames, encode};

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn kafka() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set(
        "bootstrap.servers",
        env("VIGIL_KAFKA_BROKERS", "127.0.0.1:9092"),
    );
    c
}

#[derive(Debug, Row, Deserialize)]
struct Count {
    n: u64,
}

#[derive(Debug, Row, Deserialize)]
struct Visible {
    monitor_id: String,
    window_end: i64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn produce(
    producer: &FutureProducer,
    topic: &str,
    events: &[vigil_schema::ProbeResult],
) -> BenchResult {
    for chunk in events.chunks(5_000) {
        let payloads: Vec<Vec<u8>> = chunk.iter().map(encode).collect::<Result<_, _>>()?;
        let sends = chunk.iter().zip(&payloads).map(|(e, p)| {
            producer.send(
                FutureRecord::to(topic)
                    .key(e.monitor_id.as_bytes())
                    .payload(p)
                    .timestamp(e.event_time.as_millis()),
                Duration::from_secs(30),
            )
        });
        for r in futures::future::join_all(sends).await {
            r.map_err(|(e, _)| e)?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> BenchResult {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    if let Ok(filter) = std::env::var("VIGIL_BENCH_LOG") {
        // The processor's own log (e.g. `VIGIL_BENCH_LOG=vigil_processor=debug`), timestamped.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let n: u64 = env("VIGIL_BENCH_EVENTS", "200000").parse()?;
    let tag = format!("bench_e2e_{}", now_ms());
    let names = TopicNames::with_prefix(&tag);
    let admin: AdminClient<DefaultClientContext> = kafka().create()?;
    let specs: Vec<_> = names
        .specs()
        .into_iter()
        .map(|s| {
            if s.name == names.probes {
                s.with_partitions(6)
            } else {
                s
            }
        })
        .collect();
    vigil_schema::kafka::ensure_topics(&admin, &specs, Duration::from_secs(10), 1).await?;
    let root = Client::default().with_url(env("VIGIL_CLICKHOUSE_URL", "http://127.0.0.1:8123"));
    vigil_schema::migration::migrate(&root, &tag).await?;
    let db = root.clone().with_database(&tag);

    // 1,000 monitors, one check each every 10 s of event time, ending 5 minutes ago.
    let monitors = 1_000u64;
    let start = (now_ms() / 60_000) * 60_000 - (n / monitors) as i64 * 10_000 - 300_000;
    let mut events: Vec<_> = (0..n)
        .map(|i| {
            let mut e = probe_result(i);
            e.event_time = Timestamp::from_millis(
                start + (i / monitors) as i64 * 10_000 + (i % monitors) as i64,
            );
            e
        })
        .collect();
    // One late-enough event per monitor closes its last window.
    for m in 0..monitors {
        let mut e = probe_result(n + m);
        e.monitor_id = format!("monitor-{m:04}");
        e.event_time = Timestamp::from_millis(start + (n / monitors) as i64 * 10_000 + 120_000);
        events.push(e);
    }
    let producer: FutureProducer = kafka().set("acks", "all").set("linger.ms", "20").create()?;
    let t = Instant::now();
    produce(&producer, &names.probes, &events).await?;
    let total = events.len() as f64;
    println!(
        "produced {} events in {:.2?} ({:.0} events/s)",
        events.len(),
        t.elapsed(),
        total / t.elapsed().as_secs_f64()
    );

    // Bare consumer: the floor.
    let consumer: StreamConsumer = kafka()
        .set("group.id", format!("{tag}-bare"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&names.probes])?;
    let t = Instant::now();
    let mut read = 0usize;
    let mut first = None;
    while read < events.len() {
        let m = consumer.recv().await?;
        std::hint::black_box(m.payload());
        first.get_or_insert_with(|| t.elapsed());
        read += 1;
    }
    let bare = total / t.elapsed().as_secs_f64();
    println!(
        "bare rdkafka consumer: {read} events in {:.2?} ({bare:.0} events/s; first record after {:.2?})",
        t.elapsed(),
        first.unwrap_or_default()
    );
    drop(consumer);

    // The processor, Kafka to ClickHouse.
    let expected_windows: u64 = {
        let mut per: HashMap<String, std::collections::BTreeSet<i64>> = HashMap::new();
        for e in &events[..n as usize] {
            per.entry(e.monitor_id.clone())
                .or_default()
                .insert(e.event_time.as_millis() / 60_000);
        }
        per.values().map(|s| s.len() as u64).sum()
    };
    let config = Config {
        group_id: format!("{tag}-processor"),
        ..Config::default()
    };
    let token = CancellationToken::new();
    let settings = Settings {
        config,
        brokers: env("VIGIL_KAFKA_BROKERS", "127.0.0.1:9092"),
        topics: names.clone(),
        clickhouse: db.clone(),
        health: Default::default(),
    };
    let t = Instant::now();
    let task = tokio::spawn(vigil_processor::run(settings, token.clone()));
    loop {
        let c = db
            .query("SELECT count() AS n FROM windows_1m")
            .fetch_one::<Count>()
            .await?;
        if c.n >= expected_windows {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "only {} of {expected_windows} windows after 10 minutes",
                c.n
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rate = total / t.elapsed().as_secs_f64();
    println!(
        "processor Kafka→ClickHouse: {} events, {expected_windows} window rows (+ raw probes) in {:.2?} ({rate:.0} events/s, {:.0}% of the bare consumer)",
        events.len(),
        t.elapsed(),
        100.0 * rate / bare
    );

    // Live lag: 100 monitors every second for 40 s, 10 s windows, 2 s lateness.
    token.cancel();
    task.await??;
    let live = TopicNames::with_prefix(&format!("{tag}_live"));
    let specs: Vec<_> = live
        .specs()
        .into_iter()
        .map(|s| {
            if s.name == live.probes {
                s.with_partitions(6)
            } else {
                s
            }
        })
        .collect();
    vigil_schema::kafka::ensure_topics(&admin, &specs, Duration::from_secs(10), 1).await?;
    let token = CancellationToken::new();
    let config = Config {
        group_id: format!("{tag}-live"),
        window: Duration::from_secs(10),
        allowed_lateness: Duration::from_secs(2),
        batch_interval: Duration::from_millis(100),
        ..Config::default()
    };
    let settings = Settings {
        config,
        brokers: env("VIGIL_KAFKA_BROKERS", "127.0.0.1:9092"),
        topics: live.clone(),
        clickhouse: db.clone(),
        health: Default::default(),
    };
    db.query("TRUNCATE TABLE windows_1m").execute().await?;
    let task = tokio::spawn(vigil_processor::run(settings, token.clone()));
    let feeder_producer = producer.clone();
    let topic = live.probes.clone();
    let feeder = tokio::spawn(async move {
        let mut i = 0u64;
        for _ in 0..40 {
            let batch: Vec<_> = (0..100u64)
                .map(|m| {
                    i += 1;
                    let mut e = probe_result(m);
                    e.event_id = uuid::Uuid::from_u128(u128::from(i) << 32 | 1);
                    e.event_time = Timestamp::from_millis(now_ms());
                    e
                })
                .collect();
            if produce(&feeder_producer, &topic, &batch).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut seen: HashMap<(String, i64), f64> = HashMap::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(44) {
        let rows = db
            .query("SELECT toString(monitor_id) AS monitor_id, toUnixTimestamp64Milli(window_end) AS window_end FROM windows_1m")
            .fetch_all::<Visible>()
            .await?;
        let now = now_ms();
        for r in rows {
            seen.entry((r.monitor_id, r.window_end))
                .or_insert((now - r.window_end) as f64 / 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    feeder.await?;
    token.cancel();
    task.await??;
    let mut lags: Vec<f64> = seen.into_values().collect();
    lags.sort_by(f64::total_cmp);
    println!(
        "window end → row visible in ClickHouse ({} windows, 2 s allowed lateness included): p50 {:.2} s, p99 {:.2} s",
        lags.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99)
    );
    root.query(&format!("DROP DATABASE IF EXISTS {tag}"))
        .execute()
        .await?;
    Ok(())
}
