//! The API's data transfer objects, shared by REST (serde + `ToSchema`) and GraphQL
//! (`SimpleObject`), built `From` the schema crate's events and from query rows. Field names
//! are snake_case in JSON and camelCase in GraphQL. Latencies are in microseconds; a percentile
//! of an empty range is `null`. Alert rule DTOs are in [`rule`], alerts and error budgets in
//! [`alert`], backtest reports in [`backtest`], channels and the routing tree in [`channel`],
//! silences and maintenance windows in [`silence`], notification deliveries and commands in
//! [`delivery`].

pub mod alert;
pub mod audit;
pub mod backtest;
pub mod channel;
pub mod credentials;
pub mod delivery;
pub mod import;
pub(crate) mod monitor_input;
pub mod rule;
pub mod silence;

use std::collections::BTreeMap;

use async_graphql::{ComplexObject, Enum, SimpleObject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vigil_schema::{MonitorSpec, Timestamp, WindowSummary};

pub use alert::{ActiveAlert, ActiveAlertPage, Alert, AlertPage, BudgetSeries, ErrorBudget};
pub use audit::{AuditPage, AuditRecord};
pub use backtest::{BacktestReport, RejectedRule, RuleStats};
pub use channel::{Channel, ChannelPage, Route};
pub use credentials::{
    ApiKey, ApiKeyPage, ApiKeyScope, CreatedApiKey, NewApiKey, Secret, SecretPage, SecretValue,
};
pub use delivery::{AckInput, CommandAccepted, DeliveryAttempt, DeliveryPage};
pub use import::{ImportPlan, OpenApiImport, PlannedUpdate, SkippedOperation};
pub use rule::{Rule, RuleEvent, RulePage};
pub use silence::{Maintenance, MaintenancePage, NewSilence, Silence, SilencePage};

/// A monitor's configuration (the same shape is accepted when creating or replacing one).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
#[graphql(complex)]
pub struct Monitor {
    /// Stable identifier, a slug.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Tags for grouping and filtering.
    pub tags: Vec<String>,
    /// URL checked.
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// Request headers.
    #[graphql(skip)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    pub body: Option<String>,
    /// Authentication of the probe (`{"type": "none"}`, `{"type": "bearer", …}`).
    #[graphql(skip)]
    #[schema(value_type = Object)]
    pub auth: serde_json::Value,
    /// Time between checks (`30s`, `1m`).
    pub interval: String,
    /// Timeout of one check.
    pub timeout: String,
    /// Regions that run it; empty means every region.
    pub regions: Vec<String>,
    /// Whether redirects are followed.
    pub follow_redirects: bool,
    /// Whether certificates are verified.
    pub tls_verify: bool,
    /// Conditions that must hold.
    pub assertions: Vec<String>,
    /// Disabled monitors are kept but not run.
    pub enabled: bool,
    /// Monitors this one depends on: while one of them has a firing alert, new firings of
    /// this monitor are not notified. Omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 32)]
    pub depends_on: Vec<String>,
    /// The steps of a multi-step check, in order; omitted for a check of one request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 16)]
    pub steps: Vec<MonitorStep>,
    /// The JSON Schema the body must match where an assertion says `[BODY] matches schema`;
    /// omitted when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[graphql(skip)]
    #[schema(value_type = Option<Object>)]
    pub body_schema: Option<serde_json::Value>,
}

/// One request of a multi-step monitor.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct MonitorStep {
    /// Its name; later steps refer to it as `${steps.NAME.…}`.
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// An `http(s)://` URL, or a path relative to the monitor's URL.
    pub url: String,
    /// Request headers, over the monitor's.
    #[graphql(skip)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    pub body: Option<String>,
    /// Conditions on the step's response.
    pub assertions: Vec<String>,
    /// Values later steps may use: name → placeholder (`[BODY].token`), or
    /// `{"from": placeholder, "regex": pattern}`.
    #[graphql(skip)]
    #[schema(value_type = Object)]
    pub extract: serde_json::Value,
}

impl From<&vigil_schema::StepSpec> for MonitorStep {
    fn from(s: &vigil_schema::StepSpec) -> Self {
        Self {
            name: s.name.clone(),
            method: s.method.as_str().to_owned(),
            url: s.url.clone(),
            headers: s.headers.clone(),
            body: s.body.clone(),
            assertions: s.assertions.clone(),
            extract: serde_json::to_value(&s.extract).unwrap_or_default(),
        }
    }
}

