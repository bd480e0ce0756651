//! API keys and roles. A key is sent as `Authorization: Bearer <key>` on REST and GraphQL over
//! HTTP, and in the `connection_init` payload (`{"authorization": "Bearer <key>"}`) on GraphQL
//! WebSockets. Viewers read; editors also write monitors, alert rules and the notification
//! configuration (channels, routes, silences, maintenance windows); admins may do everything.
//! An unknown or missing key is 401; a known key without the needed role is 403.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::ApiKeyConfig;
use crate::{Error, Result};

/// What a key may do. Ordered: each role includes the ones before it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Read everything and write monitors, alert rules and the notification configuration.
    Editor,
    /// Everything.
    Admin,
}

impl From<vigil_schema::KeyRole> for Role {
    fn from(role: vigil_schema::KeyRole) -> Self {
        match role {
            vigil_schema::KeyRole::Viewer => Role::Viewer,
            vigil_schema::KeyRole::Editor => Role::Editor,
            vigil_schema::KeyRole::Admin => Role::Admin,
        }
    }
}

impl From<Role> for vigil_schema::KeyRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Viewer => vigil_schema::KeyRole::Viewer,
            Role::Editor => vigil_schema::KeyRole::Editor,
            Role::Admin => vigil_schema::KeyRole::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        })
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's configured name (`anonymous` when authentication is off).
    pub name: Arc<str>,
    /// Its role.
    pub role: Role,
}

impl Principal {
    /// Fails with 403 unless the caller has at least `needed`.
    pub fn require(&self, needed: Role) -> Result<()> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(Error::Forbidden {
                needed,
                has: self.role,
            })
        }
    }
}

/// The prefix of a key configured by its hash.
pub const HASH_PREFIX: &str = "sha256:";

/// The SHA-256 of a key.
pub fn digest(key: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, key.as_bytes()).as_ref());
    out
}

/// The digest of a key configured as `sha256:<64 hex digits>`.
pub fn stored_digest(configured: &str) -> Option<[u8; 32]> {
    let hex_digits = configured.strip_prefix(HASH_PREFIX)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut out).ok()?;
    Some(out)
}

/// `sha256:<hex>` of a key, for the configuration.
pub fn hashed(key: &str) -> String {
    format!("{HASH_PREFIX}{}", hex::encode(digest(key)))
}

/// A configured key: holder name, SHA-256 of the secret, role, expiry (unix ms).
type KeyEntry = (Arc<str>, [u8; 32], Role, Option<i64>);

/// Checks presented keys against the configured ones and those created through the API.
#[derive(Debug, Clone)]
pub struct Authenticator {
    keys: Arc<[KeyEntry]>,
    /// Keys created through the API or CLI (`vigil.api-keys`), and their last use.
    store: Option<crate::service::Credentials>,
}

impl Authenticator {
    /// An authenticator accepting `keys`; with no keys every caller is an anonymous admin.
    pub fn new(keys: &[ApiKeyConfig]) -> Self {
        Self {
            keys: keys
                .iter()
                .map(|k| {
                    (
                        Arc::from(k.name.as_str()),
                        stored_digest(&k.key).unwrap_or_else(|| digest(&k.key)),
                        k.role,
                        k.expires.map(vigil_schema::Timestamp::as_millis),
                    )
                })
                .collect(),
            store: None,
        }
    }

    /// The same, also accepting the keys of `store` (on the query API: scope `query`).
    pub fn with_store(mut self, store: &crate::service::Credentials) -> Self {
        self.store = Some(store.clone());
        self
    }

