//! Backtesting alert rules: the rules (new, edited or live) run over the retained probes topic
//! through the same [`Pipeline`] and evaluator as the live processor, and the transitions they
//! would have produced are reported with how often and how long each rule fired. Nothing is
//! written anywhere.
//!
//! An unchanged rule backtested from the start of the topic gives the live transitions (same
//! ids), because both are the same deterministic function of the events. Two caveats: the live
//! processor closes the windows of an idle partition by the wall clock while a backtest closes
//! them at the end of the data, and anomaly scores depend on how the detectors were seeded
//! (from `windows_1m` before `from`, when a ClickHouse client is given).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::Message;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::info;
use vigil_schema::{AlertState, AlertTransition, ProbeResult, RuleSpec, decode};

use crate::alert::RuleSet;
use crate::consumer::now_ms;
use crate::pipeline::Pipeline;
use crate::replay::RangeReader;
use crate::sink::Sink;
use crate::window::window_start;
use crate::{Config, Result};

/// What to backtest.
#[derive(Debug, Clone)]
pub struct BacktestRequest {
    /// The rules to run.
    pub rules: Vec<RuleSpec>,
    /// Monitor tags, for rules that select by tag.
    pub tags: HashMap<String, Vec<String>>,
    /// Also run the built-in default rule.
    pub default_rule: bool,
    /// Start (unix ms); rounded down to its window's start.
    pub from_ms: i64,
    /// End (unix ms, exclusive); `None` for everything in the topic now.
    pub to_ms: Option<i64>,
    /// Most transitions listed (the statistics count all of them).
    pub max_transitions: usize,
}

/// What the rules would have done.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BacktestReport {
    /// Start of the evaluated range (unix ms).
    pub from_ms: i64,
    /// End of the evaluated range: `to`, or the latest event time seen (unix ms).
    pub to_ms: i64,
    /// Probe results evaluated.
    pub events: u64,
    /// The earliest `max_transitions` transitions, ordered by event time, then rule, monitor,
    /// region and id (a canonical order: partitions are read concurrently).
    pub transitions: Vec<AlertTransition>,
    /// Whether transitions were left out of the list.
    pub truncated: bool,
    /// Per rule: how often and how long it fired.
    pub rules: Vec<RuleStats>,
    /// Rules that were rejected, with the reason.
    pub rejected: Vec<(String, String)>,
}

/// How one rule behaved over the range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    /// The rule.
    pub rule_id: String,
    /// Transitions to firing.
    pub fired: u64,
    /// Transitions from firing to ok.
    pub resolved: u64,
    /// Time spent firing, summed over its alerts (open ones until the end of the range), ms.
    pub firing_ms: i64,
    /// Alerts still firing at the end.
    pub firing_at_end: u64,
}

/// Tallies transitions into per-rule statistics.
#[derive(Debug, Default)]
pub struct Tally {
    stats: BTreeMap<String, RuleStats>,
    /// (rule, monitor, region) → firing since.
    open: BTreeMap<(String, String, Option<String>), i64>,
}

impl Tally {
    /// A tally knowing the rules (so rules that never fired are listed too).
    pub fn new<'a>(rules: impl IntoIterator<Item = &'a str>) -> Self {
        let stats = rules
            .into_iter()
            .map(|id| {
                (
                    id.to_owned(),
                    RuleStats {
                        rule_id: id.to_owned(),
                        ..RuleStats::default()
                    },
                )
            })
            .collect();
        Self {
            stats,
            open: BTreeMap::new(),
        }
    }

    /// Counts one transition.
    pub fn add(&mut self, t: &AlertTransition) {
        let stats = self
            .stats
            .entry(t.rule_id.clone())
            .or_insert_with(|| RuleStats {
                rule_id: t.rule_id.clone(),
                ..RuleStats::default()
            });
        let key = (t.rule_id.clone(), t.monitor_id.clone(), t.region.clone());
        let at = t.at.as_millis();
        if t.to == AlertState::Firing {
            stats.fired += 1;
            self.open.insert(key, at);
        } else if t.from == AlertState::Firing {
            stats.resolved += 1;
            if let Some(since) = self.open.remove(&key) {
                stats.firing_ms += at - since;
            }
        }
    }

    /// The statistics, closing alerts still open at `end_ms`.
    pub fn finish(mut self, end_ms: i64) -> Vec<RuleStats> {
        for ((rule, _, _), since) in std::mem::take(&mut self.open) {
            if let Some(stats) = self.stats.get_mut(&rule) {
                stats.firing_ms += (end_ms - since).max(0);
                stats.firing_at_end += 1;
            }
        }
        self.stats.into_values().collect()
    }
}

