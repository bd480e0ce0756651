//! `vigil replay`: recomputes windows from the probes topic into ClickHouse.
//!
//! It reads every partition from the first record at or after the start of the window holding
//! `from` up to the end offsets seen when it starts, with a throw-away consumer group (it never
//! commits, so it does not disturb the live processor), and writes through the same pipeline
//! and sink. Rows are deterministic and versioned by their event count, so a replay writes rows
//! identical to the live ones for complete windows; windows cut by `from`/`to` come out with a
//! lower version and lose against the complete rows under `FINAL`. Safe to run while the live
//! processor runs. Dead letters are not re-sent and summaries are not re-published.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::info;
use vigil_schema::{ProbeResult, decode};

use crate::consumer::{Settings, now_ms};
use crate::pipeline::Pipeline;
use crate::sink::Sink;
use crate::window::window_start;
use crate::{Error, Result};

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    /// Start (unix ms); rounded down to its window's start.
    pub from_ms: i64,
    /// End (unix ms, exclusive); `None` for everything currently in the topic.
    pub to_ms: Option<i64>,
    /// Only this monitor.
    pub monitor: Option<String>,
}

/// Progress of a replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayProgress {
    /// Records read.
    pub read: u64,
    /// Records to read in all.
    pub total: u64,
    /// Records that matched the request and were windowed.
    pub matched: u64,
    /// Window rows written.
    pub windows: u64,
}

/// Replays, calling `on_progress` after every batch. Returns the final progress.
pub async fn replay(
    settings: Settings,
    request: ReplayRequest,
    token: CancellationToken,
    mut on_progress: impl FnMut(&ReplayProgress),
) -> Result<ReplayProgress> {
    let mut cfg = settings.config.clone();
    cfg.validate()?;
    // Event time only: a slow replay must not close windows by the wall clock.
    cfg.idle_timeout = Duration::from_secs(100 * 365 * 24 * 3600);
    let window_ms = cfg.window_ms();
    let from = window_start(request.from_ms, window_ms);
    let topic = settings.topics.probes.clone();
    let mut progress = ReplayProgress::default();

    let Some(mut reader) = RangeReader::open(&settings.brokers, &topic, from).await? else {
        on_progress(&progress);
        return Ok(progress);
    };
    progress.total = reader.total;
    info!(
        from,
        partitions = reader.partitions,
        records = progress.total,
        "Replay started."
    );
    on_progress(&progress);
    let sink = Sink::new(settings.clickhouse.clone());
    let mut pipeline = Pipeline::new(cfg.clone());
    let history_from = from - cfg.anomaly_history.as_millis() as i64;
    for p in sink.history(history_from, from).await? {
        pipeline.seed_detector(
            &p.monitor_id,
            &p.region,
            p.start_ms,
            p.p95_us,
            1.0 - p.availability,
            Some(p.scores()),
        );
    }
    while let Some(message) = reader.next(&token).await? {
        let (p, offset) = (message.partition(), message.offset());
        progress.read += 1;
        if let Some(payload) = message.payload()
            && let Ok(event) = decode::<ProbeResult>(payload)
        {
            let t = event.event_time.as_millis();
            let in_range = t >= from && request.to_ms.is_none_or(|to| t < to);
            let wanted = request
                .monitor
                .as_deref()
                .is_none_or(|m| m == event.monitor_id);
            if in_range && wanted {
                progress.matched += 1;
                pipeline.process_event(p, offset, message.key(), payload, event, now_ms());
            }
        }
        if pipeline.pending() >= cfg.batch_rows {
            progress.windows += write(&sink, &mut pipeline).await?;
            on_progress(&progress);
        }
    }
    pipeline.finish();
    progress.windows += write(&sink, &mut pipeline).await?;
    on_progress(&progress);
    info!(
        read = progress.read,
        matched = progress.matched,
        windows = progress.windows,
        "Replay finished."
    );
    Ok(progress)
}

/// Reads every partition of a topic from the first record at or after a time up to the end
/// offsets seen when it opened, with a throw-away consumer group that never commits.
pub(crate) struct RangeReader {
    consumer: StreamConsumer,
    ends: HashMap<i32, i64>,
    /// Records to read in all.
    pub(crate) total: u64,
    /// Partitions of the topic.
    pub(crate) partitions: usize,
}

impl RangeReader {
    /// `None` when there is nothing to read.
    pub(crate) async fn open(brokers: &str, topic: &str, from_ms: i64) -> Result<Option<Self>> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("vigil-replay-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create()?;
        let timeout = Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(Error::Config(format!(
                "topic {topic} has no partitions (does it exist?)"
            )));
        }
        let mut by_time = TopicPartitionList::new();
        for &p in &partitions {
            by_time.add_partition_offset(topic, p, Offset::Offset(from_ms))?;
        }
        let starts = consumer.offsets_for_times(by_time, timeout)?;
        let mut assignment = TopicPartitionList::new();
        let mut ends: HashMap<i32, i64> = HashMap::new();
        let mut total = 0;
        for element in starts.elements() {
            let p = element.partition();
            let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
            let start = match element.offset() {
                Offset::Offset(o) => o.max(low),
                _ => high,
            };
            if start < high {
                assignment.add_partition_offset(topic, p, Offset::Offset(start))?;
                ends.insert(p, high);
                total += (high - start) as u64;
            }
        }
        if ends.is_empty() {
            return Ok(None);
        }
        consumer.assign(&assignment)?;
        Ok(Some(Self {
            consumer,
            ends,
            total,
            partitions: partitions.len(),
        }))
    }

    /// The next record, or `None` at the end (or when `token` is cancelled).
    pub(crate) async fn next(
        &mut self,
        token: &CancellationToken,
    ) -> Result<Option<rdkafka::message::BorrowedMessage<'_>>> {
        if self.ends.is_empty() {
            return Ok(None);
        }
        let message = tokio::select! {
            () = token.cancelled() => return Ok(None),
            m = self.consumer.recv() => m?,
        };
        let p = message.partition();
        if self
            .ends
            .get(&p)
            .is_some_and(|&end| message.offset() + 1 >= end)
        {
            self.ends.remove(&p);
        }
        Ok(Some(message))
    }
}

async fn write(sink: &Sink, pipeline: &mut Pipeline) -> Result<u64> {
    let output = pipeline.take_output();
    sink.write_probes(&output.probes).await?;
    sink.write_windows(&output.windows).await?;
    pipeline.evict();
    Ok(output.windows.len() as u64)
}
