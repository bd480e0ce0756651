//! Before a partition's first record: where it resumes (see [`positions`](super::positions))
//! and, with alerting on, the evaluator's state of it (from the changelog).
//!
//! Both are lookups on the broker that take a round trip or a short read each. They are done
//! for every partition the consumer is assigned and has not prepared yet, concurrently, as soon
//! as the assignment is known (while the first fetch is under way), or at the latest when the
//! first record of any of them arrives: an assignment of n partitions costs one round of
//! lookups, not n rounds spread over the first records while consumption waits.

use std::sync::Arc;

use futures::future::join_all;
use rdkafka::consumer::Consumer;
use tracing::{info, warn};

use super::alerting::Alerting;
use super::{Worker, positions};
use crate::Result;
use crate::pipeline::{CommitPoint, Pipeline};

impl Worker {
    /// Prepares `partition` (and every other assigned partition not prepared yet) unless it is
    /// prepared already: cheap to call before every record.
    pub(super) async fn prepare(
        &mut self,
        partition: i32,
        pipeline: &mut Pipeline,
        alerting: Option<&Alerting>,
    ) -> Result<()> {
        if self.prepared.contains(&partition) || pipeline.has_partition(partition) {
            return Ok(());
        }
        self.prepare_assigned(Some(partition), pipeline, alerting)
            .await
    }

    /// Prepares every assigned partition not prepared yet (and `also`, if given): called when
    /// an assignment arrives, before its first records.
    pub(super) async fn prepare_assigned(
        &mut self,
        also: Option<i32>,
        pipeline: &mut Pipeline,
        alerting: Option<&Alerting>,
    ) -> Result<()> {
        let mut partitions: Vec<i32> = match self.consumer.assignment() {
            Ok(tpl) => tpl
                .elements_for_topic(&self.topics.probes)
                .iter()
                .map(|e| e.partition())
                .filter(|p| !self.prepared.contains(p) && !pipeline.has_partition(*p))
                .collect(),
            Err(e) => {
                warn!(error = %e, "Could not read the assignment; preparing one partition.");
                Vec::new()
            }
        };
        if let Some(partition) = also
            && !partitions.contains(&partition)
        {
            partitions.push(partition);
        }
        if partitions.is_empty() {
            return Ok(());
        }
        partitions.sort_unstable();
        let this = &*self;
        let lookups = partitions.iter().map(|&p| async move {
            let state = async {
                match alerting {
                    Some(alerting) => {
                        Some(alerting.read_state(p, Arc::clone(&this.consumer)).await)
                    }
                    None => None,
                }
            };
            let (point, state) = futures::join!(this.resume_point(p), state);
            (p, point, state)
        });
        let found = join_all(lookups).await;
        // Nothing is applied unless every lookup succeeded: a failed changelog read stops the
        // processor (as before), rather than evaluating a partition from empty state.
        let mut ready = Vec::with_capacity(found.len());
        for (p, point, state) in found {
            ready.push((p, point, state.transpose()?));
        }
        for (p, point, state) in ready {
            if let Some(records) = state {
                pipeline.restore_alert_partition(p, records);
            }
            if let Some(point) = point {
                info!(
                    partition = p,
                    watermark = point.watermark,
                    read_until = point.read_until,
                    "Partition resumed from its last commit."
                );
                pipeline.resume(p, point);
            }
            self.prepared.insert(p);
        }
        info!(partitions = ?partitions, "Partitions prepared.");
        Ok(())
    }

    /// Where `partition` resumes: its last commit's point, if there is one to trust (a failed
    /// lookup starts it fresh, as a partition never committed).
    async fn resume_point(&self, partition: i32) -> Option<CommitPoint> {
        let consumer = Arc::clone(&self.consumer);
        let (brokers, group) = (self.brokers.clone(), self.group.clone());
        let (probes, topic) = (
            self.topics.probes.clone(),
            self.topics.processor_positions.clone(),
        );
        tokio::task::spawn_blocking(move || {
            positions::read(&*consumer, &brokers, (&probes, &topic), &group, partition)
        })
        .await
        .unwrap_or_else(|e| {
            warn!(partition, error = %e, "Resume lookup failed; the partition starts fresh.");
            None
        })
    }
}
