//! The ingestion API for external probe agents, plus the service's health and metrics endpoints.
//!
//! - `POST /v1/events`: a JSON array or NDJSON (`application/x-ndjson`) of [`ProbeResult`]s,
//!   optionally `Content-Encoding: gzip`, with an API key (`Authorization: Bearer <key>` or
//!   `X-Api-Key: <key>`). Each event is parsed and validated on its own; valid events are
//!   produced to the probes topic and the response is sent only after Kafka acknowledged every
//!   one of them:
//!   - all valid and acknowledged: `202` `{"accepted": n, "unknown_monitors": [...]}`;
//!   - some invalid: `422` RFC 9457 problem listing `invalid` (index + reason) and the
//!     `accepted` indices (those are durably in Kafka);
//!   - Kafka did not acknowledge some in time: `503` problem listing `accepted` and `failed`.
//!
//!   Bodies over `api.max-body-bytes` (before or after decompression) or batches over
//!   `api.max-batch-events` get `413`. Monitor ids absent from the monitors topic are accepted
//!   (external agents may run ad-hoc checks) but listed in `unknown_monitors`.
//! - `GET /healthz`: the process is up. `GET /readyz`: Kafka answers and the monitors view is
//!   loaded. `GET /metrics`: Prometheus text.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt as _;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;
use vigil_schema::{ProbeResult, Timestamp};

use crate::config::ApiConfig;
use crate::producer::ProbeProducer;
use crate::{Error, MonitorView, Result, metric};

/// Renders the process's metrics in the Prometheus text format.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

mod keys;
mod limit;
mod unknown;

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ApiConfig,
    unknown: unknown::UnknownBudget,
    limits: vigil_schema::ratelimit::RateLimits,
    producer: ProbeProducer,
    view: MonitorView,
    render_metrics: Option<RenderMetrics>,
    /// Keys created through the query API or CLI.
    keys: Option<crate::monitors::SpecView<vigil_schema::ApiKeyRecord>>,
    /// Uses of those keys, reported to `vigil.api-key-usage`.
    usage: Option<Arc<vigil_schema::UsageRecorder>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("config", &self.inner.config)
            .field("producer", &self.inner.producer)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// State for the handlers. `render_metrics` backs `/metrics` (404 without it).
    pub fn new(
        config: ApiConfig,
        producer: ProbeProducer,
        view: MonitorView,
        render_metrics: Option<RenderMetrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits: vigil_schema::ratelimit::RateLimits::new(&config.rate_limit),
                unknown: unknown::UnknownBudget::new(
                    config.max_unknown_monitors,
                    config.unknown_monitors_period,
                ),
                config,
                producer,
                view,
                render_metrics,
                keys: None,
                usage: None,
            }),
        }
    }

    /// The same state also accepting the keys in `keys` (scope `ingest`), noting their uses
    /// in `usage`. Call before the state is shared (cloned).
    pub fn with_keys(
        mut self,
        keys: crate::monitors::SpecView<vigil_schema::ApiKeyRecord>,
        usage: Arc<vigil_schema::UsageRecorder>,
    ) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.keys = Some(keys);
                inner.usage = Some(usage);
            }
            None => tracing::error!(
                "The ingestion API's keys were set after it was shared; created keys are not accepted."
            ),
        }
        self
    }
}

/// Who may call a route of the ingestion API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, readiness, metrics).
    Public,
    /// A configured key, or a created key of the editor or admin role whose scopes include
    /// `ingest` (or that has none), neither revoked nor expired.
    IngestKey,
}

/// Every route with its access rule. The router is built from this table, so a route cannot
/// exist without a rule.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("POST", "/v1/events", Access::IngestKey),
    ("GET", "/healthz", Access::Public),
    ("GET", "/readyz", Access::Public),
    ("GET", "/metrics", Access::Public),
];

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    let mut router = Router::new();
    for &(method, path, _) in ROUTES {
        let handler = match (method, path) {
            ("POST", "/v1/events") => post(post_events),
            ("GET", "/healthz") => get(|| async { "ok\n" }),
            ("GET", "/readyz") => get(ready),
            ("GET", "/metrics") => get(render_metrics),
            _ => {
                tracing::error!(method, path, "A route in the table has no handler.");
                continue;
            }
        };
        router = router.route(path, handler);
    }
    router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit::layer,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the API on `listener` until `token` is cancelled, then drains in-flight requests.
