//! Backtest DTOs: the request body of `POST /api/v1/rules/backtest` (documentation only; the
//! service reads the JSON itself so every problem names its field) and the report, built from
//! the processor's [`vigil_processor::backtest::BacktestReport`].

use async_graphql::SimpleObject;
use serde::Serialize;
use utoipa::ToSchema;

use super::alert::Alert;
use super::rfc3339;
use super::rule::Rule;

/// What to backtest. Unknown fields are rejected.
#[derive(Debug, Clone, ToSchema)]
#[allow(
    dead_code,
    reason = "describes the request body in the OpenAPI document"
)]
pub struct BacktestInput {
    /// The rules to run (at most 100, each validated as on create; problems are named
    /// `rules[i].field`). Disabled rules are not run.
    rules: Vec<Rule>,
    /// Start: RFC 3339, unix ms, `now`, `now-<duration>` or a duration ago (`6h`). Default: 24 h
    /// before `to`. Rounded down to the start of its window.
    #[schema(example = "now-24h")]
    from: Option<String>,
    /// End, exclusive, in the same forms. Default: now. At most 7 days after `from`.
    #[schema(example = "now")]
    to: Option<String>,
    /// Also run the built-in `default-down` rule (on monitors no `consecutive_failures` rule
    /// covers).
    #[schema(default = false)]
    default_rule: bool,
    /// Most transitions listed (1–10000, default 1000); the statistics count all of them.
    #[schema(minimum = 1, maximum = 10000, default = 1000)]
    max_transitions: Option<u32>,
}

/// What the rules would have done over the range.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct BacktestReport {
    /// Start of the evaluated range (RFC 3339, a window start).
    pub from: String,
    /// End of the evaluated range (RFC 3339).
    pub to: String,
    /// Probe results evaluated.
    pub events: u64,
    /// Transitions in evaluation order (at most `max_transitions`).
    pub transitions: Vec<Alert>,
    /// Whether transitions were left out of the list.
    pub truncated: bool,
    /// Per rule run, ordered by id: how often and how long it fired.
    pub rules: Vec<RuleStats>,
    /// Rules the evaluator could not run, with the reason.
    pub rejected: Vec<RejectedRule>,
}

/// How one rule behaved over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, SimpleObject)]
pub struct RuleStats {
    /// The rule.
    pub rule_id: String,
    /// Transitions to firing.
    pub fired: u64,
    /// Transitions from firing to ok.
    pub resolved: u64,
    /// Time spent firing, summed over its alerts (those still firing until the end), ms.
    pub firing_ms: i64,
    /// Alerts still firing at the end of the range.
    pub firing_at_end: u64,
}

/// A rule the evaluator left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, SimpleObject)]
pub struct RejectedRule {
    /// The rule.
    pub rule_id: String,
    /// Why.
    pub reason: String,
}

impl From<vigil_processor::backtest::BacktestReport> for BacktestReport {
    fn from(r: vigil_processor::backtest::BacktestReport) -> Self {
        Self {
            from: rfc3339(r.from_ms),
            to: rfc3339(r.to_ms),
            events: r.events,
            transitions: r.transitions.iter().map(Into::into).collect(),
            truncated: r.truncated,
            rules: r
                .rules
                .into_iter()
                .map(|s| RuleStats {
                    rule_id: s.rule_id,
                    fired: s.fired,
                    resolved: s.resolved,
                    firing_ms: s.firing_ms,
                    firing_at_end: s.firing_at_end,
                })
                .collect(),
            rejected: r
                .rejected
                .into_iter()
                .map(|(rule_id, reason)| RejectedRule { rule_id, reason })
                .collect(),
        }
    }
}
