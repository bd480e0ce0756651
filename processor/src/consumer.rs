//! The live processor: consumes `vigil.probes` in the `vigil-processor` group, feeds the
//! [`Pipeline`], writes its output in batches, and commits offsets only after ClickHouse (and
//! the dead-letter and windows topics) acknowledged everything before them.
//!
//! Order of one flush: corrections and idle windows are emitted (and alert rules evaluated on
//! the windows that close) → dead letters, raw probes, window rows with their hourly rollups,
//! alert transitions (table and `vigil.alerts`) are written together → the evaluator's state
//! changelog (only once the transitions it implies are durable) and the summaries on
//! `vigil.windows` → windows written evicted (closed ones, or with raw probes not stored those
//! beyond the correction horizon) → offsets committed. A crash anywhere in between re-reads
//! from the previous commit and writes the same rows again. Raw probes go before the window rows
//! when a partial window (a correction of an evicted one) is completed from them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use vigil_schema::TopicNames;

use crate::health::Health;

mod alerting;
mod early;
mod positions;
mod prepare;
mod writer;

use crate::pipeline::{CommitPoint, Disposition, Pipeline};
use crate::sink::Sink;
use crate::{Config, Error, Result};
use alerting::Alerting;
use writer::Writer;

/// Where the processor reads and writes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Windowing and batching.
    pub config: Config,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Topic names.
    pub topics: TopicNames,
    /// ClickHouse client with Vigil's database selected.
    pub clickhouse: clickhouse::Client,
    /// Where a write stall is reported (readiness).
    pub health: Health,
}

/// Partitions revoked by the group coordinator, drained by the processing loop, and a signal
/// that partitions were assigned (to prepare them before their first records).
#[derive(Debug, Default)]
struct GroupContext {
    revoked: Mutex<Vec<i32>>,
    assigned: Arc<tokio::sync::Notify>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                info!(?partitions, "Partitions revoked.");
                if let Ok(mut revoked) = self.revoked.lock() {
                    revoked.extend(partitions);
                }
            }
            Rebalance::Assign(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                info!(?partitions, "Partitions assigned.");
            }
            Rebalance::Error(e) => warn!(error = %e, "Rebalance error."),
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.assigned.notify_one();
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _: &rdkafka::TopicPartitionList,
    ) {
        if let Err(e) = result {
            warn!(error = %e, "Offset commit failed; the next flush commits again.");
        }
    }
}

/// A producer with `acks=all` and idempotence, for dead letters and window summaries,
/// buffering at most `buffer_bytes` of unacknowledged records.
pub fn producer(brokers: &str, buffer_bytes: u64) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set(
            "queue.buffering.max.kbytes",
            (buffer_bytes / 1024).max(1024).to_string(),
        )
        .create()?)
}

