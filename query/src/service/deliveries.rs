//! Notification deliveries and the commands to the notification stage.
//!
//! Every attempt the stage makes is a row of the `deliveries` table (`ReplacingMergeTree` keyed
//! by the deterministic `delivery_id`, so reads use `FINAL`), listed newest first with a cursor
//! of (`at`, `delivery_id`). Acknowledgements and redeliveries are [`NotifyCommand`]s written to
//! the `notify-commands` topic; the stage applies them (the write answers once Kafka has the
//! command, not once it was applied).

use serde::Deserialize;
use uuid::Uuid;
use vigil_schema::{AlertAck, DeliveryStatus, NotifyCommand, Redeliver};

use crate::model::{AckInput, CommandAccepted, DeliveryAttempt, DeliveryPage, rfc3339};
use crate::params::{self, TimeRange};
use crate::service::channels::{decode, invalid};
use crate::service::{Param, Service};
use crate::{Error, Result};

/// The statuses a delivery attempt can have.
const STATUSES: [DeliveryStatus; 5] = [
    DeliveryStatus::Sent,
    DeliveryStatus::Failed,
    DeliveryStatus::Retrying,
    DeliveryStatus::GaveUp,
    DeliveryStatus::Disabled,
];

/// A delivery-log request, already parsed.
#[derive(Debug, Clone)]
pub struct DeliveryQuery {
    /// Only this channel.
    pub channel_id: Option<String>,
    /// Only attempts with this status.
    pub status: Option<DeliveryStatus>,
    /// Attempts with `at` in this range.
    pub range: TimeRange,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// Parses a delivery status filter (`sent`, `failed`, `retrying`, `gave_up`, `disabled`).
pub fn delivery_status(value: &str) -> Result<DeliveryStatus> {
    STATUSES
        .into_iter()
        .find(|s| s.as_str() == value)
        .ok_or_else(|| {
            let names: Vec<&str> = STATUSES.iter().map(|s| s.as_str()).collect();
            Error::bad_parameter(
                "status",
                format!("expected one of {}, got {value:?}", names.join(", ")),
            )
        })
}

fn bad_cursor() -> Error {
    params::unissued_cursor()
}

/// The listing statement and its parameters.
fn list_parts(q: &DeliveryQuery) -> Result<(String, Vec<Param>)> {
    let mut sql = String::from(
        "SELECT toString(delivery_id) AS did, toString(channel_id) AS ch, \
         toString(idempotency_key) AS ik, arrayMap(x -> toString(x), transition_ids) AS tids, \
         attempt, toString(status) AS st, http_status, latency_ms, error, \
         toUnixTimestamp64Milli(retry_at) AS retry_ms, toUnixTimestamp64Milli(at) AS at_ms \
         FROM deliveries FINAL WHERE at >= fromUnixTimestamp64Milli(toInt64(?)) \
         AND at < fromUnixTimestamp64Milli(toInt64(?))",
    );
    let mut params = vec![
        Param::Int(q.range.from.as_millis()),
        Param::Int(q.range.to.as_millis()),
    ];
    if let Some(channel) = &q.channel_id {
        sql.push_str(" AND channel_id = ?");
        params.push(Param::Str(channel.clone()));
    }
    if let Some(status) = q.status {
        sql.push_str(" AND status = ?");
        params.push(Param::Str(status.as_str().to_owned()));
    }
    if let Some(cursor) = &q.cursor {
        let parts = params::decode_cursor(cursor, 2)?;
        let ms: i64 = parts[0].parse().map_err(|_| bad_cursor())?;
        let id: Uuid = parts[1].parse().map_err(|_| bad_cursor())?;
        sql.push_str(" AND (at, delivery_id) < (fromUnixTimestamp64Milli(toInt64(?)), toUUID(?))");
        params.push(Param::Int(ms));
        params.push(Param::Str(id.to_string()));
    }
    sql.push_str(" ORDER BY at DESC, delivery_id DESC LIMIT ?");
    params.push(Param::Int(i64::from(q.limit) + 1));
    Ok((sql, params))
}

impl Service {
    /// Delivery attempts, newest first.
    pub async fn deliveries(&self, q: &DeliveryQuery) -> Result<DeliveryPage> {
        let (sql, params) = list_parts(q)?;
        let mut rows = self.bound(&sql, params).fetch_all::<Row>().await?;
        let limit = q.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|r| params::encode_cursor(&[&r.at_ms.to_string(), &r.did]))
        } else {
            None
        };
        Ok(DeliveryPage {
            items: rows.into_iter().map(DeliveryAttempt::from).collect(),
            next_cursor,
        })
    }

    /// Asks the notification stage to acknowledge a firing alert: 422 naming the invalid
    /// fields, 404 when the rule or the monitor does not exist.
    pub async fn acknowledge_alert(
        &self,
        input: serde_json::Value,
        author: &str,
    ) -> Result<CommandAccepted> {
        let input: AckInput = decode(input)?;
        let command = NotifyCommand::Ack(AlertAck {
            command_id: Uuid::now_v7(),
            rule_id: input.rule_id,
            monitor_id: input.monitor_id,
            region: input.region,
            author: author.to_owned(),
            comment: input.comment,
            at: self.now(),
        });
        command
            .validate()
            .map_err(|e| invalid("acknowledgement", e))?;
        if let NotifyCommand::Ack(ack) = &command {
            if self.rule_view().get(&ack.rule_id).is_none() {
                return Err(Error::NotFound {
                    kind: "rule",
                    id: ack.rule_id.clone(),
                });
            }
            self.spec(&ack.monitor_id)?;
        }
        self.send_command(&command, "ack", author).await
    }

    /// Asks the notification stage to send the notification of attempt `delivery_id` once
    /// more: 400 for a malformed id, 404 when the deliveries table has no such attempt.
    pub async fn redeliver(&self, delivery_id: &str, author: &str) -> Result<CommandAccepted> {
        let id: Uuid = delivery_id.parse().map_err(|_| {
            Error::bad_parameter(
                "delivery_id",
                format!("expected a UUID, got {delivery_id:?}"),
            )
        })?;
        let found = self
            .clickhouse()
            .query(
                "SELECT toString(channel_id) AS ch, toString(idempotency_key) AS ik \
                 FROM deliveries FINAL WHERE delivery_id = toUUID(?) LIMIT 1",
            )
            .bind(id.to_string())
            .fetch_optional::<Target>()
            .await?;
        let Some(target) = found else {
            return Err(Error::NotFound {
                kind: "delivery",
                id: id.to_string(),
            });
        };
        let idempotency_key: Uuid = target.ik.parse().map_err(|_| {
            Error::Unavailable(format!("delivery {id} has a malformed idempotency key"))
        })?;
        let command = NotifyCommand::Redeliver(Redeliver {
            command_id: Uuid::now_v7(),
            delivery_id: id,
            idempotency_key,
            channel_id: target.ch,
            author: author.to_owned(),
            at: self.now(),
        });
        self.send_command(&command, "redeliver", author).await
    }

    async fn send_command(
        &self,
        command: &NotifyCommand,
        kind: &str,
        author: &str,
    ) -> Result<CommandAccepted> {
        let bytes = vigil_schema::encode(command)?;
        let key = command.key();
        let record =
            rdkafka::producer::FutureRecord::<str, [u8]>::to(&self.inner.topics.notify_commands)
                .key(&key)
                .payload(&bytes);
        self.inner
            .producer
            .send(
                record,
                rdkafka::util::Timeout::After(self.inner.produce_timeout),
            )
            .await
            .map_err(|(e, _)| Error::Kafka(e))?;
        metrics::counter!("vigil_query_notify_commands_total", "kind" => kind.to_owned())
            .increment(1);
        Ok(CommandAccepted {
            command_id: command.command_id().to_string(),
            kind: kind.to_owned(),
            key,
            author: author.to_owned(),
        })
    }
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Target {
    ch: String,
    ik: String,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Row {
    did: String,
    ch: String,
    ik: String,
    tids: Vec<String>,
    attempt: u32,
    st: String,
    http_status: Option<u16>,
    latency_ms: u64,
    error: String,
    retry_ms: Option<i64>,
    at_ms: i64,
}

impl From<Row> for DeliveryAttempt {
    fn from(r: Row) -> Self {
        Self {
            delivery_id: r.did,
            channel_id: r.ch,
            idempotency_key: r.ik,
            transition_ids: r.tids,
            attempt: r.attempt,
            status: r.st,
            http_status: r.http_status,
            latency_ms: r.latency_ms,
            error: (!r.error.is_empty()).then_some(r.error),
            retry_at: r.retry_ms.map(rfc3339),
            at: rfc3339(r.at_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_schema::Timestamp;

    use super::*;
    use crate::service::inline;

    #[test]
    fn filters_bind_in_order_and_page_by_at_then_id() {
        let q = DeliveryQuery {
            channel_id: Some("ops'hook".into()),
            status: Some(DeliveryStatus::GaveUp),
            range: TimeRange {
                from: Timestamp::from_millis(1_000),
                to: Timestamp::from_millis(2_000),
            },
            cursor: Some(params::encode_cursor(&[
                "1500",
                "00000000-0000-0000-0000-000000000007",
            ])),
            limit: 10,
        };
        let (sql, params) = list_parts(&q).unwrap();
        let sql = inline(&sql, params);
        let clauses = sql.split(" FROM deliveries FINAL ").nth(1).unwrap();
        assert_eq!(
            clauses,
            "WHERE at >= fromUnixTimestamp64Milli(toInt64(1000)) \
             AND at < fromUnixTimestamp64Milli(toInt64(2000)) AND channel_id = 'ops\\'hook' \
             AND status = 'gave_up' AND (at, delivery_id) < \
             (fromUnixTimestamp64Milli(toInt64(1500)), \
             toUUID('00000000-0000-0000-0000-000000000007')) \
             ORDER BY at DESC, delivery_id DESC LIMIT 11"
        );
        let bad = DeliveryQuery {
            cursor: Some(params::encode_cursor(&["x", "y"])),
            ..q
        };
        assert!(matches!(
            list_parts(&bad).unwrap_err(),
            Error::InvalidParameter { ref parameter, .. } if parameter == "cursor"
        ));
        assert_eq!(delivery_status("gave_up").unwrap(), DeliveryStatus::GaveUp);
        assert!(
            delivery_status("lost")
                .unwrap_err()
                .to_string()
                .contains("expected one of sent, failed, retrying, gave_up, disabled")
        );
    }
}
