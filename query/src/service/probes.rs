//! Raw probe results of one monitor from the `probes` table (with their condition results),
//! newest first, filtered by outcome (one, or every failure),
//! status and region, paginated by a cursor of (event time, event id).

use serde::Deserialize;

use crate::Result;
use crate::model::{Probe, ProbeAssertion, ProbePage, rfc3339};
use crate::params::{self, OutcomeFilter, StatusFilter, TimeRange};
use crate::service::Service;

/// A raw-probe request, already parsed.
#[derive(Debug, Clone)]
pub struct ProbeQuery {
    /// The monitor.
    pub monitor_id: String,
    /// The range.
    pub range: TimeRange,
    /// Only this outcome, or only failures.
    pub outcome: Option<OutcomeFilter>,
    /// Only these statuses.
    pub status: Option<StatusFilter>,
    /// Only this region.
    pub region: Option<String>,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: u32,
}

impl Service {
    /// Raw checks of a monitor, newest first.
    pub async fn probes(&self, q: &ProbeQuery) -> Result<ProbePage> {
        self.spec(&q.monitor_id)?;
        let mut sql = String::from(
            "SELECT toString(event_id) AS id, toString(monitor_id) AS mid, toString(region) AS reg, \
             toString(agent) AS ag, toUnixTimestamp64Milli(event_time) AS t_ms, \
             toString(method) AS meth, url, status_code, toString(outcome) AS oc, error, \
             dns_us, connect_us, tls_us, ttfb_us, total_us, response_size, \
             assertion_conditions, assertion_passed, assertion_actuals, steps \
             FROM probes FINAL WHERE monitor_id = ? \
             AND event_time >= fromUnixTimestamp64Milli(toInt64(?)) \
             AND event_time < fromUnixTimestamp64Milli(toInt64(?))",
        );
        match q.outcome {
            Some(OutcomeFilter::Is(_)) => sql.push_str(" AND outcome = ?"),
            Some(OutcomeFilter::Failed) => sql.push_str(" AND outcome != 'ok'"),
            None => {}
        }
        match q.status {
            Some(StatusFilter::Exact(_)) => sql.push_str(" AND status_code = ?"),
            Some(StatusFilter::Class(_)) => sql.push_str(" AND intDiv(status_code, 100) = ?"),
            None => {}
        }
        if q.region.is_some() {
            sql.push_str(" AND region = ?");
        }
        let after = match &q.cursor {
            Some(c) => {
                let parts = params::decode_cursor(c, 2)?;
                let ms: i64 = parts[0]
                    .parse()
                    .map_err(|_| crate::params::unissued_cursor())?;
                let id: uuid::Uuid = parts[1]
                    .parse()
                    .map_err(|_| crate::params::unissued_cursor())?;
                sql.push_str(
                    " AND (event_time, event_id) < \
                     (fromUnixTimestamp64Milli(toInt64(?)), toUUID(?))",
                );
                Some((ms, id.to_string()))
            }
            None => None,
        };
        sql.push_str(" ORDER BY event_time DESC, event_id DESC LIMIT ?");
        let mut query = self
            .inner
            .clickhouse
            .query(&sql)
            .bind(q.monitor_id.as_str())
            .bind(q.range.from.as_millis())
            .bind(q.range.to.as_millis());
        if let Some(OutcomeFilter::Is(outcome)) = q.outcome {
            query = query.bind(outcome.as_str());
        }
        match q.status {
            Some(StatusFilter::Exact(code) | StatusFilter::Class(code)) => query = query.bind(code),
            None => {}
        }
        if let Some(region) = &q.region {
            query = query.bind(region.as_str());
        }
        if let Some((ms, id)) = &after {
            query = query.bind(*ms).bind(id.as_str());
        }
        let limit = q.limit as usize;
        query = query.bind(q.limit + 1);
        let mut rows = query.fetch_all::<ProbeRow>().await?;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|r| params::encode_cursor(&[&r.t_ms.to_string(), &r.id]))
        } else {
            None
        };
        Ok(ProbePage {
            items: rows.into_iter().map(Probe::from).collect(),
            next_cursor,
        })
    }
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ProbeRow {
    id: String,
    mid: String,
    reg: String,
    ag: String,
    t_ms: i64,
    meth: String,
    url: String,
    status_code: u16,
    oc: String,
    error: String,
    dns_us: Option<u64>,
    connect_us: Option<u64>,
    tls_us: Option<u64>,
    ttfb_us: Option<u64>,
    total_us: u64,
    response_size: Option<u64>,
    assertion_conditions: Vec<String>,
    assertion_passed: Vec<bool>,
    assertion_actuals: Vec<Option<String>>,
    steps: String,
}

impl From<ProbeRow> for Probe {
    fn from(r: ProbeRow) -> Self {
        Self {
            event_id: r.id,
            monitor_id: r.mid,
            region: r.reg,
            agent: r.ag,
            event_time: rfc3339(r.t_ms),
            method: r.meth,
            url: r.url,
            status_code: (r.status_code != 0).then_some(r.status_code),
            outcome: r.oc,
            error: (!r.error.is_empty()).then_some(r.error),
            dns_us: r.dns_us,
            connect_us: r.connect_us,
            tls_us: r.tls_us,
            ttfb_us: r.ttfb_us,
            total_us: r.total_us,
            response_size: r.response_size,
            assertions: r
                .assertion_conditions
                .into_iter()
                .zip(r.assertion_passed)
                .zip(r.assertion_actuals)
                // A passing condition does not show what it saw (a response may hold a token).
                .map(|((condition, passed), actual)| ProbeAssertion {
                    condition,
                    passed,
                    actual: actual.filter(|_| !passed),
                })
                .collect(),
            // Written by the processor from the event's steps; '' for a check of one request.
            steps: serde_json::from_str::<Vec<vigil_schema::StepResult>>(&r.steps)
                .map(|steps| steps.iter().map(crate::model::ProbeStep::from).collect())
                .unwrap_or_default(),
        }
    }
}
