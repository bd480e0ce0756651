//! The operations both APIs expose: monitors ([`monitors`]: from the view, written through the
//! monitors topic), alert rules ([`rules`]: from the rules view, written through the rules
//! topic), history, range summaries and export rows (here), raw probes ([`probes`]), alert
//! history and the active set ([`alerts`]), error budgets of burn-rate rules ([`budget`]), all
//! from ClickHouse, rule backtests over the probes topic ([`backtest`]), and the notification
//! configuration ([`channels`]: channels and the routing tree; [`silences`]: silences and
//! maintenance windows), from their views and written through their topics, and notification
//! deliveries with the commands to the notification stage ([`deliveries`]: the delivery log,
//! acknowledgements, redeliveries). REST handlers and GraphQL resolvers only parse
//! parameters, check the caller's role and call these.
//!
//! Reads of the `ReplacingMergeTree` tables use `FINAL`, so a window corrected or replayed is
//! counted once. Percentiles over any set of windows merge the stored sketches in SQL
//! ([`vigil_schema::sketch::quantile_sql`]); percentiles are never averaged.

pub mod alerts;
pub mod audit;
pub mod backtest;
pub mod budget;
pub mod channels;
pub mod credentials;
pub mod deliveries;
pub mod import;
pub mod monitors;
pub mod probes;
pub mod rules;
pub mod silences;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::Deserialize;
use vigil_schema::sketch::quantile_sql;
use vigil_schema::{Timestamp, TopicNames};

use crate::config::LimitsConfig;
use crate::hub::Hub;
use crate::model::{ErrorCount, History, RegionSla, Sla, Summary, WindowPoint, finite, rfc3339};
use crate::params::{Resolution, TimeRange};
use crate::view::{MonitorView, RuleView, SpecView};
use crate::{Error, Result};

pub use alerts::{ActiveAlertQuery, AlertQuery, active_alerts_sql};
pub use audit::AuditQuery;
pub use backtest::BacktestSettings;
pub use budget::BudgetQuery;
pub use channels::{ChannelFilter, NotifyViews, parse_channel};
pub use credentials::Credentials;
pub use deliveries::{DeliveryQuery, delivery_status};
pub use monitors::{MonitorFilter, parse_spec};
pub use probes::ProbeQuery;
pub use rules::{RuleFilter, parse_rule};
pub use silences::{MaintenanceFilter, SilenceFilter, parse_maintenance};

/// Whose history to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One monitor.
    Monitor(String),
    /// Every monitor with this tag.
    Tag(String),
    /// Every monitor.
    All,
}

/// A history or export request, already parsed.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// Whose windows.
    pub target: Target,
    /// Only this region (default: all regions merged).
    pub region: Option<String>,
    /// The range.
    pub range: TimeRange,
    /// The table read.
    pub resolution: Resolution,
    /// One page of points (`None`: every point, for streamed exports).
    pub page: Option<HistoryPage>,
}

/// A page of history: at most `limit` points after `after` (monitor id, window start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The last point of the previous page.
    pub after: Option<(String, i64)>,
    /// Points per page.
    pub limit: u32,
}

impl HistoryPage {
    /// A page from a cursor returned by the API and a limit already checked.
    pub fn new(cursor: Option<&str>, limit: u32) -> Result<Self> {
        let after = cursor
            .map(|c| {
                let parts = crate::params::decode_cursor(c, 2)?;
                let start: i64 = parts[1]
                    .parse()
                    .map_err(|_| crate::params::unissued_cursor())?;
                Ok::<_, Error>((parts[0].clone(), start))
            })
            .transpose()?;
        Ok(Self { after, limit })
    }
}

/// The service layer.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    clickhouse: clickhouse::Client,
    producer: FutureProducer,
    topics: TopicNames,
    view: Arc<MonitorView>,
    rules: Arc<RuleView>,
    hub: Hub,
    limits: LimitsConfig,
    write_timeout: Duration,
    produce_timeout: Duration,
    backtest: backtest::Backtester,
    egress: vigil_schema::EgressPolicy,
    /// Channels, the routing tree, silences and maintenance windows; started by
    /// [`crate::connect`].
    notify: NotifyViews,
    /// API keys and secrets; started by [`crate::connect`].
    credentials: Credentials,
}

