//! [`AlertTransition`]: an alert rule changing state for one monitor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Severity, Timestamp};

/// An alert rule moved from one state to another. Keyed by rule id on `vigil.alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTransition {
    /// Deterministic id of this transition (same inputs give the same id, so replays dedupe).
    pub transition_id: Uuid,
    /// The rule that changed state.
    pub rule_id: String,
    /// The monitor it is about.
    pub monitor_id: String,
    /// The region, when the rule is evaluated per region.
    pub region: Option<String>,
    /// What kind of rule it is.
    pub kind: AlertKind,
    /// State before.
    pub from: AlertState,
    /// State after.
    pub to: AlertState,
    /// Event time of the window or check that caused the transition.
    pub at: Timestamp,
    /// The observed value (p99 in µs, availability ratio, anomaly score, days to expiry, …).
    pub value: f64,
    /// The rule's threshold (the recovery threshold on a resolve).
    pub threshold: f64,
    /// The rule's severity (a burn-rate rule: the severity of the window pair that fired).
    #[serde(default)]
    pub severity: Severity,
    /// The rule's labels, for routing.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The rendered summary.
    pub message: String,
}

/// Kinds of alert rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// N failed checks in a row.
    ConsecutiveFailures,
    /// A latency percentile above a threshold.
    LatencyPercentile,
    /// A status-code pattern (e.g. more than 5% 5xx).
    StatusPattern,
    /// Availability below a target.
    Availability,
    /// Anomaly score above a threshold.
    Anomaly,
    /// Certificate expiring within a horizon.
    CertificateExpiry,
    /// An SLO's error budget burning too fast.
    BurnRate,
    /// Results stopped arriving.
    NoData,
    /// Raised by the notifier itself: a channel answered `410 Gone` and was disabled. Not a
    /// rule kind.
    ChannelDisabled,
}

impl AlertKind {
    /// Every kind a rule can have ([`AlertKind::ChannelDisabled`] is the notifier's own).
    pub const ALL: [AlertKind; 8] = [
        AlertKind::ConsecutiveFailures,
        AlertKind::LatencyPercentile,
        AlertKind::StatusPattern,
        AlertKind::Availability,
        AlertKind::Anomaly,
        AlertKind::CertificateExpiry,
        AlertKind::BurnRate,
        AlertKind::NoData,
    ];

    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertKind::ConsecutiveFailures => "consecutive_failures",
            AlertKind::LatencyPercentile => "latency_percentile",
            AlertKind::StatusPattern => "status_pattern",
            AlertKind::Availability => "availability",
            AlertKind::Anomaly => "anomaly",
            AlertKind::CertificateExpiry => "certificate_expiry",
            AlertKind::BurnRate => "burn_rate",
            AlertKind::NoData => "no_data",
            AlertKind::ChannelDisabled => "channel_disabled",
        }
    }
}

/// States of an alert rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Condition does not hold.
    Ok,
    /// Condition holds but not yet for the rule's `for` duration.
    Pending,
    /// Condition has held long enough; notifications sent.
    Firing,
}

impl AlertState {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertState::Ok => "ok",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}
