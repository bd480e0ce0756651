//! The live fan-out behind GraphQL subscriptions.
//!
//! Each topic (`vigil.windows`, `vigil.probes`, `vigil.alerts`, and `vigil.monitors` /
//! `vigil.rules` through the configuration views) is consumed once per process, from the end of every partition, and each event
//! is sent to a bounded `tokio::sync::broadcast` channel. Subscribers hold receivers: a slow one
//! falls behind and is told how many events it skipped (`Lagged`), never blocking the others or
//! growing memory past the channel's capacity.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use vigil_schema::{AlertTransition, Event, MonitorSpec, ProbeResult, RuleSpec, WindowSummary};

use crate::Result;
use crate::view::Spec;

/// A change seen on a configuration topic.
#[derive(Debug, PartialEq)]
pub enum SpecChange<S> {
    /// Created or updated.
    Upserted(Arc<S>),
    /// Deleted (tombstone).
    Deleted(String),
}

impl<S> Clone for SpecChange<S> {
    fn clone(&self) -> Self {
        match self {
            SpecChange::Upserted(spec) => SpecChange::Upserted(Arc::clone(spec)),
            SpecChange::Deleted(id) => SpecChange::Deleted(id.clone()),
        }
    }
}

/// A change seen on the monitors topic.
pub type MonitorChange = SpecChange<MonitorSpec>;
/// A change seen on the rules topic.
pub type RuleChange = SpecChange<RuleSpec>;

impl<S: Spec> SpecChange<S> {
    /// The id of the spec.
    pub fn id(&self) -> &str {
        match self {
            SpecChange::Upserted(spec) => spec.id(),
            SpecChange::Deleted(id) => id,
        }
    }
}

/// Broadcast senders of every live stream.
#[derive(Debug, Clone)]
pub struct Hub {
    /// Closed windows.
    pub windows: broadcast::Sender<Arc<WindowSummary>>,
    /// Raw probe results.
    pub probes: broadcast::Sender<Arc<ProbeResult>>,
    /// Alert transitions.
    pub alerts: broadcast::Sender<Arc<AlertTransition>>,
    /// Monitor changes.
    pub monitors: broadcast::Sender<MonitorChange>,
    /// Alert rule changes.
    pub rules: broadcast::Sender<RuleChange>,
    ready: Arc<[AtomicBool; 3]>,
    shutdown: CancellationToken,
}

impl Hub {
    /// Channels holding up to `buffer` events each; `shutdown` ends every live connection.
    pub fn new(buffer: usize, shutdown: CancellationToken) -> Self {
        Self {
            windows: broadcast::channel(buffer).0,
            probes: broadcast::channel(buffer).0,
            alerts: broadcast::channel(buffer).0,
            monitors: broadcast::channel(buffer).0,
            rules: broadcast::channel(buffer).0,
            ready: Arc::new([const { AtomicBool::new(false) }; 3]),
            shutdown,
        }
    }

    /// Cancelled when the service shuts down: WebSocket connections close then, so a graceful
    /// shutdown does not wait for subscribers to leave.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Whether every topic consumer is positioned (events produced from now on are delivered).
    pub fn is_ready(&self) -> bool {
        self.ready.iter().all(|r| r.load(Ordering::Acquire))
    }

