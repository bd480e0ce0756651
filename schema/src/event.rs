//! The events that flow through Vigil's topics.
//!
//! - [`ProbeResult`] (`vigil.probes`): one HTTP check, the source of truth for everything else.
//! - [`MonitorSpec`] (`vigil.monitors`, compacted): what to check; a tombstone deletes it.
//! - [`WindowSummary`] (`vigil.windows`): the aggregate of one (monitor, region, window).
//! - [`RuleSpec`] (`vigil.rules`, compacted): when an alert fires; a tombstone deletes it.
//! - [`AlertTransition`] (`vigil.alerts`): an alert rule changing state.

mod alert;
mod monitor;
mod probe;
mod rule;
mod window;

pub use alert::{AlertKind, AlertState, AlertTransition};
pub use monitor::{ApiKeyLocation, Auth, FieldError, HttpMethod, MonitorSpec};
pub use probe::{AssertionResult, Outcome, ProbeResult, Timings};
pub use rule::{
    BurnWindow, RuleCondition, RuleSpec, Severity, SloKind, StatusClass, SummarySegment,
    default_burn_windows, parse_summary,
};
pub use window::{AnomalyScores, SketchData, WindowSummary};