/// Everything [`Service::new`] needs.
pub struct ServiceParts {
    /// ClickHouse client with the database selected.
    pub clickhouse: clickhouse::Client,
    /// Producer for monitor and rule writes.
    pub producer: FutureProducer,
    /// Topic names.
    pub topics: TopicNames,
    /// The monitors view.
    pub view: Arc<MonitorView>,
    /// The alert rules view.
    pub rules: Arc<RuleView>,
    /// The live fan-out.
    pub hub: Hub,
    /// Query limits.
    pub limits: LimitsConfig,
    /// How long a write waits to become visible in the view.
    pub write_timeout: Duration,
    /// Timeout of one produce.
    pub produce_timeout: Duration,
    /// How backtests run.
    pub backtest: BacktestSettings,
    /// The egress policy monitor writes are checked against.
    pub egress: vigil_schema::EgressPolicy,
    /// API keys and secrets (views not yet started).
    pub credentials: Credentials,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("topics", &self.topics)
            .field("monitors", &self.view.len())
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ServiceParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceParts")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Assembles the service.
    pub fn new(parts: ServiceParts) -> Self {
        let ServiceParts {
            clickhouse,
            producer,
            topics,
            view,
            rules,
            hub,
            limits,
            write_timeout,
            produce_timeout,
            backtest,
            egress,
            credentials,
        } = parts;
        Self {
            inner: Arc::new(Inner {
                clickhouse,
                producer,
                topics,
                view,
                rules,
                hub,
                limits,
                write_timeout,
                produce_timeout,
                backtest: backtest::Backtester::new(backtest),
                egress,
                notify: NotifyViews::new(),
                credentials,
            }),
        }
    }

    /// The live fan-out.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The monitors view.
    pub fn view(&self) -> &Arc<MonitorView> {
        &self.inner.view
    }

    /// The alert rules view.
    pub fn rule_view(&self) -> &Arc<RuleView> {
        &self.inner.rules
    }

    /// Query limits.
    pub fn limits(&self) -> &LimitsConfig {
        &self.inner.limits
    }

    /// API keys and secrets.
    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// Topic names.
    pub fn topics(&self) -> &TopicNames {
        &self.inner.topics
    }

    /// The ClickHouse client.
    pub fn clickhouse(&self) -> &clickhouse::Client {
        &self.inner.clickhouse
    }

    /// Writes a spec (or, without a payload, a tombstone) to a compacted topic and waits until
    /// `view` has applied it, so the caller reads its own write.
    async fn produce<S: crate::view::Spec>(
        &self,
        topic: &str,
        view: &SpecView<S>,
        key: &str,
        payload: Option<&[u8]>,
    ) -> Result<()> {
        let before = view.get(key).and_then(|s| s.audited());
        let mut record = FutureRecord::<str, [u8]>::to(topic).key(key);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        let delivery = self
            .inner
            .producer
            .send(record, Timeout::After(self.inner.produce_timeout))
            .await
            .map_err(|(e, _)| Error::Kafka(e))?;
        view.wait_for(
            delivery.partition,
            delivery.offset,
            self.inner.write_timeout,
        )
        .await?;
        let after = payload
            .and_then(|p| vigil_schema::decode::<S>(p).ok())
            .and_then(|s| s.audited());
        let resource = match S::NOUN {
            "routing tree" => "routes",
            "maintenance window" => "maintenance",
            "api key" => "api_key",
            noun => noun,
        };
        self.audit(resource, key, before, after).await
    }

    // ----- history --------------------------------------------------------------------------

