//! `vigil notify`: the Kafka shell around the pure core.
//!
//! One loop consumes `vigil.alerts` and `vigil.notify-commands` (consumer group
//! `vigil-notify`, every partition of both) into [`State::observe`] and [`command::apply`]
//! (acknowledgements, redeliveries), and at every step runs [`State::tick`], the due retries
//! and the redeliveries, sends what is due, records every attempt on `vigil.deliveries` and in
//! the `deliveries` table, writes the whole state (groups, owed resolves, pending retries) and
//! the changed entries of the [`SentLog`] to the compacted `vigil.notify-state` changelog, and
//! only then commits the offsets of both topics. A crash anywhere before the commit restores
//! the previous state and re-reads the same transitions and commands, so every due
//! notification is sent again (with the same idempotency key) rather than lost, a resolve owed
//! to a channel stays owed until it was delivered, and an acknowledgement is applied again.
//!
//! The stage runs as a single instance: its state spans every group, so it owns every
//! partition of the alerts and commands topics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use vigil_schema::{
    AlertTransition, Delivery, DeliveryStatus, NotifyCommand, Timestamp, TopicNames, decode, encode,
};

use crate::catalog::{self, Catalog};
use crate::channel::{Context, Sender};
use crate::command::{self, Effect, SentLog};
use crate::delivery::{self, Answer, Retries, SendOutcome};
use crate::disabled::DisabledChannels;
use crate::group::{Inputs, Notification, State};
use crate::secret::SecretResolver;
use crate::{Config, Error, Result};
use row::DeliveryRow;
use vigil_schema::row::AlertRow;

/// The key of the one state record on the changelog.
const STATE_KEY: &str = "state";
/// The prefix of the keys of [`SentLog`] entries on the changelog (`sent/{idempotency key}`).
const SENT_PREFIX: &str = "sent/";

/// Where the stage reads and writes.
pub struct Settings {
    /// Rendering, timeouts and retries.
    pub config: Config,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Topic names.
    pub topics: TopicNames,
    /// ClickHouse client with Vigil's database selected (the `deliveries` table).
    pub clickhouse: clickhouse::Client,
    /// Consumer group on the alerts topic.
    pub group_id: String,
    /// Where `${secret:NAME}` references are resolved.
    pub secrets: Arc<dyn SecretResolver + Send + Sync>,
    /// The sender (console output goes to its writer).
    pub sender: Sender,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("brokers", &self.brokers)
            .field("topics", &self.topics)
            .field("group_id", &self.group_id)
            .finish_non_exhaustive()
    }
}

/// Everything restored after a restart.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    state: State,
    retries: Retries,
    /// Channels disabled by a 410 Gone, until their spec changes.
    disabled: DisabledChannels,
    /// The notifier's own alerts (a channel disabled or enabled again) to publish at the
    /// next step.
    #[serde(default)]
    raised: Vec<AlertTransition>,
    /// Redeliveries to send once at the next step: the notification and its attempt number.
    #[serde(default)]
    redeliveries: Vec<(Notification, u32)>,
    /// Attempts not recorded yet, recorded at the next step: redeliveries that cannot be made
    /// (as failed attempts), and attempts whose recording failed.
    #[serde(default)]
    rejected: Vec<Delivery>,
    /// Sends decided but not yet attempted, written before they go out (the notification,
    /// its attempt number, whether it is a one-off redelivery): a process killed while
    /// sending leaves its successor a state that knows what was notified (so the resolves
    /// owed for those firings are sent) and sends them again, with the same idempotency keys.
    #[serde(default)]
    pending: Vec<(Notification, u32, bool)>,
    /// Recently attempted notifications, written as records of their own.
    #[serde(skip)]
    sent: SentLog,
}

