//! [`ApiKeyRecord`]: an API key created through the API or the CLI, on the compacted
//! `vigil.api-keys` topic (key = the key's id). Only the SHA-256 of the secret part is stored;
//! the key itself is shown once, when created. Revoking keeps the record (with `revoked_at`) so
//! the key stays listed.
//!
//! A key reads `vk_<id>_<secret>`: `id` is 12 lowercase hex digits, public, shown in listings
//! and logs; `secret` is 43 characters of URL-safe base64 (256 random bits).

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Prefix of every API key created by Vigil.
pub const API_KEY_PREFIX: &str = "vk_";

/// The roles a key can hold, as stored (each includes the ones before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// Read everything.
    Viewer,
    /// Also write monitors, alert rules and the notification configuration.
    Editor,
    /// Everything.
    Admin,
}

/// Which API a key may be used on. A key without scopes may be used on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    /// The query API (REST and GraphQL), as far as the role allows.
    Query,
    /// The ingestion API (external probe agents posting results).
    Ingest,
}

impl KeyScope {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyScope::Query => "query",
            KeyScope::Ingest => "ingest",
        }
    }
}

impl std::str::FromStr for KeyScope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "query" => Ok(KeyScope::Query),
            "ingest" => Ok(KeyScope::Ingest),
            other => Err(format!(
                "unknown scope {other:?} (expected `query` or `ingest`)"
            )),
        }
    }
}

/// One API key, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Public id, 12 hex digits; part of the key.
    pub id: String,
    /// What it is for (shown as the author of its writes).
    pub name: String,
    /// Hex SHA-256 of the whole key.
    pub digest: String,
    /// Its role.
    pub role: KeyRole,
    /// The APIs it may be used on; empty: all.
    #[serde(default)]
    pub scopes: Vec<KeyScope>,
    /// When it stops working.
    #[serde(default)]
    pub expires: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// When it was revoked.
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
}

impl crate::Event for ApiKeyRecord {
    const KIND: crate::EventKind = crate::EventKind::ApiKey;
    const VERSION: u8 = 1;
    const CODEC: crate::Codec = crate::Codec::Json;
}

impl ApiKeyRecord {
    /// Whether the key may be used on `scope` now (not revoked, not expired).
    pub fn usable(&self, scope: KeyScope, now: Timestamp) -> bool {
        self.revoked_at.is_none()
            && self.expires.is_none_or(|e| e > now)
            && (self.scopes.is_empty() || self.scopes.contains(&scope))
    }

    /// The record without its digest, for the audit log.
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.remove("digest");
        }
        value
    }
}

/// The public id of a Vigil key (`vk_<id>_…`), if `key` has that shape.
pub fn api_key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_the_key_shape_only() {
        assert_eq!(
            api_key_id("vk_0123456789ab_secretpart"),
            Some("0123456789ab")
        );
        assert_eq!(api_key_id("vk_0123456789ab_"), None);
        assert_eq!(api_key_id("vk_0123456789_secret"), None);
        assert_eq!(api_key_id("plain-config-key"), None);
    }

    #[test]
    fn usability_follows_revocation_expiry_and_scope() {
        let now = Timestamp::from_millis(1_000_000);
        let key = ApiKeyRecord {
            id: "0123456789ab".into(),
            name: "agent".into(),
            digest: "00".repeat(32),
            role: KeyRole::Editor,
            scopes: vec![KeyScope::Ingest],
            expires: Some(Timestamp::from_millis(2_000_000)),
            created_at: now,
            created_by: "admin".into(),
            revoked_at: None,
        };
        assert!(key.usable(KeyScope::Ingest, now));
        assert!(!key.usable(KeyScope::Query, now));
        assert!(!key.usable(KeyScope::Ingest, Timestamp::from_millis(2_000_000)));
        let revoked = ApiKeyRecord {
            revoked_at: Some(now),
            ..key.clone()
        };
        assert!(!revoked.usable(KeyScope::Ingest, now));
        assert!(!key.redacted().to_string().contains(&"00".repeat(32)));
    }
}