pub async fn serve(listener: TcpListener, state: ApiState, token: CancellationToken) -> Result<()> {
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(token.cancelled_owned())
        .await
        .map_err(Error::Serve)
}

/// An RFC 9457 problem.
#[derive(Debug, Serialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    invalid: Vec<EventError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed: Vec<EventError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unknown_monitors: Vec<String>,
}

/// Why one event was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct EventError {
    index: usize,
    reason: String,
}

impl Problem {
    fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: String) -> Self {
        Self {
            kind,
            title,
            status: status.as_u16(),
            detail,
            accepted: None,
            invalid: Vec::new(),
            failed: Vec::new(),
            unknown_monitors: Vec::new(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn too_large(detail: String) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "urn:vigil:problem:too-large",
        "Request too large",
        detail,
    )
}

fn bad_request(detail: String) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "urn:vigil:problem:bad-request",
        "Bad request",
        detail,
    )
}

use keys::{authorized, presented_key};

/// Reads the body, enforcing the size limit before and after gzip.
async fn read_body(config: &ApiConfig, request: Request) -> Result<Vec<u8>, Box<Problem>> {
    let limit = config.max_body_bytes;
    let gzip = match request.headers().get(header::CONTENT_ENCODING) {
        None => false,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"gzip") => true,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"identity") => false,
        Some(v) => {
            return Err(Box::new(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "urn:vigil:problem:unsupported-encoding",
                "Unsupported content encoding",
                format!("content-encoding {v:?} is not supported; use gzip or none"),
            )));
        }
    };
    let body = http_body_util::Limited::new(request.into_body(), limit);
    let raw = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(Box::new(too_large(format!(
                "request body exceeds {limit} bytes"
            ))));
        }
        Err(e) => {
            return Err(Box::new(bad_request(format!(
                "failed to read the request body: {e}"
            ))));
        }
    };
    if !gzip {
        return Ok(raw.to_vec());
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    let mut decoder = flate2::read::GzDecoder::new(&raw[..]).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| Box::new(bad_request(format!("invalid gzip body: {e}"))))?;
    if out.len() > limit {
        return Err(Box::new(too_large(format!(
            "decompressed request body exceeds {limit} bytes"
        ))));
    }
    Ok(out)
}

/// Splits a body into raw events: a JSON array, or one JSON value per line.
fn split_events(body: &[u8], ndjson: bool) -> Result<Vec<Result<&RawValue, String>>, Box<Problem>> {
    let text =
        std::str::from_utf8(body).map_err(|e| bad_request(format!("body is not UTF-8: {e}")))?;
    let array = !ndjson && text.trim_start().starts_with('[');
    if array {
        let events: Vec<&RawValue> = serde_json::from_str(text)
            .map_err(|e| Box::new(bad_request(format!("body is not a JSON array: {e}"))))?;
        return Ok(events.into_iter().map(Ok).collect());
    }
    Ok(text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str::<&RawValue>(line).map_err(|e| format!("invalid JSON: {e}"))
        })
        .collect())
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Longest agent name or method, URL, error or assertion text of an event (bytes), and most
/// assertions (the same bounds as a monitor's).
const MAX_SHORT: usize = 256;
const MAX_URL: usize = 2048;
const MAX_TEXT: usize = 8 * 1024;
const MAX_ASSERTIONS: usize = 32;

/// At most `most` assertions, each of bounded size.
fn check_assertions(
    field: &str,
    assertions: &[vigil_schema::AssertionResult],
    most: usize,
) -> Result<(), String> {
    if assertions.len() > most {
        return Err(format!(
            "{field}: must have at most {most} items, got {}",
            assertions.len()
        ));
    }
    for (i, a) in assertions.iter().enumerate() {
        let actual = a.actual.as_deref().unwrap_or_default();
        for (part, len) in [("condition", a.condition.len()), ("actual", actual.len())] {
            if len > MAX_TEXT {
                return Err(format!(
                    "{field}[{i}].{part}: must be at most {MAX_TEXT} bytes, got {len}"
                ));
            }
        }
    }
    Ok(())
}

