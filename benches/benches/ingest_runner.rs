//! Probe runner throughput: 2,000 monitors at a 1 s interval against a local HTTP target, each
//! check on a fresh connection. Prints sustained checks per second and the scheduling lag
//! (check start minus scheduled time) p50/p99/max.
//!
//! ```sh
//! cargo bench -p vigil-benches --bench ingest_runner
//! VIGIL_BENCH_MONITORS=2000 VIGIL_BENCH_SECS=20 cargo bench -p vigil-benches --bench ingest_runner
//! ```
//!
//! Needs nothing running: results go to an in-memory sink. With `VIGIL_BENCH_KAFKA=1` they also
//! go through the real producer path (non-blocking buffer, idempotent producer) to the local
//! broker (`scripts/stack up`), on topics of the run's own. The lag includes up to 1 ms from
//! anchoring the schedule at a millisecond wall-clock time.

#![allow(clippy::unwrap_used, reason = "bench binary")]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vigil_benches::env;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
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

async fn target() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                    if read == buf.len() {
                        return;
                    }
                }
                let _written = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                          Content-Length: 15\r\nConnection: close\r\n\r\n{\"status\":\"UP\"}",
                    )
                    .await;
            });
        }
    });
    format!("http://{addr}")
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
    runtime.block_on(async {
        let url = target().await;
        let specs = (0..monitors).map(|i| {
            serde_json::from_value::<MonitorSpec>(serde_json::json!({
                "id": format!("bench-{i}"), "name": format!("Bench {i}"),
                "url": format!("{url}/health"), "interval": "1s", "timeout": "5s",
                "assertions": ["[STATUS] == 200", "[BODY].status == UP"],
            }))
            .unwrap()
        });
        let view = MonitorView::from_specs(specs);
        let start_ms = Timestamp::now().as_millis();
        let measure_from = start_ms + warmup_ms;
        let measure_to = measure_from + i64::try_from(secs).unwrap() * 1000;
        let checker = Arc::new(LagChecker {
            // The target is on loopback: allow-list exactly it.
            inner: Checker::new(CheckerConfig::default(), "bench".into(), "bench".into())
                .with_policy(EgressPolicy {
                    allow: vec![url.trim_start_matches("http://").parse().unwrap()],
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
            "ingest_runner: {monitors} monitors @ 1s for {secs}s (after {warmup_ms} ms warm-up)"
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
    });
}
