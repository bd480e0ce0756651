//! Evaluator tests: fixtures shared by the test modules below.

mod kinds;
mod replay;
mod stage;
mod timing;

use std::collections::HashMap;
use std::time::Duration;

use vigil_schema::sketch::Sketch;
use vigil_schema::{AlertState, AlertTransition, RuleCondition, RuleSpec};

use super::{ClosedWindow, Evaluator, RuleSet, Sample, default_rule};

/// Window length.
const L: i64 = 60_000;
/// An hour-aligned origin.
const T0: i64 = 1_800_000_000_000;

const OK: AlertState = AlertState::Ok;
const PENDING: AlertState = AlertState::Pending;
const FIRING: AlertState = AlertState::Firing;

/// An owned window to build [`ClosedWindow`]s from.
#[derive(Debug, Clone)]
struct W {
    partition: i32,
    monitor: String,
    region: String,
    start: i64,
    count: u64,
    ok: u64,
    status: [u64; 5],
    sketch: Sketch,
    anomaly: Option<f64>,
    samples: Vec<Sample>,
}

impl W {
    /// Window `idx` (from `T0`) of (monitor, region) without checks.
    fn new(monitor: &str, region: &str, idx: i64) -> Self {
        Self {
            partition: 0,
            monitor: monitor.into(),
            region: region.into(),
            start: T0 + idx * L,
            count: 0,
            ok: 0,
            status: [0; 5],
            sketch: Sketch::default(),
            anomaly: None,
            samples: Vec::new(),
        }
    }

    /// Adds a check `offset_ms` into the window: ok → 200, failed → 500.
    fn check(mut self, offset_ms: i64, ok: bool, total_us: f64) -> Self {
        self.samples.push(Sample {
            t_ms: self.start + offset_ms,
            ok,
            cert_expiry_ms: None,
        });
        self.count += 1;
        self.status[if ok { 1 } else { 4 }] += 1;
        if ok {
            self.ok += 1;
        }
        self.sketch.add(total_us);
        self
    }

    /// Adds a passing check `offset_ms` into the window whose certificate expires
    /// `expires_in_ms` after it.
    fn cert(mut self, offset_ms: i64, expires_in_ms: i64) -> Self {
        self = self.check(offset_ms, true, 1_000.0);
        if let Some(s) = self.samples.last_mut() {
            s.cert_expiry_ms = Some(s.t_ms + expires_in_ms);
        }
        self
    }

    /// Adds `n` checks without samples (aggregates only): `bad` of them failed with a 500.
    fn bulk(mut self, n: u64, bad: u64, total_us: f64) -> Self {
        self.count += n;
        self.ok += n - bad;
        self.status[1] += n - bad;
        self.status[4] += bad;
        self.sketch.add_n(total_us, n);
        self
    }

    fn anomaly(mut self, score: f64) -> Self {
        self.anomaly = Some(score);
        self
    }

    fn closed(&self) -> ClosedWindow<'_> {
        ClosedWindow {
            partition: self.partition,
            monitor_id: &self.monitor,
            region: &self.region,
            start_ms: self.start,
            end_ms: self.start + L,
            count: self.count,
            ok_count: self.ok,
            status: self.status,
            sketch: &self.sketch,
            anomaly: self.anomaly,
            samples: &self.samples,
        }
    }
}

fn rule(id: &str, condition: RuleCondition) -> RuleSpec {
    RuleSpec {
        id: id.into(),
        condition,
        severity: vigil_schema::Severity::Warning,
        ..default_rule()
    }
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

/// An evaluator with `rules` and no default rule.
fn evaluator(rules: Vec<RuleSpec>) -> Evaluator {
    let mut ev = Evaluator::new(L);
    let set = RuleSet::new(rules, HashMap::new(), false);
    assert!(set.rejected().is_empty(), "{:?}", set.rejected());
    ev.set_rules(set);
    ev
}

fn feed(ev: &mut Evaluator, w: &W) -> Vec<AlertTransition> {
    let mut out = Vec::new();
    ev.on_window(&w.closed(), &mut out);
    out
}

fn feed_all(ev: &mut Evaluator, windows: &[W]) -> Vec<AlertTransition> {
    windows.iter().flat_map(|w| feed(ev, w)).collect()
}

fn watermark(ev: &mut Evaluator, partition: i32, w: i64) -> Vec<AlertTransition> {
    let mut out = Vec::new();
    ev.on_watermark(partition, w, &mut out);
    out
}

/// (from, to, at - T0, value, threshold) of each transition.
fn brief(ts: &[AlertTransition]) -> Vec<(AlertState, AlertState, i64, f64, f64)> {
    ts.iter()
        .map(|t| (t.from, t.to, t.at.as_millis() - T0, t.value, t.threshold))
        .collect()
}

/// The value a sketch answers for `v`.
fn bucketed(v: f64) -> f64 {
    let mut s = Sketch::default();
    s.add(v);
    s.quantile(0.5).unwrap_or(f64::NAN)
}
