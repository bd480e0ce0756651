//! Operator commands applied to the stage's state, pure: [`apply`] takes a [`NotifyCommand`]
//! from `vigil.notify-commands`, the grouping [`State`] and the [`SentLog`] and returns what the
//! shell must do ([`Effect`]).
//!
//! - An acknowledgement marks the firing alerts it names acknowledged
//!   ([`State::acknowledge`]), which stops their escalation. An alert the stage does not hold
//!   (never seen, or resolved) acknowledges nothing; a later firing starts unacknowledged.
//! - A redelivery re-sends, once, the notification the stage last sent under that idempotency
//!   key on that channel, as the next attempt (same key, so receivers can deduplicate). The
//!   [`SentLog`] keeps the latest attempt of each notification for [`SENT_LOG_HORIZON`], at
//!   most [`SENT_LOG_LIMIT`] of them; an unknown or expired key becomes a failed delivery
//!   attempt whose error says so.
//!
//! The log is written to the `notify-state` changelog one record per notification
//! (`sent/{idempotency key}`, a tombstone when evicted), beside the state record, so its size
//! never bounds the size of one record.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_schema::{Delivery, DeliveryStatus, NotifyCommand, Redeliver, Timestamp};

use crate::alert::AlertKey;
use crate::group::{Notification, State};

/// Most notifications kept for redelivery.
pub const SENT_LOG_LIMIT: usize = 10_000;
/// How long a notification can be redelivered after its latest attempt.
pub const SENT_LOG_HORIZON: Duration = Duration::from_secs(7 * 24 * 3600);

/// The latest attempt of one notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// The notification, as sent.
    pub notification: Notification,
    /// The number of its latest attempt.
    pub attempt: u32,
    /// When that attempt was made.
    pub at: Timestamp,
}

/// Recently attempted notifications by idempotency key, and which entries changed since the
/// log was last written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SentLog {
    entries: BTreeMap<Uuid, Sent>,
    changed: BTreeSet<Uuid>,
}

impl SentLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records attempt `attempt` of `notification` at `at` (a lower attempt than the one held
    /// changes nothing).
    pub fn remember(&mut self, notification: &Notification, attempt: u32, at: Timestamp) {
        let key = notification.idempotency_key;
        if self.entries.get(&key).is_some_and(|s| s.attempt > attempt) {
            return;
        }
        self.entries.insert(
            key,
            Sent {
                notification: notification.clone(),
                attempt,
                at,
            },
        );
        self.changed.insert(key);
    }

    /// The entry of `key`.
    pub fn get(&self, key: &Uuid) -> Option<&Sent> {
        self.entries.get(key)
    }

    /// Drops entries older than [`SENT_LOG_HORIZON`] at `now`, then the oldest beyond
    /// [`SENT_LOG_LIMIT`]; returns how many were dropped.
    pub fn prune(&mut self, now: Timestamp) -> usize {
        self.prune_to(now, SENT_LOG_HORIZON, SENT_LOG_LIMIT)
    }

    fn prune_to(&mut self, now: Timestamp, horizon: Duration, limit: usize) -> usize {
        let horizon = i64::try_from(horizon.as_millis()).unwrap_or(i64::MAX);
        let oldest = now.as_millis().saturating_sub(horizon);
        let mut dropped: Vec<Uuid> = self
            .entries
            .iter()
            .filter(|(_, s)| s.at.as_millis() < oldest)
            .map(|(k, _)| *k)
            .collect();
        let excess = (self.entries.len() - dropped.len()).saturating_sub(limit);
        if excess > 0 {
            let mut by_age: Vec<(Timestamp, Uuid)> = self
                .entries
                .iter()
                .filter(|(_, s)| s.at.as_millis() >= oldest)
                .map(|(k, s)| (s.at, *k))
                .collect();
            by_age.sort_unstable();
            dropped.extend(by_age.into_iter().take(excess).map(|(_, k)| k));
        }
        for key in &dropped {
            self.entries.remove(key);
            self.changed.insert(*key);
        }
        dropped.len()
    }

    /// Puts back an entry read from the changelog (`None`: a tombstone); not a change.
    pub fn restore(&mut self, key: Uuid, sent: Option<Sent>) {
        match sent {
            Some(sent) => self.entries.insert(key, sent),
            None => self.entries.remove(&key),
        };
    }

    /// What to write: each changed key with its entry, or `None` for a tombstone.
    pub fn changes(&self) -> Vec<(Uuid, Option<&Sent>)> {
        self.changed
            .iter()
            .map(|k| (*k, self.entries.get(k)))
            .collect()
    }

    /// Marks every change written.
    pub fn written(&mut self) {
        self.changed.clear();
    }

    /// Number of notifications kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What the shell does after a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// These firing alerts are acknowledged now (none: nothing held matched).
    Acknowledged(Vec<AlertKey>),
    /// Send this notification once, as attempt `attempt`.
    Resend {
        /// The notification, as last sent.
        notification: Notification,
        /// The attempt number (one past the latest).
        attempt: u32,
    },
    /// The redelivery cannot be made: record this failed attempt.
    Rejected(Delivery),
}

/// Applies `command` at `now`: acknowledgements change `state`; redeliveries read `sent`.
pub fn apply(state: &mut State, sent: &SentLog, command: &NotifyCommand, now: Timestamp) -> Effect {
    match command {
        NotifyCommand::Ack(ack) => {
            let exact = AlertKey::new(&ack.rule_id, &ack.monitor_id, ack.region.as_deref());
            let prefix = format!("{exact}/");
            let keys: Vec<AlertKey> = state
                .firing_keys()
                .into_iter()
                .filter(|k| {
                    *k == exact || (ack.region.is_none() && k.as_str().starts_with(&prefix))
                })
                .collect();
            for key in &keys {
                state.acknowledge(key);
            }
            Effect::Acknowledged(keys)
        }
        NotifyCommand::Redeliver(r) => redeliver(sent, r, now),
    }
}

fn redeliver(sent: &SentLog, r: &Redeliver, now: Timestamp) -> Effect {
    let horizon = i64::try_from(SENT_LOG_HORIZON.as_millis()).unwrap_or(i64::MAX);
    let reason = match sent.get(&r.idempotency_key) {
        Some(s) if s.at.as_millis() < now.as_millis().saturating_sub(horizon) => format!(
            "redelivery of {} failed: its latest attempt is older than {}, the redelivery horizon",
            r.idempotency_key,
            humantime::format_duration(SENT_LOG_HORIZON)
        ),
        Some(s) if s.notification.channel_id != r.channel_id => format!(
            "redelivery of {} failed: that notification was sent on channel {:?}, not {:?}",
            r.idempotency_key, s.notification.channel_id, r.channel_id
        ),
        Some(s) => {
            return Effect::Resend {
                notification: s.notification.clone(),
                attempt: s.attempt.saturating_add(1),
            };
        }
        None => format!(
            "redelivery of {} failed: the notifier holds no notification with this idempotency \
             key (unknown, or expired after {} or beyond the latest {SENT_LOG_LIMIT})",
            r.idempotency_key,
            humantime::format_duration(SENT_LOG_HORIZON)
        ),
    };
    Effect::Rejected(Delivery {
        delivery_id: Uuid::new_v5(&r.command_id, b"redeliver"),
        channel_id: r.channel_id.clone(),
        idempotency_key: r.idempotency_key,
        transition_ids: Vec::new(),
        attempt: 1,
        status: DeliveryStatus::Failed,
        http_status: None,
        latency_ms: 0,
        error: Some(reason),
        retry_at: None,
        at: now,
    })
}

#[cfg(test)]
mod tests;
