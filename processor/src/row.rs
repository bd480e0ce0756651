//! ClickHouse rows written by the processor (`windows_1m`, `probes`), built from pipeline output.

use std::collections::BTreeMap;

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_schema::ProbeResult;
pub use vigil_schema::row::{ALERT_COLUMNS, AlertRow};

use crate::pipeline::EmittedWindow;

/// One row of `windows_1m` (and, with the same columns, `windows_1h`).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct WindowRow {
    pub monitor_id: String,
    pub region: String,
    /// Unix milliseconds (DateTime64(3)).
    pub window_start: i64,
    pub window_end: i64,
    pub version: u64,
    pub count: u64,
    pub ok_count: u64,
    pub availability: f64,
    pub errors: BTreeMap<String, u64>,
    pub status_1xx: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub total_min_us: u64,
    pub total_max_us: u64,
    pub total_mean_us: f64,
    pub p50_us: f64,
    pub p75_us: f64,
    pub p90_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub dns_mean_us: f64,
    pub connect_mean_us: f64,
    pub tls_mean_us: f64,
    pub ttfb_mean_us: f64,
    pub ttfb_p95_us: f64,
    pub dns_count: u64,
    pub connect_count: u64,
    pub tls_count: u64,
    pub ttfb_count: u64,
    pub assertion_failures: u64,
    pub sketch_alpha: f64,
    pub sketch_keys: Vec<i32>,
    pub sketch_counts: Vec<u64>,
    pub sketch_zero_count: u64,
    pub ttfb_sketch_keys: Vec<i32>,
    pub ttfb_sketch_counts: Vec<u64>,
    pub ttfb_sketch_zero_count: u64,
    pub anomaly_latency: f64,
    pub anomaly_errors: f64,
    pub anomaly_score: f64,
    pub anomaly_reason: String,
}

/// Columns of [`WindowRow`], in order, for `INSERT … SELECT` statements.
pub const WINDOW_COLUMNS: &str = "monitor_id, region, window_start, window_end, version, count, \
    ok_count, availability, errors, status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, \
    total_min_us, total_max_us, total_mean_us, p50_us, p75_us, p90_us, p95_us, p99_us, p999_us, \
    dns_mean_us, connect_mean_us, tls_mean_us, ttfb_mean_us, ttfb_p95_us, dns_count, \
    connect_count, tls_count, ttfb_count, assertion_failures, sketch_alpha, sketch_keys, \
    sketch_counts, sketch_zero_count, ttfb_sketch_keys, ttfb_sketch_counts, \
    ttfb_sketch_zero_count, anomaly_latency, anomaly_errors, anomaly_score, anomaly_reason";

impl From<&EmittedWindow> for WindowRow {
    fn from(w: &EmittedWindow) -> Self {
        let s = &w.summary;
        let anomaly = s.anomaly.clone().unwrap_or(vigil_schema::AnomalyScores {
            latency: 0.0,
            errors: 0.0,
            combined: 0.0,
            reason: String::new(),
        });
        Self {
            monitor_id: s.monitor_id.clone(),
            region: s.region.clone(),
            window_start: s.window_start.as_millis(),
            window_end: s.window_end.as_millis(),
            version: s.version,
            count: s.count,
            ok_count: s.ok_count,
            availability: s.availability,
            errors: s.errors.clone(),
            status_1xx: s.status_1xx,
            status_2xx: s.status_2xx,
            status_3xx: s.status_3xx,
            status_4xx: s.status_4xx,
            status_5xx: s.status_5xx,
            total_min_us: s.total_min_us,
            total_max_us: s.total_max_us,
            total_mean_us: s.total_mean_us,
            p50_us: s.p50_us,
            p75_us: s.p75_us,
            p90_us: s.p90_us,
            p95_us: s.p95_us,
            p99_us: s.p99_us,
            p999_us: s.p999_us,
            dns_mean_us: s.dns_mean_us,
            connect_mean_us: s.connect_mean_us,
            tls_mean_us: s.tls_mean_us,
            ttfb_mean_us: s.ttfb_mean_us,
            ttfb_p95_us: s.ttfb_p95_us,
            dns_count: w.phase_counts[0],
            connect_count: w.phase_counts[1],
            tls_count: w.phase_counts[2],
            ttfb_count: w.phase_counts[3],
            assertion_failures: s.assertion_failures,
            sketch_alpha: s.sketch.alpha,
            sketch_keys: s.sketch.keys.clone(),
            sketch_counts: s.sketch.counts.clone(),
            sketch_zero_count: s.sketch.zero_count,
            ttfb_sketch_keys: w.ttfb_sketch.keys.clone(),
            ttfb_sketch_counts: w.ttfb_sketch.counts.clone(),
            ttfb_sketch_zero_count: w.ttfb_sketch.zero_count,
            anomaly_latency: anomaly.latency,
            anomaly_errors: anomaly.errors,
            anomaly_score: anomaly.combined,
            anomaly_reason: anomaly.reason,
        }
    }
}