/// Runs the processor until `token` is cancelled, then writes what is complete, commits and
/// returns.
pub async fn run(settings: Settings, token: CancellationToken) -> Result<()> {
    settings.config.validate()?;
    let cfg = settings.config.clone();
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &cfg.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // A fetch waits at most this long for new records: what an alert may lose to a broker
        // that answers a waiting fetch only at its deadline (librdkafka's default is 500 ms).
        .set("fetch.wait.max.ms", "50")
        // Records fetched ahead are bounded by bytes, as the window state is.
        .set(
            "queued.max.messages.kbytes",
            (cfg.fetch_buffer_bytes / 1024).max(1024).to_string(),
        )
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set(
            "max.poll.interval.ms",
            cfg.max_poll_interval.as_millis().max(10_000).to_string(),
        );
    if !cfg.instance_id.is_empty() {
        client.set("group.instance.id", &cfg.instance_id);
    }
    let consumer: StreamConsumer<GroupContext> =
        client.create_with_context(GroupContext::default())?;
    match cfg.parse_shard()? {
        None => consumer.subscribe(&[&settings.topics.probes])?,
        Some((i, n)) => {
            // Static shard: own partitions p % n == i, resume from the group's committed
            // offsets (or the earliest when none).
            let topic = &settings.topics.probes;
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
            let mut tpl = TopicPartitionList::new();
            for partition in metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic.as_str())
                .flat_map(|t| t.partitions())
                .map(|p| p.id())
                .filter(|p| p % n == i)
            {
                tpl.add_partition_offset(topic, partition, Offset::Stored)?;
            }
            if tpl.count() == 0 {
                return Err(Error::Config(format!(
                    "shard {i}/{n} owns no partition of {topic}"
                )));
            }
            info!(shard = %cfg.shard, partitions = tpl.count(), "Static shard assigned.");
            consumer.assign(&tpl)?;
        }
    }
    let producer = producer(&settings.brokers, cfg.produce_buffer_bytes)?;
    // The resume points' topic is new: a deployment upgraded without `vigil migrate` would
    // otherwise never commit (offsets wait for their point to be durable).
    {
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            ClientConfig::new()
                .set("bootstrap.servers", &settings.brokers)
                .create()?;
        let spec: Vec<_> = settings
            .topics
            .specs()
            .into_iter()
            .filter(|t| t.name == settings.topics.processor_positions)
            .collect();
        vigil_schema::kafka::ensure_topics(&admin, &spec, Duration::from_secs(10), 1)
            .await
            .map_err(|e| Error::Config(format!("creating the processor positions topic: {e}")))?;
    }
    let sink = Sink::new(settings.clickhouse.clone());

    let mut pipeline = Pipeline::new(cfg.clone());
    seed_detectors(&sink, &mut pipeline, &cfg).await;
    // The `monitors` table, for Grafana: follows the monitors topic alongside.
    {
        let (brokers, topic) = (settings.brokers.clone(), settings.topics.monitors.clone());
        let (client, token) = (settings.clickhouse.clone(), token.child_token());
        tokio::spawn(async move {
            if let Err(e) = crate::monitors_table::run(&brokers, &topic, client, token).await {
                error!(error = %e, "Materializing the monitors table stopped.");
            }
        });
    }
    let mut alerting = match cfg.alerting {
        true => Some(Alerting::start(&settings, &mut pipeline, &token).await?),
        false => None,
    };
    let mut worker = Worker {
        consumer: Arc::new(consumer),
        writer: Writer {
            producer,
            sink,
            topics: settings.topics.clone(),
            health: settings.health.clone(),
            changelog_partitions: alerting.as_ref().map_or(0, |a| a.changelog_partitions),
        },
        topics: settings.topics.clone(),
        last_commit: Vec::new(),
        brokers: settings.brokers.clone(),
        group: cfg.group_id.clone(),
        paused: false,
        prepared: Default::default(),
        in_flight: None,
        early: early::Early::default(),
        max_pending: cfg.batch_rows.saturating_mul(4),
    };
    info!(topic = %settings.topics.probes, group = %cfg.group_id, "Processor started.");

    let consumer = Arc::clone(&worker.consumer);
    // One stream for the whole run: its waker is registered once, not once per record.
    let mut stream = consumer.stream();
    let transitions_ready = pipeline.transitions_ready();
    let assigned = Arc::clone(&consumer.context().assigned);
    // A static shard is assigned already: its lookups start now, not at its first record.
    worker
        .prepare_assigned(None, &mut pipeline, alerting.as_ref())
        .await?;
    let mut tick = tokio::time::interval(cfg.batch_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        worker.apply_revocations(&mut pipeline);
        let over_cap = pipeline.window_heap_bytes() as u64 >= cfg.max_state_bytes
            || (cfg.max_windows > 0 && pipeline.windows_in_memory() >= cfg.max_windows);
        worker.set_paused(over_cap, &pipeline);
        tokio::select! {
            biased;
            // Cancellation-safe: nothing is in flight between iterations.
            () = token.cancelled() => break,
            _ = tick.tick() => {
                // Rule and monitor changes apply once per batch interval, not per record.
                if let Some(alerting) = &mut alerting {
                    alerting.refresh_rules(&mut pipeline);
                }
                worker.flush(&mut pipeline, &token, false).await?;
            }
            // Rules are evaluated on their own thread: transitions it finished since.
            () = transitions_ready.notified() => worker.publish_fresh(&mut pipeline),
            // Partitions assigned: their lookups overlap the first fetch.
            () = assigned.notified() => {
                worker.apply_revocations(&mut pipeline);
                worker.prepare_assigned(None, &mut pipeline, alerting.as_ref()).await?;
            }
            // `next` is cancellation-safe: a record not yet returned stays queued.
            message = stream.next() => {
                // The records already fetched are processed in one go (up to a burst or a
                // batch), without going back through the select for each one.
                let mut dispositions = [0u64; Disposition::ALL.len()];
                let mut next = message;
                let mut burst = 0;
                while let Some(message) = next.take() {
                    match message {
                        Ok(m) => {
                            worker.apply_revocations(&mut pipeline);
                            worker.prepare(m.partition(), &mut pipeline, alerting.as_ref()).await?;
                            let disposition = pipeline.process(
                                m.partition(),
                                m.offset(),
                                m.key(),
                                m.payload(),
                                now_ms(),
                            );
                            dispositions[disposition as usize] += 1;
                        }
                        Err(e) => warn!(error = %e, "Kafka consumer error."),
                    }
                    burst += 1;
                    if burst >= MAX_BURST || pipeline.pending() >= cfg.batch_rows {
                        break;
                    }
                    next = stream.next().now_or_never().flatten();
                }
                for d in Disposition::ALL {
                    if dispositions[d as usize] > 0 {
                        metrics::counter!("vigil_processor_events_total", "disposition" => d.as_str())
                            .increment(dispositions[d as usize]);
                    }
                }
                worker.publish_fresh(&mut pipeline);
                if pipeline.pending() >= cfg.batch_rows {
                    worker.flush(&mut pipeline, &token, false).await?;
                }
            }
        }
    }
    info!("Processor stopping: writing closed windows and committing.");
    // A bounded drain: if ClickHouse stays down, give up after the grace period (nothing
    // unwritten is committed, so a restart redoes it).
    let drain = CancellationToken::new();
    let deadline = drain.clone();
    let grace = cfg.shutdown_grace;
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        deadline.cancel();
    });
    worker.flush(&mut pipeline, &drain, true).await?;
    worker.commit_sync();
    Ok(())
}

