//! The Kafka producer of probe results: idempotent, `acks=all`, keyed by monitor id.
//!
//! Two ways in:
//! - [`ProbeProducer::send`] enqueues one result and returns its delivery future; the ingestion
//!   API awaits those so that a 202 means "in Kafka".
//! - [`ProbeSink`], for the scheduler: [`ProbeSink::offer`] never waits. Results go through a
//!   small hand-off queue to a forwarder task, then into librdkafka's own queue, which holds up
//!   to `producer.buffer` results while Kafka is slow or unreachable (`message.timeout.ms = 0`:
//!   no result is abandoned once queued). When both are full, new results are dropped, counted
//!   (`vigil_ingest_buffer_dropped_total`) and logged; the depth is on `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_schema::ProbeResult;

use crate::config::ProducerConfig;
use crate::{KafkaConnection, Result, metric};

/// Idempotent producer to the probes topic.
#[derive(Clone)]
pub struct ProbeProducer {
    producer: FutureProducer,
    topic: Arc<str>,
}

impl std::fmt::Debug for ProbeProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl ProbeProducer {
    /// Creates the producer (it connects lazily; an unreachable broker is not an error here).
    pub fn new(kafka: &KafkaConnection, config: &ProducerConfig) -> Result<Self> {
        let producer: FutureProducer = kafka
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "0")
            .set("linger.ms", config.linger.as_millis().to_string())
            .set(
                "queue.buffering.max.messages",
                config.buffer.clamp(1, 2_147_483_647).to_string(),
            )
            .set("compression.type", "lz4")
            .create()?;
        Ok(Self {
            producer,
            topic: Arc::from(kafka.topics.probes.as_str()),
        })
    }

    /// Enqueues one result; the future resolves when Kafka acknowledged it.
    pub fn send(&self, result: &ProbeResult) -> Result<DeliveryFuture, KafkaError> {
        let payload = vigil_schema::encode(result).map_err(|error| {
            tracing::error!(%error, "Failed to encode a probe result.");
            KafkaError::MessageProduction(RDKafkaErrorCode::InvalidMessage)
        })?;
        self.send_encoded(&result.monitor_id, &payload)
    }

    /// Enqueues an already-encoded result.
    pub fn send_encoded(&self, key: &str, payload: &[u8]) -> Result<DeliveryFuture, KafkaError> {
        let record = FutureRecord::<str, [u8]>::to(&self.topic)
            .key(key)
            .payload(payload);
        self.producer.send_result(record).map_err(|(e, _)| e)
    }

    /// Results queued in librdkafka and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        usize::try_from(self.producer.in_flight_count()).unwrap_or(0)
    }

    /// Waits up to `timeout` for everything queued to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }

    /// Whether a broker answers a metadata request within `timeout` (blocking call).
    pub fn reachable(&self, timeout: Duration) -> bool {
        self.producer
            .client()
            .fetch_metadata(Some(&self.topic), timeout)
            .is_ok()
    }
}

/// Where the scheduler puts results; never blocks.
pub trait Sink: Send + Sync + 'static {
    /// Hands one result over. Returns `false` if it was dropped because the buffer is full.
    fn offer(&self, result: ProbeResult) -> bool;
}

/// The scheduler's non-blocking hand-off to a [`ProbeProducer`].
#[derive(Debug, Clone)]
pub struct ProbeSink {
    tx: mpsc::Sender<ProbeResult>,
    dropped: Arc<AtomicU64>,
}

impl Sink for ProbeSink {
    fn offer(&self, result: ProbeResult) -> bool {
        match self.tx.try_send(result) {
            Ok(()) => true,
            Err(_) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::counter!(metric::BUFFER_DROPPED).increment(1);
                if dropped.is_power_of_two() {
                    tracing::error!(
                        dropped,
                        "Probe result buffer is full (Kafka slow or unreachable); dropping results."
                    );
                }
                false
            }
        }
    }
}

