//! The error budget of a burn-rate rule over its SLO period, per monitor and region the rule
//! selects: checks, bad checks, the budget `(1 − objective) × checks` and the share spent.
//!
//! Counted from the window tables (`FINAL`, so corrected and replayed windows count once) over
//! the windows starting in `[now − period, now)`. Minute windows are kept 90 days, so a longer
//! period is read from the hourly rollups for its whole hours (from the hour holding
//! `now − period`) and from the minute windows for the current hour. An availability SLO counts
//! failed checks (`count − ok_count`); a latency SLO counts the checks of the stored sketches
//! above the threshold ([`count_at_most_sql`]), the evaluator's own definition.

use std::time::Duration;

use serde::Deserialize;
use vigil_schema::sketch::count_at_most_sql;
use vigil_schema::table::{WINDOWS_1H, WINDOWS_1M};
use vigil_schema::{RuleCondition, SloKind};

use crate::model::{BudgetSeries, ErrorBudget, rfc3339};
use crate::service::{Param, Service, inline};
use crate::{Error, Result};

/// Periods up to this long are read from the minute windows alone (their TTL).
pub const MINUTE_RETENTION: Duration = Duration::from_secs(90 * 86_400);

const HOUR_MS: i64 = 3_600_000;

/// An error-budget request, already parsed.
#[derive(Debug, Clone)]
pub struct BudgetQuery {
    /// The burn-rate rule.
    pub rule_id: String,
    /// Only this monitor (which the rule must select).
    pub monitor_id: Option<String>,
    /// Only this region (one the rule looks at).
    pub region: Option<String>,
}

/// What the statement reads: the windows of which tables over which ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// Start reported (and counted from).
    from_ms: i64,
    /// `[from, to)` of the hourly rollups, when the period is longer than the minute retention.
    hours: Option<(i64, i64)>,
    /// `[from, to)` of the minute windows.
    minutes: (i64, i64),
}

fn plan(now_ms: i64, period: Duration) -> Plan {
    let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX);
    let from_ms = now_ms.saturating_sub(period_ms);
    if period <= MINUTE_RETENTION {
        return Plan {
            from_ms,
            hours: None,
            minutes: (from_ms, now_ms),
        };
    }
    let first_hour = from_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let this_hour = now_ms.div_euclid(HOUR_MS) * HOUR_MS;
    Plan {
        from_ms: first_hour,
        hours: Some((first_hour, this_hour)),
        minutes: (this_hour, now_ms),
    }
}

/// The statement and its parameters: checks and good checks per (monitor, region).
fn budget_parts(
    plan: &Plan,
    latency_us: Option<u64>,
    monitors: &[String],
    regions: &[String],
    region: Option<&str>,
) -> (String, Vec<Param>) {
    let (total, good) = match latency_us {
        // The evaluator counts a latency SLO over the sketch's values, with the same mapping.
        Some(us) => (
            "toUInt64(sketch_zero_count + arraySum(sketch_counts))".to_owned(),
            count_at_most_sql(us as f64),
        ),
        None => (
            "toUInt64(count)".to_owned(),
            "toUInt64(ok_count)".to_owned(),
        ),
    };
    let mut params = Vec::new();
    let mut branch = |table: &str, (from, to): (i64, i64)| {
        let mut sql = format!(
            "SELECT monitor_id, region, {total} AS n, {good} AS good FROM {table} FINAL \
             WHERE has(?, monitor_id) \
             AND window_start >= fromUnixTimestamp64Milli(toInt64(?)) \
             AND window_start < fromUnixTimestamp64Milli(toInt64(?))"
        );
        params.push(Param::List(monitors.to_vec()));
        params.push(Param::Int(from));
        params.push(Param::Int(to));
        if !regions.is_empty() {
            sql.push_str(" AND has(?, region)");
            params.push(Param::List(regions.to_vec()));
        }
        if let Some(region) = region {
            sql.push_str(" AND region = ?");
            params.push(Param::Str(region.to_owned()));
        }
        sql
    };
    let mut branches = Vec::new();
    if let Some(hours) = plan.hours {
        branches.push(branch(WINDOWS_1H, hours));
    }
    branches.push(branch(WINDOWS_1M, plan.minutes));
    let sql = format!(
        "SELECT toString(monitor_id) AS mid, toString(region) AS reg, sum(n) AS total, \
         sum(good) AS good_n FROM ({}) GROUP BY monitor_id, region ORDER BY mid, reg",
        branches.join(" UNION ALL ")
    );
    (sql, params)
}

