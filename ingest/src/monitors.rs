//! The monitors view: every service's picture of the monitors, built by reading the compacted
//! monitors topic from the beginning and then following it live.
//!
//! [`MonitorView`] is a cheap-to-clone handle over a concurrent map (key = monitor id, value =
//! latest spec; a tombstone removes the entry). [`follow`] feeds it from Kafka; [`load`] starts
//! that in the background and returns once the topic has been read to its end, so a caller never
//! acts on a half-loaded picture. Other crates can reuse both.
//!
//! The same machinery reads any compacted configuration topic keyed by id ([`Spec`]):
//! [`RuleView`] and [`load_specs`] give `vigil apply` and `vigil export` the alert rules, and
//! [`ChannelView`], [`RouteView`] (one record keyed `root`), [`SilenceView`] and
//! [`MaintenanceView`] the notification configuration. Silences and maintenance windows share
//! one topic and one key space: each view skips the other kind's records, and a key taken over
//! by the other kind leaves the view.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use vigil_schema::{
    ChannelSpec, DecodeError, EventKind, MaintenanceSpec, MonitorSpec, RouteSpec, RuleSpec,
    SilenceSpec, TopicNames,
};

use crate::{Error, KafkaConnection, Result};

/// Configuration kept on a compacted topic: key = [`Spec::id`], tombstone = deleted.
pub trait Spec:
    vigil_schema::Event + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    /// What one is called in messages (`monitor`).
    const NOUN: &'static str;
    /// The stable id, the Kafka key.
    fn id(&self) -> &str;
    /// The topic holding them.
    fn topic(topics: &TopicNames) -> &str;
    /// Another kind of spec kept on the same topic, in the same key space.
    const SHARES_TOPIC_WITH: Option<EventKind> = None;
}

impl Spec for MonitorSpec {
    const NOUN: &'static str = "monitor";

    fn id(&self) -> &str {
        &self.id
    }

    fn topic(topics: &TopicNames) -> &str {
        &topics.monitors
    }
}

impl Spec for RuleSpec {
    const NOUN: &'static str = "rule";

    fn id(&self) -> &str {
        &self.id
    }

    fn topic(topics: &TopicNames) -> &str {
        &topics.rules
    }
}

impl Spec for ChannelSpec {
    const NOUN: &'static str = "channel";

    fn id(&self) -> &str {
        &self.id
    }

    fn topic(topics: &TopicNames) -> &str {
        &topics.channels
    }
}

impl Spec for RouteSpec {
    const NOUN: &'static str = "route";

    /// The tree is one record, keyed [`vigil_schema::topic::ROUTES_KEY`].
    fn id(&self) -> &str {
        vigil_schema::topic::ROUTES_KEY
    }

    fn topic(topics: &TopicNames) -> &str {
        &topics.routes
    }
}

impl Spec for SilenceSpec {
    const NOUN: &'static str = "silence";
    const SHARES_TOPIC_WITH: Option<EventKind> = Some(EventKind::MaintenanceSpec);

    fn id(&self) -> &str {
        &self.id
    }

    fn topic(topics: &TopicNames) -> &str {
        &topics.silences
    }
}

impl Spec for MaintenanceSpec {
    const NOUN: &'static str = "maintenance window";
    const SHARES_TOPIC_WITH: Option<EventKind> = Some(EventKind::SilenceSpec);

    fn id(&self) -> &str {
        &self.id
    }

    fn topic(topics: &TopicNames) -> &str {
        &topics.silences
    }
}

impl Spec for vigil_schema::StatusPageSpec {
    const NOUN: &'static str = "status page";

    fn id(&self) -> &str {
        &self.id
    }

    fn topic(topics: &TopicNames) -> &str {
        &topics.status_pages
    }
}

impl Spec for vigil_schema::vault::SealedSecret {
    const NOUN: &'static str = "secret";

    fn id(&self) -> &str {
        &self.name
    }

