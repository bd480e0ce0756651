//! The audit log as the API shows it.

use serde::Serialize;
use utoipa::ToSchema;

/// One write through the API.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditRecord {
    /// Unique id (UUIDv7).
    pub audit_id: String,
    /// When (RFC 3339).
    pub at: String,
    /// The API key's name (`anonymous` without keys).
    pub actor: String,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// `monitor`, `rule`, `channel`, `routes`, `silence` or `maintenance`.
    pub resource: String,
    /// The resource's id.
    pub resource_id: String,
    /// The spec before (absent when created). Secrets appear only as references.
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The spec after (absent when deleted).
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
}

/// One page of audit records, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditPage {
    /// The records on this page.
    pub items: Vec<AuditRecord>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
