//! Alert rules through the real processor binary on the local stack: kill -9 at pseudo-random
//! points while events flow, restarts, and in the end the `alerts` table (FINAL) holds exactly
//! the transitions of an uninterrupted evaluation of the same topic (the backtest), no firing
//! repeated under a new id and no resolve lost; the alerts topic carries the same transitions;
//! evaluating the log again gives byte-identical transitions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use clickhouse::Row;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vigil_processor::Config;
use vigil_processor::backtest::{BacktestRequest, backtest};
use vigil_schema::{
    AlertState, AlertTransition, Outcome, ProbeResult, RuleSpec, Timestamp, Timings, TopicNames,
    decode, encode,
};

use crate::common::{TestDb, VigilProcess, kafka_brokers, kafka_config, unique_name};

const TIMEOUT: Duration = Duration::from_secs(10);
const HOUR: i64 = 3_600_000;

fn event(n: u64, monitor: &str, region: &str, t_ms: i64, total_us: u64, ok: bool) -> ProbeResult {
    ProbeResult {
        event_id: Uuid::from_u128(u128::from(n) + 1),
        monitor_id: monitor.into(),
        region: region.into(),
        agent: "it".into(),
        scheduled_at: Timestamp::from_millis(t_ms),
        event_time: Timestamp::from_millis(t_ms),
        method: "GET".into(),
        url: "http://127.0.0.1:1/".into(),
        status_code: Some(if ok { 200 } else { 503 }),
        outcome: if ok { Outcome::Ok } else { Outcome::HttpStatus },
        error: None,
        timings: Timings {
            total_us,
            ..Timings::default()
        },
        response_size: None,
        assertions: vec![],
        tls_cert_expiry: None,
        steps: Vec::new(),
    }
}

fn rules() -> Vec<RuleSpec> {
    serde_json::from_value(serde_json::json!([
        {"id": "down", "monitors": ["a", "b"],
         "condition": {"consecutive_failures": {"failures": 2, "successes": 2}}},
        {"id": "avail", "condition": {"availability": {"below": 0.9, "window": "1m"}},
         "for": "10s"},
        {"id": "slow", "monitors": ["c", "d"], "condition": {"latency_percentile":
            {"percentile": 90, "above": "60ms", "recover_below": "40ms", "window": "1m"}}},
        {"id": "errors", "condition": {"status_pattern": {"class": "5xx", "above": 0.2, "window": "1m"}}},
        {"id": "quiet", "monitors": ["f"], "condition": {"no_data": {"intervals": 4}}},
        {"id": "regions", "monitors": ["e"], "quorum": 2,
         "condition": {"consecutive_failures": {"failures": 3}}},
    ]))
    .unwrap()
}

/// Round `round`, step `step` of monitor `m` in `region`: outages, slow spells and silences.
fn check(round: i64, step: i64, m: &str, region: &str, n: u64) -> Option<(u64, bool)> {
    let phase = (round * 40 + step) / 15;
    let ok = match m {
        "a" => phase % 3 != 1,
        "b" => !n.is_multiple_of(13),
        "d" => phase % 5 != 4,
        "e" => !(phase % 4 == 2 || (region == "us" && phase % 5 == 3)),
        _ => phase % 5 != 4 || !n.is_multiple_of(2),
    };
    let slow = (m == "c" || m == "d") && phase % 4 == 1;
    if m == "f" && phase % 6 == 5 {
        return None;
    }
    Some((if slow { 90_000 } else { 20_000 + n % 9 * 1_000 }, ok))
}

async fn produce(
    producer: &FutureProducer,
    topic: &str,
    key_of: impl Fn(usize) -> Vec<u8>,
    payloads: &[Vec<u8>],
) {
    let sends = payloads.iter().enumerate().map(|(i, p)| {
        let key = key_of(i);
        async move {
            producer
                .send(FutureRecord::to(topic).key(&key).payload(p), TIMEOUT)
                .await
        }
    });
    for r in futures::future::join_all(sends).await {
        r.unwrap();
    }
}

