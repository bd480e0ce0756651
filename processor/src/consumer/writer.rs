//! Writing one flush's output durably: dead letters, raw probes, window rows with their
//! rollups, alert transitions, the evaluator's changelog and the window summaries, each
//! acknowledged before the offsets behind it are committed.

use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use vigil_schema::topic::{REASON_HEADER, SOURCE_TOPIC_HEADER};
use vigil_schema::{AlertTransition, TopicNames, encode};

use super::early;
use crate::changelog;
use crate::health::{FailureStreak, Health, STALL_AFTER};
use crate::pipeline::{DeadLetter, EmittedWindow, Output, StateRecord};
use crate::sink::Sink;
use crate::{Error, Result};

/// Writes pipeline output: dead letters, raw probes, window rows (with rollups), summaries.
#[derive(Clone)]
pub(super) struct Writer {
    pub(super) producer: FutureProducer,
    pub(super) sink: Sink,
    pub(super) topics: TopicNames,
    pub(super) health: Health,
    /// Partitions of the alert-state changelog (0 when alerting is off).
    pub(super) changelog_partitions: i32,
}

impl Writer {
    /// Writes `output`, retrying with backoff until it succeeds (`true`) or `token` is
    /// cancelled (`false`: nothing is committed, a restart re-reads and rewrites it).
    pub(super) async fn write_until_done(
        &self,
        output: Output,
        early: early::Early,
        token: &CancellationToken,
    ) -> bool {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        let mut streak = FailureStreak::default();
        let mut early = Some(early);
        loop {
            // Deliveries of transitions sent ahead count on the first attempt only.
            let delivered = match early.take() {
                Some(early) => early.delivered().await,
                None => 0,
            };
            match self.write(&output, delivered).await {
                Ok(()) => {
                    if self.health.stalled().is_some() {
                        info!(elapsed = ?started.elapsed(), "Write stall cleared.");
                        self.health.set_stalled(None);
                        metrics::gauge!("vigil_processor_write_stalled").set(0.0);
                    }
                    debug!(
                        windows = output.windows.len(),
                        probes = output.probes.len(),
                        letters = output.dead_letters.len(),
                        elapsed = ?started.elapsed(),
                        "Flushed."
                    );
                    return true;
                }
                Err(e) => {
                    metrics::counter!("vigil_processor_write_errors_total").increment(1);
                    let cause = e.to_string();
                    let repeats = streak.record(&cause);
                    if repeats >= STALL_AFTER {
                        // The same failure every time: surface it instead of retrying quietly.
                        if repeats == STALL_AFTER {
                            metrics::counter!("vigil_processor_write_stalls_total").increment(1);
                        }
                        metrics::gauge!("vigil_processor_write_stalled").set(1.0);
                        self.health.set_stalled(Some(format!(
                            "writing window output failed {repeats} times in a row: {cause}"
                        )));
                        error!(
                            error = %e, repeats, windows = output.windows.len(),
                            probes = output.probes.len(), retry_in = ?backoff,
                            "Processor stalled: the same write error repeats; nothing is committed \
                             until it succeeds."
                        );
                    } else {
                        error!(error = %e, retry_in = ?backoff, "Writing window output failed; retrying.");
                    }
                    // Cancellation-safe: the output is kept until the next attempt.
                    tokio::select! {
                        () = token.cancelled() => return false,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Writes `output`, whose first `delivered` transitions are already on the alerts topic.
    async fn write(&self, output: &Output, delivered: usize) -> Result<()> {
        // Independent writes go out together; summaries are published only once their rows
        // are in ClickHouse, so a subscriber never sees a window it cannot query.
        // Transitions go out with the rows rather than after them, so an alert is not held
        // back by a slow ClickHouse insert. The evaluator state that produced them is written
        // only once they are durable: a restart restores that state and skips the windows it
        // has seen, so a state written ahead of its transitions would lose them for good. The
        // other way round a crash re-evaluates, and publishes the same ids again. Both are
        // durable before the offsets are committed.
        // A partial window (a correction of a window no longer in memory) is completed from
        // the stored raw probes, its own among them: those go first.
        let partial = output.windows.iter().any(|w| w.partial);
        let probes_and_windows = async {
            if partial {
                self.sink.write_probes(&output.probes).await?;
                self.sink.write_windows(&output.windows).await
            } else {
                let ((), completed) = tokio::try_join!(
                    self.sink.write_probes(&output.probes),
                    self.sink.write_windows(&output.windows),
                )?;
                Ok(completed)
            }
        };
        let ((), completed, (), ()) = tokio::try_join!(
            self.dead_letters(&output.dead_letters),
            probes_and_windows,
            self.sink.write_alerts(&output.transitions),
            self.publish_transitions(output.transitions.get(delivered..).unwrap_or_default()),
        )?;
        let written: Vec<&EmittedWindow> = output
            .windows
            .iter()
            .filter(|w| !w.partial)
            .chain(&completed)
            .collect();
        tokio::try_join!(
            self.write_changelog(&output.alert_state),
            self.publish(&written)
        )?;
        for t in &output.transitions {
            metrics::counter!("vigil_processor_alert_transitions_total",
                "kind" => t.kind.as_str(), "to" => t.to.as_str())
            .increment(1);
        }
        for w in &written {
            let kind = if w.correction { "correction" } else { "first" };
            metrics::counter!("vigil_processor_windows_emitted_total", "kind" => kind).increment(1);
        }
        Ok(())
    }

    async fn dead_letters(&self, letters: &[DeadLetter]) -> Result<()> {
        let topic = &self.topics.deadletter;
        let source = self.topics.probes.as_str();
        let sends = letters.iter().map(|letter| {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: REASON_HEADER,
                    value: Some(letter.reason.as_str()),
                })
                .insert(Header {
                    key: SOURCE_TOPIC_HEADER,
                    value: Some(source),
                })
                .insert(Header {
                    key: "vigil-source-partition",
                    value: Some(&letter.partition.to_string()),
                })
                .insert(Header {
                    key: "vigil-source-offset",
                    value: Some(&letter.offset.to_string()),
                });
            let mut record = FutureRecord::to(topic)
                .payload(&letter.payload)
                .headers(headers);
            if let Some(key) = &letter.key {
                record = record.key(key);
            }
            self.producer.send(record, Duration::from_secs(30))
        });
        for (letter, result) in letters.iter().zip(join_all(sends).await) {
            if let Err((e, _)) = result {
                return Err(Error::Produce {
                    topic: topic.clone(),
                    reason: e.to_string(),
                });
            }
            let kind = letter
                .reason
                .split(':')
                .next()
                .unwrap_or("invalid")
                .to_owned();
            warn!(partition = letter.partition, offset = letter.offset, reason = %letter.reason, "Event dead-lettered.");
            metrics::counter!("vigil_processor_deadletters_total", "reason" => kind).increment(1);
        }
        Ok(())
    }

    async fn publish_transitions(&self, transitions: &[AlertTransition]) -> Result<()> {
        let topic = &self.topics.alerts;
        let payloads: Vec<Vec<u8>> = transitions.iter().map(encode).collect::<Result<_, _>>()?;
        let sends = transitions.iter().zip(&payloads).map(|(t, payload)| {
            let record = FutureRecord::to(topic)
                .key(t.rule_id.as_bytes())
                .payload(payload)
                .timestamp(t.at.as_millis());
            self.producer.send(record, Duration::from_secs(30))
        });
        acknowledged(topic, sends).await
    }

    async fn write_changelog(&self, records: &[StateRecord]) -> Result<()> {
        if records.is_empty() || self.changelog_partitions == 0 {
            return Ok(());
        }
        let topic = &self.topics.alert_state;
        let keys: Vec<String> = records.iter().map(StateRecord::changelog_key).collect();
        let sends = records.iter().zip(&keys).map(|(r, key)| {
            let partition = changelog::partition_for(r.partition, self.changelog_partitions);
            let mut record = FutureRecord::<String, [u8]>::to(topic)
                .key(key)
                .partition(partition);
            if let Some(value) = &r.value {
                record = record.payload(&value[..]);
            }
            self.producer.send(record, Duration::from_secs(30))
        });
        acknowledged(topic, sends).await
    }

    async fn publish(&self, windows: &[&EmittedWindow]) -> Result<()> {
        let topic = &self.topics.windows;
        let payloads: Vec<Vec<u8>> = windows
            .iter()
            .map(|w| encode(&w.summary))
            .collect::<Result<_, _>>()?;
        let sends = windows.iter().zip(&payloads).map(|(w, payload)| {
            let record = FutureRecord::to(topic)
                .key(w.summary.monitor_id.as_bytes())
                .payload(payload)
                .timestamp(w.summary.window_end.as_millis());
            self.producer.send(record, Duration::from_secs(30))
        });
        acknowledged(topic, sends).await
    }
}

/// Waits for every send and fails with the first producer error, naming `topic`.
async fn acknowledged<F>(topic: &str, sends: impl IntoIterator<Item = F>) -> Result<()>
where
    F: std::future::Future<Output = rdkafka::producer::future_producer::OwnedDeliveryResult>,
{
    for result in join_all(sends).await {
        if let Err((e, _)) = result {
            return Err(Error::Produce {
                topic: topic.to_owned(),
                reason: e.to_string(),
            });
        }
    }
    Ok(())
}
