//! `/api/v1/rules`: alert rule CRUD and error budgets of burn-rate rules. Viewers read; editors
//! write. Writes go through the rules topic and answer once the service's own view shows them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Params, parse_json, parse_limit};
use crate::Result;
use crate::auth::Role;
use crate::error::Problem;
use crate::model::{ErrorBudget, Rule, RulePage};
use crate::service::{BudgetQuery, RuleFilter};
use crate::state::{AppState, Caller};

/// Filters of `GET /api/v1/rules`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RuleListParams {
    /// Only rules that apply to this monitor (by id, by one of its tags, or to every monitor).
    monitor: Option<String>,
    /// `info`, `warning` or `critical`.
    #[param(pattern = "^(info|warning|critical)$")]
    severity: Option<String>,
    /// `enabled` or `disabled`.
    #[param(pattern = "^(enabled|disabled)$")]
    status: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1–max, default 100).
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// List alert rules, ordered by id.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", params(RuleListParams),
    responses(
        (status = 200, description = "A page of rules", body = RulePage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The `monitor` filter names no monitor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_rules(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<RuleListParams>,
) -> Result<Json<RulePage>> {
    caller.require(Role::Viewer)?;
    let filter = RuleFilter {
        monitor: p.monitor,
        severity: p.severity,
        status: p.status,
        cursor: p.cursor,
        limit: parse_limit(p.limit.as_deref())?,
    };
    state.service.list_rules(&filter).map(Json)
}

/// Get one alert rule.
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules",
    params(("id" = String, Path, description = "Rule id")),
    responses(
        (status = 200, description = "The rule", body = Rule),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_rule(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Rule>> {
    caller.require(Role::Viewer)?;
    state.service.get_rule(&id).map(Json)
}

/// Create an alert rule. Answers once the service's own view shows it.
#[utoipa::path(post, path = "/api/v1/rules", tag = "rules", request_body = Rule,
    responses(
        (status = 201, description = "Created", body = Rule,
            headers(("location" = String, description = "`/api/v1/rules/{id}`"))),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id exists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Invalid spec; `errors` names every invalid field", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_rule(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<Response> {
    caller.require(Role::Editor)?;
    let rule = state.service.create_rule(parse_json(&body)?).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/rules/{}", rule.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/api/v1/rules"));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(rule),
    )
        .into_response())
}

/// Replace an alert rule's spec (the body's `id` must be the path's).
#[utoipa::path(put, path = "/api/v1/rules/{id}", tag = "rules", request_body = Rule,
    params(("id" = String, Path, description = "Rule id")),
    responses(
        (status = 200, description = "Replaced", body = Rule),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Invalid spec, or the body names another id", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_rule(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Rule>> {
    caller.require(Role::Editor)?;
    state
        .service
        .update_rule(&id, parse_json(&body)?)
        .await
        .map(Json)
}

