//! Alert transitions for the dashboards' annotations and active alerts tables, produced the way
//! production produces them: known checks through the processor's [`Pipeline`] with rules set by
//! [`RuleSet`], the transitions written by [`Sink::write_alerts`]. The expected rows are computed
//! here from those transitions.
//!
//! Checks every 20 s from 10 minutes before the dashboards' hour ([`T0`]) to 135 minutes after
//! it, per (monitor, region):
//! - `api/eu` fails briefly before the hour and again at minutes 5–6: `api-down` fires and
//!   resolves twice (once outside the range);
//! - `api/us` fails from minute 40 on, recovering after the range: `api-down` fires in the range
//!   and resolves after it, so it is active at the range's end;
//! - `web/eu` turns slow at minute 20: `web-slow` (p95 over 5 minutes, `for` 2 m) goes pending,
//!   then firing;
//! - `web/us` fails from minute 50 on: `web-quorum` (quorum 1) fires for the monitor, with no
//!   region;
//! - `batch/eu` fails from minute 45 on: `batch-flaky` (`for` 1 h) is pending at the range's end
//!   and fires after it.

use std::collections::{BTreeMap, HashMap};

use clickhouse::Client;
use serde_json::json;
use uuid::Uuid;
use vigil_processor::Pipeline;
use vigil_processor::alert::RuleSet;
use vigil_processor::sink::Sink;
use vigil_schema::{
    AlertState, AlertTransition, Outcome, ProbeResult, RuleSpec, Timestamp, Timings, encode,
};

use super::{Cell, DT64, MONITORS, Scenario, Seed, T0, TIME_DT64, Table, cols, s};

const MINUTE_MS: i64 = 60_000;

fn rules() -> Vec<RuleSpec> {
    [
        json!({"id": "api-down", "monitors": ["api"], "severity": "critical",
               "labels": {"team": "core"},
               "condition": {"consecutive_failures": {"failures": 3, "successes": 2}}}),
        json!({"id": "web-slow", "monitors": ["web"], "for": "2m", "severity": "warning",
               "condition": {"latency_percentile": {"percentile": 95, "above": "300ms",
                                                     "window": "5m"}}}),
        json!({"id": "web-quorum", "monitors": ["web"], "quorum": 1, "severity": "info",
               "condition": {"consecutive_failures": {"failures": 3, "successes": 2}}}),
        json!({"id": "batch-flaky", "tags": ["internal"], "for": "1h", "severity": "info",
               "labels": {"team": "data"},
               "condition": {"consecutive_failures": {"failures": 2, "successes": 2}}}),
    ]
    .into_iter()
    .map(|rule| serde_json::from_value(rule).unwrap())
    .collect()
}

/// Whether a check of (monitor, region) at `m` minutes after [`T0`] fails, and its time in µs.
fn behaviour(monitor: &str, region: &str, m: f64) -> (bool, u64) {
    let failed = match (monitor, region) {
        ("api", "eu") => (-8.0..-6.0).contains(&m) || (5.0..7.0).contains(&m),
        ("api", "us") => (40.0..130.0).contains(&m),
        ("web", "us") => m >= 50.0,
        ("batch", "eu") => m >= 45.0,
        _ => false,
    };
    let slow = monitor == "web" && region == "eu" && m >= 20.0;
    (failed, if slow { 500_000 } else { 100_000 })
}

fn probes() -> Vec<ProbeResult> {
    let mut out = Vec::new();
    let start = T0 * 1000 - 10 * MINUTE_MS;
    let mut n = 0u128;
    for step in 0..(145 * 3) {
        let t = start + step * 20_000;
        let m = (t - T0 * 1000) as f64 / MINUTE_MS as f64;
        for (monitor, region) in [
            ("api", "eu"),
            ("api", "us"),
            ("web", "eu"),
            ("web", "us"),
            ("batch", "eu"),
        ] {
            let (failed, total_us) = behaviour(monitor, region, m);
            n += 1;
            out.push(ProbeResult {
                event_id: Uuid::from_u128(n),
                monitor_id: monitor.into(),
                region: region.into(),
                agent: "grafana-it".into(),
                scheduled_at: Timestamp::from_millis(t),
                event_time: Timestamp::from_millis(t),
                method: "GET".into(),
                url: format!("https://{monitor}.example.com/"),
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
                response_size: Some(100),
                assertions: Vec::new(),
                tls_cert_expiry: None,
                steps: Vec::new(),
            });
        }
    }
    out
}

