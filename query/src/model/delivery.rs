//! Notification delivery DTOs: [`DeliveryAttempt`] (one row of the `deliveries` table), its
//! page, and the bodies of the commands to the notification stage ([`AckInput`],
//! [`CommandAccepted`]).

use async_graphql::SimpleObject;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One attempt to send a notification to a channel.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct DeliveryAttempt {
    /// The attempt's id (pass it to `POST /api/v1/deliveries/{delivery_id}/redeliver`).
    pub delivery_id: String,
    /// The channel.
    pub channel_id: String,
    /// The notification's idempotency key, the same on every attempt (the webhook `webhook-id`).
    pub idempotency_key: String,
    /// The alert transitions the notification carried.
    pub transition_ids: Vec<String>,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// `sent`, `failed`, `retrying`, `gave_up` or `disabled`.
    pub status: String,
    /// The receiver's HTTP status, when it answered over HTTP.
    #[schema(maximum = 65535)]
    pub http_status: Option<u16>,
    /// How long the attempt took.
    pub latency_ms: u64,
    /// What went wrong, when something did.
    pub error: Option<String>,
    /// When the next attempt is due (status `retrying`; RFC 3339).
    pub retry_at: Option<String>,
    /// When the attempt ended (RFC 3339).
    pub at: String,
}

/// One page of delivery attempts, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct DeliveryPage {
    /// The attempts on this page.
    pub items: Vec<DeliveryAttempt>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The body of `POST /api/v1/alerts/ack`. Its author is the name of the caller's API key.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckInput {
    /// The alert's rule.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub rule_id: String,
    /// The alert's monitor.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub monitor_id: String,
    /// The alert's region; omitted: every region of the rule on the monitor (and the alert
    /// without a region).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub region: Option<String>,
    /// Why, or what is being done.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub comment: String,
}

/// A command written to the notification stage's commands topic; the stage applies it within
/// moments (its effect shows in notifications and in `GET /api/v1/deliveries`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct CommandAccepted {
    /// The command's id (in the stage's logs).
    pub command_id: String,
    /// `ack` or `redeliver`.
    pub kind: String,
    /// What it applies to: `rule/monitor[/region]`, or the idempotency key.
    pub key: String,
    /// Who wrote it: the API key's name.
    pub author: String,
}
