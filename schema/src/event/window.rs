//! [`WindowSummary`]: the aggregate of one (monitor, region, event-time window).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Aggregate of every probe result of one monitor in one region whose event time falls in
/// `[window_start, window_end)`. Published on `vigil.windows` and stored in `windows_1m`
/// (and merged into `windows_1h`).
///
/// Latencies are in microseconds. Percentiles come from [`SketchData`], a relative-error sketch:
/// each reported quantile is within the sketch's relative accuracy of the exact value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// The monitor.
    pub monitor_id: String,
    /// The region.
    pub region: String,
    /// Inclusive start of the window.
    pub window_start: Timestamp,
    /// Exclusive end of the window.
    pub window_end: Timestamp,
    /// Row version: grows with every correction of the same window, and is the same when the
    /// same events are processed again (so replays and restarts write identical rows).
    pub version: u64,
    /// Number of checks.
    pub count: u64,
    /// Checks with outcome `ok`.
    pub ok_count: u64,
    /// `ok_count / count`.
    pub availability: f64,
    /// Failed checks by outcome name (`timeout`, `http_status`, …).
    pub errors: BTreeMap<String, u64>,
    /// Responses with a 1xx status.
    pub status_1xx: u64,
    /// Responses with a 2xx status.
    pub status_2xx: u64,
    /// Responses with a 3xx status.
    pub status_3xx: u64,
    /// Responses with a 4xx status.
    pub status_4xx: u64,
    /// Responses with a 5xx status.
    pub status_5xx: u64,
    /// Fastest total time.
    pub total_min_us: u64,
    /// Slowest total time.
    pub total_max_us: u64,
    /// Mean total time.
    pub total_mean_us: f64,
    /// Median total time.
    pub p50_us: f64,
    /// 75th percentile of total time.
    pub p75_us: f64,
    /// 90th percentile of total time.
    pub p90_us: f64,
    /// 95th percentile of total time.
    pub p95_us: f64,
    /// 99th percentile of total time.
    pub p99_us: f64,
    /// 99.9th percentile of total time.
    pub p999_us: f64,
    /// Mean DNS time over checks that resolved a name.
    pub dns_mean_us: f64,
    /// Mean TCP connect time.
    pub connect_mean_us: f64,
    /// Mean TLS handshake time.
    pub tls_mean_us: f64,
    /// Mean time to first byte.
    pub ttfb_mean_us: f64,
    /// 95th percentile of time to first byte.
    pub ttfb_p95_us: f64,
    /// Checks with at least one failed assertion.
    pub assertion_failures: u64,
    /// The total-time sketch, mergeable across windows.
    pub sketch: SketchData,
    /// Anomaly scores, once the detector has scored the window.
    pub anomaly: Option<AnomalyScores>,
}

/// A serialized relative-error (DDSketch-style) sketch: bucket `k` counts values in
/// `(gamma^(k-1), gamma^k]` with `gamma = (1 + alpha) / (1 - alpha)`. Stored as parallel arrays
/// so ClickHouse can merge sketches with `sumMap` and compute quantiles in SQL.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SketchData {
    /// Relative accuracy the sketch guarantees (0.01 = 1%).
    pub alpha: f64,
    /// Bucket indexes, ascending.
    pub keys: Vec<i32>,
    /// Count per bucket, parallel to `keys`.
    pub counts: Vec<u64>,
    /// Values too small to index (≤ the sketch's minimum indexable value).
    pub zero_count: u64,
}

/// Anomaly scores of one window, each in `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyScores {
    /// Score of the p95 latency series.
    pub latency: f64,
    /// Score of the error-rate series.
    pub errors: f64,
    /// Combined score.
    pub combined: f64,
    /// Short human explanation of the highest score.
    pub reason: String,
}
