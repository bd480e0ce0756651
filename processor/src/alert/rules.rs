//! The rules in force: validated, compiled to the numbers evaluation needs, and selected per
//! (monitor, region).
//!
//! Selection: an enabled rule applies to a monitor whose id is in `monitors` or one of whose
//! tags is in `tags` (every monitor when both are empty), in a region of `regions` (every region
//! when empty). The default rule `default-down` (3 failures in a row fire, 2 successes resolve,
//! critical) applies to every (monitor, region) that no enabled user rule of kind
//! `consecutive_failures` selects, unless a user rule is itself called `default-down`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use vigil_schema::{AlertKind, RuleCondition, RuleSpec, Severity, SloKind, StatusClass};

use super::series::MAX_SPAN_MS;
use super::state::Timing;

/// Id of the default rule.
pub const DEFAULT_RULE_ID: &str = "default-down";

/// One pair of a burn-rate rule, in ms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pair {
    pub(crate) long_ms: i64,
    pub(crate) short_ms: i64,
    pub(crate) rate: f64,
    pub(crate) severity: Severity,
}

/// What a rule checks, with durations in ms and latencies in µs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    Consecutive {
        failures: u32,
        successes: u32,
    },
    Latency {
        percentile: f64,
        fire_us: f64,
        recover_us: f64,
        span_ms: i64,
    },
    Availability {
        fire: f64,
        recover: f64,
        span_ms: i64,
    },
    Status {
        class: StatusClass,
        fire: f64,
        recover: f64,
        span_ms: i64,
    },
    Anomaly {
        fire: f64,
        recover: f64,
    },
    Certificate {
        within_s: f64,
    },
    Burn {
        /// Latency threshold in µs, `None` for availability.
        latency_us: Option<u64>,
        budget: f64,
        pairs: Vec<Pair>,
        longest_ms: i64,
    },
    NoData {
        intervals: u32,
    },
}

/// A compiled rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    pub(crate) spec: RuleSpec,
    pub(crate) kind: AlertKind,
    pub(crate) check: Check,
    pub(crate) timing: Timing,
    /// `quorum`, at least 1.
    pub(crate) quorum: Option<usize>,
    pub(crate) is_default: bool,
}

impl Rule {
    /// The display name.
    pub(crate) fn name(&self) -> &str {
        if self.spec.name.is_empty() {
            &self.spec.id
        } else {
            &self.spec.name
        }
    }