    fn topic(topics: &TopicNames) -> &str {
        &topics.secrets
    }
}

impl Spec for vigil_schema::ApiKeyRecord {
    const NOUN: &'static str = "api key";

    fn id(&self) -> &str {
        &self.id
    }

    fn topic(topics: &TopicNames) -> &str {
        &topics.api_keys
    }
}

/// A live, shared picture of the specs on one topic. Clones share the same map.
#[derive(Debug)]
pub struct SpecView<S> {
    inner: Arc<Inner<S>>,
}

/// The monitors, from the monitors topic.
pub type MonitorView = SpecView<MonitorSpec>;
/// The alert rules, from the rules topic.
pub type RuleView = SpecView<RuleSpec>;
/// The notification channels, from the channels topic.
pub type ChannelView = SpecView<ChannelSpec>;
/// The routing tree (at most one spec), from the routes topic.
pub type RouteView = SpecView<RouteSpec>;
/// The silences, from the silences topic.
pub type SilenceView = SpecView<SilenceSpec>;
/// The maintenance windows, from the silences topic.
pub type MaintenanceView = SpecView<MaintenanceSpec>;
/// The status pages, from the status pages topic.
pub type StatusPageView = SpecView<vigil_schema::StatusPageSpec>;

impl<S> Clone for SpecView<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
struct Inner<S> {
    specs: DashMap<String, Arc<S>>,
    /// Bumped on every change; receivers wake up to reconcile.
    version: watch::Sender<u64>,
    /// Whether the topic has been read to its end once.
    ready: watch::Sender<bool>,
}

impl<S: Spec> Default for SpecView<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Spec> SpecView<S> {
    /// An empty view, not yet ready.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                specs: DashMap::new(),
                version: watch::Sender::new(0),
                ready: watch::Sender::new(false),
            }),
        }
    }

    /// A ready view holding exactly `specs` (tests, tools that do not read Kafka).
    pub fn from_specs(specs: impl IntoIterator<Item = S>) -> Self {
        let view = Self::new();
        for spec in specs {
            view.upsert(spec);
        }
        view.mark_ready();
        view
    }

    /// The latest spec of `id`.
    pub fn get(&self, id: &str) -> Option<Arc<S>> {
        self.inner.specs.get(id).map(|e| Arc::clone(e.value()))
    }

    /// Whether `id` exists.
    pub fn contains(&self, id: &str) -> bool {
        self.inner.specs.contains_key(id)
    }

    /// Number of specs.
    pub fn len(&self) -> usize {
        self.inner.specs.len()
    }

    /// Whether there are no specs.
    pub fn is_empty(&self) -> bool {
        self.inner.specs.is_empty()
    }

    /// Every spec, sorted by id.
    pub fn snapshot(&self) -> Vec<Arc<S>> {
        let mut all: Vec<Arc<S>> = self
            .inner
            .specs
            .iter()
            .map(|e| Arc::clone(e.value()))
            .collect();
        all.sort_by(|a, b| a.id().cmp(b.id()));
        all
    }

    /// Inserts or replaces a spec.
    pub fn upsert(&self, spec: S) {
        let spec = Arc::new(spec);
        let changed = match self
            .inner
            .specs
            .insert(spec.id().to_owned(), Arc::clone(&spec))
        {
            Some(old) => old != spec,
            None => true,
        };
        if changed {
            self.inner.version.send_modify(|v| *v += 1);
        }
    }

    /// Removes a spec (a tombstone).
    pub fn remove(&self, id: &str) {
        if self.inner.specs.remove(id).is_some() {
            self.inner.version.send_modify(|v| *v += 1);
        }
    }

    /// Applies one record of the topic: a spec, or a tombstone (`None`). Records that do not
    /// decode, or whose spec id differs from the key, are skipped with a warning; a record of
    /// the kind sharing the topic removes the key quietly (the id now names the other kind).
    pub fn apply_record(&self, key: &str, value: Option<&[u8]>) {
        let Some(bytes) = value.filter(|v| !v.is_empty()) else {
            self.remove(key);
            return;
        };
        match vigil_schema::decode::<S>(bytes) {
            Ok(spec) if spec.id() == key => self.upsert(spec),
            Ok(spec) => tracing::warn!(
                kind = S::NOUN,
                key,
                spec_id = spec.id(),
                "Skipped a spec whose id differs from its key."
            ),
            Err(DecodeError::WrongKind { found, .. })
                if S::SHARES_TOPIC_WITH.is_some_and(|k| k as u8 == found) =>
            {
                self.remove(key);
            }
            Err(error) => {
                tracing::warn!(kind = S::NOUN, key, %error, "Skipped an undecodable spec.");
            }
        }
    }

    /// A receiver that changes whenever a spec is added, changed or removed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.version.subscribe()
    }

    /// Marks the view as loaded.
    pub fn mark_ready(&self) {
        self.inner.ready.send_replace(true);
    }

    /// Whether the topic has been read to its end once.
    pub fn is_ready(&self) -> bool {
        *self.inner.ready.borrow()
    }

    /// Waits until the view is loaded.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let mut ready = self.inner.ready.subscribe();
        match tokio::time::timeout(timeout, ready.wait_for(|r| *r)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::NotLoaded {
                kind: S::NOUN,
                timeout,
            }),
        }
    }
}