    /// Whether any key is configured or was created (one created through the API turns
    /// authentication on).
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty() || self.store.as_ref().is_some_and(|s| !s.keys.is_empty())
    }

    /// A key created through the API or CLI, if `presented` is one and may be used on the
    /// query API now.
    fn stored(&self, presented: &str, now: i64) -> Option<Result<Principal>> {
        let store = self.store.as_ref()?;
        let id = vigil_schema::api_key_id(presented)?;
        let record = store.keys.get(id)?;
        let mut expected = [0u8; 32];
        if hex::decode_to_slice(&record.digest, &mut expected).is_err()
            || !constant_time_eq(&expected, &digest(presented))
        {
            return Some(Err(Error::Unauthenticated));
        }
        let now_ts = vigil_schema::Timestamp::from_millis(now);
        if !record.usable(vigil_schema::KeyScope::Query, now_ts) {
            tracing::warn!(key = %record.id, name = %record.name, "A revoked, expired or out-of-scope API key was used.");
            return Some(
                if record.revoked_at.is_none() && record.expires.is_none_or(|e| e > now_ts) {
                    Err(Error::OutOfScope {
                        api: "query",
                        scopes: record
                            .scopes
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                } else {
                    Err(Error::Unauthenticated)
                },
            );
        }
        store.usage.record(&record.id, now_ts);
        Some(Ok(Principal {
            name: Arc::from(record.name.as_str()),
            role: record.role.into(),
        }))
    }

    /// Authenticates an `Authorization` header value (`Bearer <key>`).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal> {
        if !self.enabled() {
            return Ok(Principal {
                name: Arc::from("anonymous"),
                role: Role::Admin,
            });
        }
        let presented = authorization
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or(Error::Unauthenticated)?;
        let now = vigil_schema::Timestamp::now().as_millis();
        if let Some(answer) = self.stored(presented, now) {
            return answer;
        }
        // Only digests are kept; each is compared in constant time, so timing reveals nothing
        // about which key came close.
        let presented = digest(presented);
        let mut found = None;
        for (name, key, role, expires) in self.keys.iter() {
            if constant_time_eq(key, &presented) {
                found = Some((name, *role, *expires));
            }
        }
        let (name, role, expires) = found.ok_or(Error::Unauthenticated)?;
        if expires.is_some_and(|e| e <= now) {
            tracing::warn!(key = %name, "An expired API key was used.");
            return Err(Error::Unauthenticated);
        }
        metrics::gauge!("vigil_query_api_key_last_used_seconds", "key" => name.to_string())
            .set(now as f64 / 1000.0);
        Ok(Principal {
            name: name.clone(),
            role,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(&[
            ApiKeyConfig {
                name: "dash".into(),
                key: "viewer-key-0123456789".into(),
                role: Role::Viewer,
                expires: None,
            },
            ApiKeyConfig {
                name: "ops".into(),
                key: "editor-key-0123456789".into(),
                role: Role::Editor,
                expires: None,
            },
        ])
    }

    #[test]
    fn bearer_keys_map_to_roles() {
        let p = auth()
            .authenticate(Some("Bearer editor-key-0123456789"))
            .unwrap();
        assert_eq!((&*p.name, p.role), ("ops", Role::Editor));
        assert!(p.require(Role::Editor).is_ok());
        let viewer = auth()
            .authenticate(Some("bearer viewer-key-0123456789"))
            .unwrap();
        assert!(matches!(
            viewer.require(Role::Editor),
            Err(Error::Forbidden {
                needed: Role::Editor,
                has: Role::Viewer
            })
        ));
    }

    #[test]
    fn hashed_keys_work_and_expired_keys_do_not() {
        let hour = 3_600_000;
        let now = vigil_schema::Timestamp::now().as_millis();
        let key = |name: &str, key: String, expires: Option<i64>| ApiKeyConfig {
            name: name.into(),
            key,
            role: Role::Viewer,
            expires: expires.map(vigil_schema::Timestamp),
        };
        let auth = Authenticator::new(&[
            key("hashed", hashed("hashed-key-0123456789"), None),
            key("old", "old-key-0123456789ab".into(), Some(now - hour)),
            key("soon", "soon-key-0123456789a".into(), Some(now + hour)),
        ]);
        let p = auth
            .authenticate(Some("Bearer hashed-key-0123456789"))
            .unwrap();
        assert_eq!(&*p.name, "hashed");
        // The hash itself is not a key.
        let as_key = format!("Bearer {}", hashed("hashed-key-0123456789"));
        assert!(auth.authenticate(Some(&as_key)).is_err());
        assert!(matches!(
            auth.authenticate(Some("Bearer old-key-0123456789ab")),
            Err(Error::Unauthenticated)
        ));
        assert!(
            auth.authenticate(Some("Bearer soon-key-0123456789a"))
                .is_ok()
        );
        // An independent SHA-256: the digest of "abc" (FIPS 180-2 example).
        assert_eq!(
            hashed("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(stored_digest(&hashed("abc")), Some(digest("abc")));
        assert_eq!(stored_digest("sha256:zz"), None);
    }

    #[test]
    fn missing_or_unknown_keys_are_unauthenticated() {
        for header in [None, Some("Bearer nope"), Some("Basic abc"), Some("Bearer")] {
            assert!(
                matches!(auth().authenticate(header), Err(Error::Unauthenticated)),
                "{header:?}"
            );
        }
        let open = Authenticator::new(&[]).authenticate(None).unwrap();
        assert_eq!(open.role, Role::Admin);
    }
}