    /// The span of windows the rule merges (window-based kinds).
    pub(crate) fn span_ms(&self) -> Option<i64> {
        match self.check {
            Check::Latency { span_ms, .. }
            | Check::Availability { span_ms, .. }
            | Check::Status { span_ms, .. } => Some(span_ms.min(MAX_SPAN_MS)),
            _ => None,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn ratio(name: &str, v: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{name} must be between 0 and 1, got {v}"))
    }
}

fn positive(name: &str, d: Duration) -> Result<i64, String> {
    if d.is_zero() {
        Err(format!("{name} must be positive"))
    } else {
        Ok(ms(d))
    }
}

/// Validates a rule ([`RuleSpec::validate`]) and compiles it. The checks made here as well
/// are the ones evaluation relies on.
fn compile(spec: &RuleSpec, is_default: bool) -> Result<Rule, String> {
    spec.validate().map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let check = match &spec.condition {
        RuleCondition::ConsecutiveFailures {
            failures,
            successes,
        } => {
            if *failures == 0 || *successes == 0 {
                return Err("failures and successes must be at least 1".into());
            }
            Check::Consecutive {
                failures: *failures,
                successes: *successes,
            }
        }
        RuleCondition::LatencyPercentile {
            percentile,
            above,
            recover_below,
            window,
        } => {
            if !(*percentile > 0.0 && *percentile < 100.0) {
                return Err(format!("percentile must be in (0, 100), got {percentile}"));
            }
            let recover = recover_below.unwrap_or(*above);
            if recover > *above {
                return Err("recover_below must not exceed above".into());
            }
            Check::Latency {
                percentile: *percentile,
                fire_us: above.as_micros() as f64,
                recover_us: recover.as_micros() as f64,
                span_ms: positive("window", *window)?,
            }
        }
        RuleCondition::Availability {
            below,
            recover_above,
            window,
        } => {
            let fire = ratio("below", *below)?;
            let recover = ratio("recover_above", recover_above.unwrap_or(fire))?;
            if recover < fire {
                return Err("recover_above must not be below below".into());
            }
            Check::Availability {
                fire,
                recover,
                span_ms: positive("window", *window)?,
            }
        }
        RuleCondition::StatusPattern {
            class,
            above,
            recover_below,
            window,
        } => {
            let fire = ratio("above", *above)?;
            let recover = ratio("recover_below", recover_below.unwrap_or(fire))?;
            if recover > fire {
                return Err("recover_below must not exceed above".into());
            }
            Check::Status {
                class: *class,
                fire,
                recover,
                span_ms: positive("window", *window)?,
            }
        }
        RuleCondition::Anomaly {
            above,
            recover_below,
        } => {
            let fire = ratio("above", *above)?;
            let recover = ratio("recover_below", recover_below.unwrap_or(fire))?;
            if recover > fire {
                return Err("recover_below must not exceed above".into());
            }
            Check::Anomaly { fire, recover }
        }
        RuleCondition::CertificateExpiry { within } => Check::Certificate {
            within_s: positive("within", *within)? as f64 / 1000.0,
        },
        RuleCondition::BurnRate {
            slo,
            objective,
            period: _,
            windows,
        } => {
            if !(*objective > 0.0 && *objective < 1.0) {
                return Err(format!("objective must be in (0, 1), got {objective}"));
            }
            if windows.is_empty() {
                return Err("a burn-rate rule needs at least one window pair".into());
            }
            let mut pairs = Vec::with_capacity(windows.len());
            for w in windows {
                let (long_ms, short_ms) = (positive("long", w.long)?, positive("short", w.short)?);
                if short_ms > long_ms {
                    return Err("a pair's short window must not exceed its long window".into());
                }
                if !(w.burn_rate.is_finite() && w.burn_rate > 0.0) {
                    return Err(format!("burn_rate must be positive, got {}", w.burn_rate));
                }
                pairs.push(Pair {
                    long_ms,
                    short_ms,
                    rate: w.burn_rate,
                    severity: w.severity,
                });
            }
            let latency_us = match slo {
                SloKind::Availability => None,
                SloKind::Latency { threshold } => {
                    Some(u64::try_from(threshold.as_micros()).unwrap_or(u64::MAX))
                }
            };
            Check::Burn {
                latency_us,
                budget: 1.0 - objective,
                longest_ms: pairs.iter().map(|p| p.long_ms).max().unwrap_or(0),
                pairs,
            }
        }
        RuleCondition::NoData { intervals } => {
            if *intervals == 0 {
                return Err("intervals must be at least 1".into());
            }
            Check::NoData {
                intervals: *intervals,
            }
        }
    };
    if spec.quorum == Some(0) {
        return Err("quorum must be at least 1".into());
    }
    Ok(Rule {
        kind: spec.condition.kind(),
        check,
        timing: Timing {
            for_ms: ms(spec.for_),
            keep_ms: ms(spec.keep_firing_for),
        },
        quorum: spec
            .quorum
            .map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
        is_default,
        spec: spec.clone(),
    })
}

/// The default rule's spec.
pub fn default_rule() -> RuleSpec {
    RuleSpec {
        id: DEFAULT_RULE_ID.into(),
        name: String::new(),
        monitors: Vec::new(),
        tags: Vec::new(),
        regions: Vec::new(),
        condition: RuleCondition::ConsecutiveFailures {
            failures: 3,
            successes: 2,
        },
        for_: Duration::ZERO,
        keep_firing_for: Duration::ZERO,
        quorum: None,
        severity: Severity::Critical,
        summary: String::new(),
        labels: BTreeMap::new(),
        enabled: true,
    }
}

/// The rules in force and the monitors' tags.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Enabled, valid rules (the default one included) sorted by id.
    rules: Vec<Arc<Rule>>,
    tags: HashMap<String, Vec<String>>,
    rejected: Vec<(String, String)>,
}

impl RuleSet {
    /// Compiles `rules` (a later rule with the same id replaces an earlier one; disabled rules
    /// are left out, invalid ones are left out and listed by [`RuleSet::rejected`]) for monitors
    /// tagged as in `monitor_tags` (a monitor missing from it has no tags), adding the default
    /// rule when `default_rule` is set.
    pub fn new(
        rules: Vec<RuleSpec>,
        monitor_tags: HashMap<String, Vec<String>>,
        default_rule: bool,
    ) -> Self {
        let by_id: BTreeMap<String, RuleSpec> =
            rules.into_iter().map(|r| (r.id.clone(), r)).collect();
        let mut compiled = Vec::with_capacity(by_id.len() + 1);
        let mut rejected = Vec::new();
        let add_default = default_rule && !by_id.contains_key(DEFAULT_RULE_ID);
        for (id, spec) in by_id {
            if !spec.enabled {
                continue;
            }
            match compile(&spec, false) {
                Ok(rule) => compiled.push(Arc::new(rule)),
                Err(reason) => rejected.push((id, reason)),
            }
        }
        if add_default && let Ok(rule) = compile(&super::rules::default_rule(), true) {
            compiled.push(Arc::new(rule));
            compiled.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
        }
        Self {
            rules: compiled,
            tags: monitor_tags,
            rejected,
        }
    }