/// Runs the checks through the pipeline with [`rules`], writes the transitions with the sink
/// (twice: a replay changes nothing) and returns them.
pub(super) async fn seed(client: &Client) -> Vec<AlertTransition> {
    let tags: HashMap<String, Vec<String>> = MONITORS
        .iter()
        .map(|m| {
            (
                m.id.to_owned(),
                m.tags.iter().map(|t| (*t).to_owned()).collect(),
            )
        })
        .collect();
    let mut pipeline = Pipeline::new(vigil_processor::Config {
        store_probes: false,
        ..vigil_processor::Config::default()
    });
    pipeline.set_rules(RuleSet::new(rules(), tags, false));
    let partition = |monitor: &str| match monitor {
        "api" => 0,
        "web" => 1,
        _ => 2,
    };
    for (offset, event) in probes().into_iter().enumerate() {
        let raw = encode(&event).unwrap();
        let (p, now) = (partition(&event.monitor_id), event.event_time.as_millis());
        let key = event.monitor_id.clone();
        pipeline.process_event(p, offset as i64, Some(key.as_bytes()), &raw, event, now);
    }
    pipeline.finish();
    let transitions = pipeline.take_output().transitions;
    let sink = Sink::new(client.clone());
    sink.write_alerts(&transitions).await.unwrap();
    sink.write_alerts(&transitions).await.unwrap();

    // The story the module comment tells, as (rule, monitor, region, to, minutes after T0).
    let story: Vec<(&str, &str, &str, &str, f64)> = transitions
        .iter()
        .map(|t| {
            (
                t.rule_id.as_str(),
                t.monitor_id.as_str(),
                t.region.as_deref().unwrap_or(""),
                t.to.as_str(),
                (t.at.as_millis() - T0 * 1000) as f64 / MINUTE_MS as f64,
            )
        })
        .collect();
    let m = |minutes: f64, seconds: f64| minutes + seconds / 60.0;
    let mut want = vec![
        ("api-down", "api", "eu", "firing", m(-8.0, 40.0)),
        ("api-down", "api", "eu", "ok", m(-6.0, 20.0)),
        ("api-down", "api", "eu", "firing", m(5.0, 40.0)),
        ("api-down", "api", "eu", "ok", m(7.0, 20.0)),
        ("api-down", "api", "us", "firing", m(40.0, 40.0)),
        ("api-down", "api", "us", "ok", m(130.0, 20.0)),
        ("web-slow", "web", "eu", "pending", 21.0),
        ("web-slow", "web", "eu", "firing", 23.0),
        ("web-quorum", "web", "", "firing", m(50.0, 40.0)),
        ("batch-flaky", "batch", "eu", "pending", m(45.0, 20.0)),
        ("batch-flaky", "batch", "eu", "firing", m(105.0, 20.0)),
    ];
    let mut got = story.clone();
    let order = |a: &(&str, &str, &str, &str, f64), b: &(&str, &str, &str, &str, f64)| {
        a.4.total_cmp(&b.4).then(a.0.cmp(b.0))
    };
    want.sort_by(order);
    got.sort_by(order);
    assert_eq!(got.len(), want.len(), "transitions: {got:?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            (g.0, g.1, g.2, g.3),
            (w.0, w.1, w.2, w.3),
            "transitions: {got:?}"
        );
        assert!((g.4 - w.4).abs() < 1e-6, "{g:?} vs {w:?}");
    }
    transitions
}

/// Transitions the scenario's monitor, tag and region selection shows.
fn shown<'a>(dashboard: &str, sc: &Scenario, seed: &'a Seed) -> Vec<&'a AlertTransition> {
    let overview = dashboard == "vigil-overview";
    seed.transitions
        .iter()
        .filter(|a| {
            let region = a.region.as_deref().unwrap_or("");
            sc.monitor_selected(&a.monitor_id)
                && (region.is_empty() || sc.region_selected(region))
                && (overview
                    || sc
                        .monitors
                        .as_ref()
                        .is_some_and(|m| m == &[a.monitor_id.as_str()]))
        })
        .collect()
}

