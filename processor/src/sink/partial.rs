//! Completing partial windows (corrections of windows no longer in memory) from the stored raw
//! probes, in bounded chunks: the keys travel as insert data into `rollup_keys`, the probes and
//! the stored rows' scores come back in one query each per chunk.

use std::collections::{BTreeMap, HashMap};

use clickhouse::Row;
use serde::Deserialize;
use vigil_schema::table::{PROBES, ROLLUP_KEYS, WINDOWS_1M};
use vigil_schema::{AnomalyScores, AssertionResult, Outcome, ProbeResult, Timestamp, Timings};

use super::Sink;
use crate::pipeline::EmittedWindow;
use crate::{Error, Result};

/// Most windows completed by one query: what a query returns is bounded by this many
/// windows' probes, whatever the batch holds.
const CHUNK: usize = 2_000;

type Key = (String, String, i64);

/// A stored raw probe, as much of it as a window counts.
#[derive(Debug, Row, Deserialize)]
struct StoredProbe {
    mid: String,
    reg: String,
    start_ms: i64,
    id: String,
    t_ms: i64,
    oc: String,
    status_code: u16,
    dns_us: Option<u64>,
    connect_us: Option<u64>,
    tls_us: Option<u64>,
    ttfb_us: Option<u64>,
    total_us: u64,
    failed_assertion: bool,
    cert_ms: Option<i64>,
}

impl StoredProbe {
    /// The event as a window counts it (the fields a window does not read are left empty).
    fn into_event(self) -> Result<(Key, ProbeResult)> {
        let bad = |what: &str| Error::Correction(format!("stored probe {}: bad {what}", self.id));
        let event_id = self.id.parse::<uuid::Uuid>().map_err(|_| bad("event id"))?;
        let outcome = Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == self.oc)
            .ok_or_else(|| bad("outcome"))?;
        // A window counts whether any assertion failed, not which.
        let assertions = match self.failed_assertion {
            true => vec![AssertionResult {
                condition: String::new(),
                passed: false,
                actual: None,
            }],
            false => Vec::new(),
        };
        let event = ProbeResult {
            event_id,
            monitor_id: String::new(),
            region: String::new(),
            agent: String::new(),
            scheduled_at: Timestamp::from_millis(self.t_ms),
            event_time: Timestamp::from_millis(self.t_ms),
            method: String::new(),
            url: String::new(),
            status_code: (self.status_code != 0).then_some(self.status_code),
            outcome,
            error: None,
            timings: Timings {
                dns_us: self.dns_us,
                connect_us: self.connect_us,
                tls_us: self.tls_us,
                ttfb_us: self.ttfb_us,
                total_us: self.total_us,
            },
            response_size: None,
            assertions,
            tls_cert_expiry: self.cert_ms.map(Timestamp::from_millis),
            steps: Vec::new(),
        };
        Ok(((self.mid, self.reg, self.start_ms), event))
    }
}

/// The scores a window was stored with.
#[derive(Debug, Row, Deserialize)]
struct StoredScores {
    mid: String,
    reg: String,
    start_ms: i64,
    anomaly_latency: f64,
    anomaly_errors: f64,
    anomaly_score: f64,
    anomaly_reason: String,
}

impl Sink {
    /// The partial windows among `windows`, completed from the stored raw probes (which must
    /// include this output's: write them first). Each chunk of at most 2,000 windows
    /// costs one insert of keys and two queries.
    pub async fn complete_partials(&self, windows: &[EmittedWindow]) -> Result<Vec<EmittedWindow>> {
        let mut by_len: BTreeMap<i64, Vec<&EmittedWindow>> = BTreeMap::new();
        for w in windows.iter().filter(|w| w.partial) {
            let s = &w.summary;
            let len = s.window_end.as_millis() - s.window_start.as_millis();
            by_len.entry(len).or_default().push(w);
        }
        let mut done = Vec::new();
        for (len, partials) in by_len {
            for chunk in partials.chunks(CHUNK) {
                done.extend(self.complete_chunk(len, chunk).await?);
            }
        }
        Ok(done)
    }

