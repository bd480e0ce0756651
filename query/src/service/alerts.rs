//! Alert transitions from the `alerts` table (`ReplacingMergeTree` deduplicated by the
//! deterministic `transition_id`, so every read uses `FINAL`): the history, newest first and
//! paginated by a cursor of (`at`, `transition_id`), and the active set.
//!
//! The active set is the alerts pending or firing: for every (rule, monitor, region) the latest
//! transition (greatest `at`, then greatest `transition_id`) whose `to_state` is not `ok`.
//! [`active_alerts_sql`] is that statement; the Grafana dashboards embed the same text.

use std::collections::BTreeMap;

use serde::Deserialize;
use vigil_schema::{AlertState, Severity};

use crate::model::alert::severity_of;
use crate::model::{ActiveAlert, ActiveAlertPage, Alert, AlertPage, rfc3339};
use crate::params::{self, TimeRange};
use crate::service::{Param, Service};
use crate::{Error, Result};

/// An alert-history request, already parsed.
#[derive(Debug, Clone)]
pub struct AlertQuery {
    /// Only this rule.
    pub rule_id: Option<String>,
    /// Only this monitor.
    pub monitor_id: Option<String>,
    /// Only this region (`""`: transitions without a region).
    pub region: Option<String>,
    /// Only transitions to this state.
    pub state: Option<AlertState>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Transitions with `at` in this range.
    pub range: TimeRange,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// An active-alerts request, already parsed.
#[derive(Debug, Clone)]
pub struct ActiveAlertQuery {
    /// Only this rule.
    pub rule_id: Option<String>,
    /// Only this monitor.
    pub monitor_id: Option<String>,
    /// Only this region (`""`: alerts without a region).
    pub region: Option<String>,
    /// Only alerts whose latest transition has this severity.
    pub severity: Option<Severity>,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// The active set: the latest transition of every (rule, monitor, region) among the rows of
/// `alerts FINAL` matching `filter`, kept when it leads to a state other than `ok` and the
/// output matches `having` (none when empty). Columns: `rule_id`, `monitor_id`, `region`, `state`, `severity`,
/// `since` (the latest transition's `at`), `kind`, `value`, `threshold`, `message`, `labels`,
/// `transition_id`. `filter` may only name the key columns and `at` (anything else would pick
/// the latest of a subset); conditions on the state or severity belong in `having`.
pub fn active_alerts_sql(filter: &str, having: &str) -> String {
    let having = if having.is_empty() {
        String::new()
    } else {
        format!("\n  AND {having}")
    };
    format!(
        "SELECT
    rule_id,
    monitor_id,
    region,
    latest.1 AS state,
    latest.2 AS severity,
    latest.3 AS since,
    latest.4 AS kind,
    latest.5 AS value,
    latest.6 AS threshold,
    latest.7 AS message,
    latest.8 AS labels,
    latest.9 AS transition_id
FROM
(
    SELECT
        rule_id,
        monitor_id,
        region,
        argMax((to_state, severity, at, kind, value, threshold, message, labels, transition_id), (at, transition_id)) AS latest
    FROM alerts FINAL
    WHERE {filter}
    GROUP BY rule_id, monitor_id, region
)
WHERE state != 'ok'{having}"
    )
}

fn bad_cursor() -> Error {
    params::unissued_cursor()
}

/// The history statement and its parameters.
fn history_parts(q: &AlertQuery) -> Result<(String, Vec<Param>)> {
    let mut sql = String::from(
        "SELECT toString(transition_id) AS tid, toString(rule_id) AS rid, \
         toString(monitor_id) AS mid, toString(region) AS reg, toString(kind) AS k, \
         toString(from_state) AS fs, toString(to_state) AS ts, \
         toUnixTimestamp64Milli(at) AS at_ms, value, threshold, toString(severity) AS sev, \
         mapKeys(labels) AS lk, mapValues(labels) AS lv, message \
         FROM alerts FINAL WHERE at >= fromUnixTimestamp64Milli(toInt64(?)) \
         AND at < fromUnixTimestamp64Milli(toInt64(?))",
    );
    let mut params = vec![
        Param::Int(q.range.from.as_millis()),
        Param::Int(q.range.to.as_millis()),
    ];
    let filters = [
        ("rule_id", q.rule_id.clone()),
        ("monitor_id", q.monitor_id.clone()),
        ("region", q.region.clone()),
        ("to_state", q.state.map(|s| s.as_str().to_owned())),
        ("severity", q.severity.map(|s| s.as_str().to_owned())),
    ];
    for (column, value) in filters {
        if let Some(value) = value {
            sql.push_str(&format!(" AND {column} = ?"));
            params.push(Param::Str(value));
        }
    }
    if let Some(cursor) = &q.cursor {
        let parts = params::decode_cursor(cursor, 2)?;
        let ms: i64 = parts[0].parse().map_err(|_| bad_cursor())?;
        let id: uuid::Uuid = parts[1].parse().map_err(|_| bad_cursor())?;
        sql.push_str(
            " AND (at, transition_id) < (fromUnixTimestamp64Milli(toInt64(?)), toUUID(?))",
        );
        params.push(Param::Int(ms));
        params.push(Param::Str(id.to_string()));
    }
    sql.push_str(" ORDER BY at DESC, transition_id DESC LIMIT ?");
    params.push(Param::Int(i64::from(q.limit) + 1));
    Ok((sql, params))
}

/// The active-set statement (the shared one, converted for the client) and its parameters.
fn active_parts(q: &ActiveAlertQuery) -> Result<(String, Vec<Param>)> {
    let mut filter = vec!["1"];
    let mut params = Vec::new();
    for (clause, value) in [
        ("rule_id = ?", &q.rule_id),
        ("monitor_id = ?", &q.monitor_id),
        ("region = ?", &q.region),
    ] {
        if let Some(value) = value {
            filter.push(clause);
            params.push(Param::Str(value.clone()));
        }
    }
    let mut having = Vec::new();
    if let Some(severity) = q.severity {
        having.push("severity = ?");
        params.push(Param::Str(severity.as_str().to_owned()));
    }
    if let Some(cursor) = &q.cursor {
        let parts = params::decode_cursor(cursor, 3)?;
        having.push("(rule_id, monitor_id, region) > (?, ?, ?)");
        params.extend(parts.into_iter().map(Param::Str));
    }
    let shared = active_alerts_sql(&filter.join(" AND "), &having.join(" AND "));
    let sql = format!(
        "SELECT toString(rule_id) AS rid, toString(monitor_id) AS mid, toString(region) AS reg, \
         toString(state) AS st, toString(severity) AS sev, toUnixTimestamp64Milli(since) AS since_ms, \
         toString(kind) AS k, value AS val, threshold AS thr, message AS msg, \
         mapKeys(labels) AS lk, mapValues(labels) AS lv, toString(transition_id) AS tid \
         FROM ({shared}) ORDER BY rid, mid, reg LIMIT ?"
    );
    params.push(Param::Int(i64::from(q.limit) + 1));
    Ok((sql, params))
}

/// Keeps `limit` rows and the cursor of the last one when there were more.
fn page<T>(
    mut rows: Vec<T>,
    limit: u32,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = limit as usize;
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(cursor);
        (rows, next)
    } else {
        (rows, None)
    }
}

impl Service {
    /// Alert transitions, newest first.
    pub async fn alerts(&self, q: &AlertQuery) -> Result<AlertPage> {
        let (sql, params) = history_parts(q)?;
        let rows = self.bound(&sql, params).fetch_all::<AlertRow>().await?;
        let (rows, next_cursor) = page(rows, q.limit, |r| {
            params::encode_cursor(&[&r.at_ms.to_string(), &r.tid])
        });
        Ok(AlertPage {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })
    }

