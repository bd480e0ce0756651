//! Error budgets against the local stack: probes fed through the processor's `Pipeline`, its
//! windows written by the real `Sink::write_windows` (minute rows and hourly rollups), and
//! `GET /api/v1/rules/{id}/budget` compared with checks and bad checks counted here from the
//! probes themselves, for an availability SLO, a latency SLO over a period longer than the
//! minute retention (hourly rollups plus the current hour) and a period that cuts the data.
//! Also the SQL twin of `Sketch::count_at_most` against the sketch, on the real engine.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use clickhouse::Row;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;
use vigil_processor::Pipeline;
use vigil_processor::sink::Sink;
use vigil_schema::sketch::{Sketch, count_at_most_sql_for};
use vigil_schema::{Outcome, ProbeResult, Timestamp, Timings, encode};

use crate::common::clickhouse;
use crate::query::stack;

const MINUTE: i64 = 60_000;
const SERIES: [(&str, &str); 4] = [("api", "eu"), ("api", "us"), ("web", "eu"), ("batch", "eu")];

fn probe(n: u64, monitor: &str, region: &str, t_ms: i64) -> ProbeResult {
    let failed = n.is_multiple_of(7) || (region == "us" && n.is_multiple_of(5));
    // A quarter of the checks take 500 ms, the rest 100–149 ms: none near the 300 ms threshold.
    let total_us = if (n / 3).is_multiple_of(4) {
        500_000
    } else {
        100_000 + (n % 50) * 1_000
    };
    ProbeResult {
        event_id: Uuid::from_u128(u128::from(n) + 1),
        monitor_id: monitor.into(),
        region: region.into(),
        agent: "it".into(),
        scheduled_at: Timestamp::from_millis(t_ms),
        event_time: Timestamp::from_millis(t_ms),
        method: "GET".into(),
        url: "http://127.0.0.1:1/".into(),
        status_code: Some(if failed { 503 } else { 200 }),
        outcome: if failed {
            Outcome::HttpStatus
        } else {
            Outcome::Ok
        },
        error: None,
        timings: Timings {
            total_us,
            ..Timings::default()
        },
        response_size: Some(10),
        assertions: Vec::new(),
        tls_cert_expiry: None,
        steps: Vec::new(),
    }
}

/// (checks, failed, slower than 300 ms) per (monitor, region) of the probes in windows starting
/// at or after `from_ms`.
type Counts = BTreeMap<(String, String), (u64, u64, u64)>;

fn count(events: &[ProbeResult], from_ms: i64, keep: impl Fn(&ProbeResult) -> bool) -> Counts {
    let mut out = Counts::new();
    for e in events.iter().filter(|e| keep(e)) {
        let start = e.event_time.as_millis().div_euclid(MINUTE) * MINUTE;
        if start < from_ms {
            continue;
        }
        let c = out
            .entry((e.monitor_id.clone(), e.region.clone()))
            .or_default();
        c.0 += 1;
        c.1 += u64::from(!e.is_ok());
        c.2 += u64::from(e.timings.total_us > 300_000);
    }
    out
}

/// The series the API should report: `bad` picks failed (availability) or slow (latency).
fn expected(counts: &Counts, objective: f64, latency: bool) -> Vec<Value> {
    counts
        .iter()
        .map(|((monitor, region), &(total, failed, slow))| {
            let bad = if latency { slow } else { failed };
            let budget = (1.0 - objective) * total as f64;
            json!({"monitor_id": monitor, "region": region, "total": total, "bad": bad,
                   "budget": budget, "consumed": bad as f64 / budget,
                   "remaining": 1.0 - bad as f64 / budget})
        })
        .collect()
}

fn assert_series(got: &Value, want: &[Value], context: &str) {
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{context}: {got:?}");
    for (g, w) in got.iter().zip(want) {
        for field in ["monitor_id", "region", "total", "bad"] {
            assert_eq!(g[field], w[field], "{context}: {field} of {w}");
        }
        for field in ["budget", "consumed", "remaining"] {
            let (g, w) = (g[field].as_f64().unwrap(), w[field].as_f64().unwrap());
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{context}: {field} {g} vs {w}"
            );
        }
    }
}

