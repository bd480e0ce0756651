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

/// A configured key: holder name, secret bytes, role.
type KeyEntry = (Arc<str>, Vec<u8>, Role);

/// Checks presented keys against the configured ones.
#[derive(Debug, Clone)]
pub struct Authenticator {
    keys: Arc<[KeyEntry]>,
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
                        k.key.as_bytes().to_vec(),
                        k.role,
                    )
                })
                .collect(),
        }
    }

    /// Whether any key is configured.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
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
        // Compare against every key in constant time per key, so timing does not reveal which
        // prefix matched.
        let mut found = None;
        for (name, key, role) in self.keys.iter() {
            if constant_time_eq(key, presented.as_bytes()) {
                found = Some(Principal {
                    name: name.clone(),
                    role: *role,
                });
            }
        }
        found.ok_or(Error::Unauthenticated)
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
            },
            ApiKeyConfig {
                name: "ops".into(),
                key: "editor-key-0123456789".into(),
                role: Role::Editor,
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
