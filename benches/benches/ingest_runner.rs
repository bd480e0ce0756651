//! Probe runner throughput: 2,000 monitors at a 1 s interval against local targets, each
//! check on a fresh connection. Prints sustained checks per second, failures per kind, and the
//! scheduling lag (check start minus scheduled time) p50/p99/max.
//!
//! `VIGIL_BENCH_KINDS` (default `http`) lists the check kinds the monitors take in turn:
//! `http`, `tcp` (send and read the echo), `tls` (handshake), `dns` (one A query over UDP), `ws`
//! (upgrade, one message), `icmp` (one echo request to 127.0.0.1), `grpc` (one health check
//! over a fresh HTTP/2 connection), `steps` (two HTTP requests, the second using a value
//! extracted from the first).
//!
//! ```sh
//! cargo bench -p vigil-benches --bench ingest_runner
//! VIGIL_BENCH_MONITORS=2000 VIGIL_BENCH_SECS=20 cargo bench -p vigil-benches --bench ingest_runner
//! VIGIL_BENCH_MONITORS=10000 VIGIL_BENCH_KINDS=http,tcp,tls,dns,ws,icmp,grpc,steps cargo bench -p vigil-benches --bench ingest_runner
//! ```
//!
//! Needs nothing running: results go to an in-memory sink. With `VIGIL_BENCH_KAFKA=1` they also
//! go through the real producer path (non-blocking buffer, idempotent producer) to the local
//! broker (`scripts/stack up`), on topics of the run's own. The lag includes up to 1 ms from
//! anchoring the schedule at a millisecond wall-clock time.

#![allow(clippy::unwrap_used, reason = "bench binary")]

#[path = "ingest_runner/targets.rs"]
mod targets;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vigil_benches::env;

use tokio_util::sync::CancellationToken;
use vigil_ingest::MonitorView;
use vigil_ingest::config::{CheckerConfig, RunnerConfig};
use vigil_ingest::probe::{Assertions, Check, Checker, Clock, Runner};
use vigil_ingest::producer::Sink;
use vigil_schema::{EgressPolicy, MonitorSpec, Outcome, ProbeResult, Timestamp};

fn now_us() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

/// Records each check's start lag (µs) once the warm-up is over.
struct LagChecker {
    inner: Checker,
    measure_from_ms: i64,
    measure_to_ms: i64,
    lags_us: Mutex<Vec<i64>>,
}

impl Check for LagChecker {
    async fn check(
        &self,
        spec: &MonitorSpec,
        assertions: &Assertions,
        scheduled_at: Timestamp,
    ) -> ProbeResult {
        let at = scheduled_at.as_millis();
        if at >= self.measure_from_ms && at < self.measure_to_ms {
            let lag = now_us() - scheduled_at.as_millis() * 1000;
            self.lags_us.lock().unwrap().push(lag);
        }
        self.inner.check(spec, assertions, scheduled_at).await
    }
}

#[derive(Default)]
struct CountingSink {
    kafka: Option<vigil_ingest::ProbeSink>,
    ok: AtomicU64,
    failed: AtomicU64,
    /// Failed checks by kind (the result's method) and their first error.
    failures: Mutex<std::collections::BTreeMap<String, (u64, String)>>,
    measured: AtomicU64,
    measure_from_ms: AtomicU64,
    measure_to_ms: AtomicU64,
}

impl Sink for CountingSink {
    fn offer(&self, result: ProbeResult) -> bool {
        let at = u64::try_from(result.scheduled_at.as_millis()).unwrap_or(0);
        if at >= self.measure_from_ms.load(Ordering::Relaxed)
            && at < self.measure_to_ms.load(Ordering::Relaxed)
        {
            self.measured.fetch_add(1, Ordering::Relaxed);
            if result.outcome == Outcome::Ok {
                self.ok.fetch_add(1, Ordering::Relaxed);
            } else {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut failures = self.failures.lock().unwrap();
                let entry = failures
                    .entry(result.method.clone())
                    .or_insert_with(|| (0, result.error.clone().unwrap_or_default()));
                entry.0 += 1;
            }
        }
        match &self.kafka {
            Some(kafka) => kafka.offer(result),
            None => {
                black_box(result);
                true
            }
        }
    }
}

fn kafka_sink(
    token: &CancellationToken,
) -> (
    vigil_ingest::ProbeProducer,
    vigil_ingest::ProbeSink,
    tokio::task::JoinHandle<()>,
) {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let kafka = vigil_ingest::KafkaConnection {
        brokers: std::env::var("VIGIL_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        topics: vigil_schema::TopicNames::with_prefix(&format!("bench{millis}r")),
        request_timeout: Duration::from_secs(10),
    };
    let config = vigil_ingest::config::ProducerConfig::default();
    let producer = vigil_ingest::ProbeProducer::new(&kafka, &config).unwrap();
    let (sink, forwarder) =
        vigil_ingest::producer::spawn_forwarder(producer.clone(), &config, token.clone());
    let ensure = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(vigil_ingest::ensure_topics(&kafka, 1))
    });
    ensure.join().unwrap().unwrap();
    (producer, sink, forwarder)
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank] as f64 / 1000.0
}