/// Runs `request` over the probes topic `topic`. With `clickhouse`, the anomaly detectors are
/// seeded from the windows before `from`, as a live processor started then would be.
pub async fn backtest(
    brokers: &str,
    topic: &str,
    config: &Config,
    clickhouse: Option<clickhouse::Client>,
    request: BacktestRequest,
    token: CancellationToken,
) -> Result<BacktestReport> {
    let mut cfg = config.clone();
    cfg.validate()?;
    // Event time only: windows close when the data says so, never by the wall clock.
    cfg.idle_timeout = Duration::from_secs(100 * 365 * 24 * 3600);
    cfg.store_probes = false;
    let from = window_start(request.from_ms, cfg.window_ms());
    let rules = RuleSet::new(request.rules.clone(), request.tags, request.default_rule);
    let mut report = BacktestReport {
        from_ms: from,
        to_ms: request.to_ms.unwrap_or(from),
        rejected: rules.rejected().to_vec(),
        ..BacktestReport::default()
    };
    let mut ids: Vec<&str> = request.rules.iter().map(|r| r.id.as_str()).collect();
    if request.default_rule {
        ids.push(crate::alert::DEFAULT_RULE_ID);
    }
    let mut tally = Tally::new(ids);
    let mut pipeline = Pipeline::new(cfg.clone());
    if let Some(client) = clickhouse {
        let history_from = from - cfg.anomaly_history.as_millis() as i64;
        for p in Sink::new(client).history(history_from, from).await? {
            pipeline.seed_detector(
                &p.monitor_id,
                &p.region,
                p.start_ms,
                p.p95_us,
                1.0 - p.availability,
                Some(p.scores()),
            );
        }
    }
    pipeline.set_rules(rules);
    let mut latest = from;
    let mut kept = Kept::default();
    if let Some(mut reader) = RangeReader::open(brokers, topic, from).await? {
        info!(from, records = reader.total, "Backtest started.");
        while let Some(message) = reader.next(&token).await? {
            let Some(payload) = message.payload() else {
                continue;
            };
            let Ok(event) = decode::<ProbeResult>(payload) else {
                continue;
            };
            let t = event.event_time.as_millis();
            if t < from || request.to_ms.is_some_and(|to| t >= to) {
                continue;
            }
            latest = latest.max(t);
            report.events += 1;
            let (p, offset) = (message.partition(), message.offset());
            pipeline.process_event(p, offset, message.key(), payload, event, now_ms());
            if pipeline.pending() >= cfg.batch_rows {
                collect(
                    &mut pipeline,
                    &mut kept,
                    &mut tally,
                    request.max_transitions,
                );
            }
        }
    }
    pipeline.finish();
    collect(
        &mut pipeline,
        &mut kept,
        &mut tally,
        request.max_transitions,
    );
    report.transitions = kept.0.into_values().collect();
    report.truncated = kept.1;
    report.to_ms = request.to_ms.unwrap_or(latest);
    report.rules = tally.finish(report.to_ms);
    info!(
        events = report.events,
        transitions = report
            .rules
            .iter()
            .map(|r| r.fired + r.resolved)
            .sum::<u64>(),
        "Backtest finished."
    );
    Ok(report)
}

/// The earliest transitions in canonical order (bounded), and whether any were left out.
type Order = (i64, String, String, Option<String>, uuid::Uuid);

#[derive(Debug, Default)]
struct Kept(BTreeMap<Order, AlertTransition>, bool);

fn collect(pipeline: &mut Pipeline, kept: &mut Kept, tally: &mut Tally, max: usize) {
    let output = pipeline.take_output();
    pipeline.evict();
    for t in output.transitions {
        tally.add(&t);
        let key = (
            t.at.as_millis(),
            t.rule_id.clone(),
            t.monitor_id.clone(),
            t.region.clone(),
            t.transition_id,
        );
        kept.0.insert(key, t);
        if kept.0.len() > max {
            kept.0.pop_last();
            kept.1 = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;
    use vigil_schema::{AlertKind, Severity, Timestamp};

    use super::*;

    fn t(rule: &str, monitor: &str, from: AlertState, to: AlertState, at: i64) -> AlertTransition {
        AlertTransition {
            transition_id: Uuid::nil(),
            rule_id: rule.into(),
            monitor_id: monitor.into(),
            region: Some("eu".into()),
            kind: AlertKind::Availability,
            from,
            to,
            at: Timestamp::from_millis(at),
            value: 0.0,
            threshold: 0.0,
            severity: Severity::Warning,
            labels: BTreeMap::new(),
            message: String::new(),
        }
    }

    #[test]
    fn tally_counts_firings_and_time_spent_firing() {
        use AlertState::{Firing, Ok, Pending};
        let mut tally = Tally::new(["a", "quiet"]);
        tally.add(&t("a", "m1", Ok, Pending, 0));
        tally.add(&t("a", "m1", Pending, Firing, 1_000));
        tally.add(&t("a", "m2", Ok, Firing, 2_000));
        tally.add(&t("a", "m1", Firing, Ok, 5_000));
        tally.add(&t("a", "m1", Ok, Firing, 9_000));
        let stats = tally.finish(10_000);
        assert_eq!(
            stats,
            [
                RuleStats {
                    rule_id: "a".into(),
                    fired: 3,
                    resolved: 1,
                    // m1: 1s..5s and 9s..10s; m2: 2s..10s.
                    firing_ms: 4_000 + 1_000 + 8_000,
                    firing_at_end: 2,
                },
                RuleStats {
                    rule_id: "quiet".into(),
                    ..RuleStats::default()
                },
            ]
        );
    }
}