#[derive(Debug, Row, Deserialize)]
struct Stored {
    #[serde(with = "clickhouse::serde::uuid")]
    transition_id: Uuid,
    rule_id: String,
    monitor_id: String,
    region: String,
    to_state: String,
    at: i64,
}

async fn stored(db: &TestDb) -> Vec<Stored> {
    db.client
        .query(
            "SELECT transition_id, rule_id, monitor_id, region, to_state, \
             toUnixTimestamp64Milli(at) AS at FROM alerts FINAL ORDER BY at, transition_id",
        )
        .fetch_all()
        .await
        .unwrap()
}

/// Every transition on the alerts topic.
async fn topic_transitions(names: &TopicNames) -> Vec<AlertTransition> {
    let consumer: StreamConsumer = kafka_config()
        .set("group.id", unique_name("it", "alerts_topic"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(&names.alerts), TIMEOUT)
        .unwrap();
    let mut out = Vec::new();
    for partition in metadata.topics()[0].partitions() {
        let p = partition.id();
        let (low, high) = consumer
            .fetch_watermarks(&names.alerts, p, TIMEOUT)
            .unwrap();
        if high <= low {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&names.alerts, p, Offset::Offset(low))
            .unwrap();
        consumer.assign(&tpl).unwrap();
        loop {
            let m = consumer.recv().await.unwrap();
            out.push(decode::<AlertTransition>(m.payload().unwrap()).unwrap());
            if m.offset() + 1 >= high {
                break;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_restarts_keep_alert_transitions_exact() {
    let prefix = unique_name("it", "alert_crash");
    let names = TopicNames::with_prefix(&prefix);
    let db_name = TestDb::fresh_name("alert_crash");
    let vigil = VigilProcess::new(
        &prefix,
        &db_name,
        "[processor]\nwindow = \"10s\"\nallowed-lateness = \"2s\"\nidle-timeout = \"1h\"\n\
         correction-horizon = \"1m\"\nmax-poll-interval = \"10s\"\nbatch-interval = \"300ms\"\nbatch-rows = 300\n",
    );
    let dir = vigil.dir.clone();
    let command = |args: &[&str]| vigil.command(args);
    let status = command(&["migrate"]).status().await.unwrap();
    assert!(status.success(), "migrate failed; log in {}", dir.display());
    let producer: FutureProducer = kafka_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let rules = rules();
    let payloads: Vec<Vec<u8>> = rules.iter().map(|r| encode(r).unwrap()).collect();
    produce(
        &producer,
        &names.rules,
        |i| rules[i].id.clone().into_bytes(),
        &payloads,
    )
    .await;

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
    let t0 = (Timestamp::now().as_millis() / HOUR - 2) * HOUR;
    let series = [
        ("a", "eu"),
        ("b", "eu"),
        ("c", "eu"),
        ("d", "eu"),
        ("e", "eu"),
        ("e", "us"),
        ("f", "eu"),
    ];
    let mut n = 0u64;
    let mut seed = 0xA1E7_u64;
    let rounds = 8;
    for round in 0..rounds {
        let mut batch = Vec::new();
        for step in 0..40 {
            let t = t0 + (round * 40 + step) * 500;
            for (m, region) in series {
                n += 1;
                if let Some((total, ok)) = check(round, step, m, region, n) {
                    batch.push(event(n, m, region, t, total, ok));
                }
            }
        }
        let payloads: Vec<Vec<u8>> = batch.iter().map(|e| encode(e).unwrap()).collect();
        produce(
            &producer,
            &names.probes,
            |i| batch[i].monitor_id.clone().into_bytes(),
            &payloads,
        )
        .await;
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
    // Close every window: a final check per series well past the last one.
    let last = t0 + rounds * 40 * 500 + 60_000;
    let closing: Vec<ProbeResult> = series
        .iter()
        .map(|(m, region)| {
            n += 1;
            event(n, m, region, last, 1_000, true)
        })
        .collect();
    let payloads: Vec<Vec<u8>> = closing.iter().map(|e| encode(e).unwrap()).collect();
    produce(
        &producer,
        &names.probes,
        |i| closing[i].monitor_id.clone().into_bytes(),
        &payloads,
    )
    .await;

    // The uninterrupted evaluation of the same topic, through the same evaluator.
    let config = Config {
        window: Duration::from_secs(10),
        allowed_lateness: Duration::from_secs(2),
        correction_horizon: Duration::from_secs(60),
        ..Config::default()
    };
    let brokers = kafka_brokers();
    let run = || {
        backtest(
            &brokers,
            &names.probes,
            &config,
            None,
            BacktestRequest {
                rules: rules.clone(),
                tags: std::collections::HashMap::new(),
                default_rule: true,
                from_ms: t0,
                to_ms: None,
                max_transitions: 100_000,
            },
            CancellationToken::new(),
        )
    };
    let report = run().await.unwrap();
    // Replaying the log again gives byte-identical transitions.
    let again = run().await.unwrap();
    let bytes = |r: &vigil_processor::backtest::BacktestReport| {
        serde_json::to_string(&r.transitions).unwrap()
    };
    assert!(
        bytes(&report) == bytes(&again),
        "two evaluations of the log differ"
    );
    // The live processors have not closed the windows of the closing checks.
    let expected: Vec<&AlertTransition> = report
        .transitions
        .iter()
        .filter(|t| t.at.as_millis() < last - 10_000)
        .collect();
    let fired: BTreeSet<&str> = expected
        .iter()
        .filter(|t| t.to == AlertState::Firing)
        .map(|t| t.rule_id.as_str())
        .collect();
    assert_eq!(
        fired,
        BTreeSet::from([
            "avail",
            "default-down",
            "down",
            "errors",
            "quiet",
            "regions",
            "slow"
        ]),
        "the scenario exercises every rule"
    );
    let want: BTreeSet<Uuid> = expected.iter().map(|t| t.transition_id).collect();

    let db = TestDb {
        name: db_name.clone(),
        client: crate::common::clickhouse().with_database(&db_name),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows: Vec<Stored> = stored(&db)
            .await
            .into_iter()
            .filter(|r| r.at < last - 10_000)
            .collect();
        let got: BTreeSet<Uuid> = rows.iter().map(|r| r.transition_id).collect();
        if got == want {
            // One row per transition: no firing repeated under another id.
            assert_eq!(rows.len(), want.len());
            let mut per_change = BTreeMap::new();
            for r in &rows {
                *per_change
                    .entry((&r.rule_id, &r.monitor_id, &r.region, &r.to_state, r.at))
                    .or_insert(0) += 1;
            }
            assert!(per_change.values().all(|&c| c == 1), "{per_change:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alerts did not converge: missing {:?}, unexpected {:?} (log: {})",
            expected
                .iter()
                .filter(|t| !got.contains(&t.transition_id))
                .collect::<Vec<_>>(),
            got.difference(&want).collect::<Vec<_>>(),
            dir.join("vigil.log").display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The topic may repeat a transition after a crash, always under the same id, and holds
    // exactly the table's transitions, byte for byte.
    let on_topic = topic_transitions(&names).await;
    let by_id: BTreeMap<Uuid, &AlertTransition> =
        on_topic.iter().map(|t| (t.transition_id, t)).collect();
    for t in &expected {
        assert_eq!(
            by_id.get(&t.transition_id),
            Some(t),
            "transition on the topic"
        );
    }
    for t in &on_topic {
        if t.at.as_millis() < last - 10_000 {
            assert!(want.contains(&t.transition_id), "unexpected {t:?}");
        }
    }
    for mut p in procs {
        p.start_kill().unwrap();
        p.wait().await.unwrap();
    }
    db.drop_database().await;
}