impl Persisted {
    /// Applies one command at `now`; what it needs sent or recorded waits for the next step.
    fn apply(&mut self, cmd: &NotifyCommand, now: Timestamp) {
        match command::apply(&mut self.state, &self.sent, cmd, now) {
            Effect::Acknowledged(keys) => {
                if let NotifyCommand::Ack(ack) = cmd {
                    let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
                    info!(
                        author = ack.author,
                        comment = ack.comment,
                        ?keys,
                        "Alert acknowledged."
                    );
                }
            }
            Effect::Resend {
                notification,
                attempt,
            } => {
                info!(
                    channel = notification.channel_id,
                    key = %notification.idempotency_key,
                    attempt,
                    "Redelivery planned."
                );
                self.redeliveries.push((notification, attempt));
            }
            Effect::Rejected(d) => {
                warn!(channel = d.channel_id, key = %d.idempotency_key, error = ?d.error, "Redelivery refused.");
                self.rejected.push(d);
            }
        }
    }
}

/// One notification to send now.
struct Due {
    notification: Notification,
    attempt: u32,
    /// A redelivery: one attempt, never retried.
    once: bool,
}

fn kafka(e: rdkafka::error::KafkaError) -> Error {
    Error::Config(format!("kafka: {e}"))
}

fn clickhouse_error(e: clickhouse::error::Error) -> Error {
    Error::Config(format!("clickhouse: {e}"))
}

/// Runs the stage until `token` is cancelled; `ready` flips to true once the configuration and
/// the state are loaded.
pub async fn run(
    settings: Settings,
    token: CancellationToken,
    ready: watch::Sender<bool>,
) -> Result<()> {
    settings.config.validate()?;
    let catalog = catalog::load(
        &settings.brokers,
        &settings.topics,
        Duration::from_secs(60),
        token.child_token(),
    )
    .await?;
    let mut persisted =
        changelog::restore(&settings.brokers, &settings.topics.notify_state).await?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        // A send not acknowledged within this fails the step (retried) rather than holding
        // every delivery for librdkafka's default five minutes.
        .set("message.timeout.ms", "30000")
        .create()
        .map_err(kafka)?;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(kafka)?;
    let topic = settings.topics.alerts.clone();
    let commands = settings.topics.notify_commands.clone();
    let mut assignment = TopicPartitionList::new();
    for name in [&topic, &commands] {
        let metadata = consumer
            .fetch_metadata(Some(name), Duration::from_secs(10))
            .map_err(kafka)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == name.as_str())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            warn!(topic = name, "Topic has no partitions; not consumed.");
        }
        for p in partitions {
            assignment
                .add_partition_offset(name, p, Offset::Stored)
                .map_err(kafka)?;
        }
    }
    consumer.assign(&assignment).map_err(kafka)?;
    info!(
        topic,
        commands,
        groups = persisted.state.group_count(),
        retries = persisted.retries.len(),
        sent = persisted.sent.len(),
        "Notification stage started."
    );
    let _ready = ready.send(true);

    let mut stage = Stage {
        settings,
        catalog,
        producer,
        offsets: BTreeMap::new(),
        dirty: true,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = token.cancelled() => break,
            // Cancel-safe: an unreturned message stays queued.
            m = consumer.recv() => match m {
                Ok(m) if m.topic() == commands => {
                    stage.offsets.insert((commands.clone(), m.partition()), m.offset() + 1);
                    stage.dirty = true;
                    match m.payload().map(decode::<NotifyCommand>) {
                        Some(Ok(cmd)) => match cmd.validate() {
                            Ok(()) => {
                                persisted.apply(&cmd, Timestamp::now());
                                metrics::counter!("vigil_notify_commands_total").increment(1);
                            }
                            Err(errors) => warn!(command = %cmd.command_id(), ?errors, "Skipped an invalid command."),
                        },
                        _ => warn!(partition = m.partition(), offset = m.offset(), "Skipped an undecodable command."),
                    }
                }
                Ok(m) => {
                    stage.offsets.insert((topic.clone(), m.partition()), m.offset() + 1);
                    stage.dirty = true;
                    match m.payload().map(decode::<AlertTransition>) {
                        Some(Ok(t)) => {
                            let catalog = Arc::clone(&stage.catalog.borrow());
                            let inputs = inputs(&catalog);
                            persisted.state.observe(&inputs, &t, Timestamp::now());
                            metrics::counter!("vigil_notify_transitions_total").increment(1);
                        }
                        _ => warn!(partition = m.partition(), offset = m.offset(), "Skipped an undecodable alert transition."),
                    }
                }
                Err(e) => warn!(error = %e, "Kafka consumer error."),
            },
            _ = tick.tick() => {
                if let Err(e) = stage.step(&mut persisted, &consumer).await {
                    error!(error = %e, "Notification step failed; retrying.");
                }
            }
        }
    }
    // Whatever was decided is persisted; nothing unsent is committed.
    stage.step(&mut persisted, &consumer).await?;
    info!("Notification stage stopped.");
    Ok(())
}

