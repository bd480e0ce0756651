//! [`RuleSpec`]: when an alert fires and resolves.
//!
//! Rules are configuration, event-sourced like monitors: written to the compacted `vigil.rules`
//! topic (key = rule id, tombstone = deleted) by `vigil apply`, the REST API and GraphQL, and
//! read by the processor, which evaluates them in event time as windows close.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::monitor::{FieldError, check_slug};

mod check;
mod template;

use check::{Problems, show};
pub use template::{SummarySegment, parse_summary};

/// Configuration of one alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RuleSpec {
    /// Stable identifier, a slug; the Kafka key.
    pub id: String,
    /// Display name (defaults to the id).
    #[serde(default)]
    pub name: String,
    /// Monitors the rule applies to by id. With `tags` also empty, the rule applies to every
    /// monitor.
    #[serde(default)]
    pub monitors: Vec<String>,
    /// Monitors the rule applies to by tag (any of them).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Regions the rule looks at; empty means every region.
    #[serde(default)]
    pub regions: Vec<String>,
    /// What is checked.
    pub condition: RuleCondition,
    /// How long the condition must hold before the alert fires (`pending` meanwhile).
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub for_: Duration,
    /// How long a firing alert stays firing after the condition stopped holding.
    #[serde(default, with = "humantime_serde")]
    pub keep_firing_for: Duration,
    /// With `k`, the alert fires for a monitor only while at least `k` of its regions fire
    /// (the transition then carries no region). Without, each region alerts on its own.
    #[serde(default)]
    pub quorum: Option<u32>,
    /// Severity carried by transitions (and used by routing).
    #[serde(default)]
    pub severity: Severity,
    /// Summary template: `{{monitor}}`, `{{region}}`, `{{rule}}`, `{{kind}}`, `{{value}}`,
    /// `{{threshold}}`, `{{state}}`, `{{severity}}`, `{{labels.NAME}}`. Empty: a default per kind.
    #[serde(default)]
    pub summary: String,
    /// Labels carried by transitions, for routing.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Disabled rules are kept but not evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Rule ids that would collide with routes under `/api/v1/rules/…`.
const RESERVED_IDS: [&str; 1] = ["backtest"];

/// Alert severities.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Info,
    /// Needs attention soon (a ticket).
    #[default]
    Warning,
    /// Needs attention now (a page).
    Critical,
}

impl Severity {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule checks. Window-based kinds look at the merged windows of the last `window`
/// (a multiple of the processor's window length), evaluated each time a window closes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleCondition {
    /// Fires after `failures` failed checks in a row, resolves after `successes` in a row.
    ConsecutiveFailures {
        /// Failed checks in a row that fire the alert (default 3).
        #[serde(default = "three")]
        failures: u32,
        /// Successful checks in a row that resolve it (default 2).
        #[serde(default = "two")]
        successes: u32,
    },
    /// A total-time percentile of the merged sketch above a threshold.
    LatencyPercentile {
        /// The percentile, in (0, 100) (`99`, `99.9`).
        percentile: f64,
        /// Fires above this.
        #[serde(with = "humantime_serde")]
        above: Duration,
        /// Resolves only below this (hysteresis); default: `above`.
        #[serde(default, with = "humantime_serde")]
        recover_below: Option<Duration>,
        /// Span of windows merged (default 5m).
        #[serde(default = "five_minutes", with = "humantime_serde")]
        window: Duration,
    },
    /// Availability (ok checks / checks) below a target.
    Availability {
        /// Fires below this ratio (`0.99`).
        below: f64,
        /// Resolves only above this ratio; default: `below`.
        #[serde(default)]
        recover_above: Option<f64>,
        /// Span of windows merged (default 5m).
        #[serde(default = "five_minutes", with = "humantime_serde")]
        window: Duration,
    },
    /// The share of responses of a status class above a threshold.
    StatusPattern {
        /// The status class.
        class: StatusClass,
        /// Fires above this share (`0.05`).
        above: f64,
        /// Resolves only below this share; default: `above`.
        #[serde(default)]
        recover_below: Option<f64>,
        /// Span of windows merged (default 5m).
        #[serde(default = "five_minutes", with = "humantime_serde")]
        window: Duration,
    },
    /// The processor's combined anomaly score of a window above a threshold.
    Anomaly {
        /// Fires above this score, in (0, 1].
        above: f64,
        /// Resolves only below this score; default: `above`.
        #[serde(default)]
        recover_below: Option<f64>,
    },
    /// The peer certificate expires within a horizon (from the latest check).
    CertificateExpiry {
        /// Fires when the certificate expires sooner than this after the check.
        #[serde(with = "humantime_serde")]
        within: Duration,
    },
    /// Multi-window, multi-burn-rate alerting on an SLO (SRE workbook, chapter 5).
    BurnRate {
        /// What a good check is.
        slo: SloKind,
        /// Target share of good checks (`0.999`).
        objective: f64,
        /// The SLO period the error budget is counted over (default 30d).
        #[serde(default = "thirty_days", with = "humantime_serde")]
        period: Duration,
        /// Window pairs; the alert fires while both windows of any pair burn faster than its
        /// rate. Default: 1h/5m at 14.4 and 6h/30m at 6 (critical), 3d/6h at 1 (warning).
        #[serde(default = "default_burn_windows")]
        windows: Vec<BurnWindow>,
    },
    /// A monitor whose results stop arriving for `intervals` of its check interval.
    NoData {
        /// Missed intervals before the alert fires (default 3).
        #[serde(default = "three")]
        intervals: u32,
    },
}

