//! OpenAPI import DTOs: the request body of `POST /api/v1/import/openapi` (documentation only;
//! the service reads the JSON itself so every problem names its field) and what an import
//! made, with its plan against the current monitors.

use std::collections::BTreeMap;

use async_graphql::SimpleObject;
use serde::Serialize;
use utoipa::ToSchema;

use super::Monitor;

/// What to import. Unknown fields are rejected.
#[derive(Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "describes the request body in the OpenAPI document"
)]
pub struct ImportInput {
    /// The OpenAPI 3.0/3.1 or Swagger 2.0 document: its text (JSON or YAML), or the JSON
    /// document itself. The server never fetches a URL for it.
    document: DocumentDoc,
    /// The API's base URL (`http://` or `https://`), instead of the document's servers.
    #[serde(default)]
    #[schema(example = "https://api.example.com/v1")]
    base_url: Option<String>,
    /// Only operations with one of these tags.
    #[serde(default)]
    #[schema(max_items = 100)]
    include_tags: Vec<String>,
    /// Not operations with any of these tags.
    #[serde(default)]
    #[schema(max_items = 100)]
    exclude_tags: Vec<String>,
    /// Only operations whose path matches one of these globs (`/pets*`).
    #[serde(default)]
    #[schema(max_items = 100)]
    include_paths: Vec<String>,
    /// Not operations whose path matches any of these globs.
    #[serde(default)]
    #[schema(max_items = 100)]
    exclude_paths: Vec<String>,
    /// Parameter values by name, for every operation with a parameter of that name (at most
    /// 100).
    #[serde(default)]
    params: BTreeMap<String, String>,
    /// Secret names by security scheme (default: the scheme's name; at most 100).
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    /// Prefix of the monitors' ids.
    #[serde(default)]
    id_prefix: Option<String>,
    /// Tags added to every monitor.
    #[serde(default)]
    #[schema(max_items = 100)]
    tags: Vec<String>,
    /// Interval of every monitor (default `1m`).
    #[serde(default)]
    #[schema(schema_with = super::monitor_input::duration, example = "1m")]
    interval: Option<String>,
    /// Timeout of every monitor (default `10s`).
    #[serde(default)]
    #[schema(schema_with = super::monitor_input::duration, example = "10s")]
    timeout: Option<String>,
    /// Regions every monitor runs in (default: every region).
    #[serde(default)]
    #[schema(max_items = 100)]
    regions: Vec<String>,
    /// Write the plan's creates and updates (editor role); nothing is deleted.
    #[serde(default)]
    apply: bool,
}

/// An OpenAPI document: its text, or the JSON document.
#[derive(Debug, Clone, ToSchema)]
#[serde(untagged)]
#[allow(
    dead_code,
    reason = "describes the request body in the OpenAPI document"
)]
pub enum DocumentDoc {
    /// The document's text, JSON or YAML.
    Text(String),
    /// The JSON document.
    Json(BTreeMap<String, serde_json::Value>),
}

/// What an import made, and its plan against the current monitors.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct OpenApiImport {
    /// The document's title.
    pub title: String,
    /// Its format and version (`OpenAPI 3.0.3`, `Swagger 2.0`).
    pub format: String,
    /// The monitors, in path order.
    pub monitors: Vec<Monitor>,
    /// Safe operations that got no monitor, and why.
    pub skipped: Vec<SkippedOperation>,
    /// Operations left out by the include and exclude options.
    pub excluded: u32,
    /// Things to know (a response schema too large to embed, …).
    pub warnings: Vec<String>,
    /// What applying changes.
    pub plan: ImportPlan,
    /// Whether the plan was applied.
    pub applied: bool,
}

/// A safe operation that got no monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, SimpleObject)]
pub struct SkippedOperation {
    /// Its `operationId` (or `GET /path`).
    pub operation: String,
    /// `GET` or `HEAD`.
    pub method: String,
    /// The path template.
    pub path: String,
    /// Why (`path parameter owner has no example or default; …`).
    pub reason: String,
}

/// The difference between the imported monitors and the current ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, SimpleObject)]
pub struct ImportPlan {
    /// Ids of monitors that do not exist yet.
    pub create: Vec<String>,
    /// Monitors that exist and differ, with the fields that change.
    pub update: Vec<PlannedUpdate>,
    /// Monitors that exist and match.
    pub unchanged: u32,
}

/// A monitor an import changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, SimpleObject)]
pub struct PlannedUpdate {
    /// The monitor.
    pub id: String,
    /// The fields that change.
    pub fields: Vec<String>,
}
