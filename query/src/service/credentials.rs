//! API keys and named secrets, each on its compacted topic (`vigil.api-keys` keyed by the key's
//! id, `vigil.secrets` keyed by the secret's name) and read back through a view like every
//! other spec, so writes are audited (with [`Spec::audited`](crate::view::Spec::audited)
//! leaving out digests and ciphertexts) and read-your-writes holds.
//!
//! A key is generated here, shown once, and stored as its SHA-256 only. A secret's value is
//! sealed here with the keyring ([`vigil_schema::vault`]) before it leaves the process; with no
//! key-encryption key configured, setting a secret is refused (409) rather than stored weakly.

use std::sync::Arc;

use std::collections::HashMap;

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use vigil_schema::vault::{Keyring, SealedSecret};
use vigil_schema::{ApiKeyRecord, ApiKeyUsage, KeyScope, UsageRecorder};

use super::channels::page;
use crate::model::{ApiKey, ApiKeyPage, CreatedApiKey, NewApiKey, Secret, SecretPage};
use crate::params;
use crate::service::Service;
use crate::view::SpecView;
use crate::{Error, Result};

/// Largest secret value accepted, in bytes.
pub const MAX_SECRET_LEN: usize = 8192;

/// The key and secret stores the query service reads and writes.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Seals secrets; `None` when no key-encryption key is configured.
    pub keyring: Option<Arc<Keyring>>,
    /// Sealed secrets by name.
    pub secrets: Arc<SpecView<SealedSecret>>,
    /// API keys by id.
    pub keys: Arc<SpecView<ApiKeyRecord>>,
    /// Uses of created keys seen by this process, reported to `vigil.api-key-usage`.
    pub usage: Arc<UsageRecorder>,
    /// Uses reported by every service (this one included).
    pub reported: Arc<SpecView<ApiKeyUsage>>,
}

impl Credentials {
    /// Empty views sealing with `keyring`, reporting key usage as `reporter`.
    pub fn new(keyring: Option<Keyring>, reporter: String) -> Self {
        Self {
            keyring: keyring.map(Arc::new),
            secrets: SpecView::new(tokio::sync::broadcast::channel(1).0),
            keys: SpecView::new(tokio::sync::broadcast::channel(1).0),
            usage: Arc::new(UsageRecorder::new(reporter)),
            reported: SpecView::new(tokio::sync::broadcast::channel(1).0),
        }
    }

    /// The latest use of each key, as reported by every service and seen here (unix ms).
    pub fn last_uses(&self) -> HashMap<String, i64> {
        let mut out: HashMap<String, i64> = HashMap::new();
        for usage in self.reported.all() {
            let at = out.entry(usage.key_id.clone()).or_insert(i64::MIN);
            *at = (*at).max(usage.last_used.as_millis());
        }
        for key in self.keys.all() {
            if let Some(at) = self.usage.last_used(&key.id) {
                let entry = out.entry(key.id.clone()).or_insert(i64::MIN);
                *entry = (*entry).max(at.as_millis());
            }
        }
        out
    }
}

impl vigil_notify::SecretResolver for Credentials {
    fn resolve(&self, name: &str) -> Option<String> {
        let sealed = self.secrets.get(name)?;
        let keyring = self.keyring.as_ref()?;
        keyring
            .open(&sealed)
            .inspect_err(|e| tracing::error!(error = %e, "A stored secret could not be opened."))
            .ok()
    }
}

/// A new key: `vk_<12 hex>_<43 characters of URL-safe base64>` and its id.
pub fn generate_key() -> Result<(String, String)> {
    let random = SystemRandom::new();
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    random
        .fill(&mut id)
        .and_then(|()| random.fill(&mut secret))
        .map_err(|_| Error::Unavailable("the random number generator failed".into()))?;
    let id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    Ok((format!("{}{id}_{secret}", vigil_schema::API_KEY_PREFIX), id))
}

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    super::channels::invalid("api key", vec![super::channels::field_error(field, reason)])
}