    async fn complete_chunk(
        &self,
        len: i64,
        chunk: &[&EmittedWindow],
    ) -> Result<Vec<EmittedWindow>> {
        let starts = chunk.iter().map(|w| w.summary.window_start.as_millis());
        let first = starts.clone().min().unwrap_or(0);
        let last = starts.max().unwrap_or(0) + len;
        let keys: Vec<(&str, &str, i64)> = chunk
            .iter()
            .map(|w| {
                let s = &w.summary;
                (
                    s.monitor_id.as_str(),
                    s.region.as_str(),
                    s.window_start.as_millis(),
                )
            })
            .collect();
        let batch = self.insert_keys(&keys).await?.to_string();

        // Aliases differ from the column names: an alias named like a column would replace it
        // inside WHERE.
        let keys = format!(
            "(SELECT monitor_id, region, toUnixTimestamp64Milli(hour) FROM {ROLLUP_KEYS} \
             WHERE batch = toUUID(?))"
        );
        let start = "intDiv(toUnixTimestamp64Milli(event_time), toInt64(?)) * toInt64(?)";
        let probes_sql = format!(
            "SELECT toString(monitor_id) AS mid, toString(region) AS reg, {start} AS start_ms, \
             toString(event_id) AS id, toUnixTimestamp64Milli(event_time) AS t_ms, \
             toString(outcome) AS oc, status_code, dns_us, connect_us, tls_us, ttfb_us, \
             total_us, has(assertion_passed, false) AS failed_assertion, \
             toUnixTimestamp64Milli(tls_cert_expiry) AS cert_ms \
             FROM {PROBES} \
             WHERE event_time >= fromUnixTimestamp64Milli(toInt64(?)) \
             AND event_time < fromUnixTimestamp64Milli(toInt64(?)) \
             AND (monitor_id, region, {start}) IN {keys}"
        );
        let stored = self
            .client
            .query(&probes_sql)
            .bind(len)
            .bind(len)
            .bind(first)
            .bind(last)
            .bind(len)
            .bind(len)
            .bind(batch.as_str())
            .fetch_all::<StoredProbe>()
            .await?;
        let mut probes: HashMap<Key, Vec<ProbeResult>> = HashMap::new();
        for p in stored {
            let (key, event) = p.into_event()?;
            probes.entry(key).or_default().push(event);
        }

        let scores_sql = format!(
            "SELECT toString(monitor_id) AS mid, toString(region) AS reg, \
             toUnixTimestamp64Milli(window_start) AS start_ms, anomaly_latency, anomaly_errors, \
             anomaly_score, anomaly_reason \
             FROM {WINDOWS_1M} FINAL \
             WHERE window_start >= fromUnixTimestamp64Milli(toInt64(?)) \
             AND window_start < fromUnixTimestamp64Milli(toInt64(?)) \
             AND (monitor_id, region, toUnixTimestamp64Milli(window_start)) IN {keys}"
        );
        let rows = self
            .client
            .query(&scores_sql)
            .bind(first)
            .bind(last)
            .bind(batch.as_str())
            .fetch_all::<StoredScores>()
            .await?;
        let mut scores: HashMap<Key, AnomalyScores> = rows
            .into_iter()
            .map(|r| {
                let scores = AnomalyScores {
                    latency: r.anomaly_latency,
                    errors: r.anomaly_errors,
                    combined: r.anomaly_score,
                    reason: r.anomaly_reason,
                };
                ((r.mid, r.reg, r.start_ms), scores)
            })
            .collect();

        chunk
            .iter()
            .map(|w| {
                let s = &w.summary;
                let key = (
                    s.monitor_id.clone(),
                    s.region.clone(),
                    s.window_start.as_millis(),
                );
                let stored = probes.get(&key).map(Vec::as_slice).unwrap_or_default();
                w.completed(stored, scores.remove(&key))
                    .map_err(Error::Correction)
            })
            .collect()
    }
}