/// The annotation query: transitions in the time range, ordered by time, rule, monitor, region.
pub(super) fn annotations(dashboard: &str, sc: &Scenario, seed: &Seed) -> Table {
    let range = sc.range();
    let (from, to) = (
        range.from_ms.div_euclid(1000) * 1000,
        range.to_ms.div_euclid(1000) * 1000,
    );
    let mut rows: Vec<&AlertTransition> = shown(dashboard, sc, seed)
        .into_iter()
        .filter(|a| (from..=to).contains(&a.at.as_millis()))
        .collect();
    rows.sort_by_key(|a| {
        (
            a.at,
            a.rule_id.clone(),
            a.monitor_id.clone(),
            a.region.clone(),
        )
    });
    (
        cols(&[TIME_DT64, ("text", "String"), ("tags", "String")]),
        rows.into_iter()
            .map(|a| {
                let region = a
                    .region
                    .as_deref()
                    .map_or(String::new(), |r| format!(" / {r}"));
                let message = if a.message.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", a.message)
                };
                vec![
                    Cell::Time(a.at.as_millis()),
                    s(&format!(
                        "[{}] {} on {}{region}: {} → {}{message}",
                        a.severity.as_str(),
                        a.rule_id,
                        a.monitor_id,
                        a.from.as_str(),
                        a.to.as_str()
                    )),
                    s(&format!(
                        "{},{},{}",
                        a.severity.as_str(),
                        a.kind.as_str(),
                        a.to.as_str()
                    )),
                ]
            })
            .collect(),
    )
}

/// The active alerts table: per rule, monitor and region, the latest transition up to the end
/// of the range, when it is not to ok; newest first.
pub(super) fn active(dashboard: &str, sc: &Scenario, seed: &Seed) -> Table {
    let end = sc.range().to_ms;
    let mut latest: BTreeMap<(&str, &str, &str), &AlertTransition> = BTreeMap::new();
    for a in shown(dashboard, sc, seed) {
        if a.at.as_millis() > end {
            continue;
        }
        let key = (
            a.rule_id.as_str(),
            a.monitor_id.as_str(),
            a.region.as_deref().unwrap_or(""),
        );
        match latest.get(&key) {
            Some(b) if b.at > a.at => {}
            Some(b) => {
                // Ties would be broken by transition id; the seed has none.
                assert_ne!(b.at, a.at, "two transitions of {key:?} at one time");
                latest.insert(key, a);
            }
            None => {
                latest.insert(key, a);
            }
        }
    }
    let mut rows: Vec<(&(&str, &str, &str), &&AlertTransition)> = latest
        .iter()
        .filter(|(_, a)| a.to != AlertState::Ok)
        .collect();
    rows.sort_by(|(ka, a), (kb, b)| b.at.cmp(&a.at).then(ka.cmp(kb)));
    const LC: &str = "LowCardinality(String)";
    (
        cols(&[
            ("rule_id", LC),
            ("monitor_id", LC),
            ("region", LC),
            ("state", "String"),
            ("severity", "String"),
            ("since", DT64),
            ("kind", "String"),
            ("value", "Float64"),
            ("threshold", "Float64"),
            ("message", "String"),
            ("labels", "Map(String, String)"),
            ("transition_id", "UUID"),
        ]),
        rows.into_iter()
            .map(|((rule, monitor, region), a)| {
                vec![
                    s(rule),
                    s(monitor),
                    s(region),
                    s(a.to.as_str()),
                    s(a.severity.as_str()),
                    Cell::Time(a.at.as_millis()),
                    s(a.kind.as_str()),
                    Cell::Float(a.value),
                    Cell::Float(a.threshold),
                    s(&a.message),
                    Cell::Json(serde_json::to_value(&a.labels).unwrap()),
                    s(&a.transition_id.to_string()),
                ]
            })
            .collect(),
    )
}