/// One row of `probes`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ProbeRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub monitor_id: String,
    pub region: String,
    pub agent: String,
    pub scheduled_at: i64,
    pub event_time: i64,
    pub method: String,
    pub url: String,
    pub status_code: u16,
    pub outcome: String,
    pub error: String,
    pub dns_us: Option<u64>,
    pub connect_us: Option<u64>,
    pub tls_us: Option<u64>,
    pub ttfb_us: Option<u64>,
    pub total_us: u64,
    pub response_size: Option<u64>,
    pub assertion_conditions: Vec<String>,
    pub assertion_passed: Vec<bool>,
    pub assertion_actuals: Vec<Option<String>>,
    pub tls_cert_expiry: Option<i64>,
    /// The steps of a multi-step check as a JSON array; empty for one request.
    pub steps: String,
}

/// A row of `probes` borrowing its event's text: what the writer inserts, without copying
/// every probe of a batch first. Same columns as [`ProbeRow`].
#[derive(Debug, Clone, PartialEq, Row, Serialize)]
#[allow(missing_docs)]
pub struct ProbeRowRef<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub monitor_id: &'a str,
    pub region: &'a str,
    pub agent: &'a str,
    pub scheduled_at: i64,
    pub event_time: i64,
    pub method: &'a str,
    pub url: &'a str,
    pub status_code: u16,
    pub outcome: &'a str,
    pub error: &'a str,
    pub dns_us: Option<u64>,
    pub connect_us: Option<u64>,
    pub tls_us: Option<u64>,
    pub ttfb_us: Option<u64>,
    pub total_us: u64,
    pub response_size: Option<u64>,
    pub assertion_conditions: Vec<&'a str>,
    pub assertion_passed: Vec<bool>,
    pub assertion_actuals: Vec<Option<&'a str>>,
    pub tls_cert_expiry: Option<i64>,
    /// The steps of a multi-step check as a JSON array; empty for one request.
    pub steps: String,
}

impl<'a> From<&'a ProbeResult> for ProbeRowRef<'a> {
    fn from(p: &'a ProbeResult) -> Self {
        let a = &p.assertions;
        Self {
            event_id: p.event_id,
            monitor_id: &p.monitor_id,
            region: &p.region,
            agent: &p.agent,
            scheduled_at: p.scheduled_at.as_millis(),
            event_time: p.event_time.as_millis(),
            method: &p.method,
            url: &p.url,
            status_code: p.status_code.unwrap_or(0),
            outcome: p.outcome.as_str(),
            error: p.error.as_deref().unwrap_or_default(),
            dns_us: p.timings.dns_us,
            connect_us: p.timings.connect_us,
            tls_us: p.timings.tls_us,
            ttfb_us: p.timings.ttfb_us,
            total_us: p.timings.total_us,
            response_size: p.response_size,
            assertion_conditions: a.iter().map(|a| a.condition.as_str()).collect(),
            assertion_passed: a.iter().map(|a| a.passed).collect(),
            assertion_actuals: a.iter().map(|a| a.actual.as_deref()).collect(),
            tls_cert_expiry: p.tls_cert_expiry.map(|t| t.as_millis()),
            steps: steps_json(&p.steps),
        }
    }
}

