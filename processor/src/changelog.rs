//! The alert evaluator's state changelog (the Kafka Streams pattern): a compacted topic keyed
//! like the state, partitioned like the probes topic (probes partition `p` → changelog
//! partition `p % n`).
//!
//! Each flush writes the state records its windows changed *before* the probes offsets are
//! committed, so the changelog is never behind the commit. When the processor starts owning a
//! probes partition it restores that partition's state by reading the changelog partition to its
//! end, then consumes probes from the committed offset; windows the restored state already
//! evaluated are recognised and skipped, so nothing fires twice and no resolve is lost.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::{Error, Result};

/// The changelog partition holding the state of probes partition `partition`.
pub fn partition_for(partition: i32, changelog_partitions: i32) -> i32 {
    partition.rem_euclid(changelog_partitions.max(1))
}

/// Number of partitions of `topic`.
pub fn partitions(brokers: &str, topic: &str) -> Result<i32> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let n = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .sum::<usize>();
    if n == 0 {
        return Err(Error::Config(format!(
            "topic {topic} has no partitions (does it exist?)"
        )));
    }
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

/// Reads one changelog partition from the beginning to its current end: the latest value of
/// every key (tombstones remove the key). Its offsets are asked on `client` (a client already
/// connected, such as the processor's consumer): an empty partition costs that one request, and
/// a consumer of its own is created only when there is something to read. Blocking; run it off
/// the async executor.
pub fn read_partition<X: ConsumerContext, C: Consumer<X>>(
    client: &C,
    brokers: &str,
    topic: &str,
    partition: i32,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let timeout = Duration::from_secs(10);
    let (low, high) = client.fetch_watermarks(topic, partition, timeout)?;
    let mut state = BTreeMap::new();
    if high <= low {
        return Ok(state);
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "vigil-alert-state-restore")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(low))?;
    consumer.assign(&tpl)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut next = low;
    while next < high {
        if std::time::Instant::now() > deadline {
            return Err(Error::Config(format!(
                "restoring {topic}/{partition} stalled at offset {next} of {high}"
            )));
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            // Compaction may have removed the last offsets: the position tells.
            let position = consumer.position()?;
            if let Some(Offset::Offset(o)) = position.elements().first().map(|e| e.offset())
                && o >= high
            {
                break;
            }
            continue;
        };
        let message = message?;
        next = message.offset() + 1;
        let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            continue;
        };
        match message.payload().filter(|p| !p.is_empty()) {
            Some(value) => {
                state.insert(key.to_owned(), value.to_vec());
            }
            None => {
                state.remove(key);
            }
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_partitions_map_onto_the_changelog() {
        assert_eq!(partition_for(0, 12), 0);
        assert_eq!(partition_for(11, 12), 11);
        assert_eq!(partition_for(13, 12), 1);
        assert_eq!(partition_for(5, 0), 0);
    }
}
