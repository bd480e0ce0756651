//! Delivery: idempotency keys, the retry decision, pending retries and the delivery log.
//!
//! After each attempt the shell asks [`decide`] what comes next, given the [`RetryPolicy`], the
//! attempt number and the [`SendOutcome`]:
//!
//! - 2xx (or an SMTP/console success): sent.
//! - `410 Gone`: the receiver is gone for good; the channel is disabled and that is reported.
//! - 408, 429, 5xx, timeouts and connection errors: retried on the schedule, each delay spread
//!   by jitter; a `Retry-After` (seconds or HTTP date) is honoured as the least wait, capped by
//!   [`RetryPolicy::max_retry_after`]. When no attempt is left: gave up.
//! - Any other 4xx (and 1xx/3xx: redirects are not followed): failed, not retried — the same
//!   request would be refused again.
//!
//! The default schedule is the Standard Webhooks one: immediately, 5s, 5m, 30m, 2h, 5h, 10h,
//! 10h. Jitter is drawn from the idempotency key and the attempt number, so the decision is a
//! pure function and a restarted notifier plans the same retries.
//!
//! Every attempt becomes a [`Delivery`] event ([`record`]) for `vigil.deliveries`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::PrimitiveDateTime;
use time::macros::format_description;
use uuid::Uuid;
use vigil_schema::{Delivery, DeliveryStatus, Timestamp};

use crate::group::Notification;

/// Namespace of idempotency keys and delivery ids (UUIDv5).
const NAMESPACE: Uuid = Uuid::from_u128(0x8d2e_51a4_0c7b_4f3e_a1d9_66c3_7b20_e4f5);
/// Separator in the names hashed into keys (never part of an id).
const SEP: char = '\u{1f}';

/// The key identifying one notification on one channel across retries and restarts: a UUIDv5
/// over the channel id and the sorted transition ids. `resend` (0 for the first notification of
/// a set of transitions) tells reminders of an unchanged set apart.
pub fn idempotency_key(channel_id: &str, transition_ids: &[Uuid], resend: u32) -> Uuid {
    let mut ids = transition_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut name = String::with_capacity(channel_id.len() + ids.len() * 37 + 8);
    name.push_str(channel_id);
    for id in ids {
        name.push(SEP);
        name.push_str(&id.to_string());
    }
    if resend > 0 {
        name.push(SEP);
        name.push_str(&format!("resend {resend}"));
    }
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

/// When attempts are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RetryPolicy {
    /// Delay before each attempt, the first one included (usually `0s`); its length is the
    /// number of attempts.
    #[serde(with = "durations")]
    pub schedule: Vec<Duration>,
    /// Spread of each delay, as a fraction: `0.2` draws it from ±20%.
    pub jitter: f64,
    /// Longest wait a `Retry-After` answer can impose.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
}

/// The Standard Webhooks retry schedule.
pub const STANDARD_WEBHOOKS_SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            schedule: STANDARD_WEBHOOKS_SCHEDULE.to_vec(),
            jitter: 0.2,
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff: an immediate attempt, then `initial`, `initial × factor`, … capped at
    /// `max`, for `attempts` attempts in all.
    pub fn exponential(initial: Duration, factor: f64, max: Duration, attempts: u32) -> Self {
        let mut schedule = vec![Duration::ZERO];
        let mut delay = initial;
        for _ in 1..attempts {
            schedule.push(delay.min(max));
            delay = delay.mul_f64(factor.max(1.0)).min(max);
        }
        schedule.truncate(attempts.max(1) as usize);
        Self {
            schedule,
            ..Self::default()
        }
    }

    /// Number of attempts.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.schedule.len()).unwrap_or(u32::MAX)
    }

    /// Checks the policy.
    pub fn validate(&self) -> Result<(), String> {
        if self.schedule.is_empty() {
            return Err("retry schedule must have at least one attempt".into());
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!(
                "retry jitter must be in [0, 1], got {}",
                self.jitter
            ));
        }
        Ok(())
    }

    /// The delay before attempt `next` (from 1), jittered, or `None` past the last attempt.
    pub fn delay(&self, key: Uuid, next: u32) -> Option<Duration> {
        let base = *self.schedule.get(next.checked_sub(1)? as usize)?;
        Some(base.mul_f64((1.0 + self.jitter * spread(key, next)).max(0.0)))
    }
}

/// A number in [-1, 1] drawn from the key and the attempt.
fn spread(key: Uuid, attempt: u32) -> f64 {
    let h = Uuid::new_v5(&key, &attempt.to_be_bytes()).as_u128();
    // The top 53 bits, as a fraction of 2^53.
    let unit = (h >> 75) as f64 / (1u64 << 53) as f64;
    unit * 2.0 - 1.0
}

/// What an attempt brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    /// The answer.
    pub answer: Answer,
    /// Time the attempt took.
    pub latency: Duration,
}