impl From<ProbeResult> for ProbeRow {
    fn from(p: ProbeResult) -> Self {
        let (conditions, (passed, actuals)) = p
            .assertions
            .into_iter()
            .map(|a| (a.condition, (a.passed, a.actual)))
            .unzip();
        Self {
            event_id: p.event_id,
            monitor_id: p.monitor_id,
            region: p.region,
            agent: p.agent,
            scheduled_at: p.scheduled_at.as_millis(),
            event_time: p.event_time.as_millis(),
            method: p.method,
            url: p.url,
            status_code: p.status_code.unwrap_or(0),
            outcome: p.outcome.as_str().to_owned(),
            error: p.error.unwrap_or_default(),
            dns_us: p.timings.dns_us,
            connect_us: p.timings.connect_us,
            tls_us: p.timings.tls_us,
            ttfb_us: p.timings.ttfb_us,
            total_us: p.timings.total_us,
            response_size: p.response_size,
            assertion_conditions: conditions,
            assertion_passed: passed,
            assertion_actuals: actuals,
            tls_cert_expiry: p.tls_cert_expiry.map(|t| t.as_millis()),
            steps: steps_json(&p.steps),
        }
    }
}

/// The `steps` column: the steps as a JSON array, or empty for a check of one request.
fn steps_json(steps: &[vigil_schema::StepResult]) -> String {
    if steps.is_empty() {
        return String::new();
    }
    // Serializing plain data (strings, numbers, enums) to a string cannot fail.
    serde_json::to_string(steps).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use vigil_schema::{AssertionResult, Outcome, Timestamp, Timings};

    use super::*;
    use crate::sink::Sink;

    fn probe(n: u128, assertions: Vec<AssertionResult>) -> ProbeResult {
        ProbeResult {
            event_id: Uuid::from_u128(n),
            monitor_id: format!("m{n}"),
            region: "eu".into(),
            agent: "a".into(),
            scheduled_at: Timestamp::from_millis(1_767_225_600_000),
            event_time: Timestamp::from_millis(1_767_225_600_123),
            method: "GET".into(),
            url: "https://example.test/health".into(),
            status_code: n.is_multiple_of(2).then_some(503),
            outcome: if n.is_multiple_of(2) {
                Outcome::HttpStatus
            } else {
                Outcome::Timeout
            },
            error: (!n.is_multiple_of(2)).then(|| "timed out after 10s".to_owned()),
            timings: Timings {
                dns_us: Some(10),
                connect_us: None,
                tls_us: Some(30),
                ttfb_us: None,
                total_us: 1_000 + n as u64,
            },
            response_size: n.is_multiple_of(2).then_some(42),
            assertions,
            tls_cert_expiry: n
                .is_multiple_of(2)
                .then(|| Timestamp::from_millis(1_800_000_000_000)),
            steps: Vec::new(),
        }
    }

    /// The borrowed rows the sink inserts decode, column for column, to the owned rows of
    /// the same events.
    #[tokio::test]
    async fn borrowed_probe_rows_encode_as_the_owned_ones() {
        let probes = vec![
            probe(1, vec![]),
            probe(
                2,
                vec![
                    AssertionResult {
                        condition: "[STATUS] == 200".into(),
                        passed: false,
                        actual: Some("503".into()),
                    },
                    AssertionResult {
                        condition: "has([BODY].ok) == true".into(),
                        passed: true,
                        actual: None,
                    },
                ],
            ),
        ];
        let mock = clickhouse::test::Mock::new();
        let sink = Sink::new(clickhouse::Client::default().with_mock(&mock));
        let recorded = mock.add(clickhouse::test::handlers::record::<ProbeRow>());
        sink.write_probes(&probes).await.unwrap();
        let rows: Vec<ProbeRow> = recorded.collect().await;
        let expected: Vec<ProbeRow> = probes.into_iter().map(ProbeRow::from).collect();
        assert_eq!(rows, expected);
    }
}