/// Reads the spec topic from the beginning into `view`, marks it ready at the end of every
/// partition, and keeps following it until `token` is cancelled.
pub async fn follow<S: Spec>(
    view: SpecView<S>,
    kafka: &KafkaConnection,
    token: CancellationToken,
) -> Result<()> {
    let topic = S::topic(&kafka.topics).to_owned();
    let consumer: StreamConsumer<ViewContext> = kafka
        .client_config()
        .set(
            "group.id",
            format!("vigil-{}s-view", S::NOUN.replace(' ', "-")),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create_with_context(ViewContext)?;
    let consumer = Arc::new(consumer);
    let partitions = {
        let consumer = Arc::clone(&consumer);
        let topic = topic.clone();
        let timeout = kafka.request_timeout;
        tokio::task::spawn_blocking(move || -> Result<Vec<i32>> {
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            Ok(metadata
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect())
        })
        .await
        .map_err(|e| Error::Serve(std::io::Error::other(e)))??
    };
    if partitions.is_empty() {
        return Err(Error::Kafka(KafkaError::MetadataFetch(
            rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
        )));
    }
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        assignment.add_partition_offset(&topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;

    let mut at_end: HashSet<i32> = HashSet::new();
    loop {
        // Cancel-safe: `recv` holds no state between polls; a cancelled receive loses nothing.
        let message = tokio::select! {
            () = token.cancelled() => return Ok(()),
            message = consumer.recv() => message,
        };
        match message {
            Ok(message) => {
                let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                    tracing::warn!(
                        topic,
                        partition = message.partition(),
                        offset = message.offset(),
                        "Skipped a record without a UTF-8 key."
                    );
                    continue;
                };
                view.apply_record(key, message.payload());
            }
            Err(KafkaError::PartitionEOF(p)) => {
                if at_end.insert(p) && at_end.len() == partitions.len() && !view.is_ready() {
                    tracing::info!(topic, specs = view.len(), "Loaded the topic.");
                    view.mark_ready();
                }
            }
            Err(error) => {
                tracing::warn!(topic, %error, "Error reading the topic; retrying.");
            }
        }
    }
}

/// Reaching the end of a partition is how the view learns it is loaded, not an error worth a
/// log line; other client errors are logged as librdkafka reports them.
struct ViewContext;

impl rdkafka::ClientContext for ViewContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let end_of_partition = matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        );
        if !end_of_partition {
            tracing::warn!(%error, reason, "Kafka client error while following a spec topic.");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ViewContext {}

/// Starts [`follow`] on the monitors topic in the background and waits until the topic has
/// been read to its end. The follower stops when `token` is cancelled; an error after loading
/// is logged.
pub async fn load(
    kafka: &KafkaConnection,
    timeout: Duration,
    token: CancellationToken,
) -> Result<MonitorView> {
    load_specs(kafka, timeout, token).await
}

/// [`load`] for any spec topic (`load_specs::<RuleSpec>` reads the alert rules).
pub async fn load_specs<S: Spec>(
    kafka: &KafkaConnection,
    timeout: Duration,
    token: CancellationToken,
) -> Result<SpecView<S>> {
    let view = SpecView::<S>::new();
    let follower = {
        let view = view.clone();
        let kafka = kafka.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let followed = follow(view.clone(), &kafka, token).await;
            // Before the view is ready the caller gets the error; afterwards only the log does.
            if let Err(error) = &followed
                && view.is_ready()
            {
                tracing::error!(kind = S::NOUN, %error, "Stopped following a spec topic.");
            }
            followed
        })
    };
    // Cancel-safe: both branches only observe; the follower keeps running in its task.
    tokio::select! {
        ready = view.wait_ready(timeout) => ready.map(|()| view),
        joined = follower => match joined {
            Ok(Err(error)) => Err(error),
            _ => Err(Error::NotLoaded {
                kind: S::NOUN,
                timeout,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, interval: u64) -> MonitorSpec {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "url": "http://127.0.0.1/", "interval": format!("{interval}s"),
        }))
        .unwrap()
    }

    #[test]
    fn records_upsert_and_tombstones_remove() {
        let view = MonitorView::new();
        let mut changes = view.subscribe();
        let a = vigil_schema::encode(&spec("a", 5)).unwrap();
        view.apply_record("a", Some(&a));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        view.apply_record("a", Some(&a));
        assert!(!changes.has_changed().unwrap(), "same spec is not a change");
        view.apply_record(
            "b",
            Some(b"{\"id\":\"b\",\"name\":\"b\",\"url\":\"http://x/\"}"),
        );
        assert_eq!(view.len(), 2);
        view.apply_record("c", Some(&a));
        view.apply_record("d", Some(b"garbage"));
        assert_eq!(view.len(), 2, "mismatched key and garbage are skipped");
        view.apply_record("a", None);
        view.apply_record("b", Some(b""));
        assert!(view.is_empty());
        assert!(changes.has_changed().unwrap());
    }

    #[test]
    fn silences_and_maintenance_share_a_key_space() {
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
        let silences = SilenceView::new();
        let windows = MaintenanceView::new();
        for (key, bytes) in [
            ("x", vigil_schema::encode(&silence).unwrap()),
            ("x", vigil_schema::encode(&window).unwrap()),
        ] {
            silences.apply_record(key, Some(&bytes));
            windows.apply_record(key, Some(&bytes));
        }
        assert!(
            silences.is_empty(),
            "the key now holds a maintenance window"
        );
        assert_eq!(windows.get("x").as_deref(), Some(&window));
        let routes = RouteView::new();
        let tree = vigil_schema::encode(&RouteSpec::default()).unwrap();
        routes.apply_record("root", Some(&tree));
        routes.apply_record("other", Some(&tree));
        assert_eq!(routes.len(), 1, "only the `root` key holds the tree");
    }

    #[tokio::test]
    async fn wait_ready_times_out_then_succeeds() {
        let view = MonitorView::new();
        let err = view
            .wait_ready(Duration::from_millis(10))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out after 10ms reading the monitors topic to its end"
        );
        view.mark_ready();
        view.wait_ready(Duration::from_millis(10)).await.unwrap();
        let snap = MonitorView::from_specs([spec("z", 1), spec("a", 2)]).snapshot();
        let ids: Vec<&str> = snap.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "z"]);
    }
}