#[tokio::test]
async fn alerts_api_error_budgets_count_the_windows_the_pipeline_wrote() {
    let s = stack("alerts_api_budget").await;
    for (id, tags) in [
        ("api", &["prod"][..]),
        ("web", &["prod"]),
        ("batch", &["internal"]),
    ] {
        s.create(id, tags).await;
    }
    for rule in [
        json!({"id": "slo-avail", "tags": ["prod"], "condition": {"burn_rate": {
            "slo": "availability", "objective": 0.99, "period": "30d"}}}),
        json!({"id": "slo-lat", "monitors": ["api"], "regions": ["eu"], "condition": {"burn_rate": {
            "slo": {"latency": {"threshold": "300ms"}}, "objective": 0.95, "period": "100d"}}}),
        json!({"id": "slo-short", "monitors": ["api"], "condition": {"burn_rate": {
            "slo": "availability", "objective": 0.9, "period": "2h",
            "windows": [{"long": "1h", "short": "5m", "burn_rate": 14.4}]}}}),
    ] {
        let (status, body) = s.call(Method::POST, "/api/v1/rules", Some(rule)).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }

    // Checks every 30 s from 3 h to 2 h 15 m ago, and from 1 h 45 m to 2 min ago: several whole
    // hours (read from the rollups by the 100-day rule) and the current one.
    let now = Timestamp::now().as_millis();
    let mut events = Vec::new();
    let mut n = 0;
    for (start, end) in [
        (now - 180 * MINUTE, now - 135 * MINUTE),
        (now - 105 * MINUTE, now - 2 * MINUTE),
    ] {
        let mut t = start;
        while t < end {
            for (monitor, region) in SERIES {
                events.push(probe(n, monitor, region, t));
                n += 1;
            }
            t += 30_000;
        }
    }
    let mut pipeline = Pipeline::new(vigil_processor::Config::default());
    for (offset, e) in events.iter().enumerate() {
        let raw = encode(e).unwrap();
        pipeline.process_event(0, offset as i64, None, &raw, e.clone(), now);
    }
    pipeline.finish();
    let output = pipeline.take_output();
    assert!(output.dead_letters.is_empty());
    Sink::new(s.db.client.clone())
        .write_windows(&output.windows)
        .await
        .unwrap();

    let prod = |e: &ProbeResult| e.monitor_id != "batch";
    let all = count(&events, i64::MIN, prod);
    let body = s.json("/api/v1/rules/slo-avail/budget").await;
    assert_eq!(
        (
            &body["rule_id"],
            &body["slo"],
            &body["threshold_us"],
            &body["period"]
        ),
        (
            &json!("slo-avail"),
            &json!("availability"),
            &Value::Null,
            &json!("30days")
        )
    );
    assert_series(&body["series"], &expected(&all, 0.99, false), "slo-avail");
    let to = Timestamp::parse_rfc3339(body["to"].as_str().unwrap())
        .unwrap()
        .as_millis();
    let from = Timestamp::parse_rfc3339(body["from"].as_str().unwrap())
        .unwrap()
        .as_millis();
    assert_eq!(to - from, 30 * 86_400_000);
    assert!((to - Timestamp::now().as_millis()).abs() < 60_000);

    let web = count(&events, i64::MIN, |e| e.monitor_id == "web");
    let body = s.json("/api/v1/rules/slo-avail/budget?monitor=web").await;
    assert_series(&body["series"], &expected(&web, 0.99, false), "monitor=web");
    let us = count(&events, i64::MIN, |e| prod(e) && e.region == "us");
    let body = s.json("/api/v1/rules/slo-avail/budget?region=us").await;
    assert_series(&body["series"], &expected(&us, 0.99, false), "region=us");

    // Latency SLO over 100 days: hourly rollups for the whole hours, minutes for this one.
    let api_eu = count(&events, i64::MIN, |e| {
        e.monitor_id == "api" && e.region == "eu"
    });
    let body = s.json("/api/v1/rules/slo-lat/budget").await;
    assert_eq!(
        (&body["slo"], &body["threshold_us"]),
        (&json!("latency"), &json!(300_000))
    );
    let from = Timestamp::parse_rfc3339(body["from"].as_str().unwrap())
        .unwrap()
        .as_millis();
    assert_eq!(from % 3_600_000, 0, "aligned to the hour");
    assert_series(&body["series"], &expected(&api_eu, 0.95, true), "slo-lat");
    let slow = api_eu.values().next().unwrap().2;
    assert!(
        slow > 0 && slow < api_eu.values().next().unwrap().0,
        "{api_eu:?}"
    );

    // A 2-hour period leaves out the first stretch of checks.
    let recent = count(&events, now - 120 * MINUTE, |e| e.monitor_id == "api");
    assert!(
        recent
            .values()
            .all(|c| c.0 < all[&("api".into(), "eu".into())].0)
    );
    let body = s.json("/api/v1/rules/slo-short/budget").await;
    assert_series(&body["series"], &expected(&recent, 0.9, false), "slo-short");

    let (status, body) = s
        .call(
            Method::POST,
            "/graphql",
            Some(
                json!({"query": r#"{ errorBudget(ruleId: "slo-lat", region: "eu") {
                slo thresholdUs series { monitorId region total bad } } }"#}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    let (total, _, slow) = api_eu[&("api".into(), "eu".into())];
    assert_eq!(
        body["data"]["errorBudget"],
        json!({"slo": "latency", "thresholdUs": 300_000, "series": [
            {"monitorId": "api", "region": "eu", "total": total, "bad": slow}]}),
        "{body}"
    );
    s.finish().await;
}

/// Deterministic pseudo-random numbers in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Row, Deserialize)]
struct Answers {
    counts: Vec<u64>,
}

#[tokio::test]
async fn alerts_api_count_at_most_sql_equals_the_sketch() {
    let client = clickhouse();
    let mut rng = Lcg(7);
    let mut checked = 0;
    for alpha in [0.005, 0.01, 0.02] {
        for _ in 0..12 {
            let mut sketch = Sketch::new(alpha);
            let n = 1 + (rng.next() * 300.0) as usize;
            for _ in 0..n {
                // Latencies from 0 to ~10 s, heavy-tailed, some exactly zero.
                let x = rng.next();
                sketch.add(if x < 0.05 {
                    0.0
                } else {
                    (1e7 * x.powi(4)).round()
                });
            }
            let data = sketch.to_data();
            let gamma = (1.0 + alpha) / (1.0 - alpha);
            let mut thresholds = vec![0.0, 1e-12, 1.0, 300_000.0, 1e12, -5.0];
            for &k in data.keys.iter().step_by(3) {
                // Bucket boundaries, one ulp either side, and representative values.
                let edge = gamma.powi(k);
                thresholds.extend([edge, edge.next_up(), edge.next_down(), sketch.value_of(k)]);
            }
            for _ in 0..20 {
                thresholds.push((1e7 * rng.next().powi(4)).round());
            }
            let exprs: Vec<String> = thresholds
                .iter()
                .map(|&x| count_at_most_sql_for(x, "keys", "cnts", "zeros", "alpha"))
                .collect();
            let sql = format!(
                "SELECT [{}] AS counts FROM (SELECT CAST({:?} AS Array(Int32)) AS keys, \
                 CAST({:?} AS Array(UInt64)) AS cnts, toUInt64({}) AS zeros, \
                 toFloat64({alpha:?}) AS alpha)",
                exprs.join(", "),
                data.keys,
                data.counts,
                data.zero_count
            );
            let got = client
                .query(&sql)
                .fetch_one::<Answers>()
                .await
                .unwrap()
                .counts;
            let want: Vec<u64> = thresholds
                .iter()
                .map(|&x| sketch.count_at_most(x))
                .collect();
            for ((x, g), w) in thresholds.iter().zip(&got).zip(&want) {
                assert_eq!(g, w, "alpha {alpha}, x {x:e}: sql {g} vs sketch {w}");
            }
            checked += thresholds.len();
        }
    }
    assert!(checked > 1_000, "{checked}");
}