#[ComplexObject]
impl Monitor {
    /// The whole spec as JSON, including headers and auth (literal secrets redacted for viewers).
    async fn spec(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::to_value(self).unwrap_or_default())
    }
}

impl From<&MonitorSpec> for Monitor {
    fn from(spec: &MonitorSpec) -> Self {
        Self {
            id: spec.id.clone(),
            name: spec.name.clone(),
            tags: spec.tags.clone(),
            url: spec.url.clone(),
            method: spec.method.as_str().to_owned(),
            headers: spec.headers.clone(),
            body: spec.body.clone(),
            auth: serde_json::to_value(&spec.auth).unwrap_or_default(),
            interval: humantime::format_duration(spec.interval).to_string(),
            timeout: humantime::format_duration(spec.timeout).to_string(),
            regions: spec.regions.clone(),
            follow_redirects: spec.follow_redirects,
            tls_verify: spec.tls_verify,
            assertions: spec.assertions.clone(),
            enabled: spec.enabled,
            depends_on: spec.depends_on.clone(),
            steps: spec.steps.iter().map(MonitorStep::from).collect(),
            body_schema: spec.body_schema.clone(),
        }
    }
}

/// What replaces a secret shown to a viewer.
pub const REDACTED: &str = "[redacted]";

impl Monitor {
    /// The monitor as a viewer may see it: literal secrets in `auth` and header values are
    /// replaced by [`REDACTED`]; `${ENV_VAR}` references are kept (they are not secrets).
    pub fn redacted(mut self) -> Self {
        let hide = |value: &mut String| {
            let is_reference = value.starts_with("${") && value.ends_with('}');
            if !is_reference && !value.is_empty() {
                REDACTED.clone_into(value);
            }
        };
        for value in self.headers.values_mut() {
            hide(value);
        }
        for value in self.steps.iter_mut().flat_map(|s| s.headers.values_mut()) {
            hide(value);
        }
        if let serde_json::Value::Object(auth) = &mut self.auth {
            for key in ["password", "token", "value", "client_secret"] {
                if let Some(serde_json::Value::String(secret)) = auth.get_mut(key) {
                    hide(secret);
                }
            }
        }
        self
    }
}

impl MonitorPage {
    /// Every monitor [`Monitor::redacted`].
    pub fn redacted(mut self) -> Self {
        self.items = self.items.into_iter().map(Monitor::redacted).collect();
        self
    }
}

/// One page of monitors.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct MonitorPage {
    /// The monitors on this page.
    pub items: Vec<Monitor>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Failed checks of one kind.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct ErrorCount {
    /// Outcome name (`timeout`, `http_status`, …).
    pub kind: String,
    /// Number of checks.
    pub count: u64,
}

/// One point of a monitor's history: every region of one window merged.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct WindowPoint {
    /// The monitor.
    pub monitor_id: String,
    /// Window start (RFC 3339).
    pub start: String,
    /// Number of checks.
    pub count: u64,
    /// Checks with outcome `ok`.
    pub ok_count: u64,
    /// Failed checks.
    pub error_count: u64,
    /// `ok_count / count`.
    pub availability: f64,
    /// Failed checks by outcome.
    pub errors: Vec<ErrorCount>,
    /// Responses with a 4xx status.
    #[graphql(name = "status4xx")]
    pub status_4xx: u64,
    /// Responses with a 5xx status.
    #[graphql(name = "status5xx")]
    pub status_5xx: u64,
    /// Median total time, from the merged sketches.
    pub p50_us: Option<f64>,
    /// 90th percentile.
    pub p90_us: Option<f64>,
    /// 95th percentile.
    pub p95_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
    /// Mean total time.
    pub total_mean_us: f64,
    /// Mean DNS time.
    pub dns_mean_us: f64,
    /// Mean TCP connect time.
    pub connect_mean_us: f64,
    /// Mean TLS handshake time.
    pub tls_mean_us: f64,
    /// Mean time to first byte.
    pub ttfb_mean_us: f64,
    /// Highest anomaly score of the window's regions.
    pub anomaly_score: f64,
}

