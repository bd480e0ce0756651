//! REST under `/api/v1`: JSON in and out, RFC 9457 problem documents for every error, bearer
//! API keys. Each handler parses its parameters, checks the caller's role and calls the
//! [`Service`](crate::service::Service); the OpenAPI document is generated from the
//! `#[utoipa::path]` attributes here, in [`alerts`] (history, the active set,
//! acknowledgements), [`audit`] (the audit log), [`deliveries`] (the delivery log, redeliveries), [`rules`]
//! (rule CRUD and error budgets), [`backtest`], [`integrations`] (PagerDuty's
//! acknowledgements), [`channels`] (channels and the routing tree)
//! and [`silences`] (silences and maintenance windows) (see [`crate::openapi`]).

pub mod alerts;
pub mod audit;
pub mod backtest;
pub mod channels;
pub mod credentials;
pub mod deliveries;
pub mod import;
pub mod integrations;
pub mod rules;
pub mod silences;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use crate::auth::Role;
use crate::error::Problem;
use crate::model::{History, Monitor, MonitorPage, ProbePage, Summary, WindowPoint};
use crate::params::{self, TimeRange};
use crate::service::{HistoryPage, HistoryQuery, MonitorFilter, ProbeQuery, Target};
use crate::state::{AppState, Caller};
use crate::{Error, Result};

/// Query-string extractor whose rejection is a problem document naming the parameter.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| {
                let text = e.body_text();
                let parameter = text
                    .split('`')
                    .nth(1)
                    .filter(|_| text.contains("unknown field") || text.contains("duplicate field"))
                    .unwrap_or("query")
                    .to_owned();
                Error::bad_parameter(parameter, text)
            })
    }
}

/// The body as JSON. A number with no fractional part counts as an integer however it is
/// written (`100.0` is `100`), as JSON Schema has it.
fn parse_json(body: &Bytes) -> Result<serde_json::Value> {
    let mut value = serde_json::from_slice(body).map_err(|e| Error::BadBody(e.to_string()))?;
    integral_numbers(&mut value);
    Ok(value)
}

fn integral_numbers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // 2^63 and 2^64 are exact in f64; within them the cast is exact for an integral f.
            if f.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..18_446_744_073_709_551_616.0).contains(&f)
            {
                *value = if f < 0.0 {
                    Value::from(f as i64)
                } else {
                    Value::from(f as u64)
                };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

fn parse_limit(value: Option<&str>) -> Result<Option<u32>> {
    value
        .map(|v| {
            v.trim().parse::<u32>().map_err(|_| {
                Error::bad_parameter("limit", format!("expected a positive integer, got {v:?}"))
            })
        })
        .transpose()
}

/// Filters of `GET /api/v1/monitors`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MonitorListParams {
    /// Only monitors with this tag.
    tag: Option<String>,
    /// Only monitors that run in this region.
    region: Option<String>,
    /// `enabled` or `disabled`.
    #[param(pattern = "^(enabled|disabled)$")]
    status: Option<String>,
    /// `id` (default), `name`, `-id`, `-name`.
    #[param(pattern = "^-?(id|name)$")]
    sort: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1–max, default 100).
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// List monitors.
#[utoipa::path(get, path = "/api/v1/monitors", tag = "monitors", params(MonitorListParams),
    responses(
        (status = 200, description = "A page of monitors", body = MonitorPage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_monitors(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<MonitorListParams>,
) -> Result<Json<MonitorPage>> {
    caller.require(Role::Viewer)?;
    let filter = MonitorFilter {
        tag: p.tag,
        region: p.region,
        status: p.status,
        sort: p.sort,
        cursor: p.cursor,
        limit: parse_limit(p.limit.as_deref())?,
    };
    let page = state.service.list_monitors(&filter)?;
    Ok(Json(if caller.role >= Role::Editor {
        page
    } else {
        page.redacted()
    }))
}

/// Get one monitor.
#[utoipa::path(get, path = "/api/v1/monitors/{id}", tag = "monitors",
    params(("id" = String, Path, description = "Monitor id")),
    responses(
        (status = 200, description = "The monitor", body = Monitor),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_monitor(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Monitor>> {
    caller.require(Role::Viewer)?;
    let monitor = state.service.get_monitor(&id)?;
    Ok(Json(if caller.role >= Role::Editor {
        monitor
    } else {
        monitor.redacted()
    }))
}

/// Create a monitor. Answers once the service's own view shows it.
#[utoipa::path(post, path = "/api/v1/monitors", tag = "monitors", request_body = crate::model::monitor_input::MonitorInput,
    responses(
        (status = 201, description = "Created", body = Monitor),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid spec", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_monitor(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<Response> {
    caller.require(Role::Editor)?;
    let monitor = state.service.create_monitor(parse_json(&body)?).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/monitors/{}", monitor.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/api/v1/monitors"));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(monitor),
    )
        .into_response())
}

