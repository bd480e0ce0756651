//! `POST /api/v1/import/openapi`: monitors discovered from an OpenAPI document, with their
//! plan; with `apply: true` the plan's creates and updates are written. Editors only.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;

use super::parse_json;
use crate::Result;
use crate::auth::Role;
use crate::error::Problem;
use crate::model::OpenApiImport;
use crate::model::import::ImportInput;
use crate::state::{AppState, Caller};

/// Largest request body of an import (the document is in it).
pub const MAX_IMPORT_BODY: usize = 32 * 1024 * 1024;

/// Import monitors from an OpenAPI 3.0/3.1 or Swagger 2.0 document (JSON or YAML, local
/// `$ref`s): one monitor per GET or HEAD operation whose required parameters have values
/// (examples, defaults or `params`), asserting the documented status, content type and
/// response schema (`[BODY] matches schema`), authenticated through the document's security
/// schemes bound to named secrets. Answers the monitors, the operations skipped and why, and
/// the plan against the current monitors; `apply: true` writes its creates and updates
/// (nothing is deleted). The body may be up to 32 MiB.
#[utoipa::path(post, path = "/api/v1/import/openapi", tag = "monitors", request_body = ImportInput,
    responses(
        (status = 200, description = "The import and its plan (applied when asked)", body = OpenApiImport),
        (status = 400, description = "Body is not JSON, or has unknown fields", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 32 MiB", body = String, content_type = "text/plain"),
        (status = 422, description = "The document cannot be imported (`errors` name `document/<JSON pointer>`), an option is invalid, or an imported monitor is outside the egress policy", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn import_openapi(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<Json<OpenApiImport>> {
    caller.require(Role::Editor)?;
    state
        .service
        .import_openapi(parse_json(&body)?)
        .await
        .map(Json)
}
