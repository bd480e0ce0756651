//! [`AuditEvent`]: one write through the query API, on the `vigil.audit` topic and in the
//! `audit` table.
//!
//! Specs never hold secret values (only `${secret:NAME}` references), so `before` and `after`
//! carry them as they are.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// The resource did not exist.
    Create,
    /// The resource was replaced (enabling, disabling and expiring included).
    Update,
    /// The resource was deleted.
    Delete,
}

impl AuditAction {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Update => "update",
            AuditAction::Delete => "delete",
        }
    }
}

/// One write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique (UUIDv7: ordered by time).
    pub audit_id: Uuid,
    /// When it was written.
    pub at: Timestamp,
    /// Who: the API key's name (`anonymous` without keys).
    pub actor: String,
    /// What it did.
    pub action: AuditAction,
    /// The kind of resource: `monitor`, `rule`, `channel`, `routes`, `silence`, `maintenance`.
    pub resource: String,
    /// Its id.
    pub resource_id: String,
    /// The spec before, as JSON (`None` when created).
    pub before: Option<serde_json::Value>,
    /// The spec after, as JSON (`None` when deleted).
    pub after: Option<serde_json::Value>,
    /// The request's `x-request-id`, when known.
    pub request_id: Option<String>,
}