    fn history_parts(&self, q: &HistoryQuery) -> Result<(String, Vec<Param>)> {
        let (target_clause, ids) = match &q.target {
            Target::Monitor(id) => {
                self.spec(id)?;
                ("monitor_id = ?", vec![id.clone()])
            }
            Target::Tag(tag) => {
                let ids: Vec<String> = self
                    .inner
                    .view
                    .all()
                    .iter()
                    .filter(|m| m.tags.contains(tag))
                    .map(|m| m.id.clone())
                    .collect();
                ("has(?, monitor_id)", ids)
            }
            Target::All => ("1", Vec::new()),
        };
        let region_clause = if q.region.is_some() {
            "AND region = ?"
        } else {
            ""
        };
        let after = q.page.as_ref().and_then(|p| p.after.as_ref());
        let after_clause = if after.is_some() {
            "AND (toString(monitor_id), window_start) > (?, fromUnixTimestamp64Milli(toInt64(?)))"
        } else {
            ""
        };
        // One more than the page: whether there is a next one.
        let limit_clause = q
            .page
            .as_ref()
            .map(|p| format!("LIMIT {}", u64::from(p.limit) + 1))
            .unwrap_or_default();
        let sql = format!(
            "SELECT toString(monitor_id) AS mid, toUnixTimestamp64Milli(window_start) AS start_ms, \
             sum(count) AS n, sum(ok_count) AS ok_n, \
             (sumMap(CAST(mapKeys(errors), 'Array(String)'), mapValues(errors))).1 AS error_kinds, \
             (sumMap(CAST(mapKeys(errors), 'Array(String)'), mapValues(errors))).2 AS error_counts, \
             sum(status_4xx) AS s4, sum(status_5xx) AS s5, \
             {p50} AS q50, {p90} AS q90, {p95} AS q95, {p99} AS q99, \
             sum(total_mean_us * count) / greatest(sum(count), 1) AS total_mean, \
             sum(dns_mean_us * dns_count) / greatest(sum(dns_count), 1) AS dns_mean, \
             sum(connect_mean_us * connect_count) / greatest(sum(connect_count), 1) AS connect_mean, \
             sum(tls_mean_us * tls_count) / greatest(sum(tls_count), 1) AS tls_mean, \
             sum(ttfb_mean_us * ttfb_count) / greatest(sum(ttfb_count), 1) AS ttfb_mean, \
             max(anomaly_score) AS anomaly \
             FROM {table} FINAL \
             WHERE {target_clause} \
             AND window_start >= fromUnixTimestamp64Milli(toInt64(?)) \
             AND window_start < fromUnixTimestamp64Milli(toInt64(?)) {region_clause} {after_clause} \
             GROUP BY monitor_id, window_start ORDER BY mid, start_ms {limit_clause}",
            p50 = quantile_sql(0.5),
            p90 = quantile_sql(0.9),
            p95 = quantile_sql(0.95),
            p99 = quantile_sql(0.99),
            table = q.resolution.table(),
        );
        let mut params = match &q.target {
            Target::Monitor(id) => vec![Param::Str(id.clone())],
            Target::Tag(_) => vec![Param::List(ids)],
            Target::All => Vec::new(),
        };
        params.push(Param::Int(q.range.from.as_millis()));
        params.push(Param::Int(q.range.to.as_millis()));
        if let Some(region) = &q.region {
            params.push(Param::Str(region.clone()));
        }
        if let Some((monitor, start_ms)) = after {
            params.push(Param::Str(monitor.clone()));
            params.push(Param::Int(*start_ms));
        }
        Ok((sql, params))
    }

    fn history_sql(&self, q: &HistoryQuery) -> Result<clickhouse::query::Query> {
        let (sql, params) = self.history_parts(q)?;
        Ok(self.bound(&sql, params))
    }

    /// `sql` with `params` bound to its `?` in order.
    fn bound(&self, sql: &str, params: Vec<Param>) -> clickhouse::query::Query {
        let mut query = self.inner.clickhouse.query(sql);
        for param in params {
            query = match param {
                Param::Str(v) => query.bind(v),
                Param::Int(v) => query.bind(v),
                Param::List(v) => query.bind(v),
            };
        }
        query
    }

    /// The statement [`Service::history`] sends, with its parameters inlined (for comparing
    /// against ClickHouse directly, and for debugging).
    pub fn history_statement(&self, q: &HistoryQuery) -> Result<String> {
        let (sql, params) = self.history_parts(q)?;
        Ok(inline(&sql, params))
    }

