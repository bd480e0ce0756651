//! The processor's memory at scale: `VIGIL_BENCH_SERIES` (default 1,000,000) series, each
//! checked once a minute for `VIGIL_BENCH_MINUTES` (default 75: past the one-hour correction
//! horizon, so windows are evicted as they would be in a running processor), through the
//! processor's pipeline with its default configuration (one-minute windows, anomaly detectors
//! on every series).
//!
//! Every few simulated minutes it prints the process's resident memory next to the state the
//! pipeline accounts for (`vigil_processor_state_bytes`: windows, detectors), and at the end
//! the throughput (events/s, encoding included) and the peak figures against the goals:
//! resident ≤ 2 × accounted + 150 MB, and 1,000,000 series within 4 GB.
//!
//! With raw probes stored (the default) a closed window leaves memory once written; with
//! `VIGIL_BENCH_KEEP=1` (`store-probes = false`) closed windows stay for the whole correction
//! horizon, as they must when corrections cannot be recomputed from stored probes.
//!
//! `cargo bench -p vigil-benches --bench memory` (env: `VIGIL_BENCH_SERIES`,
//! `VIGIL_BENCH_MINUTES`, `VIGIL_BENCH_KEEP`).

use std::time::{Duration, Instant};

use vigil_benches::{env, probe_result};
use vigil_processor::{Config, Pipeline};
use vigil_schema::{Timestamp, encode};

/// Resident memory of this process, bytes (Linux; 0 elsewhere).
fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .unwrap_or(0);
    pages * 4096
}

const MB: f64 = 1024.0 * 1024.0;

fn main() {
    let series = env("VIGIL_BENCH_SERIES", 1_000_000);
    let minutes = env("VIGIL_BENCH_MINUTES", 75);
    let keep = env("VIGIL_BENCH_KEEP", 0) == 1;
    let config = Config {
        store_probes: !keep,
        max_clock_skew: Duration::from_secs(100 * 365 * 24 * 3600),
        ..Config::default()
    };
    let baseline = resident_bytes();
    let mut p = Pipeline::new(config);
    let t0 = 1_763_800_000_000 - 1_763_800_000_000 % 60_000;
    let mut event = probe_result(0);
    let mut offset = 0i64;
    let mut peak_resident = 0u64;
    let mut peak_accounted = 0usize;
    let mut worst_excess = f64::MIN;
    let started = Instant::now();
    println!(
        "{series} series × {minutes} one-minute checks, closed windows {} (baseline resident \
         {:.0} MB)",
        if keep {
            "kept for the correction horizon"
        } else {
            "evicted once written"
        },
        baseline as f64 / MB
    );
    println!(
        "{:>6} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "minute", "resident MB", "state MB", "windows MB", "detect. MB", "windows"
    );
    for minute in 0..minutes {
        for s in 0..series {
            let t = t0 + (minute * 60_000) as i64 + (s * 60_000 / series) as i64;
            event.event_id = uuid::Uuid::from_u128(u128::from(offset as u64) << 64 | 0x5eed);
            event.monitor_id = format!("monitor-{s:07}");
            event.event_time = Timestamp(t);
            event.scheduled_at = Timestamp(t);
            event.timings.total_us = 20_000 + (s * 7_919 + minute * 104_729) % 30_000;
            let bytes = encode(&event).expect("encode");
            p.process(0, offset, None, Some(&bytes), 0);
            offset += 1;
            if offset % 20_000 == 0 {
                drop(p.take_output());
                p.evict();
            }
        }
        let resident = resident_bytes().saturating_sub(baseline);
        let accounted = p.heap_bytes();
        peak_resident = peak_resident.max(resident);
        peak_accounted = peak_accounted.max(accounted);
        // Past the first minutes (allocator arenas and maps settling).
        if minute >= 5 {
            worst_excess = worst_excess.max(resident as f64 - 2.0 * accounted as f64);
        }
        if minute % 5 == 4 || minute + 1 == minutes {
            println!(
                "{:>6} {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>12}",
                minute + 1,
                resident as f64 / MB,
                accounted as f64 / MB,
                p.window_heap_bytes() as f64 / MB,
                p.detector_heap_bytes() as f64 / MB,
                p.windows_in_memory()
            );
        }
    }
    p.finish();
    drop(p.take_output());
    let elapsed = started.elapsed();
    println!(
        "throughput: {:.0} events/s (encoding each event included), {:.1} s",
        offset as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "peak resident {:.0} MB for {series} series ({:.0} B/series; goal: 1,000,000 series within 4 GB)",
        peak_resident as f64 / MB,
        peak_resident as f64 / series as f64
    );
    println!(
        "peak accounted {:.0} MB; worst resident − 2 × accounted after minute 5: {:.0} MB (goal ≤ 150 MB)",
        peak_accounted as f64 / MB,
        worst_excess / MB
    );
}
