//! The processor's in-process pipeline (decode → window → sketch → emit) over pre-encoded
//! events, next to decoding alone (the floor), plus the sketch's own hot paths.
//!
//! `cargo bench -p vigil-benches --bench pipeline`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_benches::probe_result;
use vigil_processor::row::ProbeRow;
use vigil_processor::sink::Sink;
use vigil_processor::{Config, Pipeline};
use vigil_schema::sketch::Sketch;
use vigil_schema::{ProbeResult, decode, encode};

const EVENTS: u64 = 100_000;

/// Events 10 ms apart across `monitors` monitors: with 1,000 monitors each gets a check every
/// 10 s (6 per 1-minute window); with 100, every second (60 per window).
fn encoded(monitors: u64) -> Vec<Vec<u8>> {
    (0..EVENTS)
        .map(|i| {
            let mut e = probe_result(i);
            e.monitor_id = format!("monitor-{:04}", i % monitors);
            encode(&e).expect("encode")
        })
        .collect()
}

fn config() -> Config {
    Config {
        store_probes: false,
        max_clock_skew: Duration::from_secs(100 * 365 * 24 * 3600),
        ..Config::default()
    }
}

fn pipeline(c: &mut Criterion) {
    let events = encoded(1_000);
    let dense = encoded(100);
    let mut group = c.benchmark_group("processor");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(20);
    group.bench_function("decode_only", |b| {
        b.iter(|| {
            for bytes in &events {
                black_box(decode::<ProbeResult>(bytes).expect("decode"));
            }
        });
    });
    group.bench_function("decode_window_sketch_emit", |b| {
        b.iter(|| {
            let mut p = Pipeline::new(config());
            for (offset, bytes) in events.iter().enumerate() {
                p.process(0, offset as i64, None, Some(bytes), 0);
            }
            p.finish();
            black_box(p.take_output().windows.len())
        });
    });
    group.bench_function("decode_window_sketch_emit_60_per_window", |b| {
        b.iter(|| {
            let mut p = Pipeline::new(config());
            for (offset, bytes) in dense.iter().enumerate() {
                p.process(0, offset as i64, None, Some(bytes), 0);
            }
            p.finish();
            black_box(p.take_output().windows.len())
        });
    });
    // The consumer's cycle: a flush (tick, take, evict, commit offsets, state bytes) every
    // 1,000 records, with 10,000 series, closed windows evicted once written (raw probes
    // stored, the default) or kept for the 1-hour correction horizon: the per-flush work must
    // not grow with the windows in memory.
    let spread = encoded(10_000);
    for (name, store_probes) in [
        ("with_flushes_10k_series", true),
        ("with_flushes_10k_series_kept", false),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut p = Pipeline::new(Config {
                    store_probes,
                    ..config()
                });
                let mut rows = 0;
                for (offset, bytes) in spread.iter().enumerate() {
                    p.process(0, offset as i64, None, Some(bytes), 0);
                    if offset % 1_000 == 999 {
                        p.tick(0);
                        rows += p.take_output().windows.len();
                        p.evict();
                        black_box(p.commit_offsets());
                        black_box(p.heap_bytes());
                        black_box(p.windows_in_memory());
                    }
                }
                black_box(rows)
            });
        });
    }
    // Raw probes as the processor stores them: every event also becomes a `probes` row,
    // written through the sink (`ProbeRow`, RowBinary, LZ4, one HTTP insert) to clickhouse's
    // mock server on loopback, which only records the request body.
    group.bench_function("with_raw_probes", |b| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _entered = runtime.enter();
        let mock = clickhouse::test::Mock::new();
        let sink = Sink::new(clickhouse::Client::default().with_mock(&mock));
        let raw_probes = || {
            let mut p = Pipeline::new(Config {
                store_probes: true,
                ..config()
            });
            for (offset, bytes) in events.iter().enumerate() {
                p.process(0, offset as i64, None, Some(bytes), 0);
            }
            p.finish();
            p.take_output().probes
        };
        // Once, untimed: the mock receives one row per event, each decoding to its event.
        let probes = raw_probes();
        let ids: Vec<_> = probes.iter().map(|probe| probe.event_id).collect();
        let recorded = mock.add(clickhouse::test::handlers::record::<ProbeRow>());
        runtime
            .block_on(sink.write_probes(&probes))
            .expect("the mock accepts the insert");
        let rows: Vec<ProbeRow> = runtime.block_on(recorded.collect());
        let got: Vec<_> = rows.iter().map(|row| row.event_id).collect();
        assert_eq!(got, ids, "every probe arrives as a row, in order");
        assert_eq!(got.len() as u64, EVENTS);
        b.iter(|| {
            let probes = raw_probes();
            let rows = probes.len();
            let recorded = mock.add(clickhouse::test::handlers::record::<ProbeRow>());
            runtime
                .block_on(sink.write_probes(&probes))
                .expect("the mock accepts the insert");
            drop(recorded);
            black_box(rows)
        });
    });
    group.finish();
}

fn sketch(c: &mut Criterion) {
    let values: Vec<f64> = (0..10_000u64)
        .map(|i| 20_000.0 + (i * 7_919 % 50_000) as f64)
        .collect();
    let mut group = c.benchmark_group("sketch");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function("add", |b| {
        b.iter(|| {
            let mut s = Sketch::default();
            for &v in &values {
                s.add(v);
            }
            black_box(s.count())
        });
    });
    let mut full = Sketch::default();
    for &v in &values {
        full.add(v);
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function("quantile_p99", |b| {
        b.iter(|| black_box(full.quantile(0.99)))
    });
    group.bench_function("merge", |b| {
        b.iter(|| {
            let mut s = full.clone();
            s.merge(&full).expect("same alpha");
            black_box(s.count())
        });
    });
    group.finish();
}

fn detector(c: &mut Criterion) {
    use vigil_processor::anomaly::{Config as DetectorConfig, Detector};
    let values: Vec<f64> = (0..10_000u64)
        .map(|i| 40_000.0 + (i * 7_919 % 5_000) as f64)
        .collect();
    let mut group = c.benchmark_group("anomaly");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function("update", |b| {
        b.iter(|| {
            let mut d = Detector::new(DetectorConfig::default());
            for (i, &v) in values.iter().enumerate() {
                black_box(d.update(i as i64 * 60, v));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, pipeline, sketch, detector);
criterion_main!(benches);
