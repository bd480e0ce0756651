//! Rows the stage writes to ClickHouse.

use clickhouse::Row;
use serde::Serialize;
use uuid::Uuid;
use vigil_schema::{Delivery, Timestamp};

/// One row of `deliveries`.
#[derive(Debug, Clone, Row, Serialize)]
pub(super) struct DeliveryRow {
    #[serde(with = "clickhouse::serde::uuid")]
    delivery_id: Uuid,
    channel_id: String,
    #[serde(with = "clickhouse::serde::uuid")]
    idempotency_key: Uuid,
    #[serde(with = "uuids")]
    transition_ids: Vec<Uuid>,
    attempt: u32,
    status: String,
    http_status: Option<u16>,
    latency_ms: u64,
    error: String,
    retry_at: Option<i64>,
    at: i64,
}

mod uuids {
    use serde::Serializer;
    use serde::ser::SerializeSeq;
    use uuid::Uuid;

    pub(super) fn serialize<S: Serializer>(ids: &[Uuid], s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct One(#[serde(with = "clickhouse::serde::uuid")] Uuid);
        let mut seq = s.serialize_seq(Some(ids.len()))?;
        for id in ids {
            seq.serialize_element(&One(*id))?;
        }
        seq.end()
    }
}

impl From<&Delivery> for DeliveryRow {
    fn from(d: &Delivery) -> Self {
        Self {
            delivery_id: d.delivery_id,
            channel_id: d.channel_id.clone(),
            idempotency_key: d.idempotency_key,
            transition_ids: d.transition_ids.clone(),
            attempt: d.attempt,
            status: d.status.as_str().to_owned(),
            http_status: d.http_status,
            latency_ms: d.latency_ms,
            error: d.error.clone().unwrap_or_default(),
            retry_at: d.retry_at.map(Timestamp::as_millis),
            at: d.at.as_millis(),
        }
    }
}
