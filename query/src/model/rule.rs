//! Alert rule DTOs: the JSON of a [`RuleSpec`] with its constraints in the OpenAPI document, and
//! the GraphQL `Rule` type (scalar fields typed, the condition and labels as JSON).
//!
//! [`Rule`] serializes exactly like the [`RuleSpec`] it is built from (a test checks every
//! condition kind), so the document describes the bodies the API takes and returns.

use std::collections::BTreeMap;
use std::time::Duration;

use async_graphql::{ComplexObject, Enum, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, Type};
use vigil_schema::RuleSpec;

use super::MonitorChangeKind;

/// An alert rule (the same shape is accepted when creating or replacing one; fields with a
/// default may be omitted). Durations are written like `90s`, `5m`, `1h 30m`, `30d`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
#[serde(deny_unknown_fields)]
#[graphql(complex)]
pub struct Rule {
    /// Stable identifier, a slug; the Kafka key.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub id: String,
    /// Display name (empty: the id).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: String,
    /// Monitors the rule applies to, by id. With `tags` also empty: every monitor.
    #[serde(default)]
    #[schema(schema_with = monitors_schema)]
    pub monitors: Vec<String>,
    /// Monitors the rule applies to, by tag (any of them).
    #[serde(default)]
    #[schema(schema_with = tags_schema)]
    pub tags: Vec<String>,
    /// Regions looked at; empty: every region.
    #[serde(default)]
    #[schema(schema_with = regions_schema)]
    pub regions: Vec<String>,
    /// What is checked: exactly one kind.
    #[graphql(skip)]
    pub condition: Condition,
    /// How long the condition must hold before the alert fires (pending meanwhile); at most
    /// 24h.
    #[serde(default, rename = "for")]
    #[graphql(name = "for")]
    #[schema(example = "5m", default = "0s")]
    pub for_: String,
    /// How long a firing alert stays firing after the condition stopped holding; at most 24h.
    #[serde(default)]
    #[schema(example = "10m", default = "0s")]
    pub keep_firing_for: String,
    /// Fire for a monitor only while at least this many of its regions fire (at most the
    /// number of `regions` when those are listed); null: each region alerts on its own.
    #[schema(minimum = 1)]
    pub quorum: Option<u32>,
    /// Severity carried by transitions.
    #[serde(default)]
    pub severity: Severity,
    /// Summary template; placeholders `{{monitor}}`, `{{region}}`, `{{rule}}`, `{{kind}}`,
    /// `{{value}}`, `{{threshold}}`, `{{state}}`, `{{severity}}`, `{{labels.NAME}}` (a label
    /// of this rule). Empty: a default per kind.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub summary: String,
    /// Labels carried by transitions, for routing.
    #[serde(default)]
    #[graphql(skip)]
    #[schema(schema_with = labels_schema)]
    pub labels: BTreeMap<String, String>,
    /// Disabled rules are kept but not evaluated.
    #[serde(default)]
    #[schema(default = true)]
    pub enabled: bool,
}

#[ComplexObject]
impl Rule {
    /// The condition kind (`latency_percentile`, `burn_rate`, …).
    async fn kind(&self) -> &'static str {
        self.condition.kind()
    }

    /// The condition, as in the REST body (`{"latency_percentile": {…}}`).
    #[graphql(name = "condition")]
    async fn condition_json(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::to_value(&self.condition).unwrap_or_default())
    }

    /// The labels, as a JSON object.
    #[graphql(name = "labels")]
    async fn labels_json(&self) -> async_graphql::Json<BTreeMap<String, String>> {
        async_graphql::Json(self.labels.clone())
    }

    /// The whole rule as JSON (the REST body).
    async fn spec(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::to_value(self).unwrap_or_default())
    }
}

/// Alert severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ToSchema, Enum)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Info,
    /// Needs attention soon.
    #[default]
    Warning,
    /// Needs attention now.
    Critical,
}

