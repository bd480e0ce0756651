//! [`Delivery`]: one attempt to send a notification to a channel.
//!
//! Every attempt, successful or not, is an event on `vigil.deliveries` (key = channel id) and a
//! row of the ClickHouse `deliveries` table, so "was I paged, and when" has an answer.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::monitor::{FieldError, check_slug};
use crate::Timestamp;

/// One notification attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Delivery {
    /// Deterministic id of this attempt (the idempotency key and the attempt number).
    pub delivery_id: Uuid,
    /// The channel sent to.
    pub channel_id: String,
    /// Identifies the notification across its attempts and restarts; receivers that see it
    /// twice (the webhook `webhook-id` header) can drop the repeat.
    pub idempotency_key: Uuid,
    /// The alert transitions the notification carried, sorted.
    pub transition_ids: Vec<Uuid>,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// What came of it.
    pub status: DeliveryStatus,
    /// The HTTP status the receiver answered, when it answered over HTTP.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Time from the start of the attempt to its end.
    pub latency_ms: u64,
    /// What went wrong, when something did.
    #[serde(default)]
    pub error: Option<String>,
    /// When the next attempt is due (status `retrying`).
    #[serde(default)]
    pub retry_at: Option<Timestamp>,
    /// When the attempt ended.
    pub at: Timestamp,
}

/// Outcomes of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// The receiver accepted it.
    Sent,
    /// Rejected for good (a 4xx other than 408, 410 and 429); not retried.
    Failed,
    /// Failed for now; another attempt is scheduled.
    Retrying,
    /// Failed, and no attempt is left.
    GaveUp,
    /// The receiver answered `410 Gone`: the channel was disabled.
    Disabled,
}

impl DeliveryStatus {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::GaveUp => "gave_up",
            DeliveryStatus::Disabled => "disabled",
        }
    }

    /// Whether no further attempt follows.
    pub const fn is_final(self) -> bool {
        !matches!(self, DeliveryStatus::Retrying)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Delivery {
    /// Checks the fields a consumer relies on.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(reason) = check_slug(&self.channel_id) {
            errors.push(FieldError::new("channel_id", reason));
        }
        if self.attempt == 0 {
            errors.push(FieldError::new("attempt", "must be ≥ 1"));
        }
        if !self.transition_ids.is_sorted() {
            errors.push(FieldError::new("transition_ids", "must be sorted"));
        }
        match (self.status, self.retry_at) {
            (DeliveryStatus::Retrying, None) => {
                errors.push(FieldError::new("retry_at", "must be set while retrying"));
            }
            (status, Some(_)) if status != DeliveryStatus::Retrying => errors.push(
                FieldError::new("retry_at", format!("must be empty when {status}")),
            ),
            _ => {}
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn delivery() -> Delivery {
        Delivery {
            delivery_id: Uuid::from_u128(1),
            channel_id: "ops-hook".into(),
            idempotency_key: Uuid::from_u128(2),
            transition_ids: vec![Uuid::from_u128(3), Uuid::from_u128(4)],
            attempt: 2,
            status: DeliveryStatus::Retrying,
            http_status: Some(503),
            latency_ms: 120,
            error: Some("503 Service Unavailable".into()),
            retry_at: Some(Timestamp(1_000_300_000)),
            at: Timestamp(1_000_000_000),
        }
    }

    #[test]
    fn json_shape() {
        let json = serde_json::to_value(delivery()).unwrap();
        assert_eq!(json["status"], "retrying");
        assert_eq!(json["at"], "1970-01-12T13:46:40Z");
        assert_eq!(
            json["transition_ids"][1],
            "00000000-0000-0000-0000-000000000004"
        );
        assert_eq!(
            serde_json::from_value::<Delivery>(json).unwrap(),
            delivery()
        );
        assert_eq!(
            serde_json::to_value(DeliveryStatus::GaveUp).unwrap(),
            "gave_up"
        );
    }

    #[test]
    fn validation() {
        assert_eq!(delivery().validate(), Ok(()));
        let mut d = delivery();
        d.attempt = 0;
        d.transition_ids.reverse();
        d.status = DeliveryStatus::Sent;
        let got: Vec<String> = d
            .validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "attempt: must be ≥ 1",
                "transition_ids: must be sorted",
                "retry_at: must be empty when sent",
            ]
        );
        assert!(DeliveryStatus::Disabled.is_final() && !DeliveryStatus::Retrying.is_final());
    }
}
