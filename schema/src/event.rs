//! The events that flow through Vigil's topics.
//!
//! - [`ProbeResult`] (`vigil.probes`): one HTTP check, the source of truth for everything else.
//! - [`MonitorSpec`] (`vigil.monitors`, compacted): what to check; a tombstone deletes it.
//! - [`WindowSummary`] (`vigil.windows`): the aggregate of one (monitor, region, window).
//! - [`AlertTransition`] (`vigil.alerts`): an alert rule changing state.

mod alert;
mod monitor;
mod probe;
mod window;

pub use alert::{AlertKind, AlertState, AlertTransition};
pub use monitor::{ApiKeyLocation, Auth, FieldError, HttpMethod, MonitorSpec};
pub use probe::{AssertionResult, Outcome, ProbeResult, Timings};
pub use window::{AnomalyScores, SketchData, WindowSummary};