/// History of one or more monitors.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct History {
    /// Resolution used (`1m` or `1h`).
    pub resolution: String,
    /// Inclusive start (RFC 3339).
    pub from: String,
    /// Exclusive end (RFC 3339).
    pub to: String,
    /// Points ordered by monitor, then time: at most `limit` of them.
    pub points: Vec<WindowPoint>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Availability, latency and error budget of a set of windows.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct Sla {
    /// Number of checks.
    pub count: u64,
    /// Checks with outcome `ok`.
    pub ok_count: u64,
    /// `100 * ok_count / count`; null without checks.
    pub uptime_percent: Option<f64>,
    /// Median, from the merged sketches of the range.
    pub p50_us: Option<f64>,
    /// 95th percentile.
    pub p95_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
    /// Share of the error budget left: 1 untouched, 0 spent, negative overspent.
    pub error_budget_remaining: Option<f64>,
}

/// Summary of one region.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct RegionSla {
    /// The region.
    pub region: String,
    /// Its figures.
    pub sla: Sla,
}

/// Uptime, percentiles and error budget of one monitor over a range.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct Summary {
    /// The monitor.
    pub monitor_id: String,
    /// Inclusive start (RFC 3339).
    pub from: String,
    /// Exclusive end (RFC 3339).
    pub to: String,
    /// Availability target the budget is measured against (e.g. 0.999).
    pub target: f64,
    /// Resolution of the windows merged (`1m` or `1h`).
    pub resolution: String,
    /// All regions together.
    pub overall: Sla,
    /// Per region, ordered by name.
    pub regions: Vec<RegionSla>,
}

/// One raw check.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct Probe {
    /// Unique id of the check.
    pub event_id: String,
    /// The monitor.
    pub monitor_id: String,
    /// Where it ran.
    pub region: String,
    /// Which runner ran it.
    pub agent: String,
    /// When it started (RFC 3339).
    pub event_time: String,
    /// HTTP method.
    pub method: String,
    /// URL checked.
    pub url: String,
    /// HTTP status, when a response came.
    #[schema(maximum = 65535)]
    pub status_code: Option<u16>,
    /// Outcome (`ok`, `timeout`, …).
    pub outcome: String,
    /// Failure detail.
    pub error: Option<String>,
    /// DNS time.
    pub dns_us: Option<u64>,
    /// Connect time.
    pub connect_us: Option<u64>,
    /// TLS time.
    pub tls_us: Option<u64>,
    /// Time to first byte.
    pub ttfb_us: Option<u64>,
    /// Total time.
    pub total_us: u64,
    /// Body size.
    pub response_size: Option<u64>,
    /// Every condition of a check of one request, with whether it held and the value observed
    /// (a multi-step check records its conditions on its steps).
    pub assertions: Vec<ProbeAssertion>,
    /// The steps of a multi-step check, in order, up to the first that failed; omitted for a
    /// check of one request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 16)]
    pub steps: Vec<ProbeStep>,
}

/// One step of a multi-step check.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct ProbeStep {
    /// The step's name.
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// URL as configured (relative to the monitor's).
    pub url: String,
    /// HTTP status, when a response came.
    #[schema(maximum = 65535)]
    pub status_code: Option<u16>,
    /// Outcome (`ok`, `assertion`, …).
    pub outcome: String,
    /// Failure detail.
    pub error: Option<String>,
    /// DNS time.
    pub dns_us: Option<u64>,
    /// Connect time.
    pub connect_us: Option<u64>,
    /// TLS time.
    pub tls_us: Option<u64>,
    /// Time to first byte.
    pub ttfb_us: Option<u64>,
    /// The step's own total time.
    pub total_us: u64,
    /// Body size.
    pub response_size: Option<u64>,
    /// Its conditions: whether each held, and the value a failed one saw.
    pub assertions: Vec<ProbeAssertion>,
}

/// One condition of a check, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct ProbeAssertion {
    /// The condition as written.
    pub condition: String,
    /// Whether it held.
    pub passed: bool,
    /// The value seen, for a condition that failed; a passing one does not show what it saw
    /// (a step's response may hold a token).
    pub actual: Option<String>,
}

impl From<&vigil_schema::AssertionResult> for ProbeAssertion {
    /// Without the value a passing condition saw.
    fn from(a: &vigil_schema::AssertionResult) -> Self {
        Self {
            condition: a.condition.clone(),
            passed: a.passed,
            actual: a.actual.clone().filter(|_| !a.passed),
        }
    }
}