    /// Starts one consumer per topic; they stop when `token` is cancelled.
    pub async fn start(
        &self,
        client: &ClientConfig,
        topics: &vigil_schema::TopicNames,
        timeout: Duration,
        token: &CancellationToken,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>> {
        let windows = feed(client, &topics.windows, timeout, self.windows.clone()).await?;
        let probes = feed(client, &topics.probes, timeout, self.probes.clone()).await?;
        let alerts = feed(client, &topics.alerts, timeout, self.alerts.clone()).await?;
        let mut handles = Vec::new();
        for (i, run) in [windows, probes, alerts].into_iter().enumerate() {
            self.ready[i].store(true, Ordering::Release);
            handles.push(tokio::spawn(run(token.child_token())));
        }
        Ok(handles)
    }
}

type Feed = Box<dyn FnOnce(CancellationToken) -> futures::future::BoxFuture<'static, ()> + Send>;

/// Assigns every partition of `topic` at its current end, and returns the task that forwards
/// decoded events to `sender`.
async fn feed<E>(
    client: &ClientConfig,
    topic: &str,
    timeout: Duration,
    sender: broadcast::Sender<Arc<E>>,
) -> Result<Feed>
where
    E: Event + Send + Sync + 'static,
{
    let consumer: Arc<StreamConsumer> = Arc::new(live_consumer(client).create()?);
    let topic_name = topic.to_owned();
    let assigned = Arc::clone(&consumer);
    tokio::task::spawn_blocking(move || -> Result<()> {
        let metadata = assigned.fetch_metadata(Some(&topic_name), timeout)?;
        let mut list = TopicPartitionList::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                let (_, high) = assigned.fetch_watermarks(&topic_name, p.id(), timeout)?;
                list.add_partition_offset(&topic_name, p.id(), Offset::Offset(high))?;
            }
        }
        assigned.assign(&list)?;
        Ok(())
    })
    .await
    .map_err(|e| crate::Error::Unavailable(format!("consumer set-up task failed: {e}")))??;
    let topic = topic.to_owned();
    Ok(Box::new(move |token: CancellationToken| {
        Box::pin(async move {
            loop {
                // Cancel-safe: `recv` holds no partial state; a message not yet returned is
                // simply not consumed.
                let message = tokio::select! {
                    () = token.cancelled() => break,
                    message = consumer.recv() => message,
                };
                match message {
                    Ok(message) => {
                        let Some(payload) = message.payload() else {
                            continue;
                        };
                        match vigil_schema::decode::<E>(payload) {
                            Ok(event) => {
                                metrics::counter!("vigil_query_live_events_total", "topic" => topic.clone())
                                    .increment(1);
                                // No receivers is fine: nobody is subscribed right now.
                                drop(sender.send(Arc::new(event)));
                            }
                            Err(error) => {
                                metrics::counter!("vigil_query_live_decode_errors_total", "topic" => topic.clone())
                                    .increment(1);
                                tracing::warn!(%topic, partition = message.partition(), offset = message.offset(), %error, "Skipped undecodable event.");
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%topic, %error, "Live consumer error.");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })
    }))
}

/// Consumer settings for reading without a consumer group's commits: every query process reads
/// every event, positioned explicitly.
pub(crate) fn live_consumer(client: &ClientConfig) -> ClientConfig {
    let mut config = client.clone();
    config
        .set("group.id", format!("vigil-query-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "10");
    config
}

/// Converts a receive result into the next item for a subscriber: `Ok(Some)` an event,
/// `Ok(None)` the stream ended, `Err(n)` the subscriber lagged and skipped `n` events.
pub(crate) async fn next_or_lag<T: Clone>(
    receiver: &mut broadcast::Receiver<T>,
) -> Result<Option<T>, u64> {
    match receiver.recv().await {
        Ok(item) => Ok(Some(item)),
        Err(broadcast::error::RecvError::Closed) => Ok(None),
        Err(broadcast::error::RecvError::Lagged(n)) => {
            metrics::counter!("vigil_query_subscriber_lagged_total").increment(n);
            Err(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slow_subscriber_is_told_what_it_missed() {
        let hub = Hub::new(2, CancellationToken::new());
        let mut slow = hub.monitors.subscribe();
        for id in ["a", "b", "c", "d"] {
            hub.monitors
                .send(MonitorChange::Deleted(id.into()))
                .unwrap();
        }
        assert_eq!(next_or_lag(&mut slow).await, Err(2));
        assert_eq!(
            next_or_lag(&mut slow).await,
            Ok(Some(MonitorChange::Deleted("c".into())))
        );
        assert_eq!(
            next_or_lag(&mut slow).await,
            Ok(Some(MonitorChange::Deleted("d".into())))
        );
    }
}