/// The receiver's answer to an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP response.
    Http {
        /// Its status.
        status: u16,
        /// Its `Retry-After`, as a delay.
        retry_after: Option<Duration>,
        /// The start of its body, for the log.
        body: String,
    },
    /// Accepted by a channel that does not speak HTTP (SMTP, console).
    Accepted,
    /// Failed in a way worth retrying (timeout, connection refused, SMTP 4xx).
    Transient(String),
    /// Failed in a way a retry cannot fix (missing secret, SMTP 5xx, malformed request).
    Permanent(String),
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The attempt's status for the log.
    pub status: DeliveryStatus,
    /// When to try again (status `retrying`).
    pub retry_at: Option<Timestamp>,
    /// Whether the channel must be disabled (`410 Gone`).
    pub disable_channel: bool,
    /// What went wrong, for the log.
    pub error: Option<String>,
}

/// Decides what follows attempt `attempt` (from 1) of the notification `key`, which ended at
/// `now` with `outcome`.
pub fn decide(
    policy: &RetryPolicy,
    key: Uuid,
    attempt: u32,
    outcome: &SendOutcome,
    now: Timestamp,
) -> Decision {
    let done = |status, error| Decision {
        status,
        retry_at: None,
        disable_channel: false,
        error,
    };
    let (retry_after, error) = match &outcome.answer {
        Answer::Accepted => return done(DeliveryStatus::Sent, None),
        Answer::Http { status, .. } if (200..300).contains(status) => {
            return done(DeliveryStatus::Sent, None);
        }
        Answer::Http {
            status: 410, body, ..
        } => {
            return Decision {
                disable_channel: true,
                ..done(DeliveryStatus::Disabled, Some(http_error(410, body)))
            };
        }
        Answer::Http {
            status,
            retry_after,
            body,
        } if matches!(status, 408 | 429 | 500..=599) => (*retry_after, http_error(*status, body)),
        Answer::Http { status, body, .. } => {
            return done(DeliveryStatus::Failed, Some(http_error(*status, body)));
        }
        Answer::Permanent(e) => return done(DeliveryStatus::Failed, Some(e.clone())),
        Answer::Transient(e) => (None, e.clone()),
    };
    let Some(mut delay) = policy.delay(key, attempt.saturating_add(1)) else {
        return done(DeliveryStatus::GaveUp, Some(error));
    };
    if let Some(asked) = retry_after {
        delay = delay.max(asked.min(policy.max_retry_after));
    }
    Decision {
        status: DeliveryStatus::Retrying,
        retry_at: Some(
            now.saturating_add_millis(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
        ),
        disable_channel: false,
        error: Some(error),
    }
}

fn http_error(status: u16, body: &str) -> String {
    if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    }
}

/// Reads a `Retry-After` value: delta-seconds, or an HTTP date (`Wed, 21 Oct 2015 07:28:00
/// GMT`) taken relative to `now` (a past date means no wait).
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = PrimitiveDateTime::parse(value, format).ok()?.assume_utc();
    let wait = Timestamp::from_datetime(at).as_millis() - now.as_millis();
    Some(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
}

/// The delivery event of an attempt.
pub fn record(
    notification: &Notification,
    attempt: u32,
    outcome: &SendOutcome,
    decision: &Decision,
    at: Timestamp,
) -> Delivery {
    let key = notification.idempotency_key;
    Delivery {
        delivery_id: Uuid::new_v5(&key, format!("attempt {attempt}").as_bytes()),
        channel_id: notification.channel_id.clone(),
        idempotency_key: key,
        transition_ids: notification.transition_ids(),
        attempt,
        status: decision.status,
        http_status: match outcome.answer {
            Answer::Http { status, .. } => Some(status),
            _ => None,
        },
        latency_ms: u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX),
        error: decision.error.clone(),
        retry_at: decision.retry_at,
        at,
    }
}

/// Notifications waiting for their next attempt; serde, kept in the changelog with the
/// grouping state so retries survive a restart with the same keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Retries {
    pending: Vec<Pending>,
}

/// One notification waiting for an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The notification.
    pub notification: Notification,
    /// The number of the attempt to make.
    pub attempt: u32,
    /// When.
    pub due: Timestamp,
}

impl Retries {
    /// Nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plans attempt `attempt` of `notification` at `due`.
    pub fn schedule(&mut self, notification: Notification, attempt: u32, due: Timestamp) {
        let at = self.pending.partition_point(|p| p.due <= due);
        self.pending.insert(
            at,
            Pending {
                notification,
                attempt,
                due,
            },
        );
    }

    /// Removes and returns the attempts due at `now`, earliest first.
    pub fn take_due(&mut self, now: Timestamp) -> Vec<Pending> {
        let n = self.pending.partition_point(|p| p.due <= now);
        self.pending.drain(..n).collect()
    }

    /// When the next attempt is due.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.pending.first().map(|p| p.due)
    }

    /// Drops the attempts of a channel (it was disabled or deleted); returns how many.
    pub fn drop_channel(&mut self, channel_id: &str) -> usize {
        let before = self.pending.len();
        self.pending
            .retain(|p| p.notification.channel_id != channel_id);
        before - self.pending.len()
    }

    /// Number of pending attempts.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// `Vec<Duration>` as a list of `"5m"` strings.
mod durations {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|d| humantime::format_duration(*d).to_string()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| humantime::parse_duration(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests;