/// Checks what a decodable event must also satisfy.
fn validate(event: &ProbeResult, now: Timestamp, skew: Duration) -> Result<(), String> {
    for (field, value) in [("monitor_id", &event.monitor_id), ("region", &event.region)] {
        if !is_slug(value) {
            // Echoed only when short: an error is not an amplifier.
            let got = if value.len() <= 64 {
                format!("{value:?}")
            } else {
                format!("{} bytes", value.len())
            };
            return Err(format!(
                "{field}: must be 1–64 characters of a-z, 0-9, '-' or '_', got {got}"
            ));
        }
    }
    if event.agent.trim().is_empty() {
        return Err("agent: must not be empty".into());
    }
    let long = |field: &str, len: usize, max: usize| {
        Err(format!("{field}: must be at most {max} bytes, got {len}"))
    };
    for (field, value, max) in [
        ("agent", event.agent.as_str(), MAX_SHORT),
        ("method", event.method.as_str(), MAX_SHORT),
        ("url", event.url.as_str(), MAX_URL),
        (
            "error",
            event.error.as_deref().unwrap_or_default(),
            MAX_TEXT,
        ),
    ] {
        if value.len() > max {
            return long(field, value.len(), max);
        }
    }
    if event.steps.len() > vigil_schema::MAX_STEPS {
        return Err(format!(
            "steps: must have at most {} items, got {}",
            vigil_schema::MAX_STEPS,
            event.steps.len()
        ));
    }
    // A multi-step check carries every step's assertions.
    let most = MAX_ASSERTIONS * event.steps.len().max(1);
    check_assertions("assertions", &event.assertions, most)?;
    for (i, step) in event.steps.iter().enumerate() {
        if let Some(status) = step.status_code
            && !(100..=599).contains(&status)
        {
            return Err(format!(
                "steps[{i}].status_code: must be 100–599, got {status}"
            ));
        }
        for (field, value, max) in [
            ("name", step.name.as_str(), MAX_SHORT),
            ("method", step.method.as_str(), MAX_SHORT),
            ("url", step.url.as_str(), MAX_URL),
            ("error", step.error.as_deref().unwrap_or_default(), MAX_TEXT),
        ] {
            if value.len() > max {
                return long(&format!("steps[{i}].{field}"), value.len(), max);
            }
        }
        check_assertions(
            &format!("steps[{i}].assertions"),
            &step.assertions,
            MAX_ASSERTIONS,
        )?;
    }
    if let Some(status) = event.status_code
        && !(100..=599).contains(&status)
    {
        return Err(format!("status_code: must be 100–599, got {status}"));
    }
    let skew_ms = i64::try_from(skew.as_millis()).unwrap_or(i64::MAX);
    if event.event_time.as_millis() > now.as_millis().saturating_add(skew_ms) {
        return Err(format!(
            "event_time: {} is more than {} in the future",
            event.event_time,
            humantime::format_duration(skew)
        ));
    }
    let t = &event.timings;
    for (name, phase) in [
        ("dns_us", t.dns_us),
        ("connect_us", t.connect_us),
        ("tls_us", t.tls_us),
        ("ttfb_us", t.ttfb_us),
    ] {
        if phase.is_some_and(|p| p > t.total_us) {
            return Err(format!("timings.{name}: exceeds total_us ({})", t.total_us));
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct Accepted {
    accepted: usize,
    unknown_monitors: Vec<String>,
}

async fn post_events(State(state): State<ApiState>, request: Request) -> Response {
    let config = &state.inner.config;
    let Some(key) = authorized(config, state.inner.keys.as_ref(), request.headers()) else {
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "urn:vigil:problem:unauthorized",
            "Unauthorized",
            "a valid API key is required (Authorization: Bearer <key> or X-Api-Key)".into(),
        )
        .into_response();
    };
    if let Some(usage) = &state.inner.usage
        && !key.starts_with("config#")
    {
        usage.record(&key, Timestamp::now());
    }
    let ndjson = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/x-ndjson") || v.starts_with("application/jsonl")
        });
    let body = match read_body(config, request).await {
        Ok(body) => body,
        Err(problem) => return (*problem).into_response(),
    };
    let raw = match split_events(&body, ndjson) {
        Ok(raw) => raw,
        Err(problem) => return (*problem).into_response(),
    };
    if raw.len() > config.max_batch_events {
        return too_large(format!(
            "batch has {} events, the limit is {}",
            raw.len(),
            config.max_batch_events
        ))
        .into_response();
    }
    if raw.is_empty() {
        return bad_request("the batch holds no events".into()).into_response();
    }

    let now = Timestamp::now();
    let mut invalid = Vec::new();
    let mut pending = Vec::with_capacity(raw.len());
    let mut failed = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut buf = Vec::with_capacity(256);
    for (index, event) in raw.into_iter().enumerate() {
        let parsed = event.and_then(|raw| {
            serde_json::from_str::<ProbeResult>(raw.get()).map_err(|e| e.to_string())
        });
        let event = match parsed.and_then(|e| validate(&e, now, config.max_clock_skew).map(|()| e))
        {
            Ok(event) => event,
            Err(reason) => {
                invalid.push(EventError { index, reason });
                continue;
            }
        };
        if !state.inner.view.contains(&event.monitor_id) {
            if !state
                .inner
                .unknown
                .admit(&key, &event.monitor_id, std::time::Instant::now())
            {
                metrics::counter!(metric::API_UNKNOWN_REFUSED).increment(1);
                invalid.push(EventError {
                    index,
                    reason: state.inner.unknown.refusal(&event.monitor_id),
                });
                continue;
            }
            if !unknown.contains(&event.monitor_id) {
                unknown.push(event.monitor_id.clone());
            }
        }
        buf.clear();
        if let Err(e) = vigil_schema::envelope::encode_into(&event, &mut buf) {
            invalid.push(EventError {
                index,
                reason: e.to_string(),
            });
            continue;
        }
        match state.inner.producer.send_encoded(&event.monitor_id, &buf) {
            Ok(delivery) => pending.push((index, delivery)),
            Err(e) => failed.push(EventError {
                index,
                reason: format!("kafka: {e}"),
            }),
        }
    }

    let mut accepted = Vec::with_capacity(pending.len());
    let deadline = tokio::time::Instant::now() + config.ack_timeout;
    for (index, delivery) in pending {
        match tokio::time::timeout_at(deadline, delivery).await {
            Ok(Ok(Ok(_))) => accepted.push(index),
            Ok(Ok(Err((e, _)))) => failed.push(EventError {
                index,
                reason: format!("kafka: {e}"),
            }),
            Ok(Err(_)) => failed.push(EventError {
                index,
                reason: "kafka: the producer went away".into(),
            }),
            Err(_) => failed.push(EventError {
                index,
                reason: format!(
                    "kafka: not acknowledged within {}",
                    humantime::format_duration(config.ack_timeout)
                ),
            }),
        }
    }
    metrics::counter!(metric::API_EVENTS, "result" => "accepted").increment(accepted.len() as u64);
    metrics::counter!(metric::API_EVENTS, "result" => "invalid").increment(invalid.len() as u64);
    metrics::counter!(metric::API_EVENTS, "result" => "failed").increment(failed.len() as u64);
    metrics::counter!(metric::API_UNKNOWN_MONITOR).increment(unknown.len() as u64);

    if !failed.is_empty() {
        failed.sort_by_key(|e| e.index);
        tracing::warn!(
            failed = failed.len(),
            accepted = accepted.len(),
            "Kafka did not acknowledge every event of a batch."
        );
        let mut problem = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "urn:vigil:problem:kafka-unavailable",
            "Events not stored",
            format!(
                "{} of the batch's events were not acknowledged by Kafka; {} were",
                failed.len(),
                accepted.len()
            ),
        );
        problem.accepted = Some(accepted);
        problem.failed = failed;
        problem.invalid = invalid;
        problem.unknown_monitors = unknown;
        return problem.into_response();
    }
    if !invalid.is_empty() {
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "urn:vigil:problem:invalid-events",
            "Some events are invalid",
            format!(
                "{} event(s) rejected, {} accepted",
                invalid.len(),
                accepted.len()
            ),
        );
        problem.accepted = Some(accepted);
        problem.invalid = invalid;
        problem.unknown_monitors = unknown;
        return problem.into_response();
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            accepted: accepted.len(),
            unknown_monitors: unknown,
        }),
    )
        .into_response()
}

async fn ready(State(state): State<ApiState>) -> Response {
    let producer = state.inner.producer.clone();
    let reachable = tokio::task::spawn_blocking(move || producer.reachable(Duration::from_secs(2)))
        .await
        .unwrap_or(false);
    let loaded = state.inner.view.is_ready();
    if reachable && loaded {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let detail = match (reachable, loaded) {
        (false, _) => "kafka is not reachable",
        _ => "the monitors topic is still loading",
    };
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "urn:vigil:problem:not-ready",
        "Not ready",
        detail.into(),
    )
    .into_response()
}

async fn render_metrics(State(state): State<ApiState>) -> Response {
    match &state.inner.render_metrics {
        Some(render) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            Body::from(render()),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}

#[cfg(test)]
mod tests;
