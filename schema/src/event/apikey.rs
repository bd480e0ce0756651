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

/// When a service last saw a key used, on the compacted `vigil.api-key-usage` topic (key =
/// [`ApiKeyUsage::id`]): each service reports its own, and a key's last use is the latest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyUsage {
    /// `<key id>/<reporter>`: the record's key.
    pub id: String,
    /// The key's public id.
    pub key_id: String,
    /// Who saw it (`query@host:port`, `ingest@host:port`).
    pub reporter: String,
    /// When it was last used there.
    pub last_used: Timestamp,
}

impl crate::Event for ApiKeyUsage {
    const KIND: crate::EventKind = crate::EventKind::ApiKeyUsage;
    const VERSION: u8 = 1;
    const CODEC: crate::Codec = crate::Codec::Json;
}

impl ApiKeyUsage {
    /// The use of `key_id` seen by `reporter` at `last_used`.
    pub fn new(key_id: &str, reporter: &str, last_used: Timestamp) -> Self {
        Self {
            id: format!("{key_id}/{reporter}"),
            key_id: key_id.to_owned(),
            reporter: reporter.to_owned(),
            last_used,
        }
    }
}

/// Uses of created keys seen by one service, reported in batches ([`UsageRecorder::changed`]):
/// at most one record per key per report, whatever the request rate.
#[derive(Debug)]
pub struct UsageRecorder {
    reporter: String,
    /// Key id → (last use, last use reported), unix ms.
    seen: std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>,
}

impl UsageRecorder {
    /// A recorder reporting as `reporter` (`query@host:port`).
    pub fn new(reporter: impl Into<String>) -> Self {
        Self {
            reporter: reporter.into(),
            seen: std::sync::Mutex::default(),
        }
    }

    /// Notes a use of `key_id` at `at`.
    pub fn record(&self, key_id: &str, at: Timestamp) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get_mut(key_id) {
            Some(entry) => entry.0 = entry.0.max(at.as_millis()),
            None => drop(seen.insert(key_id.to_owned(), (at.as_millis(), i64::MIN))),
        }
    }

    /// The last use of `key_id` seen here.
    pub fn last_used(&self, key_id: &str) -> Option<Timestamp> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(key_id).map(|(at, _)| Timestamp::from_millis(*at))
    }

    /// The uses not reported yet, marked reported.
    pub fn changed(&self) -> Vec<ApiKeyUsage> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter_mut()
            .filter(|(_, (at, reported))| at > reported)
            .map(|(id, (at, reported))| {
                *reported = *at;
                ApiKeyUsage::new(id, &self.reporter, Timestamp::from_millis(*at))
            })
            .collect()
    }

    /// Puts uses whose report failed back, to be reported next time.
    pub fn unreported(&self, usage: &ApiKeyUsage) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = seen.get_mut(&usage.key_id) {
            entry.1 = entry.1.min(usage.last_used.as_millis() - 1);
        }
    }
}

/// The name a service reports key usage under: `<service>@<host>:<port>`.
pub fn reporter_name(service: &str, port: u16) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{service}@{host}:{port}")
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
    fn usage_is_reported_once_per_change() {
        let recorder = UsageRecorder::new("query@h:1");
        recorder.record("a", Timestamp::from_millis(10));
        recorder.record("a", Timestamp::from_millis(5));
        let first = recorder.changed();
        assert_eq!(
            first,
            [ApiKeyUsage::new(
                "a",
                "query@h:1",
                Timestamp::from_millis(10)
            )]
        );
        assert_eq!(first[0].id, "a/query@h:1");
        assert!(recorder.changed().is_empty());
        recorder.unreported(&first[0]);
        assert_eq!(recorder.changed(), first);
        recorder.record("a", Timestamp::from_millis(20));
        assert_eq!(recorder.changed()[0].last_used, Timestamp::from_millis(20));
        assert_eq!(recorder.last_used("a"), Some(Timestamp::from_millis(20)));
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