impl From<&vigil_schema::StepResult> for ProbeStep {
    fn from(s: &vigil_schema::StepResult) -> Self {
        Self {
            name: s.name.clone(),
            method: s.method.clone(),
            url: s.url.clone(),
            status_code: s.status_code,
            outcome: s.outcome.as_str().to_owned(),
            error: s.error.clone(),
            dns_us: s.timings.dns_us,
            connect_us: s.timings.connect_us,
            tls_us: s.timings.tls_us,
            ttfb_us: s.timings.ttfb_us,
            total_us: s.timings.total_us,
            response_size: s.response_size,
            assertions: s.assertions.iter().map(ProbeAssertion::from).collect(),
        }
    }
}

impl From<&vigil_schema::ProbeResult> for Probe {
    fn from(p: &vigil_schema::ProbeResult) -> Self {
        Self {
            event_id: p.event_id.to_string(),
            monitor_id: p.monitor_id.clone(),
            region: p.region.clone(),
            agent: p.agent.clone(),
            event_time: p.event_time.to_string(),
            method: p.method.clone(),
            url: p.url.clone(),
            status_code: p.status_code,
            outcome: p.outcome.as_str().to_owned(),
            error: p.error.clone(),
            dns_us: p.timings.dns_us,
            connect_us: p.timings.connect_us,
            tls_us: p.timings.tls_us,
            ttfb_us: p.timings.ttfb_us,
            total_us: p.timings.total_us,
            response_size: p.response_size,
            assertions: p.assertions.iter().map(ProbeAssertion::from).collect(),
            steps: p.steps.iter().map(ProbeStep::from).collect(),
        }
    }
}

/// One page of raw checks, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct ProbePage {
    /// The checks.
    pub items: Vec<Probe>,
    /// Pass as `cursor` to get older checks; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A window as published live by the processor (one region).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct LiveWindow {
    /// The monitor.
    pub monitor_id: String,
    /// The region.
    pub region: String,
    /// Window start (RFC 3339).
    pub start: String,
    /// Window end (RFC 3339).
    pub end: String,
    /// Row version (grows with corrections).
    pub version: u64,
    /// Number of checks.
    pub count: u64,
    /// Checks with outcome `ok`.
    pub ok_count: u64,
    /// `ok_count / count`.
    pub availability: f64,
    /// Median total time.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 95th percentile.
    pub p95_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Combined anomaly score, once scored.
    pub anomaly_score: Option<f64>,
}

impl From<&WindowSummary> for LiveWindow {
    fn from(w: &WindowSummary) -> Self {
        Self {
            monitor_id: w.monitor_id.clone(),
            region: w.region.clone(),
            start: w.window_start.to_string(),
            end: w.window_end.to_string(),
            version: w.version,
            count: w.count,
            ok_count: w.ok_count,
            availability: w.availability,
            p50_us: w.p50_us,
            p90_us: w.p90_us,
            p95_us: w.p95_us,
            p99_us: w.p99_us,
            anomaly_score: w.anomaly.as_ref().map(|a| a.combined),
        }
    }
}

/// What happened to a monitor or an alert rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Enum)]
#[serde(rename_all = "snake_case")]
pub enum MonitorChangeKind {
    /// Created or updated.
    Upserted,
    /// Deleted.
    Deleted,
}

/// A monitor was created, updated or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct MonitorEvent {
    /// What happened.
    pub kind: MonitorChangeKind,
    /// The monitor's id.
    pub id: String,
    /// The new spec (absent on delete).
    pub monitor: Option<Monitor>,
}

impl From<&crate::hub::MonitorChange> for MonitorEvent {
    fn from(change: &crate::hub::MonitorChange) -> Self {
        match change {
            crate::hub::MonitorChange::Upserted(spec) => Self {
                kind: MonitorChangeKind::Upserted,
                id: spec.id.clone(),
                monitor: Some(Monitor::from(spec.as_ref())),
            },
            crate::hub::MonitorChange::Deleted(id) => Self {
                kind: MonitorChangeKind::Deleted,
                id: id.clone(),
                monitor: None,
            },
        }
    }
}

/// Renders unix milliseconds as RFC 3339.
pub(crate) fn rfc3339(ms: i64) -> String {
    Timestamp::from_millis(ms).to_string()
}

/// A percentile from SQL: `NaN` (no values) becomes `None`.
pub(crate) fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}