/// Replays recent history into the detectors so a restart does not reset them.
async fn seed_detectors(sink: &Sink, pipeline: &mut Pipeline, cfg: &Config) {
    let now = now_ms();
    let since = now - cfg.anomaly_history.as_millis() as i64;
    match sink.history(since, now).await {
        Ok(points) => {
            let n = points.len();
            for p in points {
                pipeline.seed_detector(
                    &p.monitor_id,
                    &p.region,
                    p.start_ms,
                    p.p95_us,
                    1.0 - p.availability,
                    Some(p.scores()),
                );
            }
            info!(points = n, "Anomaly detectors seeded from window history.");
        }
        Err(e) => {
            warn!(error = %e, "Could not read window history; anomaly detectors start empty.")
        }
    }
}

/// Records processed in one go before the loop looks at its timer, cancellation and alert
/// transitions again.
const MAX_BURST: usize = 1_024;

/// Per-partition offsets to commit.
type Offsets = Vec<(i32, i64, CommitPoint)>;

struct Worker {
    consumer: Arc<StreamConsumer<GroupContext>>,
    writer: Writer,
    topics: TopicNames,
    last_commit: Offsets,
    /// Bootstrap servers (the positions topic is read with a consumer of its own).
    brokers: String,
    /// The consumer group, which positions are recorded under.
    group: String,
    paused: bool,
    /// Partitions whose resume point and alert state were looked up (see [`prepare`]) since
    /// they were last assigned.
    prepared: std::collections::HashSet<i32>,
    /// The batch being written, resolving to the offsets to commit once it is durable (`None`
    /// when it was abandoned at shutdown). At most one batch is in flight.
    in_flight: Option<JoinHandle<Result<Option<Offsets>>>>,
    /// Transitions of the batch being built already handed to the producer.
    early: early::Early,
    /// Items pending past which a flush waits for the batch in flight instead of letting
    /// consumption go on.
    max_pending: usize,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Publishes the transitions evaluated since the last call ahead of their batch.
    fn publish_fresh(&mut self, pipeline: &mut Pipeline) {
        let fresh = pipeline.fresh_transitions();
        if !fresh.is_empty() {
            let writer = &self.writer;
            self.early
                .send(&writer.producer, &writer.topics.alerts, fresh);
        }
    }

