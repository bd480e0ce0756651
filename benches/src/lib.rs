//! Fixtures and scorers shared by Vigil's benchmarks (`benches/benches/*.rs`). See
//! `benches/README.md`.
//!
//! # Layout
//! - [`probe_result`]: a realistic probe result.
//! - [`nab`]: the Numenta Anomaly Benchmark scorer and corpus loader.
//!
//! Every bench runs on the allocator the `vigil` binary uses (mimalloc), so the figures are
//! those of the code as it runs.

pub mod nab;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use uuid::Uuid;
use vigil_schema::{AssertionResult, Outcome, ProbeResult, Timestamp, Timings};

/// A bench size or switch from the environment: `name` parsed, or `default` when unset or
/// not a number.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A realistic probe result: HTTPS check with every timing phase and one assertion.
pub fn probe_result(i: u64) -> ProbeResult {
    ProbeResult {
        event_id: Uuid::from_u128(u128::from(i) << 64 | 0x7a5e),
        monitor_id: format!("monitor-{:04}", i % 1_000),
        region: "eu-west".into(),
        agent: "runner-eu-west-1".into(),
        scheduled_at: Timestamp(1_763_800_000_000 + i as i64 * 10),
        event_time: Timestamp(1_763_800_000_002 + i as i64 * 10),
        method: "GET".into(),
        url: "https://api.example.com/v1/health".into(),
        status_code: Some(200),
        outcome: Outcome::Ok,
        error: None,
        timings: Timings {
            dns_us: Some(1_200),
            connect_us: Some(9_800),
            tls_us: Some(21_000),
            ttfb_us: Some(38_000 + i % 5_000),
            total_us: 41_000 + i % 7_000,
        },
        response_size: Some(512),
        assertions: vec![AssertionResult {
            condition: "[STATUS] == 200".into(),
            passed: true,
            actual: Some("200".into()),
        }],
        tls_cert_expiry: Some(Timestamp(1_790_000_000_000)),
        steps: Vec::new(),
    }
}
