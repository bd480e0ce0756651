//! The secret store as its readers see it: [`VaultConfig`] says where the key-encryption keys
//! are, and [`SecretStore`] follows the compacted `vigil.secrets` topic, holding only sealed
//! records and opening one when it is resolved. Every service that resolves `${secret:NAME}`
//! (the notification stage for channels, the probe runner for monitors, the query API for
//! inbound integrations) uses it; see [`vigil_schema::vault`] for the encryption.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use vigil_schema::vault::{Kek, Keyring, SealedSecret, VaultError};

use crate::secret::SecretResolver;
use crate::{Error, Result};

/// Where the key-encryption keys come from (`[secrets]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct VaultConfig {
    /// File holding the current key (32 bytes as base64, from `vigil secrets generate-key`).
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the current key when no file is given.
    pub key_env: String,
    /// Files of previous keys, still used to open secrets not yet re-wrapped (during a
    /// rotation).
    pub previous_key_files: Vec<PathBuf>,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            key_file: None,
            key_env: "VIGIL_SECRETS_KEY".into(),
            previous_key_files: Vec::new(),
        }
    }
}

impl VaultConfig {
    /// The keyring, or `None` when no key is configured (the store is then off: secrets can
    /// be neither written nor resolved).
    pub fn keyring(&self) -> std::result::Result<Option<Keyring>, VaultError> {
        let current = match &self.key_file {
            Some(path) => Kek::from_file(path)?,
            None => match std::env::var(&self.key_env) {
                Ok(text) if !text.trim().is_empty() => Kek::parse(&text, &self.key_env)?,
                _ => return Ok(None),
            },
        };
        let previous = self
            .previous_key_files
            .iter()
            .map(|p| Kek::from_file(p))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Some(Keyring::new(current, previous)))
    }
}

/// Sealed secrets by name, followed from the topic; resolves by opening with the keyring.
#[derive(Debug)]
pub struct SecretStore {
    keyring: Keyring,
    sealed: RwLock<HashMap<String, SealedSecret>>,
}

impl SecretStore {
    /// An empty store opening with `keyring`.
    pub fn new(keyring: Keyring) -> Arc<Self> {
        Arc::new(Self {
            keyring,
            sealed: RwLock::default(),
        })
    }

    /// Applies one record of the topic (a tombstone deletes).
    pub fn apply(&self, name: &str, value: Option<&[u8]>) {
        let mut sealed = self.sealed.write().unwrap_or_else(|e| e.into_inner());
        match value.filter(|v| !v.is_empty()) {
            None => drop(sealed.remove(name)),
            Some(bytes) => match vigil_schema::decode::<SealedSecret>(bytes) {
                Ok(secret) if secret.name == name => drop(sealed.insert(name.to_owned(), secret)),
                Ok(_) => {
                    tracing::warn!(secret = name, "Skipped a secret filed under another name.")
                }
                Err(e) => {
                    tracing::warn!(secret = name, error = %e, "Skipped an undecodable secret.")
                }
            },
        }
    }

    /// Names of the secrets held.
    pub fn names(&self) -> Vec<String> {
        let sealed = self.sealed.read().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = sealed.keys().cloned().collect();
        names.sort();
        names
    }

    /// Reads the topic from its beginning to its end as of now, then follows it until `token`
    /// is cancelled.
    pub async fn follow(
        self: &Arc<Self>,
        client: &ClientConfig,
        topic: &str,
        timeout: Duration,
        token: CancellationToken,
    ) -> Result<tokio::task::JoinHandle<()>> {
        let kafka = |e: rdkafka::error::KafkaError| Error::Config(format!("kafka: {e}"));
        let mut config = client.clone();
        config
            .set(
                "group.id",
                format!("vigil-secrets-{}", uuid::Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        let consumer: StreamConsumer = config.create().map_err(kafka)?;
        let (_, high) = consumer
            .fetch_watermarks(topic, 0, timeout)
            .map_err(kafka)?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(kafka)?;
        consumer.assign(&list).map_err(kafka)?;
        let deadline = tokio::time::Instant::now() + timeout.max(Duration::from_secs(10));
        let mut next = 0;
        while next < high {
            let message = tokio::time::timeout_at(deadline, consumer.recv())
                .await
                .map_err(|_| Error::Config(format!("timed out reading the secrets topic {topic}")))?
                .map_err(kafka)?;
            next = message.offset() + 1;
            let name = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            self.apply(&name, message.payload());
        }
        tracing::info!(
            secrets = self.names().len(),
            key = self.keyring.current_id(),
            "Secret store loaded."
        );
        let store = Arc::clone(self);
        Ok(tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = token.cancelled() => return,
                    m = consumer.recv() => m,
                };
                match message {
                    Ok(m) => {
                        let name =
                            String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                        store.apply(&name, m.payload());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Reading the secrets topic failed; retrying.");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }))
    }
}

impl SecretResolver for SecretStore {
    fn resolve(&self, name: &str) -> Option<String> {
        let sealed = self.sealed.read().unwrap_or_else(|e| e.into_inner());
        let secret = sealed.get(name)?;
        match self.keyring.open(secret) {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::error!(error = %e, "A stored secret could not be opened.");
                metrics::counter!("vigil_secret_open_failures_total").increment(1);
                None
            }
        }
    }
}

/// Secrets from the store first, then from the operator's `VIGIL_SECRET_*` variables.
pub struct Layered {
    /// Consulted first.
    pub first: Arc<dyn SecretResolver>,
    /// Consulted when `first` has no such secret.
    pub then: Arc<dyn SecretResolver>,
}

impl std::fmt::Debug for Layered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layered").finish_non_exhaustive()
    }
}

impl SecretResolver for Layered {
    fn resolve(&self, name: &str) -> Option<String> {
        self.first.resolve(name).or_else(|| self.then.resolve(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_resolves_sealed_records_and_forgets_tombstones() {
        let kek = vigil_schema::vault::Kek::generate().unwrap();
        let ring = Keyring::new(Kek::parse(&kek, "test").unwrap(), vec![]);
        let sealed = ring.seal("hook", "s3cr3t-value", None, "ops").unwrap();
        let store = SecretStore::new(Keyring::new(Kek::parse(&kek, "test").unwrap(), vec![]));
        store.apply("hook", Some(&vigil_schema::encode(&sealed).unwrap()));
        assert_eq!(store.resolve("hook").as_deref(), Some("s3cr3t-value"));
        assert_eq!(store.names(), ["hook"]);
        // Filed under another name: refused, since the name is what the value is bound to.
        store.apply("other", Some(&vigil_schema::encode(&sealed).unwrap()));
        assert_eq!(store.resolve("other"), None);
        store.apply("hook", None);
        assert_eq!(store.resolve("hook"), None);
    }

    #[test]
    fn without_a_key_the_store_is_off() {
        let config = VaultConfig {
            key_env: "VIGIL_TEST_NO_SUCH_KEY_VARIABLE".into(),
            ..VaultConfig::default()
        };
        assert!(config.keyring().unwrap().is_none());
    }
}
