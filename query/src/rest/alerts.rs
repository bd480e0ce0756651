//! `/api/v1/alerts`: alert transitions (newest first, filtered, cursor-paginated) and the alerts
//! active now (pending or firing); viewers read. Editors acknowledge a firing alert
//! (`POST /api/v1/alerts/ack`), which stops its escalation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{DAY, Params, parse_json, parse_limit};
use crate::Result;
use crate::auth::Role;
use crate::error::Problem;
use crate::model::{AckInput, ActiveAlertPage, AlertPage, CommandAccepted};
use crate::params;
use crate::service::{ActiveAlertQuery, AlertQuery};
use crate::state::{AppState, Caller};

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// Start: RFC 3339, unix ms, `now` or `now-<duration>` (default: 7 days before `to`).
    from: Option<String>,
    /// End, exclusive (default: now).
    to: Option<String>,
    /// Only this rule.
    rule: Option<String>,
    /// Only this monitor.
    monitor: Option<String>,
    /// Only this region; empty (`region=`) selects transitions without a region (quorum
    /// alerts).
    region: Option<String>,
    /// Only transitions to this state: `ok`, `pending` or `firing`.
    #[param(pattern = "^(ok|pending|firing)$")]
    state: Option<String>,
    /// Only this severity: `info`, `warning` or `critical`.
    #[param(pattern = "^(info|warning|critical)$")]
    severity: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1 to `limits.max-page-size`, 1000 by default; default 100).
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// Alert transitions, newest first (by event time, then transition id).
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertParams),
    responses(
        (status = 200, description = "A page of transitions", body = AlertPage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The ClickHouse query failed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn alerts(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<AlertParams>,
) -> Result<Json<AlertPage>> {
    caller.require(Role::Viewer)?;
    let service = &state.service;
    let q = AlertQuery {
        rule_id: p.rule,
        monitor_id: p.monitor,
        region: p.region,
        state: p.state.as_deref().map(params::alert_state).transpose()?,
        severity: p.severity.as_deref().map(params::severity).transpose()?,
        range: params::time_range(p.from.as_deref(), p.to.as_deref(), 7 * DAY, service.now())?,
        cursor: p.cursor,
        limit: params::page_size(parse_limit(p.limit.as_deref())?, service.limits())?,
    };
    service.alerts(&q).await.map(Json)
}

/// Filters of `GET /api/v1/alerts/active`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActiveAlertParams {
    /// Only this rule.
    rule: Option<String>,
    /// Only this monitor.
    monitor: Option<String>,
    /// Only this region; empty (`region=`) selects alerts without a region (quorum alerts).
    region: Option<String>,
    /// Only alerts whose latest transition has this severity: `info`, `warning` or
    /// `critical`.
    #[param(pattern = "^(info|warning|critical)$")]
    severity: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1 to `limits.max-page-size`, 1000 by default; default 100).
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// Alerts pending or firing now: for every rule, monitor and region, the latest transition
/// (by event time, then transition id) when it does not lead to `ok`. Ordered by rule, monitor,
/// region.
#[utoipa::path(get, path = "/api/v1/alerts/active", tag = "alerts", params(ActiveAlertParams),
    responses(
        (status = 200, description = "A page of active alerts", body = ActiveAlertPage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The ClickHouse query failed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn active_alerts(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<ActiveAlertParams>,
) -> Result<Json<ActiveAlertPage>> {
    caller.require(Role::Viewer)?;
    let service = &state.service;
    let q = ActiveAlertQuery {
        rule_id: p.rule,
        monitor_id: p.monitor,
        region: p.region,
        severity: p.severity.as_deref().map(params::severity).transpose()?,
        cursor: p.cursor,
        limit: params::page_size(parse_limit(p.limit.as_deref())?, service.limits())?,
    };
    service.active_alerts(&q).await.map(Json)
}

/// Acknowledge a firing alert: its escalation stops (the notifications already due are still
/// sent, and a new firing of the alert starts unacknowledged). Without `region`, every firing
/// alert of the rule on the monitor. The author is the caller's API key name. The command is
/// applied by the notification stage moments later.
#[utoipa::path(post, path = "/api/v1/alerts/ack", tag = "alerts", request_body = AckInput,
    responses(
        (status = 202, description = "The command was written to the notification stage", body = CommandAccepted),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule or monitor", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Invalid body; `errors` names every invalid field", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn acknowledge_alert(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    caller.require(Role::Editor)?;
    let accepted = state
        .service
        .acknowledge_alert(parse_json(&body)?, &caller.name)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    #[test]
    fn alert_routes_document_every_status_and_the_new_fields() {
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        for path in ["/api/v1/alerts", "/api/v1/alerts/active"] {
            let operation = &doc["paths"][path]["get"];
            assert_eq!(operation["tags"], json!(["alerts"]));
            let responses = operation["responses"].as_object().unwrap();
            let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
            assert_eq!(
                statuses,
                ["200", "400", "401", "422", "429", "500", "503"],
                "{path}"
            );
            for (status, response) in responses.iter().filter(|(s, _)| *s != "200") {
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{path} {status}"
                );
            }
        }
        let names = |path: &str| -> Vec<String> {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            names("/api/v1/alerts"),
            [
                "from", "to", "rule", "monitor", "region", "state", "severity", "cursor", "limit"
            ]
        );
        assert_eq!(
            names("/api/v1/alerts/active"),
            ["rule", "monitor", "region", "severity", "cursor", "limit"]
        );
        let schemas = &doc["components"]["schemas"];
        let properties = |name: &str| -> Value { schemas[name]["properties"].clone() };
        assert_eq!(
            properties("Alert")["severity"]["$ref"],
            "#/components/schemas/Severity"
        );
        assert_eq!(
            properties("Alert")["labels"]["additionalProperties"]["type"],
            "string"
        );
        assert!(properties("ActiveAlert")["since"].is_object());
        assert_eq!(
            doc["paths"]["/api/v1/rules/backtest"]["post"]["requestBody"]["content"]["application/json"]
                ["schema"]["$ref"],
            "#/components/schemas/BacktestInput"
        );
        let input = properties("BacktestInput");
        assert_eq!(
            (
                &input["max_transitions"]["minimum"],
                &input["max_transitions"]["maximum"]
            ),
            (&json!(1), &json!(10000))
        );
        assert!(properties("ErrorBudget")["series"].is_object());
    }
}