    /// Windows of a monitor, a tag or every monitor, regions merged per window: one page of
    /// them when `q.page` is set.
    pub async fn history(&self, q: &HistoryQuery) -> Result<History> {
        let mut rows = self.history_sql(q)?.fetch_all::<PointRow>().await?;
        let next_cursor = match &q.page {
            Some(page) if rows.len() > page.limit as usize => {
                rows.truncate(page.limit as usize);
                rows.last()
                    .map(|r| crate::params::encode_cursor(&[&r.mid, &r.start_ms.to_string()]))
            }
            _ => None,
        };
        Ok(History {
            resolution: q.resolution.as_str().to_owned(),
            from: q.range.from.to_string(),
            to: q.range.to.to_string(),
            points: rows.into_iter().map(WindowPoint::from).collect(),
            next_cursor,
        })
    }

    /// The same rows as [`Service::history`], as a stream read from ClickHouse as it arrives.
    pub fn history_stream(
        &self,
        q: &HistoryQuery,
    ) -> Result<impl futures::Stream<Item = Result<WindowPoint>> + Send + 'static + use<>> {
        let cursor = self.history_sql(q)?.fetch::<PointRow>()?;
        // Fused: a body (or a compression layer over it) may poll again after the end, and an
        // `unfold` polled after it finished panics.
        Ok(futures::StreamExt::fuse(futures::stream::unfold(
            Some(cursor),
            |state| async move {
                let mut cursor = state?;
                match cursor.next().await {
                    Ok(Some(row)) => Some((Ok(WindowPoint::from(row)), Some(cursor))),
                    Ok(None) => None,
                    Err(e) => Some((Err(Error::from(e)), None)),
                }
            },
        )))
    }

    // ----- summary --------------------------------------------------------------------------

    /// Uptime, merged-sketch percentiles and error budget of one monitor over a range, overall
    /// and per region.
    pub async fn summary(
        &self,
        monitor_id: &str,
        range: TimeRange,
        resolution: Resolution,
        target: f64,
    ) -> Result<Summary> {
        self.spec(monitor_id)?;
        let select = format!(
            "sum(count) AS n, sum(ok_count) AS ok_n, {p50} AS q50, {p95} AS q95, {p99} AS q99 \
             FROM {table} FINAL WHERE monitor_id = ? \
             AND window_start >= fromUnixTimestamp64Milli(toInt64(?)) \
             AND window_start < fromUnixTimestamp64Milli(toInt64(?))",
            p50 = quantile_sql(0.5),
            p95 = quantile_sql(0.95),
            p99 = quantile_sql(0.99),
            table = resolution.table(),
        );
        let bind = |sql: String| {
            self.inner
                .clickhouse
                .query(&sql)
                .bind(monitor_id)
                .bind(range.from.as_millis())
                .bind(range.to.as_millis())
        };
        let overall = bind(format!("SELECT '' AS reg, {select}")).fetch_all::<SlaRow>();
        let regions = bind(format!(
            "SELECT toString(region) AS reg, {select} GROUP BY region ORDER BY reg"
        ))
        .fetch_all::<SlaRow>();
        let (overall, regions) = tokio::try_join!(overall, regions)?;
        let overall = overall
            .into_iter()
            .next()
            .map(|r| r.sla(target))
            .unwrap_or_else(|| SlaRow::empty().sla(target));
        Ok(Summary {
            monitor_id: monitor_id.to_owned(),
            from: range.from.to_string(),
            to: range.to.to_string(),
            target,
            resolution: resolution.as_str().to_owned(),
            overall,
            regions: regions
                .into_iter()
                .filter(|r| r.n > 0)
                .map(|r| RegionSla {
                    region: r.reg.clone(),
                    sla: r.sla(target),
                })
                .collect(),
        })
    }

    // ----- health ---------------------------------------------------------------------------

    /// Why the service is not ready, if it is not.
    pub async fn not_ready(&self) -> Option<String> {
        if !self.inner.view.is_caught_up() {
            return Some("the monitors view is still catching up".into());
        }
        if !self.inner.rules.is_caught_up() {
            return Some("the rules view is still catching up".into());
        }
        if let Some(reason) = self.inner.notify.not_ready() {
            return Some(reason);
        }
        if !self.inner.hub.is_ready() {
            return Some("live topic consumers are not positioned yet".into());
        }
        match self
            .inner
            .clickhouse
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
        {
            Ok(_) => None,
            Err(e) => Some(format!("clickhouse is unreachable: {e}")),
        }
    }

    /// The current time (a method so every range default is taken from one clock).
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A query parameter, bound by the client or inlined by [`inline`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Str(String),
    Int(i64),
    List(Vec<String>),
}