impl RuleCondition {
    /// The transition kind of this condition.
    pub fn kind(&self) -> crate::AlertKind {
        use crate::AlertKind as K;
        match self {
            RuleCondition::ConsecutiveFailures { .. } => K::ConsecutiveFailures,
            RuleCondition::LatencyPercentile { .. } => K::LatencyPercentile,
            RuleCondition::Availability { .. } => K::Availability,
            RuleCondition::StatusPattern { .. } => K::StatusPattern,
            RuleCondition::Anomaly { .. } => K::Anomaly,
            RuleCondition::CertificateExpiry { .. } => K::CertificateExpiry,
            RuleCondition::BurnRate { .. } => K::BurnRate,
            RuleCondition::NoData { .. } => K::NoData,
        }
    }
}

/// HTTP status classes for [`RuleCondition::StatusPattern`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusClass {
    /// 1xx.
    #[serde(rename = "1xx")]
    Informational,
    /// 2xx.
    #[serde(rename = "2xx")]
    Success,
    /// 3xx.
    #[serde(rename = "3xx")]
    Redirection,
    /// 4xx.
    #[serde(rename = "4xx")]
    ClientError,
    /// 5xx.
    #[serde(rename = "5xx")]
    ServerError,
    /// 4xx or 5xx.
    #[serde(rename = "error")]
    AnyError,
}

/// The good-check definition of an SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SloKind {
    /// A good check is an ok check.
    Availability,
    /// A good check finished under `threshold` (read from the sketch).
    Latency {
        /// The latency threshold.
        #[serde(with = "humantime_serde")]
        threshold: Duration,
    },
}

/// One window pair of a burn-rate rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnWindow {
    /// The long window (`1h`).
    #[serde(with = "humantime_serde")]
    pub long: Duration,
    /// The short window (`5m`).
    #[serde(with = "humantime_serde")]
    pub short: Duration,
    /// Burn rate both windows must exceed (`14.4`).
    pub burn_rate: f64,
    /// Severity of an alert fired by this pair.
    #[serde(default)]
    pub severity: Severity,
}

fn two() -> u32 {
    2
}

