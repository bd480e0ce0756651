//! The processor against the local stack: known answers row by row in ClickHouse, hourly
//! rollups and the SQL sketch quantile against exact percentiles, dead letters, and
//! exactly-once effect across kill -9 restarts and rebalances compared with a batch
//! recomputation of the same events.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vigil_processor::row::{WINDOW_COLUMNS, WindowRow};
use vigil_processor::{Config, Pipeline, Settings};
use vigil_schema::sketch::{DEFAULT_ALPHA, Sketch, quantile_sql};
use vigil_schema::{Outcome, ProbeResult, Timestamp, Timings, TopicNames, encode};

use crate::common::{TestDb, VigilProcess, kafka_brokers, kafka_config, unique_name};

const TIMEOUT: Duration = Duration::from_secs(10);
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

async fn topics(test: &str, partitions: i32) -> TopicNames {
    let names = TopicNames::with_prefix(&unique_name("it", test));
    let specs: Vec<_> = names
        .specs()
        .into_iter()
        .map(|s| {
            if s.name == names.probes {
                s.with_partitions(partitions)
            } else {
                s
            }
        })
        .collect();
    let admin: AdminClient<DefaultClientContext> = kafka_config().create().unwrap();
    vigil_schema::kafka::ensure_topics(&admin, &specs, TIMEOUT, 1)
        .await
        .unwrap();
    names
}

async fn migrated_db(test: &str) -> TestDb {
    let db = TestDb::new(test).await;
    vigil_schema::migration::migrate(&crate::common::clickhouse(), &db.name)
        .await
        .unwrap();
    db
}

fn config() -> Config {
    Config {
        window: Duration::from_secs(60),
        allowed_lateness: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(3600),
        correction_horizon: Duration::from_secs(600),
        batch_interval: Duration::from_millis(200),
        ..Config::default()
    }
}

/// Deterministic pseudo-random latency in µs: a log-normal-ish spread around `base`.
fn latency(n: u64, base: f64) -> u64 {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 31;
    let u = (x % 10_000) as f64 / 10_000.0;
    (base * (1.0 + 3.0 * u * u * u)) as u64
}

fn event(
    n: u64,
    monitor: &str,
    region: &str,
    t_ms: i64,
    total_us: u64,
    outcome: Outcome,
) -> ProbeResult {
    ProbeResult {
        event_id: Uuid::from_u128(u128::from(n) + 1),
        monitor_id: monitor.into(),
        region: region.into(),
        agent: "it".into(),
        scheduled_at: Timestamp::from_millis(t_ms),
        event_time: Timestamp::from_millis(t_ms),
        method: "GET".into(),
        url: "http://127.0.0.1:1/".into(),
        status_code: if outcome == Outcome::Connect {
            None
        } else if outcome == Outcome::Ok {
            Some(200)
        } else {
            Some(502)
        },
        outcome,
        error: None,
        timings: Timings {
            dns_us: None,
            connect_us: Some(total_us / 10),
            tls_us: None,
            ttfb_us: Some(total_us / 2),
            total_us,
        },
        response_size: Some(100),
        assertions: vec![],
        tls_cert_expiry: None,
        steps: Vec::new(),
    }
}

async fn produce(producer: &FutureProducer, topic: &str, events: &[ProbeResult]) {
    for chunk in events.chunks(500) {
        let payloads: Vec<Vec<u8>> = chunk.iter().map(|e| encode(e).unwrap()).collect();
        let sends = chunk.iter().zip(&payloads).map(|(e, p)| {
            producer.send(
                FutureRecord::to(topic)
                    .key(e.monitor_id.as_bytes())
                    .payload(p)
                    .timestamp(e.event_time.as_millis()),
                TIMEOUT,
            )
        });
        for r in futures::future::join_all(sends).await {
            r.unwrap();
        }
    }
}

fn producer() -> FutureProducer {
    kafka_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .unwrap()
}

fn settings(names: &TopicNames, db: &TestDb, config: Config) -> Settings {
    Settings {
        config,
        brokers: kafka_brokers(),
        topics: names.clone(),
        clickhouse: db.client.clone(),
        health: Default::default(),
    }
}