/// `sql` with `params` written in place of its `?`, as literals.
pub(crate) fn inline(sql: &str, params: Vec<Param>) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut params = params.into_iter();
    for (i, piece) in sql.split('?').enumerate() {
        if i > 0 {
            match params.next() {
                Some(Param::Str(v)) => out.push_str(&sql_string(&v)),
                Some(Param::Int(v)) => out.push_str(&v.to_string()),
                Some(Param::List(v)) => {
                    let items: Vec<String> = v.iter().map(|s| sql_string(s)).collect();
                    out.push('[');
                    out.push_str(&items.join(", "));
                    out.push(']');
                }
                None => out.push('?'),
            }
        }
        out.push_str(piece);
    }
    out
}

/// A ClickHouse string literal.
fn sql_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct PointRow {
    mid: String,
    start_ms: i64,
    n: u64,
    ok_n: u64,
    error_kinds: Vec<String>,
    error_counts: Vec<u64>,
    s4: u64,
    s5: u64,
    q50: f64,
    q90: f64,
    q95: f64,
    q99: f64,
    total_mean: f64,
    dns_mean: f64,
    connect_mean: f64,
    tls_mean: f64,
    ttfb_mean: f64,
    anomaly: f64,
}

impl From<PointRow> for WindowPoint {
    fn from(r: PointRow) -> Self {
        Self {
            monitor_id: r.mid,
            start: rfc3339(r.start_ms),
            count: r.n,
            ok_count: r.ok_n,
            error_count: r.n.saturating_sub(r.ok_n),
            availability: if r.n == 0 {
                1.0
            } else {
                r.ok_n as f64 / r.n as f64
            },
            errors: r
                .error_kinds
                .into_iter()
                .zip(r.error_counts)
                .filter(|(_, c)| *c > 0)
                .map(|(kind, count)| ErrorCount { kind, count })
                .collect(),
            status_4xx: r.s4,
            status_5xx: r.s5,
            p50_us: finite(r.q50),
            p90_us: finite(r.q90),
            p95_us: finite(r.q95),
            p99_us: finite(r.q99),
            total_mean_us: r.total_mean,
            dns_mean_us: r.dns_mean,
            connect_mean_us: r.connect_mean,
            tls_mean_us: r.tls_mean,
            ttfb_mean_us: r.ttfb_mean,
            anomaly_score: r.anomaly,
        }
    }
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct SlaRow {
    reg: String,
    n: u64,
    ok_n: u64,
    q50: f64,
    q95: f64,
    q99: f64,
}

impl SlaRow {
    fn empty() -> Self {
        Self {
            reg: String::new(),
            n: 0,
            ok_n: 0,
            q50: f64::NAN,
            q95: f64::NAN,
            q99: f64::NAN,
        }
    }

    fn sla(&self, target: f64) -> Sla {
        let (uptime, budget) = if self.n == 0 {
            (None, None)
        } else {
            let failures = (self.n - self.ok_n.min(self.n)) as f64;
            let allowed = (1.0 - target) * self.n as f64;
            (
                Some(100.0 * self.ok_n as f64 / self.n as f64),
                Some(1.0 - failures / allowed),
            )
        };
        Sla {
            count: self.n,
            ok_count: self.ok_n,
            uptime_percent: uptime,
            p50_us: finite(self.q50),
            p95_us: finite(self.q95),
            p99_us: finite(self.q99),
            error_budget_remaining: budget,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_are_escaped() {
        assert_eq!(sql_string("a'b\\c"), "'a\\'b\\\\c'");
    }

    #[test]
    fn error_budget_follows_the_target() {
        let row = SlaRow {
            reg: String::new(),
            n: 10_000,
            ok_n: 9_995,
            q50: 1.0,
            q95: 2.0,
            q99: f64::NAN,
        };
        let sla = row.sla(0.999);
        assert_eq!(sla.uptime_percent, Some(99.95));
        // 10 failures allowed, 5 spent.
        assert!((sla.error_budget_remaining.unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(sla.p99_us, None);
        assert_eq!(SlaRow::empty().sla(0.99).uptime_percent, None);
    }
}