/// Replace a monitor's spec.
#[utoipa::path(put, path = "/api/v1/monitors/{id}", tag = "monitors", request_body = crate::model::monitor_input::MonitorInput,
    params(("id" = String, Path, description = "Monitor id")),
    responses(
        (status = 200, description = "Replaced", body = Monitor),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid spec", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_monitor(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Monitor>> {
    caller.require(Role::Editor)?;
    state
        .service
        .update_monitor(&id, parse_json(&body)?)
        .await
        .map(Json)
}

/// Change some fields of a monitor: a JSON merge patch (RFC 7396), where the fields given
/// replace the stored ones, `null` removes one, and the rest of the spec is kept.
#[utoipa::path(patch, path = "/api/v1/monitors/{id}", tag = "monitors",
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "The fields to change, as in a monitor spec"),
    params(("id" = String, Path, description = "Monitor id")),
    responses(
        (status = 200, description = "Changed", body = Monitor),
        (status = 400, description = "Body is not a JSON object", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The patched spec is invalid (each problem names its field)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn patch_monitor(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Monitor>> {
    caller.require(Role::Editor)?;
    state
        .service
        .patch_monitor(&id, &parse_json(&body)?)
        .await
        .map(Json)
}

/// Delete a monitor.
#[utoipa::path(delete, path = "/api/v1/monitors/{id}", tag = "monitors",
    params(("id" = String, Path, description = "Monitor id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete_monitor(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    caller.require(Role::Editor)?;
    state.service.delete_monitor(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a monitor.
#[utoipa::path(post, path = "/api/v1/monitors/{id}/enable", tag = "monitors",
    params(("id" = String, Path, description = "Monitor id")),
    responses(
        (status = 200, description = "Enabled", body = Monitor),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn enable_monitor(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Monitor>> {
    caller.require(Role::Editor)?;
    state.service.set_enabled(&id, true).await.map(Json)
}

/// Disable a monitor (kept, not run).
#[utoipa::path(post, path = "/api/v1/monitors/{id}/disable", tag = "monitors",
    params(("id" = String, Path, description = "Monitor id")),
    responses(
        (status = 200, description = "Disabled", body = Monitor),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn disable_monitor(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Monitor>> {
    caller.require(Role::Editor)?;
    state.service.set_enabled(&id, false).await.map(Json)
}

/// Range and resolution of history, summary and export.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// Start: RFC 3339, unix ms, `now` or `now-<duration>` (default: 24 h before `to`).
    from: Option<String>,
    /// End, exclusive (default: now).
    to: Option<String>,
    /// `1m`, `1h` or `auto` (1m up to 24 h, else 1h).
    #[param(pattern = "^(1m|1h|auto)$")]
    resolution: Option<String>,
    /// Only this region (default: all regions merged).
    region: Option<String>,
    /// Only monitors with this tag (for the all-monitors routes).
    tag: Option<String>,
    /// Export format: `ndjson` (default) or `csv`.
    #[param(pattern = "^(ndjson|csv)$")]
    format: Option<String>,
}

/// Range, resolution and availability target of a summary.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// Start: RFC 3339, unix ms, `now` or `now-<duration>` (default: 24 h before `to`).
    from: Option<String>,
    /// End, exclusive (default: now).
    to: Option<String>,
    /// `1m`, `1h` or `auto` (1m up to 24 h, else 1h).
    #[param(pattern = "^(1m|1h|auto)$")]
    resolution: Option<String>,
    /// Only this region (default: all regions merged).
    region: Option<String>,
    /// Availability target between 0 and 1, both exclusive (default 0.999).
    #[param(value_type = Option<f64>, exclusive_minimum = 0, exclusive_maximum = 1)]
    target: Option<String>,
}

/// Range, resolution and page of history.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Start: RFC 3339, unix ms, `now` or `now-<duration>` (default: 24 h before `to`).
    from: Option<String>,
    /// End, exclusive (default: now).
    to: Option<String>,
    /// `1m`, `1h` or `auto` (1m up to 24 h, else 1h).
    #[param(pattern = "^(1m|1h|auto)$")]
    resolution: Option<String>,
    /// Only this region (default: all regions merged).
    region: Option<String>,
    /// Only monitors with this tag (for `/api/v1/history`).
    tag: Option<String>,
    /// Points per page (1 to `limits.max-history-points`, 10,000 by default; default the
    /// maximum). Export streams every point.
    #[param(minimum = 1)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl HistoryParams {
    fn range(&self) -> RangeParams {
        RangeParams {
            from: self.from.clone(),
            to: self.to.clone(),
            resolution: self.resolution.clone(),
            region: self.region.clone(),
            tag: self.tag.clone(),
            ..RangeParams::default()
        }
    }

    fn query(&self, state: &AppState, target: Target) -> Result<HistoryQuery> {
        let limit = params::history_limit(self.limit, state.service.limits())?;
        let page = HistoryPage::new(self.cursor.as_deref(), limit)?;
        let mut q = history_query(state, target, &self.range())?;
        q.page = Some(page);
        Ok(q)
    }
}

pub(crate) const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

fn history_query(state: &AppState, target: Target, p: &RangeParams) -> Result<HistoryQuery> {
    let range = range_of(state, p)?;
    let resolution = params::resolution(p.resolution.as_deref(), range, state.service.limits())?;
    Ok(HistoryQuery {
        target,
        region: p.region.clone(),
        range,
        resolution,
        page: None,
    })
}

fn range_of(state: &AppState, p: &RangeParams) -> Result<TimeRange> {
    params::time_range(p.from.as_deref(), p.to.as_deref(), DAY, state.service.now())
}

fn all_or_tag(p: &RangeParams) -> Target {
    p.tag.clone().map_or(Target::All, Target::Tag)
}

/// History of one monitor, a page at a time.
#[utoipa::path(get, path = "/api/v1/monitors/{id}/history", tag = "history",
    params(("id" = String, Path, description = "Monitor id"), HistoryParams),
    responses(
        (status = 200, description = "Windows, regions merged", body = History),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn monitor_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Params(p): Params<HistoryParams>,
) -> Result<Json<History>> {
    caller.require(Role::Viewer)?;
    let q = p.query(&state, Target::Monitor(id))?;
    state.service.history(&q).await.map(Json)
}

/// History of every monitor, or of those with `tag`, a page at a time.
#[utoipa::path(get, path = "/api/v1/history", tag = "history", params(HistoryParams),
    responses(
        (status = 200, description = "Windows per monitor, regions merged", body = History),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<HistoryParams>,
) -> Result<Json<History>> {
    caller.require(Role::Viewer)?;
    let target = p.tag.clone().map_or(Target::All, Target::Tag);
    let q = p.query(&state, target)?;
    state.service.history(&q).await.map(Json)
}

/// Uptime, merged-sketch percentiles and error budget of one monitor, overall and per region.
#[utoipa::path(get, path = "/api/v1/monitors/{id}/summary", tag = "history",
    params(("id" = String, Path, description = "Monitor id"), SummaryParams),
    responses(
        (status = 200, description = "The summary", body = Summary),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn summary(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Params(p): Params<SummaryParams>,
) -> Result<Json<Summary>> {
    caller.require(Role::Viewer)?;
    let range = RangeParams {
        from: p.from,
        to: p.to,
        resolution: p.resolution,
        region: p.region,
        ..RangeParams::default()
    };
    let q = history_query(&state, Target::Monitor(id.clone()), &range)?;
    let target = p
        .target
        .as_deref()
        .map(|t| {
            t.trim().parse::<f64>().map_err(|_| {
                Error::bad_parameter("target", format!("expected a number, got {t:?}"))
            })
        })
        .transpose()?;
    let target = params::target(target)?;
    state
        .service
        .summary(&id, q.range, q.resolution, target)
        .await
        .map(Json)
}

/// Filters of `GET /api/v1/monitors/{id}/probes`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProbeParams {
    /// Start (default: 24 h before `to`).
    from: Option<String>,
    /// End, exclusive (default: now).
    to: Option<String>,
    /// Only this outcome (`ok`, `timeout`, `http_status`, …), or `failed`: every outcome but
    /// `ok`.
    #[param(
        pattern = "^(ok|dns|connect|tls|timeout|http_status|assertion|body_too_large|invalid_url|protocol|blocked|failed)$"
    )]
    outcome: Option<String>,
    /// Only this status code (`503`) or class (`5xx`).
    #[param(pattern = "^([1-5][0-9][0-9]|[1-5]xx)$")]
    status: Option<String>,
    /// Only this region.
    region: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size.
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// Raw checks of a monitor, newest first.
#[utoipa::path(get, path = "/api/v1/monitors/{id}/probes", tag = "probes",
    params(("id" = String, Path, description = "Monitor id"), ProbeParams),
    responses(
        (status = 200, description = "A page of checks", body = ProbePage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn probes(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Params(p): Params<ProbeParams>,
) -> Result<Json<ProbePage>> {
    caller.require(Role::Viewer)?;
    let q = ProbeQuery {
        monitor_id: id,
        range: params::time_range(p.from.as_deref(), p.to.as_deref(), DAY, state.service.now())?,
        outcome: p.outcome.as_deref().map(params::outcome).transpose()?,
        status: p.status.as_deref().map(params::status_filter).transpose()?,
        region: p.region,
        cursor: p.cursor,
        limit: params::page_size(parse_limit(p.limit.as_deref())?, state.service.limits())?,
    };
    state.service.probes(&q).await.map(Json)
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values with a header line.
    Csv,
}

impl ExportFormat {
    fn parse(value: Option<&str>) -> Result<Self> {
        match value.unwrap_or("ndjson") {
            "ndjson" => Ok(Self::Ndjson),
            "csv" => Ok(Self::Csv),
            other => Err(Error::bad_parameter(
                "format",
                format!("expected `ndjson` or `csv`, got {other:?}"),
            )),
        }
    }
}

/// Header line of CSV exports.
pub const CSV_HEADER: &str = "monitor_id,start,count,ok_count,error_count,availability,\
status_4xx,status_5xx,p50_us,p90_us,p95_us,p99_us,total_mean_us,dns_mean_us,connect_mean_us,\
tls_mean_us,ttfb_mean_us,anomaly_score,errors\n";

/// One CSV line (fields never contain commas: ids are slugs, errors are `kind=count;…`).
pub fn csv_line(p: &WindowPoint) -> String {
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let errors: Vec<String> = p
        .errors
        .iter()
        .map(|e| format!("{}={}", e.kind, e.count))
        .collect();
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
        p.monitor_id,
        p.start,
        p.count,
        p.ok_count,
        p.error_count,
        p.availability,
        p.status_4xx,
        p.status_5xx,
        opt(p.p50_us),
        opt(p.p90_us),
        opt(p.p95_us),
        opt(p.p99_us),
        p.total_mean_us,
        p.dns_mean_us,
        p.connect_mean_us,
        p.tls_mean_us,
        p.ttfb_mean_us,
        p.anomaly_score,
        errors.join(";"),
    )
}

fn export_response(state: &AppState, q: &HistoryQuery, format: ExportFormat) -> Result<Response> {
    let rows = state.service.history_stream(q)?;
    let lines = rows.map(move |row| {
        let point = row.inspect_err(|e| {
            tracing::error!(error = %e, "Export stream failed; the response is truncated.");
        })?;
        let line = match format {
            ExportFormat::Csv => csv_line(&point),
            ExportFormat::Ndjson => {
                let mut line = serde_json::to_string(&point)?;
                line.push('\n');
                line
            }
        };
        Ok::<Bytes, Error>(Bytes::from(line))
    });
    let (content_type, body) = match format {
        ExportFormat::Csv => (
            "text/csv; charset=utf-8",
            Body::from_stream(
                futures::stream::once(async {
                    Ok::<Bytes, Error>(Bytes::from_static(CSV_HEADER.as_bytes()))
                })
                .chain(lines)
                .fuse(),
            ),
        ),
        ExportFormat::Ndjson => ("application/x-ndjson", Body::from_stream(lines.fuse())),
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// History of one monitor as CSV or NDJSON, streamed from ClickHouse.
#[utoipa::path(get, path = "/api/v1/monitors/{id}/export", tag = "history",
    params(("id" = String, Path, description = "Monitor id"), RangeParams),
    responses(
        (status = 200, description = "One line per window", content(
            (String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn export_monitor(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Params(p): Params<RangeParams>,
) -> Result<Response> {
    caller.require(Role::Viewer)?;
    let format = ExportFormat::parse(p.format.as_deref())?;
    let q = history_query(&state, Target::Monitor(id), &p)?;
    export_response(&state, &q, format)
}

/// History of every monitor (or those with `tag`) as CSV or NDJSON, streamed.
#[utoipa::path(get, path = "/api/v1/export", tag = "history", params(RangeParams),
    responses(
        (status = 200, description = "One line per window", content(
            (String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<RangeParams>,
) -> Result<Response> {
    caller.require(Role::Viewer)?;
    let format = ExportFormat::parse(p.format.as_deref())?;
    let q = history_query(&state, all_or_tag(&p), &p)?;
    export_response(&state, &q, format)
}
