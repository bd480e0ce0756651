//! The configuration views: a `DashMap` of the latest spec of every monitor ([`MonitorView`],
//! fed by the compacted `vigil.monitors` topic), of every alert rule ([`RuleView`],
//! `vigil.rules`), and of the notification configuration (channels, the routing tree, silences
//! and maintenance windows), each read from the topic's beginning and then live. Silences and
//! maintenance windows share one topic and key space: each view skips the other kind's records,
//! and a key the other kind takes over leaves the view.
//!
//! A view records the next offset it will read on every partition, so a writer that knows the
//! offset Kafka gave its write can wait until the view has applied it ([`SpecView::wait_for`]),
//! which is how the API lets a client read its own writes. Each applied change is also sent to
//! the hub's channel for the `monitorChanged` / `ruleChanged` subscriptions.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use vigil_schema::{
    ChannelSpec, DecodeError, EventKind, MaintenanceSpec, MonitorSpec, RouteSpec, RuleSpec,
    SilenceSpec,
};

use crate::hub::SpecChange;
use crate::{Error, Result};

/// Configuration kept on a compacted topic keyed by its id.
pub trait Spec: vigil_schema::Event + std::fmt::Debug + Send + Sync + 'static {
    /// What one is called in messages (`monitor`).
    const NOUN: &'static str;
    /// The stable id, the Kafka key.
    fn id(&self) -> &str;
    /// Another kind of spec kept on the same topic, in the same key space.
    const SHARES_TOPIC_WITH: Option<EventKind> = None;

    /// What the audit log records of it (the whole spec, unless it holds secret material).
    fn audited(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self).ok()
    }
}

impl Spec for vigil_schema::vault::SealedSecret {
    const NOUN: &'static str = "secret";

    fn id(&self) -> &str {
        &self.name
    }

    /// Only who set it and when: not even the ciphertext.
    fn audited(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "name": self.name,
            "kek_id": self.kek_id,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }))
    }
}

impl Spec for vigil_schema::ApiKeyUsage {
    const NOUN: &'static str = "api key usage";

    fn id(&self) -> &str {
        &self.id
    }
}

impl Spec for vigil_schema::ApiKeyRecord {
    const NOUN: &'static str = "api key";

    fn id(&self) -> &str {
        &self.id
    }

    /// Without the key's digest.
    fn audited(&self) -> Option<serde_json::Value> {
        Some(self.redacted())
    }
}

impl Spec for MonitorSpec {
    const NOUN: &'static str = "monitor";

    fn id(&self) -> &str {
        &self.id
    }
}

impl Spec for RuleSpec {
    const NOUN: &'static str = "rule";

    fn id(&self) -> &str {
        &self.id
    }
}

impl Spec for ChannelSpec {
    const NOUN: &'static str = "channel";

    fn id(&self) -> &str {
        &self.id
    }
}

impl Spec for RouteSpec {
    const NOUN: &'static str = "routing tree";

    /// The tree is one record, keyed [`vigil_schema::topic::ROUTES_KEY`].
    fn id(&self) -> &str {
        vigil_schema::topic::ROUTES_KEY
    }
}

impl Spec for SilenceSpec {
    const NOUN: &'static str = "silence";
    const SHARES_TOPIC_WITH: Option<EventKind> = Some(EventKind::MaintenanceSpec);

    fn id(&self) -> &str {
        &self.id
    }
}

impl Spec for MaintenanceSpec {
    const NOUN: &'static str = "maintenance window";
    const SHARES_TOPIC_WITH: Option<EventKind> = Some(EventKind::SilenceSpec);

    fn id(&self) -> &str {
        &self.id
    }
}

impl Spec for vigil_schema::StatusPageSpec {
    const NOUN: &'static str = "status page";

    fn id(&self) -> &str {
        &self.id
    }
}