    /// Rules left out as invalid, with the reason, by id.
    pub fn rejected(&self) -> &[(String, String)] {
        &self.rejected
    }

    /// Number of rules evaluated (the default one included).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rule is evaluated.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule with this id.
    pub(crate) fn get(&self, id: &str) -> Option<&Arc<Rule>> {
        self.rules
            .binary_search_by(|r| r.spec.id.as_str().cmp(id))
            .ok()
            .and_then(|i| self.rules.get(i))
    }

    pub(crate) fn all(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// The rules evaluated on (monitor, region), in id order.
    pub(crate) fn select(&self, monitor: &str, region: &str) -> Vec<Arc<Rule>> {
        let tags = self.tags.get(monitor).map_or(&[][..], Vec::as_slice);
        let applies = |spec: &RuleSpec| {
            let monitor_ok = (spec.monitors.is_empty() && spec.tags.is_empty())
                || spec.monitors.iter().any(|m| m == monitor)
                || spec.tags.iter().any(|t| tags.contains(t));
            monitor_ok && (spec.regions.is_empty() || spec.regions.iter().any(|r| r == region))
        };
        let mut selected: Vec<Arc<Rule>> = self
            .rules
            .iter()
            .filter(|r| !r.is_default && applies(&r.spec))
            .cloned()
            .collect();
        if !selected
            .iter()
            .any(|r| r.kind == AlertKind::ConsecutiveFailures)
            && let Some(default) = self.rules.iter().find(|r| r.is_default)
        {
            selected.push(Arc::clone(default));
            selected.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
        }
        selected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, condition: RuleCondition) -> RuleSpec {
        RuleSpec {
            id: id.into(),
            condition,
            ..default_rule()
        }
    }

    fn ids(rules: &[Arc<Rule>]) -> Vec<&str> {
        rules.iter().map(|r| r.spec.id.as_str()).collect()
    }

    #[test]
    fn selection_by_id_tag_region_and_the_default() {
        let anomaly = RuleCondition::Anomaly {
            above: 0.9,
            recover_below: None,
        };
        let failures = RuleCondition::ConsecutiveFailures {
            failures: 5,
            successes: 1,
        };
        let rules = vec![
            RuleSpec {
                monitors: vec!["api".into()],
                ..spec("by-id", anomaly.clone())
            },
            RuleSpec {
                tags: vec!["prod".into()],
                regions: vec!["eu".into()],
                ..spec("by-tag", failures.clone())
            },
            spec("all", anomaly.clone()),
            RuleSpec {
                enabled: false,
                ..spec("off", failures)
            },
            RuleSpec {
                summary: "{{nope}}".into(),
                ..spec("bad", anomaly)
            },
        ];
        let tags = HashMap::from([("web".to_owned(), vec!["prod".to_owned()])]);
        let set = RuleSet::new(rules, tags, true);
        assert_eq!(set.rejected().len(), 1);
        assert_eq!(set.rejected()[0].0, "bad");
        assert_eq!(
            ids(&set.select("api", "eu")),
            ["all", "by-id", "default-down"]
        );
        assert_eq!(ids(&set.select("web", "eu")), ["all", "by-tag"]);
        assert_eq!(ids(&set.select("web", "us")), ["all", "default-down"]);
        assert_eq!(ids(&set.select("other", "us")), ["all", "default-down"]);
        let without = RuleSet::new(Vec::new(), HashMap::new(), false);
        assert!(without.select("api", "eu").is_empty());
        let default = RuleSet::new(Vec::new(), HashMap::new(), true);
        let d = &default.select("api", "eu")[0];
        assert_eq!(d.spec.severity, Severity::Critical);
        assert_eq!(
            d.check,
            Check::Consecutive {
                failures: 3,
                successes: 2
            }
        );
    }

    #[test]
    fn invalid_rules_are_explained() {
        let bad = |c: RuleCondition| compile(&spec("r", c), false).unwrap_err();
        assert!(bad(RuleCondition::NoData { intervals: 0 }).contains("intervals"));
        assert!(
            bad(RuleCondition::Availability {
                below: 0.99,
                recover_above: Some(0.9),
                window: Duration::from_secs(60)
            })
            .contains("recover_above")
        );
        assert!(
            bad(RuleCondition::BurnRate {
                slo: SloKind::Availability,
                objective: 1.0,
                period: Duration::from_secs(86_400),
                windows: vigil_schema::event::default_burn_windows(),
            })
            .contains("objective")
        );
        assert!(compile(&default_rule(), true).is_ok());
    }
}
