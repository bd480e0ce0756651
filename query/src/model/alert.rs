//! Alert DTOs: transitions (history, live and backtested), the active set (the latest transition
//! of every rule, monitor and region that is not `ok`), and error budgets of burn-rate rules.
//!
//! Labels are a JSON object in REST and a `JSON` scalar in GraphQL; severities are `info`,
//! `warning`, `critical` in REST and `INFO`, `WARNING`, `CRITICAL` in GraphQL.

use std::collections::BTreeMap;

use async_graphql::{ComplexObject, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;
use vigil_schema::AlertTransition;

use super::rule::Severity;

/// An alert rule changing state for one monitor (and region).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
#[graphql(complex)]
pub struct Alert {
    /// Deterministic id of the transition.
    pub transition_id: String,
    /// The rule.
    pub rule_id: String,
    /// The monitor.
    pub monitor_id: String,
    /// The region, for per-region rules (absent for quorum alerts).
    pub region: Option<String>,
    /// Kind of rule.
    pub kind: String,
    /// State before (`ok`, `pending`, `firing`).
    pub from: String,
    /// State after.
    pub to: String,
    /// Event time (RFC 3339).
    pub at: String,
    /// Observed value.
    pub value: f64,
    /// The rule's threshold (the recovery threshold on a resolve).
    pub threshold: f64,
    /// The rule's severity (a burn-rate rule: the severity of the window pair that fired).
    pub severity: Severity,
    /// The rule's labels, for routing.
    #[graphql(skip)]
    pub labels: BTreeMap<String, String>,
    /// Human summary.
    pub message: String,
}

#[ComplexObject]
impl Alert {
    /// The rule's labels, as a JSON object.
    #[graphql(name = "labels")]
    async fn labels_json(&self) -> async_graphql::Json<BTreeMap<String, String>> {
        async_graphql::Json(self.labels.clone())
    }
}

/// One page of alert transitions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct AlertPage {
    /// The transitions on this page.
    pub items: Vec<Alert>,
    /// Pass as `cursor` to get older transitions; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An alert pending or firing now: the latest transition of its rule, monitor and region.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
#[graphql(complex)]
pub struct ActiveAlert {
    /// The rule.
    pub rule_id: String,
    /// The monitor.
    pub monitor_id: String,
    /// The region, for per-region rules (absent for quorum alerts).
    pub region: Option<String>,
    /// Kind of rule.
    pub kind: String,
    /// `pending` or `firing`.
    pub state: String,
    /// Severity of the latest transition.
    pub severity: Severity,
    /// When the alert entered its state: the event time of the latest transition (RFC 3339).
    pub since: String,
    /// Value observed by the latest transition.
    pub value: f64,
    /// Threshold of the latest transition.
    pub threshold: f64,
    /// The rule's labels.
    #[graphql(skip)]
    pub labels: BTreeMap<String, String>,
    /// Summary of the latest transition.
    pub message: String,
    /// Id of the latest transition.
    pub transition_id: String,
}

#[ComplexObject]
impl ActiveAlert {
    /// The rule's labels, as a JSON object.
    #[graphql(name = "labels")]
    async fn labels_json(&self) -> async_graphql::Json<BTreeMap<String, String>> {
        async_graphql::Json(self.labels.clone())
    }
}

/// One page of active alerts, ordered by rule, monitor and region.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct ActiveAlertPage {
    /// The alerts on this page.
    pub items: Vec<ActiveAlert>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The error budget of a burn-rate rule over its SLO period, per monitor and region.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct ErrorBudget {
    /// The rule.
    pub rule_id: String,
    /// `availability` (a good check is an ok check) or `latency` (a good check took at most
    /// `threshold_us`).
    pub slo: String,
    /// The latency threshold of a latency SLO, µs.
    pub threshold_us: Option<u64>,
    /// Target share of good checks.
    pub objective: f64,
    /// The SLO period (`30d`).
    pub period: String,
    /// Start of the windows counted (RFC 3339): the period before `to`, aligned down to the hour
    /// for periods longer than the 90 days minute windows are kept.
    pub from: String,
    /// End (exclusive): the time of the request (RFC 3339).
    pub to: String,
    /// Per monitor and region with checks in the period, ordered by monitor then region.
    pub series: Vec<BudgetSeries>,
}

/// The error budget of one monitor in one region.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct BudgetSeries {
    /// The monitor.
    pub monitor_id: String,
    /// The region.
    pub region: String,
    /// Checks in the period.
    pub total: u64,
    /// Bad checks: failed ones (availability), or ones slower than the threshold (latency,
    /// read from the stored sketches: checks up to `(1 + α)/(1 − α)` above it count as good).
    pub bad: u64,
    /// Bad checks the objective allows: `(1 − objective) × total`.
    pub budget: f64,
    /// Share of the budget spent, `bad / budget`; null without checks.
    pub consumed: Option<f64>,
    /// Share left, `1 − consumed` (negative when overspent); null without checks.
    pub remaining: Option<f64>,
}