/// Delete an alert rule.
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules",
    params(("id" = String, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete_rule(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    caller.require(Role::Editor)?;
    state.service.delete_rule(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Filters of `GET /api/v1/rules/{id}/budget`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BudgetParams {
    /// Only this monitor (the rule must apply to it).
    monitor: Option<String>,
    /// Only this region (one of the rule's `regions`, when it lists any).
    region: Option<String>,
}

/// The error budget of a burn-rate rule over its SLO period ending now, per monitor and region
/// it selects: checks, bad checks (failed ones for an availability SLO, ones slower than the
/// threshold for a latency SLO), the budget `(1 − objective) × checks`, and the share consumed
/// and remaining.
#[utoipa::path(get, path = "/api/v1/rules/{id}/budget", tag = "rules",
    params(("id" = String, Path, description = "Rule id"), BudgetParams),
    responses(
        (status = 200, description = "The budget per monitor and region", body = ErrorBudget),
        (status = 400, description = "Bad parameter (a monitor or region the rule does not look at)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule, or no such monitor", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The rule is not a burn_rate rule", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The ClickHouse query failed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn rule_budget(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Params(p): Params<BudgetParams>,
) -> Result<Json<ErrorBudget>> {
    caller.require(Role::Viewer)?;
    let q = BudgetQuery {
        rule_id: id,
        monitor_id: p.monitor,
        region: p.region,
    };
    state.service.error_budget(&q).await.map(Json)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    fn document() -> Value {
        serde_json::to_value(crate::openapi::document()).unwrap()
    }

    #[test]
    fn every_status_a_rule_route_answers_is_documented() {
        let doc = document();
        let statuses = |path: &str, method: &str| -> Vec<String> {
            doc["paths"][path][method]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(
            statuses("/api/v1/rules", "get"),
            ["200", "400", "401", "404", "422", "429", "503"]
        );
        assert_eq!(
            statuses("/api/v1/rules", "post"),
            [
                "201", "400", "401", "403", "409", "413", "422", "429", "500", "503"
            ]
        );
        assert_eq!(
            statuses("/api/v1/rules/{id}", "get"),
            ["200", "401", "404", "429", "503"]
        );
        assert_eq!(
            statuses("/api/v1/rules/{id}", "put"),
            [
                "200", "400", "401", "403", "404", "413", "422", "429", "500", "503"
            ]
        );
        assert_eq!(
            statuses("/api/v1/rules/{id}", "delete"),
            ["204", "401", "403", "404", "429", "500", "503"]
        );
        assert_eq!(
            statuses("/api/v1/rules/{id}/budget", "get"),
            ["200", "400", "401", "404", "422", "429", "500", "503"]
        );
        assert_eq!(
            statuses("/api/v1/rules/backtest", "post"),
            // 409: a request with the same Idempotency-Key still running.
            [
                "200", "400", "401", "403", "409", "413", "422", "429", "500", "503"
            ]
        );
        let busy = &doc["paths"]["/api/v1/rules/backtest"]["post"]["responses"]["429"];
        assert_eq!(busy["headers"]["retry-after"]["schema"]["type"], "integer");
        for (path, item) in doc["paths"].as_object().unwrap() {
            if !path.starts_with("/api/v1/rules") {
                continue;
            }
            for (method, operation) in item.as_object().unwrap() {
                assert_eq!(operation["tags"], json!(["rules"]), "{method} {path}");
                assert_eq!(operation["security"], json!([{"bearer": []}]));
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status.starts_with('4') && status != "413" || status.starts_with('5') {
                        assert_eq!(
                            response["content"]["application/problem+json"]["schema"]["$ref"],
                            "#/components/schemas/Problem",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        assert_eq!(
            doc["paths"]["/api/v1/rules"]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/Rule"
        );
    }

    #[test]
    fn the_rule_schema_carries_the_validation_constraints() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let rule = &schemas["Rule"];
        assert_eq!(rule["required"], json!(["id", "condition"]));
        assert_eq!(rule["additionalProperties"], false);
        let id = &rule["properties"]["id"];
        assert_eq!(
            (&id["pattern"], &id["maxLength"]),
            (&json!("^[a-z0-9][a-z0-9_-]*$"), &json!(64))
        );
        assert_eq!(rule["properties"]["name"]["maxLength"], 200);
        assert_eq!(rule["properties"]["summary"]["maxLength"], 1000);
        assert_eq!(rule["properties"]["quorum"]["minimum"], 1);
        assert_eq!(rule["properties"]["labels"]["maxProperties"], 64);
        assert_eq!(
            rule["properties"]["monitors"]["items"]["pattern"],
            "^[a-z0-9][a-z0-9_-]*$"
        );
        let kinds: Vec<&str> = schemas["Condition"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["required"][0].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = vigil_schema::AlertKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        let mut sorted_kinds = kinds.clone();
        let mut sorted_expected = expected.clone();
        sorted_kinds.sort_unstable();
        sorted_expected.sort_unstable();
        assert_eq!(sorted_kinds, sorted_expected);
        let variant = |kind: &str| -> Value {
            schemas["Condition"]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["required"][0] == kind)
                .unwrap()["properties"][kind]
                .clone()
        };
        let percentile = &variant("latency_percentile")["properties"]["percentile"];
        assert_eq!(
            (
                &percentile["exclusiveMinimum"],
                &percentile["exclusiveMaximum"]
            ),
            (&json!(0), &json!(100))
        );
        let below = &variant("availability")["properties"]["below"];
        assert_eq!(
            (&below["minimum"], &below["maximum"]),
            (&json!(0), &json!(1))
        );
        let anomaly = &variant("anomaly")["properties"]["above"];
        assert_eq!(
            (&anomaly["exclusiveMinimum"], &anomaly["maximum"]),
            (&json!(0), &json!(1))
        );
        let objective = &variant("burn_rate")["properties"]["objective"];
        assert_eq!(
            (
                &objective["exclusiveMinimum"],
                &objective["exclusiveMaximum"]
            ),
            (&json!(0), &json!(1))
        );
        assert_eq!(variant("burn_rate")["properties"]["windows"]["minItems"], 1);
        assert_eq!(variant("no_data")["properties"]["intervals"]["minimum"], 1);
        assert_eq!(
            schemas["Severity"]["enum"],
            json!(["info", "warning", "critical"])
        );
        assert_eq!(
            schemas["StatusClass"]["enum"],
            json!(["1xx", "2xx", "3xx", "4xx", "5xx", "error"])
        );
    }
}
