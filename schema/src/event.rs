//! The events that flow through Vigil's topics.
//!
//! - [`ProbeResult`] (`vigil.probes`): one HTTP check, the source of truth for everything else.
//! - [`MonitorSpec`] (`vigil.monitors`, compacted): what to check; a tombstone deletes it.
//! - [`WindowSummary`] (`vigil.windows`): the aggregate of one (monitor, region, window).
//! - [`RuleSpec`] (`vigil.rules`, compacted): when an alert fires; a tombstone deletes it.
//! - [`AlertTransition`] (`vigil.alerts`): an alert rule changing state.
//! - [`ChannelSpec`] (`vigil.channels`, compacted): where notifications go; [`RouteSpec`]
//!   (`vigil.routes`, compacted, one record keyed `root`) is the routing tree that picks channels
//!   for an alert.
//! - [`SilenceSpec`] and [`MaintenanceSpec`] (`vigil.silences`, compacted): when new firings
//!   are not notified.
//! - [`Delivery`] (`vigil.deliveries`): one attempt to send a notification.
//! - [`NotifyCommand`] (`vigil.notify-commands`): an acknowledgement or a redelivery request
//!   for the notification stage.
//! - [`ApiKeyRecord`] (`vigil.api-keys`, compacted): an API key created through the API or CLI.
//! - [`SealedSecret`](crate::vault::SealedSecret) (`vigil.secrets`, compacted): a named secret,
//!   encrypted.
//! - [`StatusPageSpec`] (`vigil.status-pages`, compacted): a public status page.

mod alert;
mod apikey;
mod audit;
mod channel;
mod command;
mod delivery;
mod monitor;
mod probe;
mod rule;
mod silence;
mod status_page;
mod window;

pub use alert::{AlertKind, AlertState, AlertTransition};
pub use apikey::{
    API_KEY_PREFIX, ApiKeyRecord, ApiKeyUsage, KeyRole, KeyScope, UsageRecorder, api_key_id,
    reporter_name,
};
pub use audit::{AuditAction, AuditEvent};
pub use channel::{
    ChannelKind, ChannelSpec, DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT, DEFAULT_REPEAT_INTERVAL,
    EmailTls, Escalation, MATCHER_PATTERN, MatchOp, Matcher, PAGERDUTY_EVENTS_URL, RouteSpec,
    SecretRef, is_loopback_host, is_secret_name,
};
pub use command::{AlertAck, MAX_ACK_COMMENT, NotifyCommand, Redeliver};
pub use delivery::{Delivery, DeliveryStatus};
pub use monitor::{
    ApiKeyLocation, Auth, CheckKind, DnsQuery, Extract, FieldError, HttpMethod, IcmpTarget,
    MAX_BODY_SCHEMA, MAX_DEPENDS_ON, MAX_GRPC_SERVICE, MAX_PINGS, MAX_STEPS, MonitorSpec,
    RecordType, SCHEMA_CONDITION, SCHEME_LIST, SYSTEM_RESOLVER, StepSpec, compile_body_schema,
    compile_regex, grpc_service, is_schema_condition, step_url_scheme,
};
pub(crate) use probe::ProbeResultV1;
pub use probe::{AssertionResult, Outcome, ProbeResult, StepResult, Timings};
pub use rule::{
    BurnWindow, RuleCondition, RuleSpec, Severity, SloKind, StatusClass, SummarySegment,
    default_burn_windows, parse_summary,
};
pub use silence::{
    MaintenanceSchedule, MaintenanceSpec, SilenceSpec, SilenceState, WINDOW_RANGE_MS,
};
pub use status_page::{
    MAX_STATUS_COMPONENTS, MAX_STATUS_GROUPS, MAX_STATUS_NAME, MAX_STATUS_TEXT, StatusComponent,
    StatusGroup, StatusPageSpec, is_status_page_id,
};
pub use window::{AnomalyScores, SketchData, WindowSummary};