/// What a rule checks: an object with exactly one of these keys. Window-based kinds merge the
/// windows of the last `window` (between 1m and 24h).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Fires after `failures` failed checks in a row, resolves after `successes` in a row.
    ConsecutiveFailures {
        /// Failed checks in a row that fire.
        #[serde(default)]
        #[schema(minimum = 1, default = 3)]
        failures: u32,
        /// Successful checks in a row that resolve.
        #[serde(default)]
        #[schema(minimum = 1, default = 2)]
        successes: u32,
    },
    /// A total-time percentile of the merged sketches above a threshold.
    LatencyPercentile {
        /// The percentile (`99`, `99.9`).
        #[schema(exclusive_minimum = 0, exclusive_maximum = 100)]
        percentile: f64,
        /// Fires above this duration (> 0s).
        #[schema(example = "800ms")]
        above: String,
        /// Resolves only below this duration (> 0s, ≤ `above`); null: `above`.
        recover_below: Option<String>,
        /// Span of windows merged, 1m to 24h.
        #[serde(default)]
        #[schema(default = "5m")]
        window: String,
    },
    /// Availability (ok checks / checks) below a target.
    Availability {
        /// Fires below this ratio.
        #[schema(minimum = 0, maximum = 1)]
        below: f64,
        /// Resolves only above this ratio (≥ `below`); null: `below`.
        #[schema(minimum = 0, maximum = 1)]
        recover_above: Option<f64>,
        /// Span of windows merged, 1m to 24h.
        #[serde(default)]
        #[schema(default = "5m")]
        window: String,
    },
    /// The share of responses of a status class above a threshold.
    StatusPattern {
        /// The status class.
        class: StatusClass,
        /// Fires above this share.
        #[schema(minimum = 0, maximum = 1)]
        above: f64,
        /// Resolves only below this share (≤ `above`); null: `above`.
        #[schema(minimum = 0, maximum = 1)]
        recover_below: Option<f64>,
        /// Span of windows merged, 1m to 24h.
        #[serde(default)]
        #[schema(default = "5m")]
        window: String,
    },
    /// The combined anomaly score of a window above a threshold.
    Anomaly {
        /// Fires above this score.
        #[schema(exclusive_minimum = 0, maximum = 1)]
        above: f64,
        /// Resolves only below this score (≤ `above`); null: `above`.
        #[schema(minimum = 0, maximum = 1)]
        recover_below: Option<f64>,
    },
    /// The peer certificate expires within a horizon (> 0s).
    CertificateExpiry {
        /// Fires when the certificate expires sooner than this after the check.
        #[schema(example = "14d")]
        within: String,
    },
    /// Multi-window, multi-burn-rate alerting on an SLO.
    BurnRate {
        /// What a good check is.
        slo: Slo,
        /// Target share of good checks.
        #[schema(exclusive_minimum = 0, exclusive_maximum = 1)]
        objective: f64,
        /// SLO period the error budget is counted over (> 0s, at most 366d).
        #[serde(default)]
        #[schema(default = "30d")]
        period: String,
        /// Window pairs; the alert fires while both windows of any pair burn faster than its
        /// rate. Default: 1h/5m at 14.4 and 6h/30m at 6 (critical), 3d/6h at 1 (warning).
        #[serde(default)]
        #[schema(min_items = 1, max_items = 10)]
        windows: Vec<BurnWindow>,
    },
    /// Results stopped arriving for `intervals` check intervals.
    NoData {
        /// Missed intervals before firing.
        #[serde(default)]
        #[schema(minimum = 1, default = 3)]
        intervals: u32,
    },
}

impl Condition {
    /// The kind's name on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::ConsecutiveFailures { .. } => "consecutive_failures",
            Condition::LatencyPercentile { .. } => "latency_percentile",
            Condition::Availability { .. } => "availability",
            Condition::StatusPattern { .. } => "status_pattern",
            Condition::Anomaly { .. } => "anomaly",
            Condition::CertificateExpiry { .. } => "certificate_expiry",
            Condition::BurnRate { .. } => "burn_rate",
            Condition::NoData { .. } => "no_data",
        }
    }
}

/// HTTP status classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
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

/// The good-check definition of an SLO: `"availability"`, or `{"latency": {"threshold": …}}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Slo {
    /// A good check is an ok check.
    Availability,
    /// A good check finished under `threshold`.
    Latency {
        /// The latency threshold (> 0s).
        #[schema(example = "300ms")]
        threshold: String,
    },
}