fn three() -> u32 {
    3
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

fn thirty_days() -> Duration {
    Duration::from_secs(30 * 86_400)
}

/// The SRE workbook's recommended windows for a 30-day SLO.
pub fn default_burn_windows() -> Vec<BurnWindow> {
    let pair = |long: u64, short: u64, burn_rate: f64, severity| BurnWindow {
        long: Duration::from_secs(long),
        short: Duration::from_secs(short),
        burn_rate,
        severity,
    };
    vec![
        pair(3600, 300, 14.4, Severity::Critical),
        pair(6 * 3600, 1800, 6.0, Severity::Critical),
        pair(3 * 86_400, 6 * 3600, 1.0, Severity::Warning),
    ]
}

/// Shortest `window` of a windowed condition, and shortest burn-rate window: one processor
/// window.
const MIN_WINDOW: Duration = Duration::from_secs(60);
/// Longest `window`, `for` and `keep_firing_for`.
const MAX_SPAN: Duration = Duration::from_secs(24 * 3600);
/// Longest SLO period of a burn-rate rule.
const MAX_PERIOD: Duration = Duration::from_secs(366 * 86_400);
/// Most window pairs of a burn-rate rule.
const MAX_BURN_WINDOWS: usize = 10;
/// Longest name, in bytes.
const MAX_NAME: usize = 200;
/// Longest summary template, in bytes.
const MAX_SUMMARY: usize = 1000;
/// Most labels.
const MAX_LABELS: usize = 64;
/// Longest label value, in bytes.
const MAX_LABEL_VALUE: usize = 200;

impl RuleSpec {
    /// Checks every field and returns all problems found, each naming its field
    /// (`condition.latency_percentile.percentile`, `monitors[1]`, `labels.team`).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        p.slug("id", &self.id);
        if RESERVED_IDS.contains(&self.id.as_str()) {
            p.push(
                "id",
                format!(
                    "{:?} is reserved (it names an API route under /api/v1/rules)",
                    self.id
                ),
            );
        }
        if self.name.len() > MAX_NAME {
            p.push("name", format!("must be at most {MAX_NAME} bytes"));
        }
        for (list, values) in [
            ("monitors", &self.monitors),
            ("tags", &self.tags),
            ("regions", &self.regions),
        ] {
            for (i, value) in values.iter().enumerate() {
                p.slug(format!("{list}[{i}]"), value);
            }
        }
        self.condition.check(&mut p);
        for (field, span) in [
            ("for", self.for_),
            ("keep_firing_for", self.keep_firing_for),
        ] {
            if span > MAX_SPAN {
                p.push(field, format!("must be ≤ 24h, got {}", show(span)));
            }
        }
        match self.quorum {
            Some(0) => p.push("quorum", "must be ≥ 1"),
            Some(k) if !self.regions.is_empty() && k as usize > self.regions.len() => p.push(
                "quorum",
                format!(
                    "must be ≤ the number of regions ({}), got {k}",
                    self.regions.len()
                ),
            ),
            _ => {}
        }
        self.check_summary(&mut p);
        if self.labels.len() > MAX_LABELS {
            p.push(
                "labels",
                format!(
                    "must have at most {MAX_LABELS} labels, got {}",
                    self.labels.len()
                ),
            );
        }
        for (name, value) in &self.labels {
            if let Err(reason) = check_slug(name) {
                p.push(format!("labels.{name}"), format!("name {reason}"));
            }
            if value.len() > MAX_LABEL_VALUE {
                p.push(
                    format!("labels.{name}"),
                    format!("value must be at most {MAX_LABEL_VALUE} bytes"),
                );
            }
        }
        p.finish()
    }

    /// Whether the rule looks at `monitor`: named by id, sharing a tag, or (neither `monitors`
    /// nor `tags` given) every monitor.
    pub fn applies_to(&self, monitor: &crate::MonitorSpec) -> bool {
        (self.monitors.is_empty() && self.tags.is_empty())
            || self.monitors.contains(&monitor.id)
            || self.tags.iter().any(|t| monitor.tags.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// YAML in the map form (`condition: {kind: {…}}`) read through JSON, as files are.
    pub(super) fn rule(yaml: &str) -> RuleSpec {
        let value: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
        serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap()
    }

    pub(super) fn messages(spec: &RuleSpec) -> Vec<String> {
        spec.validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    pub(super) const SLOW: &str = r#"
id: checkout-p99
name: Checkout is slow
monitors: [checkout-api]
regions: [eu-west, us-east]
condition:
  latency_percentile: { percentile: 99, above: 800ms, recover_below: 600ms, window: 10m }
for: 5m
quorum: 2
severity: critical
summary: "p99 of {{monitor}} is {{value}} (> {{threshold}}) for {{ labels.team }}"
labels: { team: payments }
"#;

    #[test]
    fn a_valid_rule_with_defaults() {
        let spec = rule(SLOW);
        assert_eq!(spec.validate(), Ok(()));
        assert_eq!(spec.for_, Duration::from_secs(300));
        assert_eq!(spec.keep_firing_for, Duration::ZERO);
        assert!(spec.enabled);
        let minimal = rule("{id: down, condition: {consecutive_failures: {}}}");
        assert_eq!(minimal.validate(), Ok(()));
        assert_eq!(
            minimal.condition,
            RuleCondition::ConsecutiveFailures {
                failures: 3,
                successes: 2
            }
        );
        assert_eq!(minimal.severity, Severity::Warning);
        let burn = rule("{id: slo, condition: {burn_rate: {slo: availability, objective: 0.999}}}");
        assert_eq!(burn.validate(), Ok(()));
    }

    #[test]
    fn validation_names_every_bad_field() {
        let mut spec = rule(SLOW);
        spec.id = "Checkout P99".into();
        spec.name = "n".repeat(201);
        spec.monitors.push("Bad Monitor".into());
        spec.condition = RuleCondition::LatencyPercentile {
            percentile: 120.0,
            above: Duration::ZERO,
            recover_below: None,
            window: Duration::from_secs(30),
        };
        spec.for_ = Duration::from_secs(2 * 86_400);
        spec.quorum = Some(0);
        let got = messages(&spec);
        assert_eq!(got.len(), 8, "{got:#?}");
        assert!(
            got[0].starts_with("id: must be 1–64 characters"),
            "{}",
            got[0]
        );
        assert_eq!(got[1], "name: must be at most 200 bytes");
        assert!(
            got[2].starts_with("monitors[1]: must be 1–64 characters"),
            "{}",
            got[2]
        );
        assert_eq!(
            got[3..],
            [
                "condition.latency_percentile.percentile: must be in (0, 100), got 120",
                "condition.latency_percentile.above: must be > 0s",
                "condition.latency_percentile.window: must be ≥ 1m, got 30s",
                "for: must be ≤ 24h, got 2d",
                "quorum: must be ≥ 1",
            ]
        );
        assert_eq!(
            spec.validate().unwrap_err()[7]
                .clone()
                .within("alerts[2]")
                .to_string(),
            "alerts[2].quorum: must be ≥ 1"
        );
    }

    #[test]
    fn quorum_is_at_most_the_regions_and_durations_at_most_a_day() {
        let mut spec = rule(SLOW);
        spec.quorum = Some(3);
        spec.keep_firing_for = Duration::from_secs(25 * 3600);
        assert_eq!(
            messages(&spec),
            [
                "keep_firing_for: must be ≤ 24h, got 1d 1h",
                "quorum: must be ≤ the number of regions (2), got 3",
            ]
        );
        spec.regions.clear();
        spec.keep_firing_for = Duration::from_secs(24 * 3600);
        assert_eq!(
            spec.validate(),
            Ok(()),
            "without regions any quorum ≥ 1 is fine"
        );
    }

    #[test]
    fn labels_are_slugs_and_at_most_64() {
        let mut spec = rule(SLOW);
        spec.summary.clear();
        spec.labels.insert("Team Name".into(), "x".into());
        spec.labels.insert("owner".into(), "o".repeat(201));
        let got = messages(&spec);
        assert!(
            got[0].starts_with("labels.Team Name: name must be 1–64 characters"),
            "{got:?}"
        );
        assert_eq!(got[1], "labels.owner: value must be at most 200 bytes");
        spec.labels = (0..65).map(|i| (format!("l{i}"), String::new())).collect();
        assert_eq!(
            messages(&spec),
            ["labels: must have at most 64 labels, got 65"]
        );
    }

    #[test]
    fn rules_apply_by_id_tag_or_to_everything() {
        let monitor: crate::MonitorSpec = serde_json::from_value(serde_json::json!({
            "id": "checkout-api", "name": "c", "url": "https://x/", "tags": ["payments"],
        }))
        .unwrap();
        let mut spec = rule(SLOW);
        assert!(spec.applies_to(&monitor));
        spec.monitors = vec!["other".into()];
        assert!(!spec.applies_to(&monitor));
        spec.tags = vec!["payments".into()];
        assert!(spec.applies_to(&monitor));
        spec.monitors.clear();
        spec.tags.clear();
        assert!(spec.applies_to(&monitor));
    }

    #[test]
    fn json_round_trip_and_unknown_fields() {
        let spec = rule(SLOW);
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["for"], "5m");
        assert_eq!(json["condition"]["latency_percentile"]["above"], "800ms");
        assert_eq!(serde_json::from_value::<RuleSpec>(json).unwrap(), spec);
        let err = serde_json::from_value::<RuleSpec>(serde_json::json!({
            "id": "a", "condition": {"no_data": {}}, "severity": "page"
        }))
        .unwrap_err();
        assert!(err.to_string().contains("unknown variant `page`"), "{err}");
    }
    #[test]
    fn route_names_are_not_rule_ids() {
        let rule: RuleSpec = serde_json::from_value(serde_json::json!({
            "id": "backtest", "condition": {"no_data": {}}
        }))
        .unwrap();
        let errors = rule.validate().unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "id");
        assert!(
            errors[0].reason.contains("reserved"),
            "{}",
            errors[0].reason
        );
    }
}
