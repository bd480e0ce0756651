//! The notification configuration the stage evaluates with, read from the compacted channels,
//! routes, silences and monitors topics from the beginning and then followed live (of the
//! monitors, only their `depends_on`, which becomes the [`Suppressor`]'s dependencies).
//!
//! [`load`] returns once every topic was read to its end offset as of start-up; after that a
//! new [`Catalog`] is sent on the watch channel after every change. Invalid records are logged
//! and skipped (they were validated when written; a skipped one only means that channel, route
//! or silence is not in force).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use vigil_schema::{
    ChannelSpec, MaintenanceSpec, MonitorSpec, RouteSpec, SilenceSpec, TopicNames, decode,
};

use crate::route::Router;
use crate::silence::Suppressor;
use crate::{Error, Result};

/// Everything the core needs besides its own state.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Channels by id.
    pub channels: BTreeMap<String, ChannelSpec>,
    /// The routing tree.
    pub router: Router,
    /// Silences, maintenance windows and monitor dependencies.
    pub suppressor: Suppressor,
}

/// The raw records, rebuilt into a [`Catalog`] on change.
#[derive(Debug, Default)]
struct Records {
    channels: BTreeMap<String, ChannelSpec>,
    routes: Option<RouteSpec>,
    silences: BTreeMap<String, SilenceSpec>,
    maintenance: BTreeMap<String, MaintenanceSpec>,
    /// Monitor → the monitors it depends on (only monitors with dependencies).
    parents: HashMap<String, Vec<String>>,
}

impl Records {
    fn apply(&mut self, topics: &TopicNames, topic: &str, key: &str, value: Option<&[u8]>) {
        let value = value.filter(|v| !v.is_empty());
        if topic == topics.channels {
            match value.map(decode::<ChannelSpec>) {
                None => drop(self.channels.remove(key)),
                Some(Ok(spec)) => drop(self.channels.insert(key.to_owned(), spec)),
                Some(Err(e)) => warn!(channel = key, error = %e, "Skipped an undecodable channel."),
            }
        } else if topic == topics.routes {
            match value.map(decode::<RouteSpec>) {
                None => self.routes = None,
                Some(Ok(spec)) => self.routes = Some(spec),
                Some(Err(e)) => warn!(error = %e, "Skipped an undecodable routing tree."),
            }
        } else if topic == topics.monitors {
            match value.map(decode::<MonitorSpec>) {
                Some(Ok(spec)) if !spec.depends_on.is_empty() => {
                    drop(self.parents.insert(key.to_owned(), spec.depends_on));
                }
                Some(Err(e)) => warn!(monitor = key, error = %e, "Skipped an undecodable monitor."),
                _ => drop(self.parents.remove(key)),
            }
        } else if topic == topics.silences {
            self.silences.remove(key);
            self.maintenance.remove(key);
            if let Some(bytes) = value {
                if let Ok(spec) = decode::<SilenceSpec>(bytes) {
                    self.silences.insert(key.to_owned(), spec);
                } else if let Ok(spec) = decode::<MaintenanceSpec>(bytes) {
                    self.maintenance.insert(key.to_owned(), spec);
                } else {
                    warn!(
                        id = key,
                        "Skipped an undecodable silence or maintenance window."
                    );
                }
            }
        }
    }

    fn catalog(&self) -> Catalog {
        let router = match &self.routes {
            None => Router::default(),
            Some(spec) => Router::new(spec).unwrap_or_else(|errors| {
                warn!(?errors, "Routing tree rejected; using the default route.");
                Router::default()
            }),
        };
        let mut suppressor = Suppressor::new();
        for spec in self.silences.values() {
            if let Err(errors) = suppressor.add_silence(spec) {
                warn!(silence = spec.id, ?errors, "Silence rejected.");
            }
        }
        for spec in self.maintenance.values() {
            if let Err(errors) = suppressor.add_maintenance(spec) {
                warn!(
                    maintenance = spec.id,
                    ?errors,
                    "Maintenance window rejected."
                );
            }
        }
        suppressor.set_parents(self.parents.clone());
        Catalog {
            channels: self.channels.clone(),
            router,
            suppressor,
        }
    }
}

/// Starts following the configuration topics; the receiver holds the first catalog once every
/// topic was read to its end (within `timeout`).
pub async fn load(
    brokers: &str,
    topics: &TopicNames,
    timeout: Duration,
    token: CancellationToken,
) -> Result<watch::Receiver<Arc<Catalog>>> {
    let (tx, mut rx) = watch::channel(Arc::new(Catalog::default()));
    let (brokers, topics) = (brokers.to_owned(), topics.clone());
    let follower = tokio::spawn(async move { follow(&brokers, &topics, tx, token).await });
    // Cancel-safe: both branches only observe; the follower keeps running in its task.
    tokio::select! {
        changed = tokio::time::timeout(timeout, rx.changed()) => match changed {
            Ok(Ok(())) => Ok(rx),
            _ => Err(Error::Config(format!(
                "the notification configuration topics were not read within {timeout:?}"
            ))),
        },
        joined = follower => Err(match joined {
            Ok(Err(e)) => e,
            _ => Error::Config("the configuration follower stopped".into()),
        }),
    }
}