/// Bounds of one ClickHouse insert: the client has none by default, and a step that hangs on
/// a stalled connection would stop every delivery while the process looks healthy.
const INSERT_SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// See [`INSERT_SEND_TIMEOUT`]; includes the server's work on the insert.
const INSERT_END_TIMEOUT: Duration = Duration::from_secs(30);

struct Stage {
    settings: Settings,
    catalog: watch::Receiver<Arc<Catalog>>,
    producer: FutureProducer,
    /// Next offset to commit per (topic, partition) of the alerts and commands topics.
    offsets: BTreeMap<(String, i32), i64>,
    /// Whether anything changed since the state was last written.
    dirty: bool,
}

fn inputs(catalog: &Catalog) -> Inputs<'_> {
    Inputs {
        router: &catalog.router,
        channels: &catalog.channels,
        suppressor: &catalog.suppressor,
    }
}

impl Stage {
    /// Sends what is due, records the attempts, writes the state, commits.
    async fn step(&mut self, p: &mut Persisted, consumer: &StreamConsumer) -> Result<()> {
        let now = Timestamp::now();
        let catalog = Arc::clone(&self.catalog.borrow_and_update());
        let due_now = |notification, attempt, once| Due {
            notification,
            attempt,
            once,
        };
        let mut due: Vec<Due> = p
            .state
            .tick(&inputs(&catalog), now)
            .into_iter()
            .map(|n| due_now(n, 1, false))
            .collect();
        due.extend(
            p.retries
                .take_due(now)
                .into_iter()
                .map(|r| due_now(r.notification, r.attempt, false)),
        );
        due.extend(
            std::mem::take(&mut p.redeliveries)
                .into_iter()
                .map(|(n, attempt)| due_now(n, attempt, true)),
        );
        // Sends a previous process decided (and wrote ahead) but may not have made.
        due.extend(
            std::mem::take(&mut p.pending)
                .into_iter()
                .map(|(n, attempt, once)| due_now(n, attempt, once)),
        );
        let enabled = p.disabled.review(&catalog.channels, now);
        for t in &enabled {
            info!(
                channel = t.labels.get("channel"),
                "Disabled channel changed: enabled again."
            );
        }
        p.raised.extend(enabled);
        if due.is_empty() && !self.dirty && p.raised.is_empty() && p.rejected.is_empty() {
            return Ok(());
        }
        if !due.is_empty() {
            // Write ahead: the state that says these were notified, and the sends themselves,
            // are durable before anything goes out.
            p.pending = due
                .iter()
                .map(|d| (d.notification.clone(), d.attempt, d.once))
                .collect();
            // On failure nothing was sent: the sends stay pending for the next step.
            self.persist(p).await?;
            p.pending.clear();
        }
        let mut deliveries = std::mem::take(&mut p.rejected);
        deliveries.extend(self.send(&catalog, p, due, now).await);
        p.sent.prune(now);
        if let Err(e) = self.record(&deliveries).await {
            // Every attempt is recorded: the records go out with the next step.
            p.rejected = deliveries;
            return Err(e);
        }
        self.raise(&p.raised).await?;
        p.raised.clear();
        self.persist(p).await?;
        self.commit(consumer);
        self.dirty = false;
        Ok(())
    }

