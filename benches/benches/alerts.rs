//! Alert rule evaluation at scale: 10,000 monitors × 5 rules each.
//!
//! 1. In process, side by side in one run: the processor's pipeline over the same pre-encoded
//!    events with and without the rules (`VIGIL_BENCH_ROUNDS` alternating runs, default 5,
//!    best of each), and the evaluation's share of the pipeline's time in the steady state,
//!    after the first minutes in which every series is created (`VIGIL_BENCH_WARMUP_MINUTES`,
//!    default 5), and over the whole run. Goal: under 10%. Rules are evaluated on a thread of
//!    their own, so the CPU time of every thread is reported beside it: the evaluation's share
//!    of the processor's CPU.
//! 2. With `VIGIL_BENCH_LIVE=1`, on the local stack (`scripts/stack up` first): the live
//!    processor on a fresh topic fed in real time, and the delay from each window's close (the
//!    moment the watermark passed its end) to its transitions arriving on the alerts topic.
//!    Goal: p99 under 1 s.
//!
//! `cargo bench -p vigil-benches --bench alerts` (env: `VIGIL_BENCH_MONITORS` default 10000,
//! `VIGIL_BENCH_MINUTES` default 30, `VIGIL_BENCH_LIVE`, `VIGIL_BENCH_ONLY` = `with` or
//! `without`, `VIGIL_BENCH_ROUNDS` (0: the live part only), `VIGIL_BENCH_INTERVAL` (live: seconds
//! between a monitor's checks, default 10), `VIGIL_BENCH_SECONDS` (live: default 60),
//! `VIGIL_BENCH_VERBOSE=1` (live: each window's slowest transition), `VIGIL_KAFKA_BROKERS`,
//! `VIGIL_CLICKHOUSE_URL`).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;
use vigil_benches::{env, probe_result};
use vigil_processor::alert::RuleSet;
use vigil_processor::{Config, Pipeline, Settings};
use vigil_schema::{AlertTransition, Outcome, RuleSpec, Timestamp, TopicNames, decode, encode};

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Five rules, each selecting every monitor.
fn rules() -> Vec<RuleSpec> {
    serde_json::from_value(serde_json::json!([
        {"id": "down", "condition": {"consecutive_failures": {}}},
        {"id": "slow", "condition": {"latency_percentile":
            {"percentile": 99, "above": "300ms", "recover_below": "200ms", "window": "5m"}}},
        {"id": "avail", "condition": {"availability": {"below": 0.95, "window": "5m"}}},
        {"id": "errors", "condition": {"status_pattern": {"class": "5xx", "above": 0.05}}},
        {"id": "slo", "condition": {"burn_rate": {"slo": "availability", "objective": 0.999}}},
    ]))
    .map(|rules: Vec<RuleSpec>| {
        // `VIGIL_BENCH_RULES=down,slow`: only those (to see what each one costs).
        match std::env::var("VIGIL_BENCH_RULES") {
            Ok(only) => rules
                .into_iter()
                .filter(|r| only.split(',').any(|id| id == r.id))
                .collect(),
            Err(_) => rules,
        }
    })
    .expect("rules")
}

/// One check of `monitor` at `t_ms`: every 7th monitor fails through one 30-second spell in
/// three.
fn check(n: u64, monitor: u64, t_ms: i64) -> vigil_schema::ProbeResult {
    let mut e = probe_result(n);
    e.monitor_id = format!("monitor-{monitor:05}");
    e.event_time = Timestamp(t_ms);
    e.scheduled_at = Timestamp(t_ms);
    let spell = (t_ms / 30_000) as u64;
    if monitor.is_multiple_of(7) && (spell + monitor).is_multiple_of(3) {
        e.outcome = Outcome::HttpStatus;
        e.status_code = Some(503);
        e.timings.total_us = 450_000;
    }
    e
}

fn config() -> Config {
    Config {
        store_probes: false,
        max_clock_skew: Duration::from_secs(100 * 365 * 24 * 3600),
        ..Config::default()
    }
}