impl Service {
    /// The error budget of burn-rate rule `q.rule_id`: 404 for an unknown rule or monitor, 422
    /// for a rule of another kind, 400 for a monitor or region the rule does not look at.
    pub async fn error_budget(&self, q: &BudgetQuery) -> Result<ErrorBudget> {
        let rule = self.rule_spec(&q.rule_id)?;
        let RuleCondition::BurnRate {
            slo,
            objective,
            period,
            ..
        } = &rule.condition
        else {
            return Err(Error::NotApplicable(format!(
                "rule {:?} is a {} rule; error budgets are defined for burn_rate rules only",
                rule.id,
                rule.condition.kind().as_str()
            )));
        };
        let monitors: Vec<String> = match &q.monitor_id {
            Some(id) => {
                let spec = self.spec(id)?;
                if !rule.applies_to(&spec) {
                    return Err(Error::invalid_parameter(
                        "monitor",
                        format!("rule {:?} does not apply to monitor {id:?}", rule.id),
                    ));
                }
                vec![id.clone()]
            }
            None => {
                let mut ids: Vec<String> = self
                    .view()
                    .all()
                    .iter()
                    .filter(|m| rule.applies_to(m))
                    .map(|m| m.id.clone())
                    .collect();
                ids.sort();
                ids
            }
        };
        if let Some(region) = &q.region
            && !rule.regions.is_empty()
            && !rule.regions.contains(region)
        {
            return Err(Error::invalid_parameter(
                "region",
                format!("rule {:?} does not look at region {region:?}", rule.id),
            ));
        }
        let latency_us = match slo {
            SloKind::Availability => None,
            SloKind::Latency { threshold } => {
                Some(u64::try_from(threshold.as_micros()).unwrap_or(u64::MAX))
            }
        };
        let now_ms = self.now().as_millis();
        let plan = plan(now_ms, *period);
        let rows = if monitors.is_empty() {
            Vec::new()
        } else {
            let (sql, params) = budget_parts(
                &plan,
                latency_us,
                &monitors,
                &rule.regions,
                q.region.as_deref(),
            );
            self.bound(&sql, params).fetch_all::<BudgetRow>().await?
        };
        Ok(ErrorBudget {
            rule_id: rule.id.clone(),
            slo: match slo {
                SloKind::Availability => "availability",
                SloKind::Latency { .. } => "latency",
            }
            .to_owned(),
            threshold_us: latency_us,
            objective: *objective,
            period: humantime::format_duration(*period).to_string(),
            from: rfc3339(plan.from_ms),
            to: rfc3339(now_ms),
            series: rows
                .into_iter()
                .map(|r| {
                    let bad = r.total.saturating_sub(r.good_n);
                    BudgetSeries::new(r.mid, r.reg, r.total, bad, *objective)
                })
                .collect(),
        })
    }
}

/// The statement [`Service::error_budget`] would send for a latency (`Some`) or availability
/// SLO over `period` ending at `now_ms`, with its parameters inlined (for tests and debugging).
pub fn budget_statement(
    now_ms: i64,
    period: Duration,
    latency_us: Option<u64>,
    monitors: &[String],
    regions: &[String],
    region: Option<&str>,
) -> String {
    let (sql, params) = budget_parts(&plan(now_ms, period), latency_us, monitors, regions, region);
    inline(&sql, params)
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct BudgetRow {
    mid: String,
    reg: String,
    total: u64,
    good_n: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_123_456;
    const DAY: u64 = 86_400;

    #[test]
    fn short_periods_read_minutes_and_long_ones_hours_plus_the_current_hour() {
        let p = plan(NOW, Duration::from_secs(30 * DAY));
        assert_eq!(
            p,
            Plan {
                from_ms: NOW - 30 * 86_400_000,
                hours: None,
                minutes: (NOW - 30 * 86_400_000, NOW),
            }
        );
        assert_eq!(plan(NOW, MINUTE_RETENTION).hours, None);
        let p = plan(NOW, Duration::from_secs(366 * DAY));
        let this_hour = NOW - NOW % HOUR_MS;
        let first_hour = (NOW - 366 * 86_400_000).div_euclid(HOUR_MS) * HOUR_MS;
        assert_eq!(
            p,
            Plan {
                from_ms: first_hour,
                hours: Some((first_hour, this_hour)),
                minutes: (this_hour, NOW),
            }
        );
    }

    #[test]
    fn statements_count_failures_or_slow_checks_per_series() {
        let monitors = vec!["api".to_owned(), "web".to_owned()];
        let sql = budget_statement(NOW, Duration::from_secs(3600), None, &monitors, &[], None);
        assert_eq!(
            sql,
            format!(
                "SELECT toString(monitor_id) AS mid, toString(region) AS reg, sum(n) AS total, \
                 sum(good) AS good_n FROM (SELECT monitor_id, region, toUInt64(count) AS n, \
                 toUInt64(ok_count) AS good FROM windows_1m FINAL WHERE has(['api', 'web'], \
                 monitor_id) AND window_start >= fromUnixTimestamp64Milli(toInt64({})) \
                 AND window_start < fromUnixTimestamp64Milli(toInt64({NOW}))) \
                 GROUP BY monitor_id, region ORDER BY mid, reg",
                NOW - 3_600_000
            )
        );
        let regions = vec!["eu".to_owned()];
        let sql = budget_statement(
            NOW,
            Duration::from_secs(100 * DAY),
            Some(300_000),
            &monitors,
            &regions,
            Some("eu"),
        );
        assert_eq!(sql.matches(" FINAL ").count(), 2);
        assert!(sql.contains("FROM windows_1h FINAL"));
        assert!(sql.contains(" UNION ALL "));
        assert_eq!(
            sql.matches(&format!("{} AS good", count_at_most_sql(300_000.0)))
                .count(),
            2
        );
        assert_eq!(
            sql.matches("AND has(['eu'], region) AND region = 'eu'")
                .count(),
            2
        );
    }
}