    async fn send(
        &self,
        catalog: &Catalog,
        p: &mut Persisted,
        due: Vec<Due>,
        now: Timestamp,
    ) -> Vec<Delivery> {
        let secrets: &dyn SecretResolver = self.settings.secrets.as_ref();
        let ctx = Context {
            external_url: &self.settings.config.external_url,
            secrets,
            now,
        };
        let mut sends = Vec::new();
        let mut deliveries = Vec::new();
        for Due {
            notification: n,
            attempt,
            once,
        } in due
        {
            let spec = catalog.channels.get(&n.channel_id);
            match spec {
                Some(spec) if spec.enabled && !p.disabled.contains(&n.channel_id) => {
                    sends.push(async move {
                        let outcome = self.settings.sender.send(spec, &n, &ctx).await;
                        (n, attempt, once, outcome)
                    });
                }
                _ if once => {
                    // A redelivery asked for by a person is answered in the delivery log.
                    let outcome = SendOutcome {
                        answer: Answer::Permanent(format!(
                            "redelivery failed: channel {} is missing or disabled",
                            n.channel_id
                        )),
                        latency: Duration::ZERO,
                    };
                    let policy = &self.settings.config.retry;
                    let decision =
                        delivery::decide(policy, n.idempotency_key, attempt, &outcome, now);
                    deliveries.push(delivery::record(&n, attempt, &outcome, &decision, now));
                }
                _ => debug!(
                    channel = n.channel_id,
                    "Channel missing or disabled; notification dropped."
                ),
            }
        }
        for (n, attempt, once, outcome) in join_all(sends).await {
            let policy = &self.settings.config.retry;
            let mut decision = delivery::decide(policy, n.idempotency_key, attempt, &outcome, now);
            if once && decision.status == DeliveryStatus::Retrying {
                decision.status = DeliveryStatus::GaveUp;
                decision.retry_at = None;
            }
            p.sent.remember(&n, attempt, now);
            let record = delivery::record(&n, attempt, &outcome, &decision, now);
            metrics::counter!("vigil_notify_deliveries_total",
                "channel" => n.channel_id.clone(), "status" => decision.status.as_str())
            .increment(1);
            match decision.status {
                DeliveryStatus::Sent => {}
                DeliveryStatus::Retrying => {
                    if let Some(at) = decision.retry_at {
                        p.retries.schedule(n.clone(), attempt + 1, at);
                    }
                    warn!(channel = n.channel_id, attempt, error = ?decision.error, "Notification failed; retrying.");
                }
                DeliveryStatus::Disabled => {
                    let reason = decision.error.clone().unwrap_or_default();
                    error!(channel = n.channel_id, %reason, "Channel answered 410 Gone: disabled until its spec changes.");
                    p.retries.drop_channel(&n.channel_id);
                    if let Some(spec) = catalog.channels.get(&n.channel_id)
                        && let Some(t) = p.disabled.disable(spec, reason, now)
                    {
                        p.raised.push(t);
                    }
                }
                DeliveryStatus::Failed | DeliveryStatus::GaveUp => {
                    error!(channel = n.channel_id, attempt, error = ?decision.error, "Notification not delivered.");
                }
            }
            deliveries.push(record);
        }
        deliveries
    }

