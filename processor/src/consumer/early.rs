//! Alert transitions sent as soon as they are computed, ahead of the batch holding them.
//!
//! A window's transitions are known the moment the watermark closes it, while its batch is
//! written only at the next flush, after the batch before it is durable. Waiting for that
//! would put a slow ClickHouse insert between a window closing and its alert, so each
//! transition is handed to the producer right away; the batch then awaits those deliveries
//! (instead of sending again) before it writes the evaluator's changelog and commits. If one
//! failed, or the batch is retried, the batch sends every transition itself: repeats carry the
//! same id.

use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use vigil_schema::{AlertTransition, encode};

/// Transitions of the batch being built that were handed to the producer.
#[derive(Default)]
pub(super) struct Early {
    /// Deliveries of the first `count` transitions of the batch.
    deliveries: Vec<DeliveryFuture>,
    count: usize,
    /// Whether one could not be handed over (the batch sends them all).
    failed: bool,
}

impl Early {
    /// Hands `fresh` (the batch's next transitions) to `producer` for `topic`.
    pub(super) fn send(
        &mut self,
        producer: &FutureProducer,
        topic: &str,
        fresh: &[AlertTransition],
    ) {
        for t in fresh {
            self.count += 1;
            if self.failed {
                continue;
            }
            let Ok(payload) = encode(t) else {
                self.failed = true;
                continue;
            };
            let record = FutureRecord::to(topic)
                .key(t.rule_id.as_bytes())
                .payload(&payload)
                .timestamp(t.at.as_millis());
            match producer.send_result(record) {
                Ok(delivery) => self.deliveries.push(delivery),
                // Queue full: the batch sends them.
                Err(_) => self.failed = true,
            }
        }
    }

    /// How many of the batch's first transitions were delivered (0 if one was not: the batch
    /// then sends them all).
    pub(super) async fn delivered(self) -> usize {
        if self.failed {
            return 0;
        }
        for delivery in self.deliveries {
            if !matches!(delivery.await, Ok(Ok(_))) {
                return 0;
            }
        }
        self.count
    }
}