fn in_process(monitors: u64, minutes: u64) {
    // One check per monitor every 10 s.
    let t0 = 1_763_800_000_000 - 1_763_800_000_000 % 60_000;
    let steps = minutes * 6;
    let mut events = Vec::with_capacity((monitors * steps) as usize);
    let mut n = 0;
    for step in 0..steps {
        for m in 0..monitors {
            let t = t0 + step as i64 * 10_000 + (m % 9_000) as i64;
            events.push(encode(&check(n, m, t)).expect("encode"));
            n += 1;
        }
    }
    let rule_set = || RuleSet::new(rules(), HashMap::new(), false);
    // The first `warm` events (every series' first windows: its state allocated, detectors
    // and rules set up) are timed apart from the rest, the steady state a running processor
    // spends its life in.
    let warm = (monitors * 6 * env("VIGIL_BENCH_WARMUP_MINUTES", 5).min(minutes - 1)) as usize;
    let run = |with_rules: bool| {
        let started = Instant::now();
        let mut steady = started;
        let cpu_started = cpu_ns();
        let mut cpu_steady = cpu_started;
        let mut p = Pipeline::new(config());
        if with_rules {
            p.set_rules(rule_set());
        }
        let mut transitions = 0;
        for (offset, bytes) in events.iter().enumerate() {
            if offset == warm {
                steady = Instant::now();
                cpu_steady = cpu_ns();
            }
            p.process(0, offset as i64, None, Some(bytes), 0);
            if offset % 10_000 == 0 {
                // As the processor flushes: the alert evaluation's output as far as it got.
                let out = p.take_ready_output();
                transitions += out.transitions.len();
                p.evict();
            }
        }
        p.finish();
        transitions += p.take_output().transitions.len();
        let (elapsed, steady) = (started.elapsed(), steady.elapsed());
        // Before the pipeline (and the evaluation thread with it) is dropped.
        let cpu = cpu_ns();
        let cpu = (cpu - cpu_started, cpu - cpu_steady);
        ((elapsed, steady), cpu, transitions)
    };
    // `VIGIL_BENCH_ONLY=with` (or `without`): one side only, to profile it.
    let only = std::env::var("VIGIL_BENCH_ONLY").unwrap_or_default();
    let best = |a: (Duration, Duration), b: (Duration, Duration)| (a.0.min(b.0), a.1.min(b.1));
    let least = |a: (u64, u64), b: (u64, u64)| (a.0.min(b.0), a.1.min(b.1));
    let (mut without, mut with) = (
        (Duration::MAX, Duration::MAX),
        (Duration::MAX, Duration::MAX),
    );
    let (mut cpu_without, mut cpu_with) = ((u64::MAX, u64::MAX), (u64::MAX, u64::MAX));
    let mut transitions = 0;
    // Alternating runs, the best of each side: noise from the rest of the machine only ever
    // slows a run down.
    for _ in 0..env("VIGIL_BENCH_ROUNDS", 5) {
        if only != "with" {
            let (time, cpu, _) = run(false);
            without = best(without, time);
            cpu_without = least(cpu_without, cpu);
        }
        if only != "without" {
            let (time, cpu, n) = run(true);
            with = best(with, time);
            cpu_with = least(cpu_with, cpu);
            transitions = n;
        }
    }
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    let share = |with: Duration, without: Duration| {
        (with.as_secs_f64() - without.as_secs_f64()) / with.as_secs_f64() * 100.0
    };
    let steady_events = events.len() - warm;
    let per_event = |ns: u64, n: usize| ns as f64 / n as f64;
    let cpu_share = |with: u64, without: u64| (with as f64 - without as f64) / with as f64 * 100.0;
    println!(
        "in process: {monitors} monitors × 5 rules, {} events over {minutes} min ({transitions} transitions)",
        events.len()
    );
    println!(
        "  steady state (after the first {} events):\n    pipeline without rules {:>10.0} events/s\n    pipeline with rules    {:>10.0} events/s\n    evaluation share of the pipeline's time: {:.1}% (goal < 10%)",
        warm,
        rate(steady_events, without.1),
        rate(steady_events, with.1),
        share(with.1, without.1)
    );
    println!(
        "    CPU of every thread per event: without rules {:.0} ns, with rules {:.0} ns\n    evaluation share of the CPU: {:.1}%",
        per_event(cpu_without.1, steady_events),
        per_event(cpu_with.1, steady_events),
        cpu_share(cpu_with.1, cpu_without.1)
    );
    println!(
        "  whole run, every series created in it:\n    pipeline without rules {:>10.0} events/s\n    pipeline with rules    {:>10.0} events/s\n    evaluation share: {:.1}%",
        rate(events.len(), without.0),
        rate(events.len(), with.0),
        share(with.0, without.0)
    );
    println!(
        "    evaluation share of the CPU: {:.1}%",
        cpu_share(cpu_with.0, cpu_without.0)
    );
}

/// CPU time of every live thread of this process, ns (Linux: `/proc/self/task/*/schedstat`;
/// 0 elsewhere). A thread that has exited no longer counts.
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

