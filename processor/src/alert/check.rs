//! One rule on one series: its stored state and how each kind evaluates a closed window.
//!
//! Per-check kinds (consecutive failures, certificate expiry, no data) evaluate every sample in
//! order, at the sample's time; window kinds evaluate once, at the window's end. Either way the
//! state machine's timers due by then run first, and after the samples the timers up to the
//! window's end run too (every check of the series before the end is known by then).
//!
//! No data: after each sample the deadline is `sample + intervals × interval` (the interval
//! estimated from the last two samples, see [`interval_ms`]); the deadline is an evaluation
//! that holds (value: the seconds without data), any later sample one that recovers (value: the
//! gap to the previous sample).

use serde::{Deserialize, Serialize};
use vigil_schema::{AlertKind, AlertState, Severity};

use super::ClosedWindow;
use super::burn::Buckets;
use super::rules::{Check, Rule};
use super::series::{Ring, interval_ms};
use super::state::{Change, Level, Machine};

/// A change with the threshold and severity it is reported with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tagged {
    pub(crate) change: Change,
    pub(crate) threshold: f64,
    pub(crate) severity: Severity,
}

/// One evaluation: the level, the value and the (firing, recovery) thresholds.
#[derive(Debug, Clone, Copy)]
struct Eval {
    level: Level,
    value: f64,
    thresholds: (f64, f64),
}

/// The state of one rule on one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RuleState {
    /// The kind the state was built for (a rule changing kind starts afresh).
    pub(crate) kind: AlertKind,
    pub(crate) machine: Machine,
    /// (firing, recovery) thresholds of the last evaluation.
    thresholds: (f64, f64),
    /// Failed and successful checks in a row.
    failures: u32,
    successes: u32,
    /// No data: the deadline.
    no_data_at: Option<i64>,
    /// Burn rate: the pair reported (the most severe one holding when the alert went active).
    pair: Option<usize>,
    burn: Option<Buckets>,
}

impl RuleState {
    pub(crate) fn new(kind: AlertKind) -> Self {
        Self {
            kind,
            machine: Machine::default(),
            thresholds: (0.0, 0.0),
            failures: 0,
            successes: 0,
            no_data_at: None,
            pair: None,
            burn: None,
        }
    }

