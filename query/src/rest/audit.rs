//! `GET /api/v1/audit`: every write made through the API (admins read), newest first,
//! filtered, cursor-paginated.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{DAY, Params, parse_limit};
use crate::Result;
use crate::auth::Role;
use crate::error::Problem;
use crate::model::AuditPage;
use crate::params;
use crate::service::AuditQuery;
use crate::state::{AppState, Caller};

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this kind of resource: `monitor`, `rule`, `channel`, `routes`, `silence`,
    /// `maintenance`.
    resource: Option<String>,
    /// Only writes by this API key (its name).
    actor: Option<String>,
    /// Start: RFC 3339, unix ms, `now` or `now-<duration>` (default: 7 days before `to`).
    from: Option<String>,
    /// End, exclusive (default: now).
    to: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1 to `limits.max-page-size`, 1000 by default; default 100).
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// The audit log: who changed what, with the spec before and after, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses(
        (status = 200, description = "A page of audit records", body = AuditPage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the admin role", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The ClickHouse query failed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn audit_log(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<AuditParams>,
) -> Result<Json<AuditPage>> {
    caller.require(Role::Admin)?;
    let service = &state.service;
    let q = AuditQuery {
        resource: p.resource,
        actor: p.actor,
        range: params::time_range(p.from.as_deref(), p.to.as_deref(), 7 * DAY, service.now())?,
        cursor: p.cursor,
        limit: params::page_size(parse_limit(p.limit.as_deref())?, service.limits())?,
    };
    service.audit_log(&q).await.map(Json)
}

/// Runs every request that may write with its caller as the author of those writes (see
/// [`crate::service::audit`]).
pub async fn scope_layer(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request.method() == axum::http::Method::GET {
        return next.run(request).await;
    }
    let actor = match request.extensions().get::<crate::auth::Principal>() {
        Some(p) => p.name.to_string(),
        None => {
            let header = request
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            state
                .auth
                .authenticate(header)
                .map_or_else(|_| "unauthenticated".to_owned(), |p| p.name.to_string())
        }
    };
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let context = crate::service::audit::Context { actor, request_id };
    crate::service::audit::scope(context, next.run(request)).await
}