impl Service {
    /// Creates an API key; the answer holds the key, which is never shown again.
    pub async fn create_api_key(&self, new: NewApiKey) -> Result<CreatedApiKey> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(invalid("name", "must be 1–64 printable characters"));
        }
        let now = self.now();
        let expires = new
            .expires
            .as_deref()
            .map(|text| {
                vigil_schema::Timestamp::parse_rfc3339(text)
                    .map_err(|_| invalid("expires", "must be an RFC 3339 time"))
                    .and_then(|t| {
                        if t > now {
                            Ok(t)
                        } else {
                            Err(invalid("expires", "must be in the future"))
                        }
                    })
            })
            .transpose()?;
        let mut scopes: Vec<KeyScope> = new.scopes.iter().copied().map(Into::into).collect();
        scopes.sort();
        scopes.dedup();
        let (key, id) = generate_key()?;
        let record = ApiKeyRecord {
            id: id.clone(),
            name: name.to_owned(),
            digest: hex::encode(crate::auth::digest(&key)),
            role: new.role.into(),
            scopes,
            expires,
            created_at: now,
            created_by: super::audit::actor(),
            revoked_at: None,
        };
        let credentials = self.credentials();
        let bytes = vigil_schema::encode(&record)?;
        self.produce(
            &self.topics().api_keys,
            &credentials.keys,
            &id,
            Some(&bytes),
        )
        .await?;
        Ok(CreatedApiKey {
            key,
            api_key: ApiKey::new(&record, None),
        })
    }

    fn api_key_dto(&self, record: &ApiKeyRecord, uses: &HashMap<String, i64>) -> ApiKey {
        ApiKey::new(record, uses.get(&record.id).copied())
    }

    /// Lists API keys (revoked ones included) ordered by id.
    pub fn list_api_keys(&self, cursor: Option<&str>, limit: Option<u32>) -> Result<ApiKeyPage> {
        let limit = params::page_size(limit, self.limits())? as usize;
        let (items, next_cursor) = page(self.credentials().keys.all(), cursor, limit)?;
        let uses = self.credentials().last_uses();
        Ok(ApiKeyPage {
            items: items.iter().map(|k| self.api_key_dto(k, &uses)).collect(),
            next_cursor,
        })
    }

    /// One API key.
    pub fn api_key(&self, id: &str) -> Result<ApiKey> {
        self.credentials()
            .keys
            .get(id)
            .map(|k| self.api_key_dto(&k, &self.credentials().last_uses()))
            .ok_or_else(|| Error::NotFound {
                kind: "api key",
                id: id.to_owned(),
            })
    }

    /// Revokes an API key at once (revoking a revoked key changes nothing).
    pub async fn revoke_api_key(&self, id: &str) -> Result<ApiKey> {
        let credentials = self.credentials();
        let current = credentials.keys.get(id).ok_or_else(|| Error::NotFound {
            kind: "api key",
            id: id.to_owned(),
        })?;
        let uses = credentials.last_uses();
        if current.revoked_at.is_some() {
            return Ok(self.api_key_dto(&current, &uses));
        }
        let record = ApiKeyRecord {
            revoked_at: Some(self.now()),
            ..(*current).clone()
        };
        let bytes = vigil_schema::encode(&record)?;
        self.produce(&self.topics().api_keys, &credentials.keys, id, Some(&bytes))
            .await?;
        Ok(self.api_key_dto(&record, &uses))
    }

    /// Lists secrets (names and metadata, never values) ordered by name.
    pub fn list_secrets(&self, cursor: Option<&str>, limit: Option<u32>) -> Result<SecretPage> {
        let limit = params::page_size(limit, self.limits())? as usize;
        let (items, next_cursor) = page(self.credentials().secrets.all(), cursor, limit)?;
        Ok(SecretPage {
            items: items.iter().map(|s| Secret::from(s.as_ref())).collect(),
            next_cursor,
        })
    }

    /// Sets a secret (creating or replacing it); answers its metadata.
    pub async fn put_secret(&self, name: &str, value: &str) -> Result<Secret> {
        if !vigil_schema::event::is_secret_name(name) {
            return Err(Error::bad_parameter(
                "name",
                "1–64 of A-Z, a-z, 0-9, '_' or '-'",
            ));
        }
        if value.is_empty() || value.len() > MAX_SECRET_LEN {
            return Err(super::channels::invalid(
                "secret",
                vec![super::channels::field_error(
                    "value",
                    format!("must be 1 to {MAX_SECRET_LEN} bytes"),
                )],
            ));
        }
        let credentials = self.credentials();
        let keyring = credentials.keyring.as_ref().ok_or_else(|| {
            Error::NotApplicable(
                "the secret store has no key-encryption key: set [secrets] key-file (or the \
                 VIGIL_SECRETS_KEY variable) on every service"
                    .into(),
            )
        })?;
        let current = credentials.secrets.get(name);
        let sealed = keyring
            .seal(name, value, current.as_deref(), &super::audit::actor())
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        let bytes = vigil_schema::encode(&sealed)?;
        self.produce(
            &self.topics().secrets,
            &credentials.secrets,
            name,
            Some(&bytes),
        )
        .await?;
        Ok(Secret::from(&sealed))
    }

    /// Deletes a secret.
    pub async fn delete_secret(&self, name: &str) -> Result<()> {
        let credentials = self.credentials();
        if credentials.secrets.get(name).is_none() {
            return Err(Error::NotFound {
                kind: "secret",
                id: name.to_owned(),
            });
        }
        self.produce(&self.topics().secrets, &credentials.secrets, name, None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let (key, id) = generate_key().unwrap();
        assert_eq!(vigil_schema::api_key_id(&key), Some(id.as_str()));
        assert_eq!(key.len(), 3 + 12 + 1 + 43);
        assert_ne!(generate_key().unwrap().0, key);
    }
}