async fn final_rows(db: &TestDb, table: &str) -> Vec<WindowRow> {
    db.client
        .query(&format!(
            "SELECT {WINDOW_COLUMNS} FROM {table} FINAL ORDER BY monitor_id, region, window_start"
        ))
        .fetch_all::<WindowRow>()
        .await
        .unwrap()
}

async fn wait_for_rows(
    db: &TestDb,
    table: &str,
    want: usize,
    deadline: Duration,
) -> Vec<WindowRow> {
    let start = Instant::now();
    loop {
        let rows = final_rows(db, table).await;
        if rows.len() >= want {
            return rows;
        }
        assert!(
            start.elapsed() < deadline,
            "{table}: {} of {want} rows after {deadline:?}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until `probes` holds `want` distinct checks.
async fn wait_for_probes(db: &TestDb, want: u64, deadline: Duration) {
    #[derive(Debug, clickhouse::Row, serde::Deserialize)]
    struct N {
        n: u64,
    }
    let start = Instant::now();
    loop {
        let n = db
            .client
            .query("SELECT count() AS n FROM probes FINAL")
            .fetch_one::<N>()
            .await
            .unwrap()
            .n;
        if n == want {
            return;
        }
        assert!(
            n < want && start.elapsed() < deadline,
            "probes: {n} of {want} after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Lower-nearest-rank quantile, the definition the sketch guarantees.
fn exact(values: &[u64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v[(q * (v.len() - 1) as f64).floor() as usize] as f64
}

fn within(got: f64, want: f64) -> bool {
    (got - want).abs() <= 0.01 * want * (1.0 + 1e-9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_answers_rollups_and_sql_quantiles() {
    crate::common::init_logs();
    let names = topics("proc_known", 3).await;
    let db = migrated_db("proc_known").await;
    // Two hours of one check every 3 s for two monitors, then a sentinel that closes them.
    let t0 = (Timestamp::now().as_millis() / HOUR - 5) * HOUR;
    let mut events = Vec::new();
    for i in 0..2_400u64 {
        let t = t0 + i as i64 * 3_000;
        let outcome = if i % 50 == 7 {
            Outcome::HttpStatus
        } else if i % 97 == 3 {
            Outcome::Connect
        } else {
            Outcome::Ok
        };
        events.push(event(i, "api", "eu", t, latency(i, 40_000.0), outcome));
        events.push(event(
            100_000 + i,
            "slow",
            "eu",
            t,
            latency(i, 400_000.0),
            Outcome::Ok,
        ));
    }
    events.push(event(
        999_999,
        "sentinel",
        "eu",
        t0 + 2 * HOUR + 5 * MINUTE,
        1,
        Outcome::Ok,
    ));
    // The sentinel shares no partition with the others necessarily: give each monitor's
    // partition its own closing event too.
    events.push(event(
        999_998,
        "api",
        "eu",
        t0 + 2 * HOUR + 5 * MINUTE,
        1,
        Outcome::Ok,
    ));
    events.push(event(
        999_997,
        "slow",
        "eu",
        t0 + 2 * HOUR + 5 * MINUTE,
        1,
        Outcome::Ok,
    ));
    produce(&producer(), &names.probes, &events).await;

    let token = CancellationToken::new();
    let task = tokio::spawn(vigil_processor::run(
        settings(&names, &db, config()),
        token.clone(),
    ));
    let rows = wait_for_rows(&db, "windows_1m", 240, Duration::from_secs(120)).await;
    token.cancel();
    task.await.unwrap().unwrap();

    let mut checked = 0;
    for row in rows.iter().filter(|r| r.window_start < t0 + 2 * HOUR) {
        let mine: Vec<&ProbeResult> = events
            .iter()
            .filter(|e| {
                e.monitor_id == row.monitor_id
                    && (row.window_start..row.window_end).contains(&e.event_time.as_millis())
            })
            .collect();
        let totals: Vec<u64> = mine.iter().map(|e| e.timings.total_us).collect();
        let ok = mine.iter().filter(|e| e.outcome == Outcome::Ok).count() as u64;
        assert_eq!(row.count, 20, "{row:?}");
        assert_eq!(row.version, 20);
        assert_eq!(row.ok_count, ok);
        assert_eq!(row.availability, ok as f64 / 20.0);
        let http = mine
            .iter()
            .filter(|e| e.outcome == Outcome::HttpStatus)
            .count() as u64;
        assert_eq!(row.errors.get("http_status").copied().unwrap_or(0), http);
        assert_eq!(row.status_5xx, http);
        assert_eq!(row.total_min_us, *totals.iter().min().unwrap());
        assert_eq!(row.total_max_us, *totals.iter().max().unwrap());
        assert_eq!(row.total_mean_us, totals.iter().sum::<u64>() as f64 / 20.0);
        for (q, got) in [(0.5, row.p50_us), (0.9, row.p90_us), (0.99, row.p99_us)] {
            assert!(
                within(got, exact(&totals, q)),
                "q{q} {got} vs {}",
                exact(&totals, q)
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 240);

    // Hourly rollups: merged sketches, so the hour's p99 is within 1% of the exact p99.
    let hours = wait_for_rows(&db, "windows_1h", 4, Duration::from_secs(30)).await;
    for hour in hours.iter().filter(|r| r.window_start < t0 + 2 * HOUR) {
        let totals: Vec<u64> = events
            .iter()
            .filter(|e| {
                e.monitor_id == hour.monitor_id
                    && (hour.window_start..hour.window_start + HOUR)
                        .contains(&e.event_time.as_millis())
            })
            .map(|e| e.timings.total_us)
            .collect();
        assert_eq!(hour.count, 1_200);
        assert_eq!(hour.version, 1_200);
        assert_eq!(hour.window_end, hour.window_start + HOUR);
        assert!(
            within(hour.p99_us, exact(&totals, 0.99)),
            "{} vs {}",
            hour.p99_us,
            exact(&totals, 0.99)
        );
        assert!(within(hour.p50_us, exact(&totals, 0.5)));
    }

    // The SQL quantile over two hours equals the Rust merged sketch and is within 1% of exact.
    #[derive(Debug, clickhouse::Row, serde::Deserialize)]
    struct P99 {
        p99: f64,
    }
    let sql = format!(
        "SELECT {} AS p99 FROM windows_1m FINAL WHERE monitor_id = 'api' AND window_start < fromUnixTimestamp64Milli(toInt64(?))",
        quantile_sql(0.99)
    );
    let got = db
        .client
        .query(&sql)
        .bind(t0 + 2 * HOUR)
        .fetch_one::<P99>()
        .await
        .unwrap()
        .p99;
    let mut merged = Sketch::default();
    for row in rows
        .iter()
        .filter(|r| r.monitor_id == "api" && r.window_start < t0 + 2 * HOUR)
    {
        let data = vigil_schema::SketchData {
            alpha: row.sketch_alpha,
            keys: row.sketch_keys.clone(),
            counts: row.sketch_counts.clone(),
            zero_count: row.sketch_zero_count,
        };
        merged.merge(&Sketch::from_data(&data).unwrap()).unwrap();
    }
    let rust = merged.quantile(0.99).unwrap();
    assert!(
        (got - rust).abs() <= rust * 1e-9,
        "sql {got} vs rust {rust}"
    );
    let all: Vec<u64> = events
        .iter()
        .filter(|e| e.monitor_id == "api" && e.event_time.as_millis() < t0 + 2 * HOUR)
        .map(|e| e.timings.total_us)
        .collect();
    assert!(within(got, exact(&all, 0.99)));

    // Raw probes are stored once each.
    #[derive(Debug, clickhouse::Row, serde::Deserialize)]
    struct N {
        n: u64,
    }
    let n = db
        .client
        .query("SELECT count() AS n FROM probes FINAL")
        .fetch_one::<N>()
        .await
        .unwrap()
        .n;
    assert_eq!(n, events.len() as u64);

    // Every window against the raw probes, in SQL that shares no code with the processor.
    let checked =
        crate::oracle::check_windows_against_probes(&db, MINUTE, DEFAULT_ALPHA, t0 + 2 * HOUR)
            .await;
    assert_eq!(checked, 240);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_late_events_are_dead_lettered_with_a_reason() {
    crate::common::init_logs();
    let names = topics("proc_dlq", 1).await;
    let db = migrated_db("proc_dlq").await;
    let t0 = (Timestamp::now().as_millis() / HOUR - 3) * HOUR;
    let producer = producer();
    produce(
        &producer,
        &names.probes,
        &[event(1, "api", "eu", t0, 1_000, Outcome::Ok)],
    )
    .await;
    producer
        .send(
            FutureRecord::to(&names.probes)
                .key("api")
                .payload(&b"not an event"[..]),
            TIMEOUT,
        )
        .await
        .unwrap();
    // Far past the correction horizon (10 min) of the first window, then a late event.
    produce(
        &producer,
        &names.probes,
        &[
            event(2, "api", "eu", t0 + HOUR, 1_000, Outcome::Ok),
            event(3, "api", "eu", t0 + 1_000, 1_000, Outcome::Ok),
        ],
    )
    .await;
    let token = CancellationToken::new();
    let task = tokio::spawn(vigil_processor::run(
        settings(&names, &db, config()),
        token.clone(),
    ));

    let consumer: StreamConsumer = kafka_config()
        .set("group.id", unique_name("it", "dlq_reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&names.deadletter]).unwrap();
    let mut reasons = Vec::new();
    while reasons.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("dead letters within 60 s")
            .unwrap();
        let headers = m.headers().unwrap();
        let reason = headers
            .iter()
            .find(|h| h.key == vigil_schema::topic::REASON_HEADER)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap();
        reasons.push((reason, m.payload().unwrap().to_vec()));
    }
    token.cancel();
    task.await.unwrap().unwrap();
    reasons.sort();
    assert!(reasons[0].0.starts_with("late: "), "{reasons:?}");
    assert!(reasons[1].0.starts_with("undecodable: "), "{reasons:?}");
    assert_eq!(reasons[1].1, b"not an event");
    // The first window was written with its single on-time event only.
    let rows = final_rows(&db, "windows_1m").await;
    assert_eq!(rows[0].count, 1);
    db.drop_database().await;
}

/// Reads the whole probes topic in partition/offset order and recomputes windows in one batch:
/// the latest version of every window row.
pub(crate) async fn recompute(
    names: &TopicNames,
    config: Config,
) -> BTreeMap<(String, String, i64), WindowRow> {
    let consumer: StreamConsumer = kafka_config()
        .set("group.id", unique_name("it", "recompute"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(&names.probes), TIMEOUT)
        .unwrap();
    let mut pipeline = Pipeline::new(config);
    for partition in metadata.topics()[0].partitions() {
        let p = partition.id();
        let (low, high) = consumer
            .fetch_watermarks(&names.probes, p, TIMEOUT)
            .unwrap();
        if high <= low {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&names.probes, p, Offset::Offset(low))
            .unwrap();
        consumer.assign(&tpl).unwrap();
        loop {
            let m = consumer.recv().await.unwrap();
            pipeline.process(
                p,
                m.offset(),
                m.key(),
                m.payload(),
                vigil_processor::consumer::now_ms(),
            );
            if m.offset() + 1 >= high {
                break;
            }
        }
    }
    pipeline.finish();
    let mut rows = BTreeMap::new();
    for w in pipeline.take_output().windows {
        let row = WindowRow::from(&w);
        let key = (row.monitor_id.clone(), row.region.clone(), row.window_start);
        let newer = rows
            .get(&key)
            .is_none_or(|old: &WindowRow| old.version <= row.version);
        if newer {
            rows.insert(key, row);
        }
    }
    rows
}

/// Kill -9 processors at random points while events flow, two processes each owning half of
/// the partitions; the final table must equal a batch recomputation of the same events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_restarts_keep_windows_exact() {
    let prefix = unique_name("it", "proc_crash");
    let names = TopicNames::with_prefix(&prefix);
    let db_name = TestDb::fresh_name("proc_crash");
    let vigil = VigilProcess::new(
        &prefix,
        &db_name,
        "[processor]\nwindow = \"10s\"\nallowed-lateness = \"2s\"\nidle-timeout = \"1h\"\n\
         correction-horizon = \"1m\"\nmax-poll-interval = \"10s\"\nbatch-interval = \"300ms\"\nbatch-rows = 500\n",
    );
    let dir = vigil.dir.clone();
    let command = |args: &[&str]| vigil.command(args);
    let status = command(&["migrate"]).status().await.unwrap();
    assert!(status.success(), "migrate failed; log in {}", dir.display());

    // Two static shards (kill -9 leaves no group member behind to wait for).
    // Port 0: a fixed port may be taken (by then) by any local connection.
    let spawn = |slot: usize| {
        command(&[
            "process",
            "--listen",
            "127.0.0.1:0",
            "--shard",
            &format!("{slot}/2"),
        ])
        .spawn()
        .unwrap()
    };
    let mut procs = vec![spawn(0), spawn(1)];
    let producer = producer();
    let t0 = (Timestamp::now().as_millis() / HOUR - 2) * HOUR;
    let monitors = ["a", "b", "c", "d", "e", "f"];
    let mut n = 0u64;
    // First a history long enough for the anomaly detectors to leave their warm-up (150
    // windows), with latency spikes and error bursts after it, so the crashes below happen
    // while detectors score, and every score column is compared.
    const WARM: i64 = 170;
    let mut history = Vec::new();
    for w in 0..WARM {
        for (i, m) in monitors.iter().enumerate() {
            for k in 0..2 {
                n += 1;
                let t = t0 + w * 10_000 + k * 5_000 + i as i64;
                let spike = w >= 155 && (w + i as i64) % 5 == 0;
                let total = latency(n, if spike { 400_000.0 } else { 20_000.0 });
                let outcome = if spike && i % 2 == 1 {
                    Outcome::Timeout
                } else {
                    Outcome::Ok
                };
                history.push(event(n, m, "eu", t, total, outcome));
            }
        }
    }
    produce(&producer, &names.probes, &history).await;
    let t1 = t0 + WARM * 10_000;
    let mut seed = 0x5EED_u64;
    // Late events of monitor `a` per window start.
    let mut late_in: BTreeMap<i64, u64> = BTreeMap::new();
    for round in 0..6 {
        // About 20 s of event time per round for six monitors.
        let mut batch = Vec::new();
        for step in 0..40 {
            let t = t1 + (round * 40 + step) * 500;
            for m in monitors {
                n += 1;
                let outcome = if n.is_multiple_of(13) {
                    Outcome::Timeout
                } else {
                    Outcome::Ok
                };
                batch.push(event(n, m, "eu", t, latency(n, 20_000.0), outcome));
            }
            // Late but within the correction horizon: corrections of windows closed 40 s
            // earlier, so restarts re-read records of windows already final.
            if step % 8 == 0 {
                n += 1;
                let late = t - 40_000;
                *late_in.entry(late / 10_000 * 10_000).or_default() += 1;
                batch.push(event(n, "a", "eu", late, latency(n, 20_000.0), Outcome::Ok));
            }
        }
        produce(&producer, &names.probes, &batch).await;
        // Let it work for a pseudo-random while, then kill -9 one of the two processes.
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        tokio::time::sleep(Duration::from_millis(300 + (seed >> 33) % 1_500)).await;
        let victim = (seed >> 40) as usize % 2;
        // Killed by the test only: one that exited by itself failed (see its log).
        for p in &mut procs {
            assert!(
                p.try_wait().unwrap().is_none(),
                "a processor exited: {}",
                dir.display()
            );
        }
        procs[victim].start_kill().unwrap();
        procs[victim].wait().await.unwrap();
        procs[victim] = spawn(victim);
    }
    // Close every window: a final event per monitor well past the last window.
    let last = t1 + 6 * 40 * 500 + MINUTE;
    let closing: Vec<ProbeResult> = monitors
        .iter()
        .map(|m| {
            n += 1;
            event(n, m, "eu", last, 1_000, Outcome::Ok)
        })
        .collect();
    produce(&producer, &names.probes, &closing).await;

    let config = Config {
        window: Duration::from_secs(10),
        allowed_lateness: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(3600),
        correction_horizon: Duration::from_secs(60),
        ..Config::default()
    };
    let expected = recompute(&names, config).await;
    let closed: Vec<&WindowRow> = expected
        .values()
        .filter(|r| r.window_start < last)
        .collect();
    assert_eq!(
        closed.len(),
        6 * (WARM as usize + 12),
        "1,700 s of history and 120 s of event time in 10 s windows, six monitors"
    );
    let scored = closed.iter().filter(|r| r.anomaly_score > 0.0).count();
    assert!(
        scored > 0,
        "no window was scored: the detectors never left warm-up"
    );

    let db = TestDb {
        name: db_name.clone(),
        client: crate::common::clickhouse().with_database(&db_name),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows: BTreeMap<(String, String, i64), WindowRow> = final_rows(&db, "windows_1m")
            .await
            .into_iter()
            .filter(|r| r.window_start < last)
            .map(|r| ((r.monitor_id.clone(), r.region.clone(), r.window_start), r))
            .collect();
        let complete = rows.len() == closed.len()
            && closed.iter().all(|e| {
                rows.get(&(e.monitor_id.clone(), e.region.clone(), e.window_start))
                    .is_some_and(|r| r.version == e.version)
            });
        if complete {
            for e in &closed {
                let got = &rows[&(e.monitor_id.clone(), e.region.clone(), e.window_start)];
                assert_eq!(got.clone(), (*e).clone());
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "windows did not converge: {} of {} rows (processor log: {})",
            rows.len(),
            closed.len(),
            dir.join("vigil.log").display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // What subscribers saw on the windows topic: a version names one content (no partial
    // rebuild published under a version the complete window also has), and never exceeds the
    // final one.
    let published = published_windows(&names.windows);
    let mut by_version: BTreeMap<(String, i64, u64), vigil_schema::WindowSummary> = BTreeMap::new();
    for mut w in published
        .into_iter()
        .filter(|w| w.window_start.as_millis() < last)
    {
        w.anomaly = None;
        let start = w.window_start.as_millis();
        let expected = expected
            .get(&(w.monitor_id.clone(), w.region.clone(), start))
            .unwrap_or_else(|| panic!("a window never computed was published: {w:?}"));
        assert!(w.version <= expected.version, "{w:?} beyond {expected:?}");
        // A window is first emitted when the watermark passes its end, holding every event
        // that arrived in order; later emissions add late ones. A partial rebuild after a
        // restart would lack some of the in-order ones.
        let late = if w.monitor_id == "a" {
            late_in.get(&start).copied().unwrap_or(0)
        } else {
            0
        };
        assert!(
            w.count + late >= expected.count,
            "a partial window was published: {w:?} (complete: {} events, {late} late)",
            expected.count
        );
        if w.version == expected.version {
            assert_eq!(w.count, expected.count, "{w:?}");
        }
        let key = (w.monitor_id.clone(), start, w.version);
        if let Some(seen) = by_version.get(&key) {
            assert_eq!(seen, &w, "two contents published under one version");
        } else {
            by_version.insert(key, w);
        }
    }
    assert!(by_version.len() >= closed.len());
    // The recomputation above runs the processor's own pipeline: hold the table against the
    // raw probes too, once all of them are stored.
    wait_for_probes(&db, n, Duration::from_secs(60)).await;
    let checked =
        crate::oracle::check_windows_against_probes(&db, 10_000, DEFAULT_ALPHA, last).await;
    assert_eq!(checked, closed.len());
    for mut p in procs {
        p.start_kill().unwrap();
        p.wait().await.unwrap();
    }
    db.drop_database().await;
}

/// Every window summary on the windows topic, read to its end.
fn published_windows(topic: &str) -> Vec<vigil_schema::WindowSummary> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let consumer: BaseConsumer = kafka_config()
        .set("group.id", unique_name("it", "windows-reader"))
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut list = TopicPartitionList::new();
    let mut left = 0;
    for p in metadata.topics()[0].partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .unwrap();
        left += high;
        list.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while left > 0 {
        assert!(Instant::now() < deadline, "windows topic not read in time");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            left -= 1;
            out.push(vigil_schema::decode(m.payload().unwrap()).unwrap());
        }
    }
    out
}

/// Two processors share the partitions through the consumer group: the second joins while
/// events flow, then the first stops gracefully; partitions and their windows move cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_moves_partitions_and_windows_cleanly() {
    crate::common::init_logs();
    let names = topics("proc_rebalance", 6).await;
    let db = migrated_db("proc_rebalance").await;
    let mut config = config();
    config.group_id = unique_name("it", "group");
    config.window = Duration::from_secs(10);
    config.allowed_lateness = Duration::from_secs(2);
    config.correction_horizon = Duration::from_secs(60);
    let producer = producer();
    let t0 = (Timestamp::now().as_millis() / HOUR - 2) * HOUR;
    let monitors = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let mut n = 0u64;
    let mut batch = |from: i64, to: i64| {
        let mut events = Vec::new();
        for step in from..to {
            for m in monitors {
                n += 1;
                events.push(event(
                    n,
                    m,
                    "eu",
                    t0 + step * 500,
                    latency(n, 30_000.0),
                    Outcome::Ok,
                ));
            }
        }
        events
    };
    let first = batch(0, 60);
    let second = batch(60, 120);
    let closing = batch(300, 301);

    produce(&producer, &names.probes, &first).await;
    let token_a = CancellationToken::new();
    let a = tokio::spawn(vigil_processor::run(
        settings(&names, &db, config.clone()),
        token_a.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let token_b = CancellationToken::new();
    let b = tokio::spawn(vigil_processor::run(
        settings(&names, &db, config.clone()),
        token_b.clone(),
    ));
    produce(&producer, &names.probes, &second).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    token_a.cancel();
    a.await.unwrap().unwrap();
    produce(&producer, &names.probes, &closing).await;

    let expected = recompute(&names, config).await;
    let last = t0 + 300 * 500;
    let closed: Vec<&WindowRow> = expected
        .values()
        .filter(|r| r.window_start < last)
        .collect();
    assert_eq!(
        closed.len(),
        monitors.len() * 6,
        "60 s of event time in 10 s windows"
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows: BTreeMap<(String, String, i64), WindowRow> = final_rows(&db, "windows_1m")
            .await
            .into_iter()
            .filter(|r| r.window_start < last)
            .map(|r| ((r.monitor_id.clone(), r.region.clone(), r.window_start), r))
            .collect();
        let same = |e: &WindowRow| {
            rows.get(&(e.monitor_id.clone(), e.region.clone(), e.window_start))
                .is_some_and(|r| r == e)
        };
        let equal = closed.iter().filter(|e| same(e)).count();
        if rows.len() == closed.len() && equal == closed.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the rebalance: {equal} of {} windows equal the recomputation",
            closed.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    token_b.cancel();
    b.await.unwrap().unwrap();
    db.drop_database().await;
}

/// `vigil replay` rebuilds the windows of a time range (optionally one monitor) from the topic,
/// identical to a batch recomputation, and leaves other data alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_recomputes_windows_from_the_topic() {
    crate::common::init_logs();
    let names = topics("proc_replay", 3).await;
    let db = migrated_db("proc_replay").await;
    let t0 = (Timestamp::now().as_millis() / HOUR - 3) * HOUR;
    let mut events = Vec::new();
    for i in 0..600u64 {
        for (k, m) in ["a", "b"].iter().enumerate() {
            let n = i * 2 + k as u64;
            events.push(event(
                n,
                m,
                "eu",
                t0 + i as i64 * 1_000,
                latency(n, 25_000.0),
                Outcome::Ok,
            ));
        }
    }
    produce(&producer(), &names.probes, &events).await;

    // Only monitor "a", from minute 2 on: windows of "a" in [t0 + 2 min, end) are rebuilt.
    let mut progress_calls = 0;
    let done = vigil_processor::replay(
        settings(&names, &db, config()),
        vigil_processor::ReplayRequest {
            from_ms: t0 + 2 * MINUTE + 30_000,
            to_ms: None,
            monitor: Some("a".into()),
        },
        CancellationToken::new(),
        |_| progress_calls += 1,
    )
    .await
    .unwrap();
    assert!(progress_calls >= 2);
    // Records before the window holding `from` are skipped by timestamp, not read.
    assert_eq!(done.total, 960);
    assert_eq!(done.read, 960);
    assert_eq!(
        done.matched, 480,
        "monitor a, from the start of minute 2 to minute 10"
    );
    assert_eq!(done.windows, 8);

    let expected = recompute(&names, config()).await;
    let rows = final_rows(&db, "windows_1m").await;
    assert_eq!(rows.len(), 8);
    for row in rows {
        assert_eq!(row.monitor_id, "a");
        assert!(row.window_start >= t0 + 2 * MINUTE);
        let want = &expected[&(row.monitor_id.clone(), row.region.clone(), row.window_start)];
        assert_eq!(&row, want);
    }

    // The command line: everything from the start, through the binary, with a progress bar.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["replay", "--from", "1d"])
        .env(
            "VIGIL_TOPIC_PREFIX",
            names.probes.trim_end_matches(".probes"),
        )
        .env("VIGIL_CLICKHOUSE_DATABASE", &db.name)
        .env("VIGIL_KAFKA_BROKERS", kafka_brokers())
        .env("VIGIL_CLICKHOUSE_URL", crate::common::clickhouse_url())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("replayed 1200 events (1200 matched)"),
        "{stdout}"
    );
    let rows = final_rows(&db, "windows_1m").await;
    // Ten minutes of two monitors; the last minute stays open (no later event closes it)
    // until the replay's end emits it too.
    assert_eq!(rows.len(), 20);
    db.drop_database().await;
}

/// At the window cap the processor pauses consumption (gauge `vigil_processor_paused` = 1)
/// instead of dropping anything, resumes once windows are evicted, and every event ends up in
/// a window row or, with its reason, in the dead-letter topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_cap_pauses_consumption_without_losing_events() {
    crate::common::init_logs();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let names = topics("proc_cap", 1).await;
    let db = migrated_db("proc_cap").await;
    let config = Config {
        window: Duration::from_secs(10),
        allowed_lateness: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(1),
        correction_horizon: Duration::from_secs(5),
        batch_interval: Duration::from_millis(100),
        // About four windows of one check each (the window gauge accounts ~1,200 bytes apiece).
        max_state_bytes: 4_800,
        ..Config::default()
    };
    // Eight monitors, one recent check each: eight windows, twice the budget.
    let now = Timestamp::now().as_millis();
    let events: Vec<ProbeResult> = (0..8u64)
        .map(|i| event(i, &format!("m{i}"), "eu", now - 3_000, 10_000, Outcome::Ok))
        .collect();
    produce(&producer(), &names.probes, &events).await;
    let token = CancellationToken::new();
    let task = tokio::spawn(vigil_processor::run(
        settings(&names, &db, config),
        token.clone(),
    ));

    let gauge = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("vigil_processor_paused "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut paused_seen = false;
    loop {
        let paused = gauge(&recorder.render());
        paused_seen |= paused == Some(1.0);
        let rows = final_rows(&db, "windows_1m").await.len();
        if paused_seen && paused == Some(0.0) && rows > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "paused seen: {paused_seen}, now {paused:?}, rows {rows}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Everything is accounted for: window rows plus dead letters cover all eight events.
    let consumer: StreamConsumer = kafka_config()
        .set("group.id", unique_name("it", "cap_dlq"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&names.deadletter]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut letters = 0u64;
    loop {
        let windowed: u64 = final_rows(&db, "windows_1m")
            .await
            .iter()
            .map(|r| r.count)
            .sum();
        if windowed + letters == 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{windowed} windowed + {letters} dead-lettered of 8"
        );
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            assert!(m.headers().is_some());
            letters += 1;
        }
    }
    token.cancel();
    task.await.unwrap().unwrap();
    db.drop_database().await;
}