impl BudgetSeries {
    /// The figures of `bad` out of `total` checks against `objective`.
    pub fn new(monitor_id: String, region: String, total: u64, bad: u64, objective: f64) -> Self {
        let budget = (1.0 - objective) * total as f64;
        let consumed = (total > 0).then(|| bad as f64 / budget);
        Self {
            monitor_id,
            region,
            total,
            bad,
            budget,
            consumed,
            remaining: consumed.map(|c| 1.0 - c),
        }
    }
}

impl From<&AlertTransition> for Alert {
    fn from(a: &AlertTransition) -> Self {
        Self {
            transition_id: a.transition_id.to_string(),
            rule_id: a.rule_id.clone(),
            monitor_id: a.monitor_id.clone(),
            region: a.region.clone(),
            kind: a.kind.as_str().to_owned(),
            from: a.from.as_str().to_owned(),
            to: a.to.as_str().to_owned(),
            at: a.at.to_string(),
            value: a.value,
            threshold: a.threshold,
            severity: a.severity.into(),
            labels: a.labels.clone(),
            message: a.message.clone(),
        }
    }
}

/// A severity read from the `alerts` table (`warning` for anything unknown, the column's
/// default).
pub(crate) fn severity_of(value: &str) -> Severity {
    match value {
        "info" => Severity::Info,
        "critical" => Severity::Critical,
        _ => Severity::Warning,
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;
    use vigil_schema::{AlertKind, AlertState, Timestamp};

    use super::*;

    #[test]
    fn transitions_map_every_field() {
        let t = AlertTransition {
            transition_id: Uuid::from_u128(5),
            rule_id: "r".into(),
            monitor_id: "m".into(),
            region: None,
            kind: AlertKind::BurnRate,
            from: AlertState::Pending,
            to: AlertState::Firing,
            at: Timestamp::from_millis(1_700_000_000_000),
            value: 14.5,
            threshold: 14.4,
            severity: vigil_schema::Severity::Critical,
            labels: BTreeMap::from([("team".to_owned(), "web".to_owned())]),
            message: "burning".into(),
        };
        let json = serde_json::to_value(<Alert as From<&AlertTransition>>::from(&t)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "transition_id": "00000000-0000-0000-0000-000000000005", "rule_id": "r",
                "monitor_id": "m", "region": null, "kind": "burn_rate", "from": "pending",
                "to": "firing", "at": "2023-11-14T22:13:20Z", "value": 14.5,
                "threshold": 14.4, "severity": "critical", "labels": {"team": "web"},
                "message": "burning"
            })
        );
    }

    #[test]
    fn budgets_follow_the_objective() {
        // 10 bad checks allowed out of 10,000 at 99.9%; 4 spent.
        let s = BudgetSeries::new("m".into(), "eu".into(), 10_000, 4, 0.999);
        assert!((s.budget - 10.0).abs() < 1e-6);
        assert!((s.consumed.unwrap() - 0.4).abs() < 1e-6);
        assert!((s.remaining.unwrap() - 0.6).abs() < 1e-6);
        let empty = BudgetSeries::new("m".into(), "eu".into(), 0, 0, 0.999);
        assert_eq!((empty.consumed, empty.remaining), (None, None));
        assert_eq!(severity_of("critical"), Severity::Critical);
        assert_eq!(severity_of(""), Severity::Warning);
    }
}