    /// The next time a timer of this state is due.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        match (self.machine.next_deadline(), self.no_data_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn severity(&self, rule: &Rule) -> Severity {
        match (&rule.check, self.pair) {
            (Check::Burn { pairs, .. }, Some(i)) => {
                pairs.get(i).map_or(rule.spec.severity, |p| p.severity)
            }
            _ => rule.spec.severity,
        }
    }

    fn tag(&self, rule: &Rule, changes: &[Change], out: &mut Vec<Tagged>) {
        for &change in changes {
            let threshold = if change.to == AlertState::Ok {
                self.thresholds.1
            } else {
                self.thresholds.0
            };
            out.push(Tagged {
                change,
                threshold,
                severity: self.severity(rule),
            });
        }
    }

    /// Runs the timers due by `at`, then applies the evaluation at `at`, if any.
    fn step(&mut self, rule: &Rule, at: i64, eval: Option<Eval>, out: &mut Vec<Tagged>) {
        if !self.machine.is_active() && eval.is_none_or(|e| e.level != Level::Fire) {
            // Ok, and staying ok (no timer runs while ok): only the value is kept.
            if let Some(e) = eval {
                self.thresholds = e.thresholds;
                self.machine.keep(e.value);
            }
            return;
        }
        let mut changes = Vec::new();
        self.machine.advance(at, &mut changes);
        self.tag(rule, &changes, out);
        if let Some(e) = eval {
            changes.clear();
            self.thresholds = e.thresholds;
            self.machine
                .observe(at, e.level, e.value, rule.timing, &mut changes);
            self.tag(rule, &changes, out);
        }
    }

    /// Runs every timer due by `until` (the no-data deadline included); `last` is the series'
    /// last sample before `until`.
    pub(crate) fn advance(
        &mut self,
        rule: &Rule,
        until: i64,
        last: Option<i64>,
        out: &mut Vec<Tagged>,
    ) {
        if let Some(d) = self.no_data_at.filter(|&d| d <= until) {
            self.no_data_at = None;
            let value = last.map_or(0.0, |l| (d - l) as f64 / 1000.0);
            let thresholds = self.thresholds;
            let eval = Eval {
                level: Level::Fire,
                value,
                thresholds,
            };
            self.step(rule, d, Some(eval), out);
        }
        self.step(rule, until, None, out);
    }

    /// Returns to ok at `at` (the rule no longer applies).
    pub(crate) fn reset(&mut self, rule: &Rule, at: i64, out: &mut Vec<Tagged>) {
        let mut changes = Vec::new();
        self.machine.reset(at, &mut changes);
        self.tag(rule, &changes, out);
    }

    /// Evaluates a closed window: `last_sample` is the series' last check time before it,
    /// `ring` already holds it.
    pub(crate) fn on_window(
        &mut self,
        rule: &Rule,
        w: &ClosedWindow<'_>,
        ring: &Ring,
        last_sample: Option<i64>,
        window_ms: i64,
        out: &mut Vec<Tagged>,
    ) {
        let end = w.end_ms;
        match &rule.check {
            &Check::Consecutive {
                failures,
                successes,
            } => {
                let thresholds = (f64::from(failures), f64::from(successes));
                for s in w.samples {
                    let (value, level) = if s.ok {
                        self.successes = self.successes.saturating_add(1);
                        self.failures = 0;
                        let level = if self.successes >= successes {
                            Level::Recover
                        } else {
                            Level::Band
                        };
                        (self.successes, level)
                    } else {
                        self.failures = self.failures.saturating_add(1);
                        self.successes = 0;
                        let level = if self.failures >= failures {
                            Level::Fire
                        } else {
                            Level::Band
                        };
                        (self.failures, level)
                    };
                    let eval = Eval {
                        level,
                        value: f64::from(value),
                        thresholds,
                    };
                    self.step(rule, s.t_ms, Some(eval), out);
                }
                self.step(rule, end, None, out);
            }
            &Check::Certificate { within_s } => {
                for s in w.samples {
                    let Some(expiry) = s.cert_expiry_ms else {
                        continue;
                    };
                    let left = (expiry - s.t_ms) as f64 / 1000.0;
                    let level = if left < within_s {
                        Level::Fire
                    } else {
                        Level::Recover
                    };
                    let eval = Eval {
                        level,
                        value: left,
                        thresholds: (within_s, within_s),
                    };
                    self.step(rule, s.t_ms, Some(eval), out);
                }
                self.step(rule, end, None, out);
            }
            &Check::NoData { intervals } => {
                let mut last = last_sample;
                for s in w.samples {
                    self.advance(rule, s.t_ms, last, out);
                    let gap = last.map_or(0.0, |l| (s.t_ms - l) as f64 / 1000.0);
                    let eval = Eval {
                        level: Level::Recover,
                        value: gap,
                        thresholds: self.thresholds,
                    };
                    self.step(rule, s.t_ms, Some(eval), out);
                    let prev = last.replace(s.t_ms);
                    let span =
                        interval_ms(prev, last, window_ms).saturating_mul(i64::from(intervals));
                    self.no_data_at = Some(s.t_ms.saturating_add(span));
                    let secs = span as f64 / 1000.0;
                    self.thresholds = (secs, secs);
                }
                self.advance(rule, end, last, out);
            }
            &Check::Latency {
                percentile,
                fire_us,
                recover_us,
                span_ms,
            } => {
                let eval = ring
                    .quantile(end, span_ms, percentile / 100.0)
                    .map(|v| Eval {
                        level: Level::above(v, fire_us, recover_us),
                        value: v,
                        thresholds: (fire_us, recover_us),
                    });
                self.step(rule, end, eval, out);
            }
            &Check::Availability {
                fire,
                recover,
                span_ms,
            } => {
                let eval = ring.availability(end, span_ms).map(|v| Eval {
                    level: Level::below(v, fire, recover),
                    value: v,
                    thresholds: (fire, recover),
                });
                self.step(rule, end, eval, out);
            }
            &Check::Status {
                class,
                fire,
                recover,
                span_ms,
            } => {
                let eval = ring.status_share(end, span_ms, class).map(|v| Eval {
                    level: Level::above(v, fire, recover),
                    value: v,
                    thresholds: (fire, recover),
                });
                self.step(rule, end, eval, out);
            }
            &Check::Anomaly { fire, recover } => {
                let eval = w.anomaly.map(|v| Eval {
                    level: Level::above(v, fire, recover),
                    value: v,
                    thresholds: (fire, recover),
                });
                self.step(rule, end, eval, out);
            }
            Check::Burn {
                latency_us,
                budget,
                pairs,
                longest_ms,
            } => {
                let slo = latency_us.unwrap_or(u64::MAX);
                let (good, total) = match latency_us {
                    Some(us) => (w.sketch.count_at_most(*us as f64), w.sketch.count()),
                    None => (w.ok_count, w.count),
                };
                let buckets = match &mut self.burn {
                    Some(b) if b.matches(slo, window_ms) => b,
                    other => other.insert(Buckets::new(slo, window_ms)),
                };
                buckets.add(w.start_ms, total.saturating_sub(good), total, *longest_ms);
                let long = |p: &super::rules::Pair| buckets.rate(end, p.long_ms, *budget);
                let mut best: Option<usize> = None;
                for (i, p) in pairs.iter().enumerate() {
                    let exceeds = |r: Option<f64>| r.is_some_and(|r| r > p.rate);
                    // The short window first: it is the cheaper sum, and rarely exceeds.
                    let holds = exceeds(buckets.rate(end, p.short_ms, *budget)) && exceeds(long(p));
                    if holds && best.is_none_or(|b| pairs[b].severity < p.severity) {
                        best = Some(i);
                    }
                }
                // Timers due by now run with the pair they went active with.
                self.step(rule, end, None, out);
                if best.is_none() && !self.machine.is_active() {
                    // Ok and staying ok: the value would only be recorded, never reported.
                    return;
                }
                if self.machine.state() != AlertState::Firing && best.is_some() {
                    self.pair = best;
                }
                let reported = self.pair.or(best).unwrap_or(0);
                let eval = pairs.get(reported).map(|p| Eval {
                    level: if best.is_some() {
                        Level::Fire
                    } else {
                        Level::Recover
                    },
                    value: self
                        .burn
                        .as_ref()
                        .and_then(|b| b.rate(end, p.long_ms, *budget))
                        .unwrap_or(0.0),
                    thresholds: (p.rate, p.rate),
                });
                self.step(rule, end, eval, out);
            }
        }
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.burn.as_ref().map_or(0, Buckets::heap_bytes)
    }
}