/// One window pair of a burn-rate rule.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BurnWindow {
    /// The long window (≤ the period).
    #[schema(example = "1h")]
    pub long: String,
    /// The short window (at least 1m, shorter than `long`).
    #[schema(example = "5m")]
    pub short: String,
    /// Burn rate both windows must exceed.
    #[schema(exclusive_minimum = 0, example = 14.4)]
    pub burn_rate: f64,
    /// Severity of an alert fired by this pair.
    #[serde(default)]
    pub severity: Severity,
}

/// The pattern of ids, tags, regions and label names (1–64 characters).
const SLUG: &str = "^[a-z0-9][a-z0-9_-]*$";

fn slug() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(SLUG))
        .min_length(Some(1))
        .max_length(Some(64))
}

fn slugs(description: &str) -> Array {
    ArrayBuilder::new()
        .items(slug())
        .description(Some(description))
        .build()
}

fn monitors_schema() -> Array {
    slugs("Monitors the rule applies to, by id. With `tags` also empty: every monitor.")
}

fn tags_schema() -> Array {
    slugs("Monitors the rule applies to, by tag (any of them).")
}

fn regions_schema() -> Array {
    slugs("Regions looked at; empty: every region.")
}

fn labels_schema() -> Object {
    ObjectBuilder::new()
        .description(Some(
            "Labels carried by transitions, for routing: at most 64, names are slugs, values \
             at most 200 bytes.",
        ))
        .property_names(Some(slug()))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(200)),
        ))
        .max_properties(Some(64))
        .build()
}

fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

impl From<vigil_schema::Severity> for Severity {
    fn from(s: vigil_schema::Severity) -> Self {
        match s {
            vigil_schema::Severity::Info => Severity::Info,
            vigil_schema::Severity::Warning => Severity::Warning,
            vigil_schema::Severity::Critical => Severity::Critical,
        }
    }
}

impl From<vigil_schema::StatusClass> for StatusClass {
    fn from(c: vigil_schema::StatusClass) -> Self {
        use vigil_schema::StatusClass as S;
        match c {
            S::Informational => StatusClass::Informational,
            S::Success => StatusClass::Success,
            S::Redirection => StatusClass::Redirection,
            S::ClientError => StatusClass::ClientError,
            S::ServerError => StatusClass::ServerError,
            S::AnyError => StatusClass::AnyError,
        }
    }
}

impl From<&vigil_schema::RuleCondition> for Condition {
    fn from(c: &vigil_schema::RuleCondition) -> Self {
        use vigil_schema::RuleCondition as C;
        match c {
            C::ConsecutiveFailures {
                failures,
                successes,
            } => Condition::ConsecutiveFailures {
                failures: *failures,
                successes: *successes,
            },
            C::LatencyPercentile {
                percentile,
                above,
                recover_below,
                window,
            } => Condition::LatencyPercentile {
                percentile: *percentile,
                above: duration(*above),
                recover_below: recover_below.map(duration),
                window: duration(*window),
            },
            C::Availability {
                below,
                recover_above,
                window,
            } => Condition::Availability {
                below: *below,
                recover_above: *recover_above,
                window: duration(*window),
            },
            C::StatusPattern {
                class,
                above,
                recover_below,
                window,
            } => Condition::StatusPattern {
                class: (*class).into(),
                above: *above,
                recover_below: *recover_below,
                window: duration(*window),
            },
            C::Anomaly {
                above,
                recover_below,
            } => Condition::Anomaly {
                above: *above,
                recover_below: *recover_below,
            },
            C::CertificateExpiry { within } => Condition::CertificateExpiry {
                within: duration(*within),
            },
            C::BurnRate {
                slo,
                objective,
                period,
                windows,
            } => Condition::BurnRate {
                slo: match slo {
                    vigil_schema::SloKind::Availability => Slo::Availability,
                    vigil_schema::SloKind::Latency { threshold } => Slo::Latency {
                        threshold: duration(*threshold),
                    },
                },
                objective: *objective,
                period: duration(*period),
                windows: windows
                    .iter()
                    .map(|w| BurnWindow {
                        long: duration(w.long),
                        short: duration(w.short),
                        burn_rate: w.burn_rate,
                        severity: w.severity.into(),
                    })
                    .collect(),
            },
            C::NoData { intervals } => Condition::NoData {
                intervals: *intervals,
            },
        }
    }
}

