//! API key and secret DTOs. Neither ever carries secret material back: a key's value is in
//! [`CreatedApiKey`] once, in the answer to its creation; a secret's value is write-only.

use async_graphql::{Enum, InputObject, SimpleObject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vigil_schema::{ApiKeyRecord, KeyScope};

use crate::auth::Role;
use crate::model::rfc3339;

/// Which API a key may be used on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Enum)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyScope {
    /// The query API (REST and GraphQL), as far as the role allows.
    Query,
    /// The ingestion API (external probe agents posting results).
    Ingest,
}

impl From<ApiKeyScope> for KeyScope {
    fn from(scope: ApiKeyScope) -> Self {
        match scope {
            ApiKeyScope::Query => KeyScope::Query,
            ApiKeyScope::Ingest => KeyScope::Ingest,
        }
    }
}

impl From<KeyScope> for ApiKeyScope {
    fn from(scope: KeyScope) -> Self {
        match scope {
            KeyScope::Query => ApiKeyScope::Query,
            KeyScope::Ingest => ApiKeyScope::Ingest,
        }
    }
}

/// The body creating an API key.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What it is for; shown as the author of its writes.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The APIs it may be used on; empty or absent: both.
    #[serde(default)]
    #[graphql(default)]
    pub scopes: Vec<ApiKeyScope>,
    /// When it stops working (RFC 3339, in the future); absent: never.
    #[serde(default)]
    pub expires: Option<String>,
}

/// An API key as listed: everything but the key.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct ApiKey {
    /// Public id (12 hex digits).
    pub id: String,
    /// What it is for.
    pub name: String,
    /// The visible start of the key, `vk_<id>_`, to recognise it.
    pub prefix: String,
    /// Its role.
    pub role: Role,
    /// The APIs it may be used on; empty: both.
    pub scopes: Vec<ApiKeyScope>,
    /// When it stops working (RFC 3339).
    pub expires: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// When it was revoked (RFC 3339); a revoked key is refused.
    pub revoked_at: Option<String>,
    /// When it was last used (RFC 3339), as far as the services have reported.
    pub last_used_at: Option<String>,
}

impl ApiKey {
    /// The DTO of a stored key last used at `last_used` (unix ms).
    pub fn new(record: &ApiKeyRecord, last_used: Option<i64>) -> Self {
        Self {
            id: record.id.clone(),
            name: record.name.clone(),
            prefix: format!("{}{}_", vigil_schema::API_KEY_PREFIX, record.id),
            role: Role::from(record.role),
            scopes: record.scopes.iter().copied().map(Into::into).collect(),
            expires: record.expires.map(|t| rfc3339(t.as_millis())),
            created_at: rfc3339(record.created_at.as_millis()),
            created_by: record.created_by.clone(),
            revoked_at: record.revoked_at.map(|t| rfc3339(t.as_millis())),
            last_used_at: last_used.map(rfc3339),
        }
    }
}

/// A key just created: the only time its value is shown.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct CreatedApiKey {
    /// The key, to send as `Authorization: Bearer <key>`. Not stored: keep it now.
    pub key: String,
    /// The key as listed.
    pub api_key: ApiKey,
}

/// One page of API keys, ordered by id.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct ApiKeyPage {
    /// The keys on this page.
    pub items: Vec<ApiKey>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The body setting a secret.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    /// The value (1 to 8,192 bytes). Stored encrypted; no API returns it.
    #[schema(min_length = 1, max_length = 8192)]
    pub value: String,
}

/// A named secret as listed: its metadata, never its value.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct Secret {
    /// The name, referenced as `${secret:NAME}`.
    pub name: String,
    /// Id of the key-encryption key its data key is wrapped under.
    pub key_id: String,
    /// When it was first set (RFC 3339).
    pub created_at: String,
    /// When it was last set (RFC 3339).
    pub updated_at: String,
    /// Who last set it.
    pub updated_by: String,
}

impl From<&vigil_schema::vault::SealedSecret> for Secret {
    fn from(s: &vigil_schema::vault::SealedSecret) -> Self {
        Self {
            name: s.name.clone(),
            key_id: s.kek_id.clone(),
            created_at: rfc3339(s.created_at.as_millis()),
            updated_at: rfc3339(s.updated_at.as_millis()),
            updated_by: s.updated_by.clone(),
        }
    }
}

/// One page of secrets, ordered by name.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct SecretPage {
    /// The secrets on this page.
    pub items: Vec<Secret>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