async fn follow(
    brokers: &str,
    topics: &TopicNames,
    tx: watch::Sender<Arc<Catalog>>,
    token: CancellationToken,
) -> Result<()> {
    let kafka = |e: rdkafka::error::KafkaError| Error::Config(format!("kafka: {e}"));
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "vigil-notify-config")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(kafka)?;
    let wait = Duration::from_secs(10);
    let mut assignment = TopicPartitionList::new();
    let mut pending: HashMap<(String, i32), i64> = HashMap::new();
    for topic in [
        &topics.channels,
        &topics.routes,
        &topics.silences,
        &topics.monitors,
    ] {
        let metadata = consumer.fetch_metadata(Some(topic), wait).map_err(kafka)?;
        let ids: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic.as_str())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if ids.is_empty() {
            return Err(Error::Config(format!(
                "topic {topic} has no partitions (does it exist?)"
            )));
        }
        for p in ids {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .map_err(kafka)?;
            let (low, high) = consumer.fetch_watermarks(topic, p, wait).map_err(kafka)?;
            if high > low {
                pending.insert((topic.clone(), p), high);
            }
        }
    }
    consumer.assign(&assignment).map_err(kafka)?;
    let mut records = Records::default();
    let mut loaded = false;
    let mut check = tokio::time::interval(Duration::from_millis(200));
    loop {
        // Cancel-safe: an unreturned message stays queued; ticks only observe.
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            m = consumer.recv() => match m {
                Ok(m) => {
                    if let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) {
                        records.apply(topics, m.topic(), key, m.payload());
                    }
                    let at = (m.topic().to_owned(), m.partition());
                    if pending.get(&at).is_some_and(|&high| m.offset() + 1 >= high) {
                        pending.remove(&at);
                    }
                    if loaded {
                        tx.send_replace(Arc::new(records.catalog()));
                    }
                }
                Err(e) => warn!(error = %e, "Error reading the notification configuration; retrying."),
            },
            _ = check.tick(), if !loaded => {
                // Compaction may have removed a partition's last offsets: the position tells.
                if let Ok(positions) = consumer.position() {
                    for e in positions.elements() {
                        let at = (e.topic().to_owned(), e.partition());
                        if let (Offset::Offset(o), Some(&high)) = (e.offset(), pending.get(&at))
                            && o >= high
                        {
                            pending.remove(&at);
                        }
                    }
                }
            }
        }
        if !loaded && pending.is_empty() {
            loaded = true;
            info!(
                channels = records.channels.len(),
                silences = records.silences.len(),
                maintenance = records.maintenance.len(),
                dependent_monitors = records.parents.len(),
                routes = records.routes.is_some(),
                "Loaded the notification configuration."
            );
            tx.send_replace(Arc::new(records.catalog()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use vigil_schema::{Timestamp, encode};

    use super::*;

    fn monitor(id: &str, depends_on: &[&str]) -> Vec<u8> {
        let spec: MonitorSpec = serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "url": "https://example.com/health",
            "depends_on": depends_on,
        }))
        .unwrap();
        encode(&spec).unwrap()
    }

    fn labels(monitor: &str) -> crate::alert::Labels {
        [("monitor".to_owned(), monitor.to_owned())].into()
    }

    #[test]
    fn monitor_dependencies_suppress_through_the_catalog() {
        let topics = TopicNames::with_prefix("t");
        let mut records = Records::default();
        records.apply(&topics, &topics.monitors, "db", Some(&monitor("db", &[])));
        records.apply(
            &topics,
            &topics.monitors,
            "api",
            Some(&monitor("api", &["db", "dns"])),
        );
        records.apply(
            &topics,
            &topics.monitors,
            "web",
            Some(&monitor("web", &["api"])),
        );
        records.apply(&topics, &topics.monitors, "bad", Some(b"not a monitor"));
        let at = Timestamp(0);
        let db_firing: BTreeSet<String> = ["db".to_owned()].into();
        let catalog = records.catalog();
        assert_eq!(
            catalog
                .suppressor
                .suppression(&labels("api"), "api", at, &db_firing),
            Some(crate::silence::Suppression::Dependency("db".into()))
        );
        assert_eq!(
            catalog
                .suppressor
                .suppression(&labels("web"), "web", at, &db_firing),
            None,
            "only direct parents count"
        );
        assert_eq!(
            catalog
                .suppressor
                .suppression(&labels("db"), "db", at, &db_firing),
            None
        );
        // A spec without dependencies, or a tombstone, removes them.
        records.apply(&topics, &topics.monitors, "api", Some(&monitor("api", &[])));
        assert_eq!(
            records
                .catalog()
                .suppressor
                .suppression(&labels("api"), "api", at, &db_firing),
            None
        );
        records.apply(&topics, &topics.monitors, "web", None);
        let api_firing: BTreeSet<String> = ["api".to_owned()].into();
        assert_eq!(
            records
                .catalog()
                .suppressor
                .suppression(&labels("web"), "web", at, &api_firing),
            None
        );
    }
}
