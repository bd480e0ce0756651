//! `/api/v1/channels`: notification channel CRUD, and `/api/v1/routes`: the routing tree.
//! Viewers read; editors write. Writes go through the channels and routes topics and answer
//! once the service's own view shows them. Secret fields hold `${secret:NAME}` references
//! only (a literal secret is a 422), so no response carries a secret's value.

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
use crate::model::{Channel, ChannelPage, Route};
use crate::service::ChannelFilter;
use crate::state::{AppState, Caller};

/// Filters of `GET /api/v1/channels`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChannelListParams {
    /// `webhook`, `alertmanager`, `slack`, `pagerduty`, `email` or `console`.
    #[param(pattern = "^(webhook|alertmanager|slack|pagerduty|email|console)$")]
    kind: Option<String>,
    /// `enabled` or `disabled`.
    #[param(pattern = "^(enabled|disabled)$")]
    status: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1–max, default 100).
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// List notification channels, ordered by id.
#[utoipa::path(get, path = "/api/v1/channels", tag = "channels", params(ChannelListParams),
    responses(
        (status = 200, description = "A page of channels", body = ChannelPage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_channels(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<ChannelListParams>,
) -> Result<Json<ChannelPage>> {
    caller.require(Role::Viewer)?;
    let filter = ChannelFilter {
        kind: p.kind,
        status: p.status,
        cursor: p.cursor,
        limit: parse_limit(p.limit.as_deref())?,
    };
    state.service.list_channels(&filter).map(Json)
}

/// Get one notification channel.
#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "channels",
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The channel", body = Channel),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_channel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Channel>> {
    caller.require(Role::Viewer)?;
    state.service.get_channel(&id).map(Json)
}

/// Create a notification channel. Secret fields take `${secret:NAME}` references, never
/// values. Answers once the service's own view shows it.
#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", request_body = Channel,
    responses(
        (status = 201, description = "Created", body = Channel,
            headers(("location" = String, description = "`/api/v1/channels/{id}`"))),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id exists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Invalid spec; `errors` names every invalid field (a literal secret is one)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_channel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<Response> {
    caller.require(Role::Editor)?;
    let channel = state.service.create_channel(parse_json(&body)?).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/channels/{}", channel.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/api/v1/channels"));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(channel),
    )
        .into_response())
}

/// Replace a notification channel (the body's `id` must be the path's).
#[utoipa::path(put, path = "/api/v1/channels/{id}", tag = "channels", request_body = Channel,
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Replaced", body = Channel),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Invalid spec, or the body names another id", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_channel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Channel>> {
    caller.require(Role::Editor)?;
    state
        .service
        .update_channel(&id, parse_json(&body)?)
        .await
        .map(Json)
}

/// Delete a notification channel (not while the routing tree names it).
#[utoipa::path(delete, path = "/api/v1/channels/{id}", tag = "channels",
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The routing tree names the channel (`urn:vigil:problem:in-use`, the detail says where)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete_channel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    caller.require(Role::Editor)?;
    state.service.delete_channel(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get the routing tree (its root). Before one is written: a root without receivers (alerts
/// are tracked but notified nowhere).
#[utoipa::path(get, path = "/api/v1/routes", tag = "routes",
    responses(
        (status = 200, description = "The root of the routing tree", body = Route),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_routes(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Route>> {
    caller.require(Role::Viewer)?;
    Ok(Json(state.service.get_routes()))
}

/// Replace the routing tree. Every receiver and escalation target must name an existing
/// channel; regular expressions must compile.
#[utoipa::path(put, path = "/api/v1/routes", tag = "routes", request_body = Route,
    responses(
        (status = 200, description = "Replaced", body = Route),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Invalid tree; `errors` names every invalid field (`routes[0].receiver[1]`)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_routes(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<Json<Route>> {
    caller.require(Role::Editor)?;
    state
        .service
        .update_routes(parse_json(&body)?)
        .await
        .map(Json)
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{Value, json};

    /// Every status a notification route answers, per path and method.
    pub(crate) fn statuses(doc: &Value, path: &str, method: &str) -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} is not documented"))
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn channel_and_route_statuses_and_schemas_are_documented() {
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        // Every operation may also answer 429 (rate limits) and 503 (overload, deadline).
        let write = [
            "200", "400", "401", "403", "404", "413", "422", "429", "500", "503",
        ];
        assert_eq!(
            statuses(&doc, "/api/v1/channels", "get"),
            ["200", "400", "401", "422", "429", "503"]
        );
        assert_eq!(
            statuses(&doc, "/api/v1/channels", "post"),
            [
                "201", "400", "401", "403", "409", "413", "422", "429", "500", "503"
            ]
        );
        assert_eq!(statuses(&doc, "/api/v1/channels/{id}", "put"), write);
        assert_eq!(
            statuses(&doc, "/api/v1/channels/{id}", "delete"),
            ["204", "401", "403", "404", "409", "429", "500", "503"]
        );
        assert_eq!(
            statuses(&doc, "/api/v1/routes", "get"),
            ["200", "401", "429", "503"]
        );
        assert_eq!(
            statuses(&doc, "/api/v1/routes", "put"),
            [
                "200", "400", "401", "403", "413", "422", "429", "500", "503"
            ]
        );
        let schemas = &doc["components"]["schemas"];
        let kinds: Vec<&str> = schemas["ChannelKind"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["required"][0].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "webhook",
                "alertmanager",
                "slack",
                "pagerduty",
                "email",
                "console"
            ]
        );
        let secret = r"^\$\{secret:[A-Za-z0-9_-]{1,64}\}$";
        let slack = &schemas["ChannelKind"]["oneOf"][2]["properties"]["slack"];
        assert_eq!(slack["properties"]["url"]["pattern"], secret);
        let email = &schemas["ChannelKind"]["oneOf"][4]["properties"]["email"];
        assert_eq!(email["properties"]["to"]["maxItems"], 50);
        assert_eq!(schemas["Channel"]["properties"]["id"]["maxLength"], 64);
        assert_eq!(schemas["Route"]["properties"]["matchers"]["maxItems"], 32);
        assert_eq!(
            schemas["Route"]["properties"]["routes"]["items"]["$ref"],
            json!("#/components/schemas/Route")
        );
    }
}
