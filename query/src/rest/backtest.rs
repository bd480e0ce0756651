//! `POST /api/v1/rules/backtest`: what rules would have done over the retained probes, run
//! through the processor's pipeline and evaluator. Editors only; one at a time per service.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;

use super::parse_json;
use crate::Result;
use crate::auth::Role;
use crate::error::Problem;
use crate::model::BacktestReport;
use crate::model::backtest::BacktestInput;
use crate::state::{AppState, Caller};

/// Backtest alert rules over the probes topic: the transitions they would have produced (the
/// same ids a live processor gives unchanged rules) and, per rule, how often and how long it
/// fired. Rules are validated as on create. At most 7 days; one backtest runs at a time per
/// service and each is abandoned after `query.backtest.timeout`.
#[utoipa::path(post, path = "/api/v1/rules/backtest", tag = "rules", request_body = BacktestInput,
    responses(
        (status = 200, description = "The report", body = BacktestReport),
        (status = 400, description = "Body is not JSON, or `from`, `to` or `max_transitions` is invalid (more than 7 days, `to` not after `from`, outside 1–10000); `parameter` names it", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Invalid body or rules; `errors` names every invalid field (`rules[2].condition.availability.below`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Another backtest is running", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds until the running backtest ends at the latest"))),
        (status = 500, description = "Reading the probes topic or ClickHouse failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The backtest did not finish within the configured timeout, or the service is shutting down", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn backtest_rules(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<Json<BacktestReport>> {
    caller.require(Role::Editor)?;
    state.service.backtest(parse_json(&body)?).await.map(Json)
}