impl From<&RuleSpec> for Rule {
    fn from(spec: &RuleSpec) -> Self {
        Self {
            id: spec.id.clone(),
            name: spec.name.clone(),
            monitors: spec.monitors.clone(),
            tags: spec.tags.clone(),
            regions: spec.regions.clone(),
            condition: Condition::from(&spec.condition),
            for_: duration(spec.for_),
            keep_firing_for: duration(spec.keep_firing_for),
            quorum: spec.quorum,
            severity: spec.severity.into(),
            summary: spec.summary.clone(),
            labels: spec.labels.clone(),
            enabled: spec.enabled,
        }
    }
}

/// One page of alert rules, ordered by id.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct RulePage {
    /// The rules on this page.
    pub items: Vec<Rule>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An alert rule was created, updated or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct RuleEvent {
    /// What happened.
    pub kind: MonitorChangeKind,
    /// The rule's id.
    pub id: String,
    /// The new rule (absent on delete).
    pub rule: Option<Rule>,
}

impl From<&crate::hub::RuleChange> for RuleEvent {
    fn from(change: &crate::hub::RuleChange) -> Self {
        match change {
            crate::hub::RuleChange::Upserted(spec) => Self {
                kind: MonitorChangeKind::Upserted,
                id: spec.id.clone(),
                rule: Some(Rule::from(spec.as_ref())),
            },
            crate::hub::RuleChange::Deleted(id) => Self {
                kind: MonitorChangeKind::Deleted,
                id: id.clone(),
                rule: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One rule of every condition kind, every optional field set somewhere.
    fn every_kind() -> Vec<RuleSpec> {
        [
            serde_json::json!({"consecutive_failures": {}}),
            serde_json::json!({"latency_percentile": {"percentile": 99.9, "above": "1s 500ms",
                "recover_below": "1s", "window": "1h 30m"}}),
            serde_json::json!({"availability": {"below": 0.99, "recover_above": 0.995}}),
            serde_json::json!({"status_pattern": {"class": "5xx", "above": 0.05}}),
            serde_json::json!({"status_pattern": {"class": "error", "above": 0.1,
                "recover_below": 0.05}}),
            serde_json::json!({"anomaly": {"above": 0.8, "recover_below": 0.5}}),
            serde_json::json!({"certificate_expiry": {"within": "14days"}}),
            serde_json::json!({"burn_rate": {"slo": "availability", "objective": 0.999}}),
            serde_json::json!({"burn_rate": {"slo": {"latency": {"threshold": "300ms"}},
                "objective": 0.99, "period": "7d",
                "windows": [{"long": "1h", "short": "5m", "burn_rate": 14.4}]}}),
            serde_json::json!({"no_data": {"intervals": 5}}),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, condition)| {
            let severity = ["info", "warning", "critical"][i % 3];
            serde_json::from_value(serde_json::json!({
                "id": format!("r{i}"), "name": "R", "monitors": ["a"], "tags": ["t"],
                "regions": ["eu", "us"], "condition": condition, "for": "5m",
                "keep_firing_for": "90s", "quorum": (i % 2 == 0).then_some(2),
                "severity": severity,
                "summary": "{{monitor}} {{labels.team}}", "labels": {"team": "x"},
                "enabled": i % 2 == 0,
            }))
            .unwrap()
        })
        .collect()
    }

    #[test]
    fn the_dto_serializes_exactly_like_the_spec() {
        for spec in every_kind() {
            assert_eq!(spec.validate(), Ok(()), "{spec:?}");
            let dto = serde_json::to_value(Rule::from(&spec)).unwrap();
            assert_eq!(dto, serde_json::to_value(&spec).unwrap());
            // And the API reads it back as the same spec.
            assert_eq!(serde_json::from_value::<RuleSpec>(dto).unwrap(), spec);
        }
    }

    #[test]
    fn kinds_match_the_schema() {
        for spec in every_kind() {
            assert_eq!(
                Rule::from(&spec).condition.kind(),
                spec.condition.kind().as_str()
            );
        }
    }
}
