//! Writes pipeline output to ClickHouse: window rows into `windows_1m`, hourly rollups merged
//! from them into `windows_1h`, raw probes into `probes`.
//!
//! Every write is idempotent: window rows are deterministic and versioned
//! (`ReplacingMergeTree(version)`), rollups are recomputed from `windows_1m FINAL` with
//! version = number of events, and raw probes collapse on their event id. Writing the same
//! output twice (after a crash before the offsets were committed) changes nothing.
//!
//! Every statement has a size independent of the batch: rows travel as RowBinary insert data,
//! and the keys of the hours to roll up are inserted into `rollup_keys` under a batch id that the
//! rollup statement selects by (ClickHouse's `max_query_size` caps the SQL text, not the data).

use std::collections::BTreeSet;

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_schema::sketch::{quantile_sql, quantile_sql_for};
use vigil_schema::table::{ALERTS, PROBES, ROLLUP_KEYS, WINDOWS_1H, WINDOWS_1M};
use vigil_schema::{AlertTransition, ProbeResult};

use crate::Result;

mod partial;
use crate::pipeline::EmittedWindow;
use crate::row::{AlertRow, ProbeRowRef, WINDOW_COLUMNS, WindowRow};

const HOUR_MS: i64 = 3_600_000;

/// Bounds of one insert (the client has none by default): a stalled connection fails the
/// write, which is retried, instead of hanging the processor while it looks healthy.
const INSERT_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// See [`INSERT_SEND_TIMEOUT`]; includes the server's work on the insert.
const INSERT_END_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The ClickHouse side of the processor.
#[derive(Debug, Clone)]
pub struct Sink {
    client: Client,
}

/// One point of window history, used to seed the anomaly detectors.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct HistoryPoint {
    /// Monitor id.
    pub monitor_id: String,
    /// Region.
    pub region: String,
    /// Window start, unix ms.
    pub start_ms: i64,
    /// p95 of total time, µs.
    pub p95_us: f64,
    /// Availability.
    pub availability: f64,
    /// The anomaly scores it was stored with.
    pub anomaly_latency: f64,
    /// See `anomaly_latency`.
    pub anomaly_errors: f64,
    /// See `anomaly_latency`.
    pub anomaly_score: f64,
    /// See `anomaly_latency`.
    pub anomaly_reason: String,
}

impl HistoryPoint {
    /// Its stored anomaly scores.
    pub fn scores(&self) -> vigil_schema::AnomalyScores {
        vigil_schema::AnomalyScores {
            latency: self.anomaly_latency,
            errors: self.anomaly_errors,
            combined: self.anomaly_score,
            reason: self.anomaly_reason.clone(),
        }
    }
}

