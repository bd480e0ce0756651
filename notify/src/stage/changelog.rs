//! Restoring the stage from its `notify-state` changelog: the latest state record, and the
//! sent-log records (`sent/{idempotency key}`, a tombstone when evicted) put back one by one.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tracing::warn;
use uuid::Uuid;

use super::{Persisted, SENT_PREFIX, STATE_KEY, kafka};
use crate::command::{Sent, SentLog};
use crate::{Error, Result};

/// The latest state on the changelog (empty when there is none).
pub(super) async fn restore(brokers: &str, topic: &str) -> Result<Persisted> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || -> Result<Persisted> {
        use rdkafka::consumer::BaseConsumer;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "vigil-notify-restore")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(kafka)?;
        let wait = Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(&topic), wait).map_err(kafka)?;
        let mut latest: Option<Vec<u8>> = None;
        let mut sent = SentLog::new();
        for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) = consumer
                .fetch_watermarks(&topic, p.id(), wait)
                .map_err(kafka)?;
            if high <= low {
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, p.id(), Offset::Offset(low))
                .map_err(kafka)?;
            consumer.assign(&tpl).map_err(kafka)?;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                if std::time::Instant::now() > deadline {
                    return Err(Error::Config(format!("restoring {topic} stalled")));
                }
                let Some(m) = consumer.poll(Duration::from_millis(500)) else {
                    let position = consumer.position().map_err(kafka)?;
                    let at_end = position
                        .elements()
                        .first()
                        .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o >= high));
                    if at_end {
                        break;
                    }
                    continue;
                };
                let m = m.map_err(kafka)?;
                let key = m.key().and_then(|k| std::str::from_utf8(k).ok());
                if key == Some(STATE_KEY) {
                    latest = m.payload().map(<[u8]>::to_vec);
                } else if let Some(id) = key.and_then(|k| k.strip_prefix(SENT_PREFIX)) {
                    restore_sent(&mut sent, id, m.payload());
                }
                if m.offset() + 1 >= high {
                    break;
                }
            }
        }
        let mut persisted: Persisted = match latest {
            None => Persisted::default(),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Config(format!("undecodable notification state: {e}")))?,
        };
        persisted.sent = sent;
        Ok(persisted)
    })
    .await
    .map_err(|e| Error::Config(format!("restore task failed: {e}")))?
}

/// Applies one sent-log record of the changelog (an empty value is a tombstone).
pub(super) fn restore_sent(sent: &mut SentLog, id: &str, value: Option<&[u8]>) {
    let Ok(key) = id.parse::<Uuid>() else {
        warn!(key = id, "Skipped a sent-log record with a malformed key.");
        return;
    };
    match value.filter(|v| !v.is_empty()) {
        None => sent.restore(key, None),
        Some(bytes) => match serde_json::from_slice::<Sent>(bytes) {
            Ok(entry) => sent.restore(key, Some(entry)),
            Err(e) => warn!(%key, error = %e, "Skipped an undecodable sent-log record."),
        },
    }
}