    /// Publishes `items` on `topic`, each keyed by `key`, and waits for every acknowledgement.
    async fn publish<T: vigil_schema::Event>(
        &self,
        topic: &str,
        items: &[T],
        key: impl Fn(&T) -> &str,
    ) -> Result<()> {
        let payloads: Vec<Vec<u8>> = items
            .iter()
            .map(encode)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Config(e.to_string()))?;
        let sends = items.iter().zip(&payloads).map(|(item, payload)| {
            self.producer.send(
                FutureRecord::to(topic).key(key(item)).payload(payload),
                Duration::from_secs(30),
            )
        });
        for r in join_all(sends).await {
            r.map_err(|(e, _)| kafka(e))?;
        }
        Ok(())
    }

    /// Every attempt to the deliveries topic and table.
    async fn record(&self, deliveries: &[Delivery]) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        self.publish(&self.settings.topics.deliveries, deliveries, |d| {
            &d.channel_id
        })
        .await?;
        let table = async {
            let mut insert = self
                .settings
                .clickhouse
                .insert::<DeliveryRow>(vigil_schema::table::DELIVERIES)
                .await?
                .with_timeouts(Some(INSERT_SEND_TIMEOUT), Some(INSERT_END_TIMEOUT));
            for d in deliveries {
                insert.write(&DeliveryRow::from(d)).await?;
            }
            insert.end().await
        };
        table.await.map_err(clickhouse_error)
    }

    /// The notifier's own alert transitions, to the alerts topic and the `alerts` table: the
    /// routes bring them to the channels, the alerts API lists them.
    async fn raise(&self, transitions: &[AlertTransition]) -> Result<()> {
        if transitions.is_empty() {
            return Ok(());
        }
        self.publish(&self.settings.topics.alerts, transitions, |t| &t.monitor_id)
            .await?;
        let table = async {
            let mut insert = self
                .settings
                .clickhouse
                .insert::<AlertRow>(vigil_schema::table::ALERTS)
                .await?
                .with_timeouts(Some(INSERT_SEND_TIMEOUT), Some(INSERT_END_TIMEOUT));
            for t in transitions {
                insert.write(&AlertRow::from(t)).await?;
            }
            insert.end().await
        };
        table.await.map_err(clickhouse_error)?;
        metrics::counter!("vigil_notify_own_alerts_total").increment(transitions.len() as u64);
        Ok(())
    }

    /// The changed sent-log entries, then the whole state, to the changelog, acknowledged.
    async fn persist(&self, p: &mut Persisted) -> Result<()> {
        let topic = &self.settings.topics.notify_state;
        let changes: Vec<(String, Option<Vec<u8>>)> = p
            .sent
            .changes()
            .into_iter()
            .map(|(key, sent)| {
                let value = sent.map(serde_json::to_vec).transpose();
                value.map(|v| (format!("{SENT_PREFIX}{key}"), v))
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Config(e.to_string()))?;
        let sends = changes.iter().map(|(key, value)| {
            let mut record = FutureRecord::<str, [u8]>::to(topic).key(key);
            if let Some(value) = value {
                record = record.payload(value);
            }
            self.producer.send(record, Duration::from_secs(30))
        });
        for r in join_all(sends).await {
            r.map_err(|(e, _)| kafka(e))?;
        }
        p.sent.written();
        let value = serde_json::to_vec(&*p).map_err(|e| Error::Config(e.to_string()))?;
        self.producer
            .send(
                FutureRecord::to(&self.settings.topics.notify_state)
                    .key(STATE_KEY)
                    .payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| kafka(e))?;
        metrics::gauge!("vigil_notify_state_bytes").set(value.len() as f64);
        metrics::gauge!("vigil_notify_groups").set(p.state.group_count() as f64);
        metrics::gauge!("vigil_notify_retries_pending").set(p.retries.len() as f64);
        metrics::gauge!("vigil_notify_sent_log").set(p.sent.len() as f64);
        metrics::gauge!("vigil_notify_channels_disabled").set(p.disabled.len() as f64);
        Ok(())
    }

    fn commit(&self, consumer: &StreamConsumer) {
        if self.offsets.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), &offset) in &self.offsets {
            if tpl
                .add_partition_offset(topic, *partition, Offset::Offset(offset))
                .is_err()
            {
                return;
            }
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            warn!(error = %e, "Offset commit failed; the next step commits again.");
        }
    }
}

mod changelog;
mod row;
#[cfg(test)]
mod tests;