async fn live(monitors: u64) -> BenchResult {
    let brokers = std::env::var("VIGIL_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let url =
        std::env::var("VIGIL_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let run_id = format!("bench_alerts_{}", now_ms());
    let names = TopicNames::with_prefix(&run_id);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()?;
    vigil_schema::kafka::ensure_topics(&admin, &names.specs(), Duration::from_secs(10), 1).await?;
    let root = clickhouse::Client::default().with_url(&url);
    vigil_schema::migration::migrate(&root, &run_id).await?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    for rule in rules() {
        producer
            .send(
                FutureRecord::to(&names.rules)
                    .key(&rule.id)
                    .payload(&encode(&rule)?),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    let window = Duration::from_secs(10);
    let lateness = Duration::from_secs(1);
    let token = CancellationToken::new();
    let processor = tokio::spawn(vigil_processor::run(
        Settings {
            config: Config {
                group_id: format!("{run_id}_processor"),
                window,
                allowed_lateness: lateness,
                batch_interval: Duration::from_millis(200),
                store_probes: false,
                default_rule: false,
                ..Config::default()
            },
            brokers: brokers.clone(),
            topics: names.clone(),
            clickhouse: root.clone().with_database(&run_id),
            health: Default::default(),
        },
        token.clone(),
    ));
    // Transitions as they arrive, with their arrival time.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("{run_id}_alerts"))
        .set("auto.offset.reset", "earliest")
        // Arrival is timed: a fetch should not sit at the broker waiting for more.
        .set("fetch.wait.max.ms", "10")
        .create()?;
    consumer.subscribe(&[&names.alerts])?;
    let stop = CancellationToken::new();
    let arrivals = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut got: Vec<(AlertTransition, i64)> = Vec::new();
            loop {
                // Cancel-safe: an unreturned message stays queued (and is not needed).
                let m = tokio::select! {
                    () = stop.cancelled() => break,
                    m = consumer.recv() => m,
                };
                if let Some(t) = m
                    .ok()
                    .and_then(|m| m.payload().and_then(|p| decode::<AlertTransition>(p).ok()))
                {
                    got.push((t, now_ms()));
                }
            }
            got
        })
    };
    // Feed in real time: every monitor checks once per interval (`VIGIL_BENCH_INTERVAL`
    // seconds, default 10 as in the in-process part), spread evenly over the seconds, and the
    // wall clock time a window closes is recorded (the first event time past end + lateness).
    let seconds = env("VIGIL_BENCH_SECONDS", 60);
    let interval = env("VIGIL_BENCH_INTERVAL", 10).max(1);
    let mut behind = Duration::ZERO;
    let mut n = 0;
    let mut closes: HashMap<i64, i64> = HashMap::new();
    let window_ms = window.as_millis() as i64;
    let started = Instant::now();
    for s in 0..seconds {
        let t = now_ms();
        let payloads: Vec<(String, Vec<u8>)> = (0..monitors)
            .filter(|m| m % interval == s % interval)
            .map(|m| {
                n += 1;
                let e = check(n, m, t);
                (e.monitor_id.clone(), encode(&e).expect("encode"))
            })
            .collect();
        let mut sends = Vec::with_capacity(payloads.len());
        for (key, payload) in &payloads {
            sends.push(producer.send(
                FutureRecord::to(&names.probes).key(key).payload(payload),
                Duration::from_secs(30),
            ));
        }
        for s in futures::future::join_all(sends).await {
            s.map_err(|(e, _)| e)?;
        }
        let watermark = t - lateness.as_millis() as i64;
        let closed_end = watermark.div_euclid(window_ms) * window_ms;
        closes.entry(closed_end).or_insert_with(now_ms);
        let next = started + Duration::from_secs(s + 1);
        behind = behind.max(Instant::now().saturating_duration_since(next));
        tokio::time::sleep_until(next.into()).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.cancel();
    let got = arrivals.await?;
    token.cancel();
    let _stopped = processor.await?;
    // A window transition's `at` is its window end; its close is when the watermark passed it.
    let mut delays: Vec<f64> = got
        .iter()
        .filter(|(t, _)| t.at.as_millis() % window_ms == 0)
        .filter_map(|(t, arrived)| {
            closes
                .get(&t.at.as_millis())
                .map(|closed| (arrived - closed) as f64 / 1000.0)
        })
        .collect();
    // Per window: its transitions and their slowest delay (a slow one shows which burst).
    let mut per_window: std::collections::BTreeMap<i64, (usize, f64)> = Default::default();
    for (t, arrived) in &got {
        let end = t.at.as_millis();
        if let Some(closed) = closes.get(&end).filter(|_| end % window_ms == 0) {
            let e = per_window.entry(end).or_default();
            e.0 += 1;
            e.1 = e.1.max((arrived - closed) as f64 / 1000.0);
        }
    }
    if std::env::var("VIGIL_BENCH_VERBOSE").is_ok_and(|v| v == "1") {
        for (end, (n, max)) in &per_window {
            println!("  window ending {end}: {n} transitions, slowest {max:.3} s");
        }
    }
    delays.sort_by(f64::total_cmp);
    let q = |p: f64| delays[((delays.len() - 1) as f64 * p).round() as usize];
    println!(
        "live: {monitors} monitors × 5 rules every {interval} s, {n} checks in {seconds} s, {} transitions ({} window transitions timed)",
        got.len(),
        delays.len()
    );
    // A feeder that fell behind real time measured a saturated machine, not the processor.
    println!(
        "  feeder at most {:.3} s behind real time",
        behind.as_secs_f64()
    );
    if !delays.is_empty() {
        println!(
            "  window close → transition on the alerts topic: p50 {:.3} s, p99 {:.3} s, max {:.3} s (goal p99 < 1 s)",
            q(0.5),
            q(0.99),
            q(1.0)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> BenchResult {
    let monitors = env("VIGIL_BENCH_MONITORS", 10_000);
    // `VIGIL_BENCH_ROUNDS=0`: the live part only.
    if env("VIGIL_BENCH_ROUNDS", 5) > 0 {
        in_process(monitors, env("VIGIL_BENCH_MINUTES", 30));
    }
    if std::env::var("VIGIL_BENCH_LIVE").is_ok_and(|v| v == "1") {
        live(monitors).await?;
    }
    Ok(())
}