impl ProbeSink {
    /// Results dropped so far because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Results waiting in the hand-off queue.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Starts the forwarder from a new [`ProbeSink`] to `producer`. The task ends when `token` is
/// cancelled and everything handed over has been enqueued in the producer (call
/// [`ProbeProducer::flush`] afterwards to wait for acknowledgements).
pub fn spawn_forwarder(
    producer: ProbeProducer,
    config: &ProducerConfig,
    token: CancellationToken,
) -> (ProbeSink, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(config.buffer.clamp(1, 4096));
    let sink = ProbeSink {
        tx,
        dropped: Arc::new(AtomicU64::new(0)),
    };
    let handle = tokio::spawn(forward(producer, rx, sink.clone(), token));
    (sink, handle)
}

async fn forward(
    producer: ProbeProducer,
    mut rx: mpsc::Receiver<ProbeResult>,
    sink: ProbeSink,
    token: CancellationToken,
) {
    let mut deliveries = FuturesUnordered::new();
    let mut report = tokio::time::interval(Duration::from_secs(1));
    let mut stopping = false;
    let mut waiting_since: Option<tokio::time::Instant> = None;
    // Progress of acknowledgements, to tell the operator when Kafka stops taking results.
    let mut last_ack = tokio::time::Instant::now();
    let mut last_warning: Option<tokio::time::Instant> = None;
    loop {
        // Cancel-safe: `recv` and `next` lose nothing when another branch wins.
        tokio::select! {
            () = token.cancelled(), if !stopping => {
                stopping = true;
                rx.close();
            }
            result = rx.recv() => {
                let Some(result) = result else { break };
                let payload = match vigil_schema::encode(&result) {
                    Ok(payload) => payload,
                    Err(error) => {
                        tracing::error!(%error, monitor = result.monitor_id, "Dropped an unencodable probe result.");
                        continue;
                    }
                };
                loop {
                    match producer.send_encoded(&result.monitor_id, &payload) {
                        Ok(delivery) => {
                            deliveries.push(delivery);
                            waiting_since = None;
                            break;
                        }
                        Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) if token.is_cancelled() => {
                            metrics::counter!(metric::BUFFER_DROPPED).increment(1);
                            tracing::error!(monitor = result.monitor_id, "Shutting down with the producer buffer full; dropped a probe result.");
                            break;
                        }
                        Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                            let since = *waiting_since.get_or_insert_with(tokio::time::Instant::now);
                            if since.elapsed() > Duration::from_secs(10) {
                                tracing::warn!(buffered = producer.in_flight(), "Kafka is not acknowledging; the producer buffer is full.");
                                waiting_since = Some(tokio::time::Instant::now());
                            }
                            // Drain acknowledgements while waiting for room.
                            let _acked = tokio::time::timeout(Duration::from_millis(20), deliveries.next()).await;
                        }
                        Err(error) => {
                            metrics::counter!(metric::PRODUCE_ERRORS).increment(1);
                            tracing::error!(%error, monitor = result.monitor_id, "Failed to enqueue a probe result; dropped.");
                            break;
                        }
                    }
                }
            }
            Some(delivery) = deliveries.next() => {
                if record_delivery(delivery) {
                    last_ack = tokio::time::Instant::now();
                }
            }
            _ = report.tick() => {
                let depth = producer.in_flight() + sink.queued();
                metrics::gauge!(metric::BUFFER_DEPTH).set(depth as f64);
                let stalled = depth > 0 && last_ack.elapsed() >= STALL_WARNING;
                if stalled && last_warning.is_none_or(|w| w.elapsed() >= STALL_WARNING) {
                    tracing::warn!(
                        buffered = depth,
                        dropped = sink.dropped(),
                        stalled_s = last_ack.elapsed().as_secs(),
                        "Kafka is not acknowledging probe results; buffering in memory."
                    );
                    last_warning = Some(tokio::time::Instant::now());
                }
            }
        }
    }
    // Deliveries still pending are awaited by the caller's `flush`, which bounds the wait.
    metrics::gauge!(metric::BUFFER_DEPTH).set(producer.in_flight() as f64);
}

/// How long acknowledgements may stall, with results buffered, before a warning (repeated at
/// this period).
const STALL_WARNING: Duration = Duration::from_secs(10);

/// Counts one delivery report; `true` if Kafka acknowledged the result.
fn record_delivery(
    delivery: Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
) -> bool {
    match delivery {
        Ok(Ok(_)) => {
            metrics::counter!(metric::PRODUCED).increment(1);
            true
        }
        Ok(Err((error, _))) => {
            metrics::counter!(metric::PRODUCE_ERRORS).increment(1);
            tracing::error!(%error, "Kafka rejected a probe result; it is lost.");
            false
        }
        Err(_) => {
            metrics::counter!(metric::PRODUCE_ERRORS).increment(1);
            tracing::error!("The producer went away before acknowledging a probe result.");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_schema::TopicNames;

    use super::*;

    fn result(i: usize) -> ProbeResult {
        serde_json::from_value(serde_json::json!({
            "event_id": uuid::Uuid::now_v7(), "monitor_id": format!("m-{i}"), "region": "r",
            "agent": "a", "scheduled_at": 0, "event_time": 0, "method": "GET", "url": "http://x/",
            "status_code": 200, "outcome": "ok", "error": null,
            "timings": {"dns_us": null, "connect_us": null, "tls_us": null, "ttfb_us": null,
                        "total_us": 1},
            "response_size": 0, "assertions": [], "tls_cert_expiry": null,
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn unreachable_kafka_fills_a_bounded_buffer_without_blocking() {
        // Nothing listens on port 1: every result stays queued.
        let kafka = KafkaConnection {
            brokers: "127.0.0.1:1".into(),
            topics: TopicNames::with_prefix("sink-test"),
            request_timeout: Duration::from_secs(1),
        };
        let config = ProducerConfig {
            buffer: 50,
            ..ProducerConfig::default()
        };
        let producer = ProbeProducer::new(&kafka, &config).unwrap();
        let token = CancellationToken::new();
        let (sink, forwarder) = spawn_forwarder(producer.clone(), &config, token.clone());
        let mut accepted = 0;
        for i in 0..500 {
            if sink.offer(result(i)) {
                accepted += 1;
            }
            tokio::task::yield_now().await;
        }
        // Hand-off queue (50) plus librdkafka's queue (50), give or take what is in transit.
        assert!((50..=101).contains(&accepted), "accepted {accepted}");
        assert_eq!(sink.dropped(), 500 - accepted);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(producer.in_flight(), 50);
        token.cancel();
        forwarder.await.unwrap();
        assert!(producer.flush(Duration::from_millis(100)).is_err());
    }
}