impl Sink {
    /// A sink writing through `client`, which must have Vigil's database selected.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Inserts window rows, then recomputes the hourly rollups of every hour they touch.
    /// Partial windows (corrections of windows no longer in memory) are completed from the
    /// stored raw probes first, so the output's own probes must be written before. Returns
    /// the completed windows: publish them in place of the partial ones.
    pub async fn write_windows(&self, windows: &[EmittedWindow]) -> Result<Vec<EmittedWindow>> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let completed = self.complete_partials(windows).await?;
        let mut insert = self
            .client
            .insert::<WindowRow>(WINDOWS_1M)
            .await?
            .with_timeouts(Some(INSERT_SEND_TIMEOUT), Some(INSERT_END_TIMEOUT));
        let mut hours = BTreeSet::new();
        for w in windows.iter().filter(|w| !w.partial).chain(&completed) {
            let row = WindowRow::from(w);
            hours.insert((
                row.monitor_id.clone(),
                row.region.clone(),
                row.window_start.div_euclid(HOUR_MS) * HOUR_MS,
            ));
            insert.write(&row).await?;
        }
        insert.end().await?;
        self.rollup(&hours).await?;
        Ok(completed)
    }

    /// Rebuilds the `windows_1h` rows of the given (monitor, region, hour start ms) by merging
    /// the minute rows (`FINAL`): counts and sketch buckets are summed, percentiles come from
    /// the merged sketch, means are weighted by their observation counts.
    ///
    /// The keys are inserted into `rollup_keys` under a fresh batch id first, so the rollup
    /// statement is the same few kilobytes for one series or a million.
    pub async fn rollup(&self, hours: &BTreeSet<(String, String, i64)>) -> Result<()> {
        let Some(first) = hours.iter().map(|h| h.2).min() else {
            return Ok(());
        };
        let last = hours.iter().map(|h| h.2).max().unwrap_or(first) + HOUR_MS;
        let keys: Vec<(&str, &str, i64)> = hours
            .iter()
            .map(|(m, r, h)| (m.as_str(), r.as_str(), *h))
            .collect();
        let batch = self.insert_keys(&keys).await?.to_string();
        self.client
            .query(&rollup_sql())
            .bind(first)
            .bind(last)
            .bind(batch.as_str())
            .bind(batch.as_str())
            .execute()
            .await?;
        Ok(())
    }

    /// Inserts (monitor, region, time ms) keys into `rollup_keys` under a fresh batch id, which
    /// it returns: statements select their keys by it, so their size does not grow with the
    /// keys.
    async fn insert_keys(&self, keys: &[(&str, &str, i64)]) -> Result<Uuid> {
        let batch = Uuid::new_v4();
        let mut insert = self
            .client
            .insert::<RollupKey>(ROLLUP_KEYS)
            .await?
            .with_timeouts(Some(INSERT_SEND_TIMEOUT), Some(INSERT_END_TIMEOUT));
        for &(monitor_id, region, hour) in keys {
            insert
                .write(&RollupKey {
                    batch,
                    monitor_id: monitor_id.to_owned(),
                    region: region.to_owned(),
                    hour,
                })
                .await?;
        }
        insert.end().await?;
        Ok(batch)
    }

    /// Inserts alert transitions (deduplicated by their deterministic id in `alerts`).
    pub async fn write_alerts(&self, transitions: &[AlertTransition]) -> Result<()> {
        if transitions.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .client
            .insert::<AlertRow>(ALERTS)
            .await?
            .with_timeouts(Some(INSERT_SEND_TIMEOUT), Some(INSERT_END_TIMEOUT));
        for t in transitions {
            insert.write(&AlertRow::from(t)).await?;
        }
        insert.end().await?;
        Ok(())
    }

    /// Inserts raw probe results (rows borrow their text: nothing is copied first).
    pub async fn write_probes(&self, probes: &[ProbeResult]) -> Result<()> {
        if probes.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .client
            .insert::<ProbeRowRef<'_>>(PROBES)
            .await?
            .with_timeouts(Some(INSERT_SEND_TIMEOUT), Some(INSERT_END_TIMEOUT));
        for probe in probes {
            insert.write(&ProbeRowRef::from(probe)).await?;
        }
        insert.end().await?;
        Ok(())
    }

    /// Window history since `since_ms` (latest versions), oldest first per series.
    pub async fn history(&self, since_ms: i64, until_ms: i64) -> Result<Vec<HistoryPoint>> {
        let sql = format!(
            // The start is aliased `start_ms`: an alias named `window_start` would replace the
            // column inside WHERE too, comparing milliseconds with a DateTime64.
            "SELECT toString(monitor_id) AS monitor_id, toString(region) AS region, \
             toUnixTimestamp64Milli(window_start) AS start_ms, p95_us, availability, \
             anomaly_latency, anomaly_errors, anomaly_score, anomaly_reason \
             FROM {WINDOWS_1M} FINAL \
             WHERE window_start >= fromUnixTimestamp64Milli(toInt64(?)) \
             AND window_start < fromUnixTimestamp64Milli(toInt64(?)) \
             ORDER BY monitor_id, region, window_start"
        );
        Ok(self
            .client
            .query(&sql)
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all::<HistoryPoint>()
            .await?)
    }
}

/// One row of `rollup_keys`.
#[derive(Debug, Clone, Row, Serialize)]
struct RollupKey {
    #[serde(with = "clickhouse::serde::uuid")]
    batch: Uuid,
    monitor_id: String,
    region: String,
    /// Unix milliseconds (DateTime64(3)).
    hour: i64,
}