    fn apply_revocations(&mut self, pipeline: &mut Pipeline) {
        let revoked: Vec<i32> = match self.consumer.context().revoked.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => return,
        };
        for partition in revoked {
            pipeline.revoke(partition);
            self.prepared.remove(&partition);
            self.last_commit.retain(|(p, _, _)| *p != partition);
        }
    }

    /// Pauses fetching while the window cap is reached (back-pressure, nothing is dropped).
    fn set_paused(&mut self, over_cap: bool, pipeline: &Pipeline) {
        if over_cap == self.paused {
            return;
        }
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let result = if over_cap {
            warn!(
                windows = pipeline.windows_in_memory(),
                bytes = pipeline.window_heap_bytes(),
                "Window memory cap reached: pausing consumption until windows are evicted."
            );
            self.consumer.pause(&assignment)
        } else {
            info!("Below the window memory cap again: resuming consumption.");
            self.consumer.resume(&assignment)
        };
        match result {
            Ok(()) => {
                self.paused = over_cap;
                metrics::gauge!("vigil_processor_paused").set(if over_cap { 1.0 } else { 0.0 });
            }
            Err(e) => warn!(error = %e, "Could not pause or resume consumption."),
        }
    }

    /// Waits for the batch in flight (if any) and commits what it made durable.
    async fn settle(&mut self, pipeline: &Pipeline) -> Result<()> {
        let Some(handle) = self.in_flight.take() else {
            return Ok(());
        };
        match handle.await {
            Ok(Ok(Some(offsets))) => {
                self.commit(offsets, pipeline).await;
                Ok(())
            }
            Ok(Ok(None)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(Error::Config(format!("window writer task failed: {e}"))),
        }
    }

    /// Emits due windows and corrections and hands everything pending to a background write,
    /// so consumption continues while ClickHouse and Kafka acknowledge it. Offsets are
    /// computed now (they cover exactly what this batch holds plus the windows still in memory)
    /// and committed only after the write succeeded. With `wait`, also waits for it.
    async fn flush(
        &mut self,
        pipeline: &mut Pipeline,
        token: &CancellationToken,
        wait: bool,
    ) -> Result<()> {
        let started = Instant::now();
        // While a batch is being written, keep consuming (windows keep closing and their
        // alerts keep leaving) rather than wait for it, up to a bound on what accumulates.
        let busy = self.in_flight.as_ref().is_some_and(|h| !h.is_finished());
        if busy && !wait && pipeline.pending() < self.max_pending {
            return Ok(());
        }
        self.settle(pipeline).await?;
        pipeline.tick(now_ms());
        // Alert evaluation runs on its own thread: a running processor takes what it has done
        // (what it has not stays in memory, uncommitted, for the next flush); a final flush
        // waits for all of it.
        let output = match wait {
            true => pipeline.take_output(),
            false => pipeline.take_ready_output(),
        };
        let early = std::mem::take(&mut self.early);
        // Windows evicted here have their last version in `output`, which is retried until it
        // is written (or abandoned uncommitted), so the commit below never skips them.
        let evicted = pipeline.evict();
        let offsets = pipeline.commit_points();
        if output.is_empty() {
            self.commit(offsets, pipeline).await;
        } else {
            let writer = self.writer.clone();
            let token = token.clone();
            self.in_flight = Some(tokio::spawn(async move {
                let written = writer.write_until_done(output, early, &token).await;
                Ok(written.then_some(offsets))
            }));
        }
        if wait {
            self.settle(pipeline).await?;
        }
        metrics::histogram!("vigil_processor_flush_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::gauge!("vigil_processor_windows_in_memory")
            .set(pipeline.windows_in_memory() as f64);
        metrics::gauge!("vigil_processor_open_windows").set(pipeline.open_windows() as f64);
        let windows = pipeline.window_heap_bytes();
        let detectors = pipeline.detector_heap_bytes();
        metrics::gauge!("vigil_processor_state_bytes").set(pipeline.heap_bytes() as f64);
        metrics::gauge!("vigil_processor_window_bytes").set(windows as f64);
        metrics::gauge!("vigil_processor_detector_bytes").set(detectors as f64);
        metrics::gauge!("vigil_processor_alert_state_bytes")
            .set(pipeline.heap_bytes().saturating_sub(windows + detectors) as f64);
        metrics::counter!("vigil_processor_windows_evicted_total").increment(evicted as u64);
        for p in pipeline.partitions() {
            if let Some(w) = pipeline.watermark(p) {
                let lag = (now_ms() - w) as f64 / 1000.0;
                metrics::gauge!("vigil_processor_watermark_lag_seconds", "partition" => p.to_string()).set(lag);
            }
        }
        Ok(())
    }

    async fn commit(&mut self, mut offsets: Offsets, pipeline: &Pipeline) {
        // Never commit for partitions revoked since the offsets were computed.
        let owned = pipeline.partitions();
        offsets.retain(|(p, _, _)| owned.contains(p));
        if offsets == self.last_commit || offsets.is_empty() {
            return;
        }
        let Some(tpl) = self.offset_list(&offsets) else {
            return;
        };
        // The resume points first: an offset is committed only once its point is durable.
        let written = positions::write(
            &self.writer.producer,
            &self.topics.processor_positions,
            &self.group,
            &offsets,
        )
        .await;
        if !written {
            return;
        }
        match self.consumer.commit(&tpl, CommitMode::Async) {
            Ok(()) => {
                debug!(?offsets, "Committed offsets.");
                self.last_commit = offsets;
            }
            Err(e) => warn!(error = %e, "Offset commit failed; the next flush commits again."),
        }
    }

    fn commit_sync(&self) {
        if self.last_commit.is_empty() {
            return;
        }
        let Some(tpl) = self.offset_list(&self.last_commit) else {
            return;
        };
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
            warn!(error = %e, "Final offset commit failed; a restart re-reads a little more.");
        }
    }

    /// The probes-topic partition list committing `offsets` (`None` if one is invalid).
    /// The commit carries each partition's [`CommitPoint`] as its metadata.
    fn offset_list(&self, offsets: &[(i32, i64, CommitPoint)]) -> Option<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for &(partition, offset, point) in offsets {
            tpl.add_partition_offset(&self.topics.probes, partition, Offset::Offset(offset))
                .ok()?;
            tpl.find_partition(&self.topics.probes, partition)?
                .set_metadata(point.metadata());
        }
        Some(tpl)
    }
}

/// Wall-clock unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