/// Latest spec of every id on one topic.
#[derive(Debug)]
pub struct SpecView<S> {
    specs: DashMap<String, Arc<S>>,
    /// Next offset to read, per partition.
    positions: watch::Sender<Vec<i64>>,
    /// Offsets that existed when the view started; it is caught up once past them.
    start_ends: std::sync::OnceLock<Vec<i64>>,
    changes: broadcast::Sender<SpecChange<S>>,
}

/// Latest spec of every monitor.
pub type MonitorView = SpecView<MonitorSpec>;
/// Latest spec of every alert rule.
pub type RuleView = SpecView<RuleSpec>;

impl<S: Spec> SpecView<S> {
    /// An empty view that sends applied changes to `changes`.
    pub fn new(changes: broadcast::Sender<SpecChange<S>>) -> Arc<Self> {
        Arc::new(Self {
            specs: DashMap::new(),
            positions: watch::channel(Vec::new()).0,
            start_ends: std::sync::OnceLock::new(),
            changes,
        })
    }

    /// The spec of `id`, if it exists.
    pub fn get(&self, id: &str) -> Option<Arc<S>> {
        self.specs.get(id).map(|e| Arc::clone(e.value()))
    }

    /// Every spec, in no particular order.
    pub fn all(&self) -> Vec<Arc<S>> {
        self.specs.iter().map(|e| Arc::clone(e.value())).collect()
    }

    /// Number of specs.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether the view holds no spec.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
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

    /// Applies one record of the topic: a spec (envelope) or a tombstone.
    /// Undecodable records are skipped with a warning; the position still advances.
    pub fn apply(&self, partition: i32, offset: i64, key: Option<&[u8]>, payload: Option<&[u8]>) {
        let change = match (key, payload) {
            (Some(key), None) => {
                let id = String::from_utf8_lossy(key).into_owned();
                self.specs.remove(&id).map(|_| SpecChange::Deleted(id))
            }
            (_, Some(payload)) => match vigil_schema::decode::<S>(payload) {
                Ok(spec) => {
                    let spec = Arc::new(spec);
                    self.specs.insert(spec.id().to_owned(), Arc::clone(&spec));
                    Some(SpecChange::Upserted(spec))
                }
                Err(DecodeError::WrongKind { found, .. })
                    if S::SHARES_TOPIC_WITH.is_some_and(|k| k as u8 == found) =>
                {
                    let id = key.map(|k| String::from_utf8_lossy(k).into_owned());
                    id.and_then(|id| self.specs.remove(&id).map(|_| SpecChange::Deleted(id)))
                }
                Err(error) => {
                    tracing::warn!(kind = S::NOUN, partition, offset, %error, "Skipped an undecodable spec.");
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
                        tracing::warn!(%topic, %error, "Spec view consumer error.");
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
    use crate::hub::MonitorChange;

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

    #[test]
    fn silences_and_maintenance_windows_share_one_key_space() {
        let silence: SilenceSpec = serde_json::from_value(serde_json::json!({
            "id": "x", "matchers": ["monitor=db"], "author": "ana",
            "starts_at": "2026-03-01T10:00:00Z", "ends_at": "2026-03-01T11:00:00Z",
        }))
        .unwrap();
        let window: MaintenanceSpec = serde_json::from_value(serde_json::json!({
            "id": "x", "matchers": ["monitor=db"],
            "schedule": {"recurring": {"cron": "0 2 * * *", "duration": "1h"}},
        }))
        .unwrap();
        let silences = SpecView::<SilenceSpec>::new(broadcast::channel(8).0);
        let windows = SpecView::<MaintenanceSpec>::new(broadcast::channel(8).0);
        let records = [
            vigil_schema::encode(&silence).unwrap(),
            vigil_schema::encode(&window).unwrap(),
        ];
        for (offset, bytes) in (0..).zip(&records) {
            silences.apply(0, offset, Some(b"x"), Some(bytes));
            windows.apply(0, offset, Some(b"x"), Some(bytes));
        }
        assert!(
            silences.is_empty(),
            "the key now holds a maintenance window"
        );
        assert_eq!(windows.get("x").as_deref(), Some(&window));
    }
}
