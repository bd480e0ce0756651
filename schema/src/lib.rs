//! Vigil's wire contract, shared by every service.
//!
//! Services never call each other: they exchange the events defined here through Kafka topics
//! and the rows defined here through ClickHouse tables. Keeping the contract in one crate with no
//! runtime dependencies (the admin and migration helpers sit behind cargo features) means a
//! change to an event is one change, seen by every producer and consumer at compile time.
//!
//! # Layout
//! - [`event`]: the event types ([`ProbeResult`], [`MonitorSpec`], [`WindowSummary`], [`RuleSpec`],
//!   [`AlertTransition`], [`ChannelSpec`], [`SilenceSpec`], [`MaintenanceSpec`], [`Delivery`],
//!   [`NotifyCommand`])
//!   and their parts.
//! - [`envelope`]: the versioned binary/JSON envelope every Kafka value is wrapped in.
//! - [`egress`]: what probes may reach (the special-purpose address table, the operator's
//!   allow-list) and which `${…}` references a monitor may hold; [`validate_egress`].
//! - [`timestamp`]: [`Timestamp`], unix milliseconds with RFC 3339 on human-readable formats.
//! - [`sketch`]: the mergeable percentile sketch and its SQL twin.
//! - [`topic`]: topic names and their defaults (partitions, retention, compaction).
//! - [`table`]: ClickHouse table names.
//! - [`migration`]: the numbered DDL files and, with the `clickhouse` feature, the runner.
//! - `ratelimit` (feature `ratelimit`): request budgets per API key and client address.
//! - `row` (feature `clickhouse`): rows of tables more than one service writes (`alerts`).
//! - [`kafka`] (feature `kafka`): creating missing topics through the admin API.
//! - [`retention`]: how long each topic and table keeps data, and what can be rebuilt.
//! - `vault` (feature `vault`): named secrets sealed with envelope encryption.
//! - [`error`]: the crate's error type.
#![warn(missing_docs)]

pub mod egress;
pub mod envelope;
pub mod error;
pub mod event;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod migration;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
pub mod retention;
#[cfg(feature = "clickhouse")]
pub mod row;
pub mod sketch;
pub mod table;
pub mod timestamp;
pub mod topic;
#[cfg(feature = "vault")]
pub mod vault;

pub use egress::{AllowEntry, EgressPolicy, validate_egress};
pub use envelope::{Codec, DecodeError, Event, EventKind, decode, encode};
pub use error::{Error, Result};
pub use event::{
    API_KEY_PREFIX, AlertAck, AlertKind, AlertState, AlertTransition, AnomalyScores,
    ApiKeyLocation, ApiKeyRecord, ApiKeyUsage, AssertionResult, AuditAction, AuditEvent, Auth,
    BurnWindow, ChannelKind, ChannelSpec, CheckKind, Delivery, DeliveryStatus, DnsQuery, EmailTls,
    Escalation, Extract, FieldError, HttpMethod, IcmpTarget, KeyRole, KeyScope, MATCHER_PATTERN,
    MAX_BODY_SCHEMA, MAX_GRPC_SERVICE, MAX_PINGS, MAX_STEPS, MaintenanceSchedule, MaintenanceSpec,
    MatchOp, Matcher, MonitorSpec, NotifyCommand, Outcome, ProbeResult, RecordType, Redeliver,
    RouteSpec, RuleCondition, RuleSpec, SCHEMA_CONDITION, SCHEME_LIST, SYSTEM_RESOLVER, SecretRef,
    Severity, SilenceSpec, SilenceState, SketchData, SloKind, StatusClass, StatusComponent,
    StatusGroup, StatusPageSpec, StepResult, StepSpec, SummarySegment, Timings, UsageRecorder,
    WindowSummary, api_key_id, compile_body_schema, compile_regex, grpc_service,
    is_schema_condition, is_status_page_id, reporter_name, step_url_scheme,
};
pub use retention::Retention;
pub use timestamp::Timestamp;
pub use topic::{TopicNames, TopicSpec};
