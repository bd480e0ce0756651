//! `/api/v1/keys` (API keys: create, list, get, revoke; admins only) and `/api/v1/secrets`
//! (named secrets: list for editors, set and delete for admins). A key's value is answered once,
//! on creation; a secret's value is never answered at all.

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
use crate::model::{ApiKey, ApiKeyPage, CreatedApiKey, NewApiKey, Secret, SecretPage, SecretValue};
use crate::state::{AppState, Caller};

/// The body as `T`: 400 when it is not JSON or has the wrong shape.
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T> {
    serde_json::from_value(parse_json(bytes)?).map_err(|e| crate::Error::BadBody(e.to_string()))
}

/// Paging of the key and secret lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1–max, default 100).
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// List API keys created through the API or CLI (revoked ones included), ordered by id. Keys
/// from the configuration file are not listed.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", params(PageParams),
    responses(
        (status = 200, description = "A page of keys", body = ApiKeyPage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the admin role", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<PageParams>,
) -> Result<Json<ApiKeyPage>> {
    caller.require(Role::Admin)?;
    let limit = parse_limit(p.limit.as_deref())?;
    state
        .service
        .list_api_keys(p.cursor.as_deref(), limit)
        .map(Json)
}

/// Create an API key. The answer holds the key itself, which is stored only as its SHA-256 and
/// never shown again.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = NewApiKey,
    responses(
        (status = 201, description = "Created; `key` is shown this once", body = CreatedApiKey,
            headers(("location" = String, description = "`/api/v1/keys/{id}`"))),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the admin role", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Invalid field; `errors` names it", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    bytes: Bytes,
) -> Result<Response> {
    caller.require(Role::Admin)?;
    let created = state.service.create_api_key(body(&bytes)?).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/keys/{}", created.api_key.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/api/v1/keys"));
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(created),
    )
        .into_response())
}

/// Get one API key (without the key).
#[utoipa::path(get, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Key id (12 hex digits)")),
    responses(
        (status = 200, description = "The key", body = ApiKey),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the admin role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>> {
    caller.require(Role::Admin)?;
    state.service.api_key(&id).map(Json)
}

/// Revoke an API key: refused from now on, still listed (with `revoked_at`). Revoking a
/// revoked key changes nothing.
#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke", tag = "keys",
    params(("id" = String, Path, description = "Key id (12 hex digits)")),
    responses(
        (status = 200, description = "The revoked key", body = ApiKey),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the admin role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>> {
    caller.require(Role::Admin)?;
    state.service.revoke_api_key(&id).await.map(Json)
}

/// List named secrets: names and metadata, never values.
#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets", params(PageParams),
    responses(
        (status = 200, description = "A page of secrets", body = SecretPage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_secrets(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<PageParams>,
) -> Result<Json<SecretPage>> {
    caller.require(Role::Editor)?;
    let limit = parse_limit(p.limit.as_deref())?;
    state
        .service
        .list_secrets(p.cursor.as_deref(), limit)
        .map(Json)
}

/// Set a named secret (create or replace), referenced as `${secret:NAME}` by monitors and
/// channels. The value is encrypted before it is stored and no API returns it.
#[utoipa::path(put, path = "/api/v1/secrets/{name}", tag = "secrets", request_body = SecretValue,
    params(("name" = String, Path, description = "Secret name: 1–64 of A-Z, a-z, 0-9, '_' or '-'",
        pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "Its metadata", body = Secret),
        (status = 400, description = "Bad name, or body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the admin role", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit", body = String, content_type = "text/plain"),
        (status = 422, description = "Empty or too long value, or no key-encryption key is configured", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Json<Secret>> {
    caller.require(Role::Admin)?;
    let body: SecretValue = body(&bytes)?;
    state.service.put_secret(&name, &body.value).await.map(Json)
}

/// Delete a named secret (references to it then fail to resolve).
#[utoipa::path(delete, path = "/api/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "Secret name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the admin role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such secret", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The write failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stored but not visible yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    caller.require(Role::Admin)?;
    state.service.delete_secret(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
