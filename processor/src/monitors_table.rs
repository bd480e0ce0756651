//! Materializes the compacted monitors topic into the ClickHouse `monitors` table, which
//! Grafana's monitor and tag variables and overview panels read.
//!
//! Every record becomes a row with `version` = its topic offset, so the newest spec of a monitor
//! wins under `FINAL`, and a tombstone becomes a row with `deleted = 1`. Rewriting the same
//! records (every start reads the topic from the beginning) writes identical rows, and several
//! processors writing at once agree. Literal secrets in headers and auth are redacted before
//! they reach the table (`${…}` references are kept): Grafana viewers must not read them.

use std::time::Duration;

use clickhouse::Row;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use vigil_schema::table::MONITORS;
use vigil_schema::{Auth, MonitorSpec, decode};

use crate::{Error, Result};

/// What replaces a literal secret in the table.
pub const REDACTED: &str = "[redacted]";

/// One row of `monitors`.
#[derive(Debug, Clone, PartialEq, Row, Serialize)]
#[allow(missing_docs)]
pub struct MonitorRow {
    pub monitor_id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub url: String,
    pub interval_ms: u64,
    pub enabled: bool,
    /// The spec as JSON, literal secrets redacted.
    pub spec: String,
    pub deleted: bool,
    /// The record's offset on the monitors topic.
    pub version: u64,
    /// The record's timestamp (unix ms).
    pub updated_at: i64,
}

impl MonitorRow {
    /// The row of one monitors-topic record (`None` value = tombstone).
    pub fn from_record(key: &str, value: Option<&[u8]>, offset: i64, at_ms: i64) -> Option<Self> {
        let version = u64::try_from(offset).ok()?;
        match value.filter(|v| !v.is_empty()) {
            None => Some(Self {
                monitor_id: key.to_owned(),
                name: String::new(),
                tags: Vec::new(),
                url: String::new(),
                interval_ms: 0,
                enabled: false,
                spec: String::new(),
                deleted: true,
                version,
                updated_at: at_ms,
            }),
            Some(bytes) => {
                let spec = redacted(decode::<MonitorSpec>(bytes).ok()?);
                Some(Self {
                    monitor_id: spec.id.clone(),
                    name: spec.name.clone(),
                    tags: spec.tags.clone(),
                    url: strip_userinfo(&spec.url),
                    interval_ms: spec.interval.as_millis() as u64,
                    enabled: spec.enabled,
                    spec: serde_json::to_string(&spec).ok()?,
                    deleted: false,
                    version,
                    updated_at: at_ms,
                })
            }
        }
    }
}

/// The spec with literal secrets (header values, auth secrets, URL user info) redacted.
pub fn redacted(mut spec: MonitorSpec) -> MonitorSpec {
    let hide = |value: &mut String| {
        let reference = value.starts_with("${") && value.ends_with('}');
        if !reference && !value.is_empty() {
            REDACTED.clone_into(value);
        }
    };
    for value in spec.headers.values_mut() {
        hide(value);
    }
    match &mut spec.auth {
        Auth::None => {}
        Auth::Basic { password, .. } => hide(password),
        Auth::Bearer { token } => hide(token),
        Auth::ApiKey { value, .. } => hide(value),
        Auth::Oauth2ClientCredentials { client_secret, .. } => hide(client_secret),
    }
    spec.url = strip_userinfo(&spec.url);
    spec
}

/// `scheme://user:pass@host/…` → `scheme://[redacted]@host/…`.
fn strip_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{REDACTED}{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// Follows the monitors topic from the beginning and writes its rows until `token` is
/// cancelled. Rows are written in batches; a failed write is retried (nothing is lost: the
/// next start reads the topic again anyway).
pub async fn run(
    brokers: &str,
    topic: &str,
    clickhouse: clickhouse::Client,
    token: CancellationToken,
) -> Result<()> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "vigil-processor-monitors-table")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for p in metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions())
    {
        assignment.add_partition_offset(topic, p.id(), Offset::Beginning)?;
    }
    if assignment.count() == 0 {
        return Err(Error::Config(format!("topic {topic} has no partitions")));
    }
    consumer.assign(&assignment)?;
    let mut pending: Vec<MonitorRow> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        // Cancel-safe: an unreturned message stays queued; pending rows are kept.
        tokio::select! {
            () = token.cancelled() => {
                write(&clickhouse, &mut pending).await;
                return Ok(());
            }
            _ = tick.tick() => write(&clickhouse, &mut pending).await,
            message = consumer.recv() => match message {
                Ok(m) => {
                    let key = m.key().and_then(|k| std::str::from_utf8(k).ok());
                    let at = m.timestamp().to_millis().unwrap_or(0);
                    if let Some(row) =
                        key.and_then(|k| MonitorRow::from_record(k, m.payload(), m.offset(), at))
                    {
                        pending.push(row);
                    }
                    if pending.len() >= 10_000 {
                        write(&clickhouse, &mut pending).await;
                    }
                }
                Err(e) => warn!(error = %e, "Error reading the monitors topic; retrying."),
            },
        }
    }
}

async fn write(clickhouse: &clickhouse::Client, pending: &mut Vec<MonitorRow>) {
    if pending.is_empty() {
        return;
    }
    let result = async {
        let mut insert = clickhouse.insert::<MonitorRow>(MONITORS).await?;
        for row in pending.iter() {
            insert.write(row).await?;
        }
        insert.end().await
    }
    .await;
    match result {
        Ok(()) => {
            debug!(rows = pending.len(), "Monitors table updated.");
            pending.clear();
        }
        Err(e) => {
            warn!(error = %e, rows = pending.len(), "Writing the monitors table failed; retrying.")
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_schema::encode;

    use super::*;

    #[test]
    fn rows_redact_secrets_and_tombstones_are_deleted_rows() {
        let spec: MonitorSpec = serde_json::from_value(serde_json::json!({
            "id": "api", "name": "API", "tags": ["payments"],
            "url": "https://user:hunter2@example.com/health?x=1",
            "headers": {"X-Token": "s3cret", "X-Tenant": "${TENANT}"},
            "auth": {"type": "bearer", "token": "tok"},
            "interval": "30s"
        }))
        .unwrap();
        let row = MonitorRow::from_record("api", Some(&encode(&spec).unwrap()), 7, 1_000).unwrap();
        assert_eq!(row.url, "https://[redacted]@example.com/health?x=1");
        assert_eq!(row.interval_ms, 30_000);
        assert_eq!(
            (row.version, row.deleted, row.updated_at),
            (7, false, 1_000)
        );
        assert_eq!(row.tags, ["payments"]);
        for secret in ["hunter2", "s3cret", "\"tok\""] {
            assert!(!row.spec.contains(secret), "{secret} in {}", row.spec);
        }
        assert!(row.spec.contains("${TENANT}"));
        let gone = MonitorRow::from_record("api", None, 9, 2_000).unwrap();
        assert!(gone.deleted);
        assert_eq!((gone.monitor_id.as_str(), gone.version), ("api", 9));
        assert!(MonitorRow::from_record("api", Some(b"garbage"), 10, 0).is_none());
    }
}
