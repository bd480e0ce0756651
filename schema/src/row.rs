//! Rows of tables more than one service writes.

use std::collections::BTreeMap;

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AlertTransition;

/// One row of `alerts`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct AlertRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub transition_id: Uuid,
    pub rule_id: String,
    pub monitor_id: String,
    /// Empty when the transition spans regions.
    pub region: String,
    pub kind: String,
    pub from_state: String,
    pub to_state: String,
    /// Unix milliseconds (DateTime64(3)).
    pub at: i64,
    pub value: f64,
    pub threshold: f64,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    pub message: String,
}

/// Columns of [`AlertRow`], in order.
pub const ALERT_COLUMNS: &str = "transition_id, rule_id, monitor_id, region, kind, from_state, \
    to_state, at, value, threshold, severity, labels, message";

impl From<&AlertTransition> for AlertRow {
    fn from(a: &AlertTransition) -> Self {
        Self {
            transition_id: a.transition_id,
            rule_id: a.rule_id.clone(),
            monitor_id: a.monitor_id.clone(),
            region: a.region.clone().unwrap_or_default(),
            kind: a.kind.as_str().to_owned(),
            from_state: a.from.as_str().to_owned(),
            to_state: a.to.as_str().to_owned(),
            at: a.at.as_millis(),
            value: a.value,
            threshold: a.threshold,
            severity: a.severity.as_str().to_owned(),
            labels: a.labels.clone(),
            message: a.message.clone(),
        }
    }
}
