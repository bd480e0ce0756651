//! Where a restarted processor resumes each partition: the committed offset plus the
//! partition's watermark and read position at that commit ([`CommitPoint`]).
//!
//! The point travels twice: as the commit's metadata (kept by Kafka) and, written just before
//! the offset is committed, as a record of the compacted `vigil.processor-positions` topic
//! (for brokers that drop commit metadata). On resume the metadata is used when present;
//! otherwise the record, but only when its offset is exactly the committed one — a record
//! for another offset (a crash between the two writes, or offsets reset by an operator) is
//! ignored and the partition starts fresh.

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::Consumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tracing::warn;

use crate::pipeline::CommitPoint;

/// The record's key of `group` on `partition`.
fn key(group: &str, partition: i32) -> String {
    format!("{group}/{partition}")
}

/// `offset=<o> <metadata>`.
fn value(offset: i64, point: CommitPoint) -> String {
    format!("offset={offset} {}", point.metadata())
}

fn parse(value: &str) -> Option<(i64, CommitPoint)> {
    let rest = value.strip_prefix("offset=")?;
    let (offset, metadata) = rest.split_once(' ')?;
    Some((offset.parse().ok()?, CommitPoint::parse(metadata)?))
}

/// Writes the points of `offsets` and waits for them; `false` if any write failed (the
/// offsets must then not be committed).
pub(super) async fn write(
    producer: &FutureProducer,
    topic: &str,
    group: &str,
    offsets: &[(i32, i64, CommitPoint)],
) -> bool {
    let sends = offsets.iter().map(|&(partition, offset, point)| {
        let key = key(group, partition);
        let value = value(offset, point);
        async move {
            producer
                .send(
                    FutureRecord::to(topic).key(&key).payload(&value),
                    Timeout::After(Duration::from_secs(10)),
                )
                .await
        }
    });
    let results = futures::future::join_all(sends).await;
    match results.into_iter().find_map(Result::err) {
        None => true,
        Some((e, _)) => {
            warn!(error = %e, "Processor positions not written; the offsets are committed at the next flush.");
            false
        }
    }
}

/// The point to resume `partition` from, if its last commit recorded one. Blocking: run it
/// off the async executor.
pub(super) fn read<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    consumer: &C,
    brokers: &str,
    topics: (&str, &str),
    group: &str,
    partition: i32,
) -> Option<CommitPoint> {
    let (probes, positions) = topics;
    let mut ask = TopicPartitionList::new();
    ask.add_partition(probes, partition);
    let committed = match consumer.committed_offsets(ask, Duration::from_secs(10)) {
        Ok(tpl) => tpl,
        Err(e) => {
            warn!(partition, error = %e, "Could not read the committed offset; the partition starts fresh.");
            return None;
        }
    };
    let elem = committed.find_partition(probes, partition)?;
    if let Some(point) = CommitPoint::parse(elem.metadata()) {
        return Some(point);
    }
    let rdkafka::Offset::Offset(offset) = elem.offset() else {
        return None;
    };
    let records = match crate::changelog::read_partition(consumer, brokers, positions, 0) {
        Ok(records) => records,
        Err(e) => {
            warn!(partition, error = %e, "Could not read the processor positions; the partition starts fresh.");
            return None;
        }
    };
    let recorded = records
        .get(&key(group, partition))
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(parse)?;
    (recorded.0 == offset).then_some(recorded.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let point = CommitPoint {
            watermark: 1_700_000_000_000,
            read_until: 9,
            settled: 8,
        };
        let text = value(7, point);
        assert_eq!(text, "offset=7 vigil1 wm=1700000000000 read=9 settled=8");
        assert_eq!(parse(&text), Some((7, point)));
        assert_eq!(parse("offset=7"), None);
        assert_eq!(key("vigil-processor", 3), "vigil-processor/3");
    }
}
