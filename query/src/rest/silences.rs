//! `/api/v1/silences` (list, create, expire) and `/api/v1/maintenance` (CRUD). Viewers read;
//! editors write. Both live on the silences topic and share its ids. A silence's author is the
//! name of the API key that created it; expiring one (`DELETE` or `POST …/expire`) sets its end
//! to now and keeps it, listed as `expired`.

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
use crate::model::{Maintenance, MaintenancePage, NewSilence, Silence, SilencePage};
use crate::service::{MaintenanceFilter, SilenceFilter};
use crate::state::{AppState, Caller};

/// Filters of `GET /api/v1/silences`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SilenceListParams {
    /// `pending`, `active` or `expired`; default: all of them.
    #[param(pattern = "^(pending|active|expired)$")]
    state: Option<String>,
    /// Only silences with this matcher (`monitor=checkout`).
    matcher: Option<String>,
    /// Only silences created by this author (an API key's name).
    author: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1–max, default 100).
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// List silences, active, pending and expired, ordered by id (new ids sort by creation).
#[utoipa::path(get, path = "/api/v1/silences", tag = "silences", params(SilenceListParams),
    responses(
        (status = 200, description = "A page of silences", body = SilencePage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_silences(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<SilenceListParams>,
) -> Result<Json<SilencePage>> {
    caller.require(Role::Viewer)?;
    let filter = SilenceFilter {
        state: p.state,
        matcher: p.matcher,
        author: p.author,
        cursor: p.cursor,
        limit: parse_limit(p.limit.as_deref())?,
    };
    state.service.list_silences(&filter).map(Json)
}

/// Get one silence.
#[utoipa::path(get, path = "/api/v1/silences/{id}", tag = "silences",
    params(("id" = String, Path, description = "Silence id")),
    responses(
        (status = 200, description = "The silence", body = Silence),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such silence", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_silence(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Silence>> {
    caller.require(Role::Viewer)?;
    state.service.get_silence(&id).map(Json)
}

/// Create a silence; its author is the caller's API key name (`anonymous` when
/// authentication is off). Answers once the service's own view shows it.
#[utoipa::path(post, path = "/api/v1/silences", tag = "silences", request_body = NewSilence,
    responses(
        (status = 201, description = "Created", body = Silence,
            headers(("location" = String, description = "`/api/v1/silences/{id}`"))),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A silence or maintenance window has the id", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Invalid silence; `errors` names every invalid field", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_silence(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<Response> {
    caller.require(Role::Editor)?;
    let silence = state
        .service
        .create_silence(parse_json(&body)?, &caller.name)
        .await?;
    let location = HeaderValue::from_str(&format!("/api/v1/silences/{}", silence.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/api/v1/silences"));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(silence),
    )
        .into_response())
}

/// Expire a silence: its end becomes now (one not started yet never comes into force). An
/// expired silence is answered as it is.
#[utoipa::path(post, path = "/api/v1/silences/{id}/expire", tag = "silences",
    params(("id" = String, Path, description = "Silence id")),
    responses(
        (status = 200, description = "The expired silence", body = Silence),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such silence", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn expire_silence(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Silence>> {
    caller.require(Role::Editor)?;
    state.service.expire_silence(&id).await.map(Json)
}

/// Expire a silence, like `POST /api/v1/silences/{id}/expire` (it is kept, as expired).
#[utoipa::path(delete, path = "/api/v1/silences/{id}", tag = "silences",
    params(("id" = String, Path, description = "Silence id")),
    responses(
        (status = 204, description = "Expired"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such silence", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete_silence(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    caller.require(Role::Editor)?;
    state.service.expire_silence(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Filters of `GET /api/v1/maintenance`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MaintenanceListParams {
    /// `true`: only windows in force now; `false`: only the others.
    #[param(pattern = "^(true|false)$")]
    active: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1–max, default 100).
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// List maintenance windows, ordered by id.
#[utoipa::path(get, path = "/api/v1/maintenance", tag = "maintenance",
    params(MaintenanceListParams),
    responses(
        (status = 200, description = "A page of maintenance windows", body = MaintenancePage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_maintenance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<MaintenanceListParams>,
) -> Result<Json<MaintenancePage>> {
    caller.require(Role::Viewer)?;
    let filter = MaintenanceFilter {
        active: p.active,
        cursor: p.cursor,
        limit: parse_limit(p.limit.as_deref())?,
    };
    state.service.list_maintenance(&filter).map(Json)
}

/// Get one maintenance window.
#[utoipa::path(get, path = "/api/v1/maintenance/{id}", tag = "maintenance",
    params(("id" = String, Path, description = "Maintenance window id")),
    responses(
        (status = 200, description = "The maintenance window", body = Maintenance),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such maintenance window", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_maintenance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Maintenance>> {
    caller.require(Role::Viewer)?;
    state.service.get_maintenance(&id).map(Json)
}

/// Create a maintenance window. Answers once the service's own view shows it.
#[utoipa::path(post, path = "/api/v1/maintenance", tag = "maintenance", request_body = Maintenance,
    responses(
        (status = 201, description = "Created", body = Maintenance,
            headers(("location" = String, description = "`/api/v1/maintenance/{id}`"))),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A maintenance window or silence has the id", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Invalid spec; `errors` names every invalid field (`schedule.recurring.cron`)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_maintenance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<Response> {
    caller.require(Role::Editor)?;
    let window = state.service.create_maintenance(parse_json(&body)?).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/maintenance/{}", window.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/api/v1/maintenance"));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(window),
    )
        .into_response())
}

/// Replace a maintenance window (the body's `id` must be the path's).
#[utoipa::path(put, path = "/api/v1/maintenance/{id}", tag = "maintenance",
    request_body = Maintenance,
    params(("id" = String, Path, description = "Maintenance window id")),
    responses(
        (status = 200, description = "Replaced", body = Maintenance),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such maintenance window", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Invalid spec, or the body names another id", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_maintenance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Maintenance>> {
    caller.require(Role::Editor)?;
    state
        .service
        .update_maintenance(&id, parse_json(&body)?)
        .await
        .map(Json)
}

/// Delete a maintenance window.
#[utoipa::path(delete, path = "/api/v1/maintenance/{id}", tag = "maintenance",
    params(("id" = String, Path, description = "Maintenance window id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such maintenance window", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete_maintenance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    caller.require(Role::Editor)?;
    state.service.delete_maintenance(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::rest::channels::tests::statuses;

    #[test]
    fn silence_and_maintenance_statuses_and_schemas_are_documented() {
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        let created = [
            "201", "400", "401", "403", "409", "413", "422", "429", "500", "503",
        ];
        let gone = ["204", "401", "403", "404", "429", "500", "503"];
        assert_eq!(
            statuses(&doc, "/api/v1/silences", "get"),
            ["200", "400", "401", "422", "429", "503"]
        );
        assert_eq!(statuses(&doc, "/api/v1/silences", "post"), created);
        assert_eq!(
            statuses(&doc, "/api/v1/silences/{id}", "get"),
            ["200", "401", "404", "429", "503"]
        );
        assert_eq!(statuses(&doc, "/api/v1/silences/{id}", "delete"), gone);
        assert_eq!(
            statuses(&doc, "/api/v1/silences/{id}/expire", "post"),
            // 400, 409 and 422: a malformed Idempotency-Key, one still running, or one used
            // with another request.
            [
                "200", "400", "401", "403", "404", "409", "422", "429", "500", "503"
            ]
        );
        assert_eq!(statuses(&doc, "/api/v1/maintenance", "post"), created);
        assert_eq!(statuses(&doc, "/api/v1/maintenance/{id}", "delete"), gone);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["Silence"]["properties"]["state"]["$ref"],
            "#/components/schemas/SilenceState"
        );
        assert_eq!(
            schemas["Maintenance"]["properties"]["active"]["readOnly"],
            true
        );
        assert_eq!(schemas["NewSilence"]["required"], json!(["matchers"]));
        assert_eq!(schemas["NewSilence"]["additionalProperties"], false);
        assert_eq!(
            schemas["SilenceState"]["enum"],
            json!(["pending", "active", "expired"])
        );
        for (path, item) in doc["paths"].as_object().unwrap() {
            let tag = ["channels", "routes", "silences", "maintenance"]
                .into_iter()
                .find(|t| path.starts_with(&format!("/api/v1/{t}")));
            let Some(tag) = tag else { continue };
            for (method, operation) in item.as_object().unwrap() {
                assert_eq!(operation["tags"], json!([tag]), "{method} {path}");
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
    }
}