/// `INSERT … SELECT` that rebuilds hourly rows from minute rows; binds: first hour ms, end ms,
/// then the batch id twice (its keys are in `rollup_keys`).
pub fn rollup_sql() -> String {
    let weighted =
        |mean: &str, n: &str| format!("if(sum({n}) = 0, 0., sum({mean} * {n}) / sum({n}))");
    let ttfb_p95 = quantile_sql_for(
        0.95,
        "ttfb_sketch_keys",
        "ttfb_sketch_counts",
        "ttfb_sketch_zero_count",
        "sketch_alpha",
    );
    // Expressions carry no aliases: INSERT maps them by position, and aliases named like the
    // columns would shadow them inside the other aggregates.
    let exprs = [
        "monitor_id".to_owned(),
        "region".to_owned(),
        "hour".to_owned(),
        "hour + toIntervalHour(1)".to_owned(),
        "sum(count)".to_owned(),
        "sum(count)".to_owned(),
        "sum(ok_count)".to_owned(),
        "if(sum(count) = 0, 1., sum(ok_count) / sum(count))".to_owned(),
        "sumMap(errors)".to_owned(),
        "sum(status_1xx)".to_owned(),
        "sum(status_2xx)".to_owned(),
        "sum(status_3xx)".to_owned(),
        "sum(status_4xx)".to_owned(),
        "sum(status_5xx)".to_owned(),
        "min(total_min_us)".to_owned(),
        "max(total_max_us)".to_owned(),
        weighted("total_mean_us", "count"),
        quantile_sql(0.5),
        quantile_sql(0.75),
        quantile_sql(0.9),
        quantile_sql(0.95),
        quantile_sql(0.99),
        quantile_sql(0.999),
        weighted("dns_mean_us", "dns_count"),
        weighted("connect_mean_us", "connect_count"),
        weighted("tls_mean_us", "tls_count"),
        weighted("ttfb_mean_us", "ttfb_count"),
        ttfb_p95,
        "sum(dns_count)".to_owned(),
        "sum(connect_count)".to_owned(),
        "sum(tls_count)".to_owned(),
        "sum(ttfb_count)".to_owned(),
        "sum(assertion_failures)".to_owned(),
        "any(sketch_alpha)".to_owned(),
        "(sumMap(sketch_keys, sketch_counts)).1".to_owned(),
        "(sumMap(sketch_keys, sketch_counts)).2".to_owned(),
        "sum(sketch_zero_count)".to_owned(),
        "(sumMap(ttfb_sketch_keys, ttfb_sketch_counts)).1".to_owned(),
        "(sumMap(ttfb_sketch_keys, ttfb_sketch_counts)).2".to_owned(),
        "sum(ttfb_sketch_zero_count)".to_owned(),
        "max(anomaly_latency)".to_owned(),
        "max(anomaly_errors)".to_owned(),
        "max(anomaly_score)".to_owned(),
        "argMax(anomaly_reason, anomaly_score)".to_owned(),
    ];
    format!(
        "INSERT INTO {WINDOWS_1H} ({WINDOW_COLUMNS}) SELECT {} FROM (\
         SELECT *, toDateTime64(toStartOfHour(window_start), 3, 'UTC') AS hour \
         FROM {WINDOWS_1M} FINAL \
         WHERE window_start >= fromUnixTimestamp64Milli(toInt64(?)) \
         AND window_start < fromUnixTimestamp64Milli(toInt64(?)) \
         AND monitor_id IN (SELECT monitor_id FROM {ROLLUP_KEYS} WHERE batch = toUUID(?))) \
         WHERE (monitor_id, region, hour) IN \
         (SELECT monitor_id, region, hour FROM {ROLLUP_KEYS} WHERE batch = toUUID(?)) \
         GROUP BY monitor_id, region, hour",
        exprs.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollup_fills_every_column() {
        let sql = rollup_sql();
        let columns = WINDOW_COLUMNS.split(',').count();
        let select = sql.split(" SELECT ").nth(1).unwrap();
        let list = select.split(" FROM (").next().unwrap();
        // Count top-level commas of the expression list.
        let mut depth = 0i32;
        let mut top_level = 1;
        for c in list.chars() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                ',' if depth == 0 => top_level += 1,
                _ => {}
            }
        }
        assert_eq!(top_level, columns);
    }

    #[test]
    fn rollup_statement_size_does_not_depend_on_the_batch() {
        // The only statement text is `rollup_sql()`; keys go in as insert data.
        let sql = rollup_sql();
        assert!(sql.len() < 16 * 1024, "{} bytes", sql.len());
        assert_eq!(sql.matches('?').count(), 4);
    }
}