fn main() {
    let monitors = env("VIGIL_BENCH_MONITORS", 2000);
    let secs = env("VIGIL_BENCH_SECS", 20);
    let warmup_ms = 3000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let kinds: Vec<targets::Kind> = std::env::var("VIGIL_BENCH_KINDS")
        .unwrap_or_else(|_| "http".into())
        .split(',')
        .map(|k| targets::Kind::parse(k).unwrap_or_else(|| panic!("unknown kind {k:?}")))
        .collect();
    runtime.block_on(async {
        let targets = targets::Targets::start().await;
        let specs = (0..monitors).map(|i| {
            let mut spec = serde_json::json!({
                "id": format!("bench-{i}"), "name": format!("Bench {i}"),
                "interval": "1s", "timeout": "5s",
            });
            let kind = kinds[usize::try_from(i).unwrap() % kinds.len()];
            if let (Some(obj), serde_json::Value::Object(fields)) =
                (spec.as_object_mut(), targets.monitor(kind))
            {
                obj.extend(fields);
            }
            serde_json::from_value::<MonitorSpec>(spec).unwrap()
        });
        let view = MonitorView::from_specs(specs);
        let start_ms = Timestamp::now().as_millis();
        let measure_from = start_ms + warmup_ms;
        let measure_to = measure_from + i64::try_from(secs).unwrap() * 1000;
        let checker = Arc::new(LagChecker {
            // The targets are on loopback: allow-list exactly them.
            inner: Checker::new(CheckerConfig::default(), "bench".into(), "bench".into())
                .with_policy(EgressPolicy {
                    allow: targets.allow(),
                    env_allow: vec![],
                }),
            measure_from_ms: measure_from,
            measure_to_ms: measure_to,
            lags_us: Mutex::new(Vec::new()),
        });
        let kafka_token = CancellationToken::new();
        let kafka = (env("VIGIL_BENCH_KAFKA", 0) == 1).then(|| kafka_sink(&kafka_token));
        let producer = kafka.as_ref().map(|(producer, _, _)| producer.clone());
        let (kafka_sink, forwarder) = match kafka {
            Some((_, sink, forwarder)) => (Some(sink), Some(forwarder)),
            None => (None, None),
        };
        let sink = Arc::new(CountingSink {
            kafka: kafka_sink,
            ..CountingSink::default()
        });
        sink.measure_from_ms
            .store(u64::try_from(measure_from).unwrap(), Ordering::Relaxed);
        sink.measure_to_ms
            .store(u64::try_from(measure_to).unwrap(), Ordering::Relaxed);
        let runner = Runner::new(
            view,
            Arc::clone(&checker),
            Arc::clone(&sink),
            "bench".into(),
            &RunnerConfig::default(),
            Clock::now(),
        );
        let token = CancellationToken::new();
        let task = tokio::spawn(runner.run(token.clone()));
        // Run past the window by one interval plus the timeout so its checks complete.
        let run_for = u64::try_from(measure_to - start_ms).unwrap() + 1500;
        tokio::time::sleep(Duration::from_millis(run_for)).await;
        token.cancel();
        task.await.unwrap();

        if let (Some(producer), Some(forwarder)) = (producer, forwarder) {
            kafka_token.cancel();
            forwarder.await.unwrap();
            let flushed = producer.flush(Duration::from_secs(30));
            println!(
                "  kafka: flushed {:?}, dropped {} results",
                flushed.map(|()| "all"),
                sink.kafka
                    .as_ref()
                    .map_or(0, vigil_ingest::ProbeSink::dropped)
            );
        }
        let measured = sink.measured.load(Ordering::Relaxed);
        let mut lags = checker.lags_us.lock().unwrap().clone();
        lags.sort_unstable();
        let expected = monitors * secs;
        println!(
            "ingest_runner: {monitors} monitors @ 1s for {secs}s (after {warmup_ms} ms warm-up), \
             kinds {kinds:?}"
        );
        println!(
            "  checks: {measured} of {expected} scheduled ({} ok, {} failed) = {:.0} checks/s",
            sink.ok.load(Ordering::Relaxed),
            sink.failed.load(Ordering::Relaxed),
            measured as f64 / secs as f64
        );
        println!(
            "  schedule lag: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
            percentile(&lags, 50.0),
            percentile(&lags, 99.0),
            lags.last().map_or(f64::NAN, |&l| l as f64 / 1000.0),
            lags.len()
        );
        for (kind, (n, error)) in sink.failures.lock().unwrap().iter() {
            println!("  failed {kind}: {n} (first: {error})");
        }
    });
}
