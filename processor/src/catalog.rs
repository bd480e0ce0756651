//! The alert rules and monitor tags the processor evaluates with: read from the compacted rules
//! and monitors topics from the beginning, then followed live.
//!
//! [`follow`] sends a fresh [`Catalog`] on a watch channel once both topics were read to their
//! end, and again after every change; the processing loop picks up the newest one between
//! records. A rule edit therefore applies from the next window evaluated.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use vigil_schema::{MonitorSpec, RuleSpec, TopicNames, decode};

use crate::{Error, Result};

/// Rules by id and monitor tags by monitor id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// Every rule on the rules topic (disabled ones included).
    pub rules: BTreeMap<String, RuleSpec>,
    /// Tags of every monitor.
    pub tags: HashMap<String, Vec<String>>,
}

impl Catalog {
    /// Applies one record of the rules or monitors topic (`None` or empty = tombstone).
    fn apply(&mut self, rules_topic: bool, key: &str, value: Option<&[u8]>) {
        let value = value.filter(|v| !v.is_empty());
        if rules_topic {
            match value.map(decode::<RuleSpec>) {
                None => {
                    self.rules.remove(key);
                }
                Some(Ok(rule)) => {
                    self.rules.insert(key.to_owned(), rule);
                }
                Some(Err(e)) => warn!(rule = key, error = %e, "Skipped an undecodable rule."),
            }
        } else {
            match value.map(decode::<MonitorSpec>) {
                None => {
                    self.tags.remove(key);
                }
                Some(Ok(spec)) => {
                    self.tags.insert(key.to_owned(), spec.tags);
                }
                Some(Err(e)) => warn!(monitor = key, error = %e, "Skipped an undecodable monitor."),
            }
        }
    }
}

/// Starts following the rules and monitors topics; the receiver yields the first catalog once
/// both were read to their end (within `timeout`, else an error).
pub async fn load(
    brokers: &str,
    topics: &TopicNames,
    timeout: Duration,
    token: CancellationToken,
) -> Result<watch::Receiver<Arc<Catalog>>> {
    let (tx, mut rx) = watch::channel(Arc::new(Catalog::default()));
    let brokers = brokers.to_owned();
    let topics = topics.clone();
    let follower = tokio::spawn(async move { follow(&brokers, &topics, tx, token).await });
    // Cancel-safe: both branches only observe; the follower keeps running in its task.
    tokio::select! {
        changed = tokio::time::timeout(timeout, rx.changed()) => match changed {
            Ok(Ok(())) => Ok(rx),
            _ => Err(Error::Config(format!(
                "the rules and monitors topics were not read within {timeout:?}"
            ))),
        },
        joined = follower => Err(match joined {
            Ok(Err(e)) => e,
            _ => Error::Config("the rules follower stopped".into()),
        }),
    }
}

/// Reads both topics from the beginning and sends the catalog once loaded and on every change.
async fn follow(
    brokers: &str,
    topics: &TopicNames,
    tx: watch::Sender<Arc<Catalog>>,
    token: CancellationToken,
) -> Result<()> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "vigil-processor-rules")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let timeout = Duration::from_secs(10);
    let mut assignment = TopicPartitionList::new();
    // Loaded once every partition was read up to its end offset as of now.
    let mut pending: HashMap<(String, i32), i64> = HashMap::new();
    for topic in [&topics.rules, &topics.monitors] {
        let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
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
            assignment.add_partition_offset(topic, p, Offset::Beginning)?;
            let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
            if high > low {
                pending.insert((topic.clone(), p), high);
            }
        }
    }
    consumer.assign(&assignment)?;
    let mut catalog = Catalog::default();
    let mut loaded = false;
    let announce = |catalog: &Catalog, loaded: &mut bool, pending: &HashMap<_, _>| {
        if *loaded {
            tx.send_replace(Arc::new(catalog.clone()));
        } else if pending.is_empty() {
            *loaded = true;
            info!(
                rules = catalog.rules.len(),
                monitors = catalog.tags.len(),
                "Loaded alert rules."
            );
            tx.send_replace(Arc::new(catalog.clone()));
        }
    };
    announce(&catalog, &mut loaded, &pending);
    let mut check = tokio::time::interval(Duration::from_millis(200));
    loop {
        // Cancel-safe: a message not yet returned stays queued; ticks only observe.
        let message = tokio::select! {
            () = token.cancelled() => return Ok(()),
            m = consumer.recv() => m,
            _ = check.tick(), if !loaded => {
                // Compaction may have removed the last offsets of a partition: whatever is
                // positioned at or past its end offset is loaded.
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
                announce(&catalog, &mut loaded, &pending);
                continue;
            }
        };
        match message {
            Ok(m) => {
                let rules_topic = m.topic() == topics.rules;
                if let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) {
                    catalog.apply(rules_topic, key, m.payload());
                }
                let at = (m.topic().to_owned(), m.partition());
                if pending.get(&at).is_some_and(|&high| m.offset() + 1 >= high) {
                    pending.remove(&at);
                }
                announce(&catalog, &mut loaded, &pending);
            }
            Err(e) => warn!(error = %e, "Error reading the rules topics; retrying."),
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_schema::encode;

    use super::*;

    #[test]
    fn records_and_tombstones_update_the_catalog() {
        let mut catalog = Catalog::default();
        let monitor: MonitorSpec = serde_json::from_value(serde_json::json!({
            "id": "api", "name": "API", "url": "https://example.com/", "tags": ["payments"]
        }))
        .unwrap();
        catalog.apply(false, "api", Some(&encode(&monitor).unwrap()));
        assert_eq!(catalog.tags["api"], ["payments"]);
        let rule: RuleSpec = serde_json::from_value(serde_json::json!({
            "id": "down", "condition": {"consecutive_failures": {}}
        }))
        .unwrap();
        catalog.apply(true, "down", Some(&encode(&rule).unwrap()));
        assert_eq!(catalog.rules["down"], rule);
        catalog.apply(true, "down", None);
        catalog.apply(false, "api", Some(&[]));
        assert!(catalog.rules.is_empty() && catalog.tags.is_empty());
        // Garbage is skipped, not fatal.
        catalog.apply(true, "bad", Some(b"{not json"));
        assert!(catalog.rules.is_empty());
    }
}
