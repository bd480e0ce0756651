//! [`NotifyCommand`]: an operator's instruction to the notification stage, written by the
//! query layer to `vigil.notify-commands` (key = the alert key or the idempotency key) and
//! applied by `vigil notify` in order, with the offsets committed only once the stage's state
//! reflects them.
//!
//! - [`AlertAck`]: a person has seen a firing alert; its escalation stops.
//! - [`Redeliver`]: send a notification that was sent (or failed) before once more, with the
//!   same idempotency key.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::monitor::{FieldError, check_slug};
use crate::Timestamp;

/// Longest acknowledgement comment, in bytes.
pub const MAX_ACK_COMMENT: usize = 1000;

/// One command to the notification stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum NotifyCommand {
    /// Acknowledge a firing alert.
    Ack(AlertAck),
    /// Send a notification again.
    Redeliver(Redeliver),
}

/// Acknowledges the firing alert of (rule, monitor, region); without a region, every firing
/// alert of the rule on the monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AlertAck {
    /// Identifies the command (logs, deduplication).
    pub command_id: Uuid,
    /// The rule.
    pub rule_id: String,
    /// The monitor.
    pub monitor_id: String,
    /// The region; `None`: every region of the alert, and the alert without a region.
    #[serde(default)]
    pub region: Option<String>,
    /// Who acknowledged (an API key's name).
    pub author: String,
    /// Why, or what is being done.
    #[serde(default)]
    pub comment: String,
    /// When it was written.
    pub at: Timestamp,
}

/// Sends the notification identified by `idempotency_key` on `channel_id` once more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Redeliver {
    /// Identifies the command; the failed attempt recorded for an unknown key derives its id
    /// from it.
    pub command_id: Uuid,
    /// The delivery attempt the operator picked.
    pub delivery_id: Uuid,
    /// The notification's idempotency key.
    pub idempotency_key: Uuid,
    /// The channel it was sent on.
    pub channel_id: String,
    /// Who asked (an API key's name).
    pub author: String,
    /// When it was written.
    pub at: Timestamp,
}

impl NotifyCommand {
    /// The command's id.
    pub fn command_id(&self) -> Uuid {
        match self {
            NotifyCommand::Ack(a) => a.command_id,
            NotifyCommand::Redeliver(r) => r.command_id,
        }
    }

    /// The Kafka key: `rule/monitor[/region]` for an acknowledgement, the idempotency key for a
    /// redelivery.
    pub fn key(&self) -> String {
        match self {
            NotifyCommand::Ack(a) => match &a.region {
                Some(region) => format!("{}/{}/{region}", a.rule_id, a.monitor_id),
                None => format!("{}/{}", a.rule_id, a.monitor_id),
            },
            NotifyCommand::Redeliver(r) => r.idempotency_key.to_string(),
        }
    }

    /// Checks the fields the stage relies on.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        match self {
            NotifyCommand::Ack(a) => {
                for (field, value) in [("rule_id", &a.rule_id), ("monitor_id", &a.monitor_id)] {
                    if let Err(reason) = check_slug(value) {
                        errors.push(FieldError::new(field, reason));
                    }
                }
                if let Some(region) = &a.region
                    && let Err(reason) = check_slug(region)
                {
                    errors.push(FieldError::new("region", reason));
                }
                if a.comment.len() > MAX_ACK_COMMENT {
                    errors.push(FieldError::new(
                        "comment",
                        format!("must be at most {MAX_ACK_COMMENT} bytes"),
                    ));
                }
                if a.author.trim().is_empty() {
                    errors.push(FieldError::new("author", "must not be empty"));
                }
            }
            NotifyCommand::Redeliver(r) => {
                if let Err(reason) = check_slug(&r.channel_id) {
                    errors.push(FieldError::new("channel_id", reason));
                }
                if r.author.trim().is_empty() {
                    errors.push(FieldError::new("author", "must not be empty"));
                }
            }
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

    pub(crate) fn ack() -> NotifyCommand {
        NotifyCommand::Ack(AlertAck {
            command_id: Uuid::from_u128(1),
            rule_id: "p99".into(),
            monitor_id: "checkout".into(),
            region: Some("eu".into()),
            author: "ops".into(),
            comment: "looking".into(),
            at: Timestamp(1_700_000_000_000),
        })
    }

    #[test]
    fn json_shape_keys_and_validation() {
        let json = serde_json::to_value(ack()).unwrap();
        assert_eq!(json["ack"]["rule_id"], "p99");
        assert_eq!(json["ack"]["at"], "2023-11-14T22:13:20Z");
        assert_eq!(
            serde_json::from_value::<NotifyCommand>(json).unwrap(),
            ack()
        );
        assert_eq!(ack().key(), "p99/checkout/eu");
        assert_eq!(ack().validate(), Ok(()));
        let redeliver = NotifyCommand::Redeliver(Redeliver {
            command_id: Uuid::from_u128(2),
            delivery_id: Uuid::from_u128(3),
            idempotency_key: Uuid::from_u128(4),
            channel_id: "Hooks".into(),
            author: " ".into(),
            at: Timestamp(0),
        });
        assert_eq!(redeliver.key(), Uuid::from_u128(4).to_string());
        let fields: Vec<String> = redeliver
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["channel_id", "author"]);
        let NotifyCommand::Ack(mut a) = ack() else {
            unreachable!()
        };
        a.region = Some(String::new());
        a.comment = "x".repeat(MAX_ACK_COMMENT + 1);
        a.monitor_id = "checkout".into();
        let a = NotifyCommand::Ack(a);
        let fields: Vec<String> = a
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["region", "comment"]);
    }
}
