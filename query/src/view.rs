//! The monitors view: a `DashMap` of the latest spec of every monitor, fed by the compacted
//! `vigil.monitors` topic from its beginning and then live.
//!
//! The view records the next offset it will read on every partition, so a writer that knows the
//! offset Kafka gave its write can wait until the view has applied it ([`MonitorView::wait_for`]),
//! which is how the API lets a client read its own writes. Each applied change is also sent to
//! the hub's monitors channel for the `monitorChanged` subscription.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use vigil_schema::MonitorSpec;

use crate::hub::MonitorChange;
use crate::{Error, Result};

/// Latest spec of every monitor.
#[derive(Debug)]
pub struct MonitorView {
    monitors: DashMap<String, Arc<MonitorSpec>>,
    /// Next offset to read, per partition.
    positions: watch::Sender<Vec<i64>>,
    /// Offsets that existed when the view started; it is caught up once past them.
    start_ends: std::sync::OnceLock<Vec<i64>>,
    changes: broadcast::Sender<MonitorChange>,
}

impl MonitorView {
    /// An empty view that sends applied changes to `changes`.
    pub fn new(changes: broadcast::Sender<MonitorChange>) -> Arc<Self> {
        Arc::new(Self {
            monitors: DashMap::new(),
            positions: watch::channel(Vec::new()).0,
            start_ends: std::sync::OnceLock::new(),
            changes,
        })
    }

    /// The spec of `id`, if the monitor exists.
    pub fn get(&self, id: &str) -> Option<Arc<MonitorSpec>> {
        self.monitors.get(id).map(|e| Arc::clone(e.value()))
    }

    /// Every monitor, in no particular order.
    pub fn all(&self) -> Vec<Arc<MonitorSpec>> {
        self.monitors
            .iter()
            .map(|e| Arc::clone(e.value()))
            .collect()
    }

    /// Number of monitors.
    pub fn len(&self) -> usize {
        self.monitors.len()
    }

    /// Whether the view holds no monitor.
    pub fn is_empty(&self) -> bool {
        self.monitors.is_empty()
    }

    /// Whether the view has read everything that was in the topic when it started.
    pub fn is_caught_up(&self) -> bool {
        let Some(ends) = self.start_ends.get() else {
            return false;
        };
        let positions = self.positions.borrow();
        ends.iter()
            .enumerate()
            .all(|(p, end)| positions.get(p).copied().unwrap_or(0) >= *end)
    }

    /// Applies one record of the monitors topic: a spec (JSON envelope) or a tombstone.
    /// Undecodable records are skipped with a warning; the position still advances.
    pub fn apply(&self, partition: i32, offset: i64, key: Option<&[u8]>, payload: Option<&[u8]>) {
        let change = match (key, payload) {
            (Some(key), None) => {
                let id = String::from_utf8_lossy(key).into_owned();
                self.monitors
                    .remove(&id)
                    .map(|_| MonitorChange::Deleted(id))
            }
            (_, Some(payload)) => match vigil_schema::decode::<MonitorSpec>(payload) {
                Ok(spec) => {
                    let spec = Arc::new(spec);
                    self.monitors.insert(spec.id.clone(), Arc::clone(&spec));
                    Some(MonitorChange::Upserted(spec))
                }
                Err(error) => {
                    tracing::warn!(partition, offset, %error, "Skipped undecodable monitor spec.");
                    None
                }
            },
            (None, None) => None,
        };
        self.positions.send_modify(|positions| {
            let p = usize::try_from(partition).unwrap_or(0);
            if positions.len() <= p {
                positions.resize(p + 1, 0);
            }
            positions[p] = positions[p].max(offset + 1);
        });
        if let Some(change) = change {
            // No subscriber is fine.
            drop(self.changes.send(change));
        }
    }

    /// Waits until the view has applied `offset` of `partition`.
    pub async fn wait_for(&self, partition: i32, offset: i64, timeout: Duration) -> Result<()> {
        let p = usize::try_from(partition).unwrap_or(0);
        let mut rx = self.positions.subscribe();
        let seen = rx.wait_for(|positions| positions.get(p).is_some_and(|next| *next > offset));
        match tokio::time::timeout(timeout, seen).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(Error::NotVisible),
        }
    }

    /// Assigns every partition of `topic` from the beginning and returns the task that keeps
    /// the view up to date until `token` is cancelled.
    pub async fn start(
        self: &Arc<Self>,
        client: &ClientConfig,
        topic: &str,
        timeout: Duration,
        token: CancellationToken,
    ) -> Result<tokio::task::JoinHandle<()>> {
        let consumer: Arc<StreamConsumer> = Arc::new(crate::hub::live_consumer(client).create()?);
        let topic_name = topic.to_owned();
        let assigned = Arc::clone(&consumer);
        let ends = tokio::task::spawn_blocking(move || -> Result<Vec<i64>> {
            let metadata = assigned.fetch_metadata(Some(&topic_name), timeout)?;
            let mut list = TopicPartitionList::new();
            let mut ends = Vec::new();
            for t in metadata.topics() {
                for p in t.partitions() {
                    let (_, high) = assigned.fetch_watermarks(&topic_name, p.id(), timeout)?;
                    let index = usize::try_from(p.id()).unwrap_or(0);
                    if ends.len() <= index {
                        ends.resize(index + 1, 0);
                    }
                    ends[index] = high;
                    list.add_partition_offset(&topic_name, p.id(), Offset::Beginning)?;
                }
            }
            if list.count() == 0 {
                return Err(Error::Unavailable(format!(
                    "topic {topic_name} does not exist"
                )));
            }
            assigned.assign(&list)?;
            Ok(ends)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("consumer set-up task failed: {e}")))??;
        drop(self.start_ends.set(ends));
        let view = Arc::clone(self);
        let topic = topic.to_owned();
        Ok(tokio::spawn(async move {
            loop {
                // Cancel-safe: a message not yet returned by `recv` is not consumed.
                let message = tokio::select! {
                    () = token.cancelled() => break,
                    message = consumer.recv() => message,
                };
                match message {
                    Ok(m) => view.apply(m.partition(), m.offset(), m.key(), m.payload()),
                    Err(error) => {
                        tracing::warn!(%topic, %error, "Monitors view consumer error.");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str) -> MonitorSpec {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "url": "https://example.com/",
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn applies_specs_and_tombstones_and_wakes_writers() {
        let (tx, mut rx) = broadcast::channel(8);
        let view = MonitorView::new(tx);
        let bytes = vigil_schema::encode(&spec("a")).unwrap();
        view.apply(0, 0, Some(b"a"), Some(&bytes));
        assert_eq!(view.get("a").unwrap().id, "a");
        view.wait_for(0, 0, Duration::from_millis(10))
            .await
            .unwrap();
        assert!(matches!(
            view.wait_for(0, 1, Duration::from_millis(10)).await,
            Err(Error::NotVisible)
        ));
        view.apply(0, 1, Some(b"a"), None);
        assert!(view.get("a").is_none());
        view.wait_for(0, 1, Duration::from_millis(10))
            .await
            .unwrap();
        assert!(matches!(rx.recv().await.unwrap(), MonitorChange::Upserted(s) if s.id == "a"));
        assert_eq!(rx.recv().await.unwrap(), MonitorChange::Deleted("a".into()));
        // Garbage advances the position without changing the view.
        view.apply(0, 2, Some(b"b"), Some(b"not json"));
        assert!(view.is_empty());
        view.wait_for(0, 2, Duration::from_millis(10))
            .await
            .unwrap();
    }
}