    /// Alerts pending or firing, ordered by rule, monitor and region.
    pub async fn active_alerts(&self, q: &ActiveAlertQuery) -> Result<ActiveAlertPage> {
        let (sql, params) = active_parts(q)?;
        let rows = self.bound(&sql, params).fetch_all::<ActiveRow>().await?;
        let (rows, next_cursor) = page(rows, q.limit, |r| {
            params::encode_cursor(&[&r.rid, &r.mid, &r.reg])
        });
        Ok(ActiveAlertPage {
            items: rows.into_iter().map(ActiveAlert::from).collect(),
            next_cursor,
        })
    }
}

fn labels(keys: Vec<String>, values: Vec<String>) -> BTreeMap<String, String> {
    keys.into_iter().zip(values).collect()
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct AlertRow {
    tid: String,
    rid: String,
    mid: String,
    reg: String,
    k: String,
    fs: String,
    ts: String,
    at_ms: i64,
    value: f64,
    threshold: f64,
    sev: String,
    lk: Vec<String>,
    lv: Vec<String>,
    message: String,
}

impl From<AlertRow> for Alert {
    fn from(r: AlertRow) -> Self {
        Self {
            transition_id: r.tid,
            rule_id: r.rid,
            monitor_id: r.mid,
            region: (!r.reg.is_empty()).then_some(r.reg),
            kind: r.k,
            from: r.fs,
            to: r.ts,
            at: rfc3339(r.at_ms),
            value: r.value,
            threshold: r.threshold,
            severity: severity_of(&r.sev),
            labels: labels(r.lk, r.lv),
            message: r.message,
        }
    }
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ActiveRow {
    rid: String,
    mid: String,
    reg: String,
    st: String,
    sev: String,
    since_ms: i64,
    k: String,
    val: f64,
    thr: f64,
    msg: String,
    lk: Vec<String>,
    lv: Vec<String>,
    tid: String,
}

impl From<ActiveRow> for ActiveAlert {
    fn from(r: ActiveRow) -> Self {
        Self {
            rule_id: r.rid,
            monitor_id: r.mid,
            region: (!r.reg.is_empty()).then_some(r.reg),
            kind: r.k,
            state: r.st,
            severity: severity_of(&r.sev),
            since: rfc3339(r.since_ms),
            value: r.val,
            threshold: r.thr,
            labels: labels(r.lk, r.lv),
            message: r.msg,
            transition_id: r.tid,
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_schema::Timestamp;

    use super::*;
    use crate::service::inline;

    fn range() -> TimeRange {
        TimeRange {
            from: Timestamp::from_millis(1_000),
            to: Timestamp::from_millis(2_000),
        }
    }

    #[test]
    fn history_filters_bind_in_order_and_page_by_at_then_id() {
        let cursor = params::encode_cursor(&["1500", "00000000-0000-0000-0000-000000000007"]);
        let q = AlertQuery {
            rule_id: Some("r'1".into()),
            monitor_id: None,
            region: Some(String::new()),
            state: Some(AlertState::Firing),
            severity: Some(Severity::Critical),
            range: range(),
            cursor: Some(cursor),
            limit: 10,
        };
        let (sql, params) = history_parts(&q).unwrap();
        let sql = inline(&sql, params);
        let clauses = sql.split(" FROM alerts FINAL ").nth(1).unwrap();
        assert_eq!(
            clauses,
            "WHERE at >= fromUnixTimestamp64Milli(toInt64(1000)) \
             AND at < fromUnixTimestamp64Milli(toInt64(2000)) AND rule_id = 'r\\'1' \
             AND region = '' AND to_state = 'firing' AND severity = 'critical' \
             AND (at, transition_id) < (fromUnixTimestamp64Milli(toInt64(1500)), \
             toUUID('00000000-0000-0000-0000-000000000007')) \
             ORDER BY at DESC, transition_id DESC LIMIT 11"
        );
        let bad = AlertQuery {
            cursor: Some(params::encode_cursor(&["x", "y"])),
            ..q
        };
        let err = history_parts(&bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { ref parameter, .. } if parameter == "cursor")
        );
    }

    #[test]
    fn active_filters_split_between_the_series_and_the_latest_transition() {
        let q = ActiveAlertQuery {
            rule_id: Some("r".into()),
            monitor_id: Some("m".into()),
            region: None,
            severity: Some(Severity::Warning),
            cursor: Some(params::encode_cursor(&["r", "m", "eu"])),
            limit: 5,
        };
        let (sql, params) = active_parts(&q).unwrap();
        let sql = inline(&sql, params);
        // Series filters pick the transitions; severity and the cursor apply to the latest one.
        assert!(
            sql.contains("FROM alerts FINAL\n    WHERE 1 AND rule_id = 'r' AND monitor_id = 'm'\n")
        );
        assert!(sql.contains(
            "WHERE state != 'ok'\n  AND severity = 'warning' \
             AND (rule_id, monitor_id, region) > ('r', 'm', 'eu')) ORDER BY rid, mid, reg LIMIT 6"
        ));
        assert!(
            active_alerts_sql("1", "")
                .ends_with("GROUP BY rule_id, monitor_id, region\n)\nWHERE state != 'ok'")
        );
        assert!(active_alerts_sql("1", "").contains(
            "argMax((to_state, severity, at, kind, value, threshold, message, labels, \
             transition_id), (at, transition_id)) AS latest"
        ));
    }

    #[test]
    fn pages_carry_a_cursor_only_when_more_rows_exist() {
        let (rows, next) = page(vec![1, 2, 3], 2, |r| r.to_string());
        assert_eq!((rows, next.as_deref()), (vec![1, 2], Some("2")));
        let (rows, next) = page(vec![1, 2], 2, |r| r.to_string());
        assert_eq!((rows, next), (vec![1, 2], None));
    }
}
