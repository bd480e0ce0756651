//! Named secrets, encrypted at rest with envelope encryption.
//!
//! A secret's value is sealed with AES-256-GCM under a fresh random *data key*; the data key is
//! itself sealed (wrapped) under a *key-encryption key* (KEK) the operator keeps outside Kafka
//! and ClickHouse — in a file or an environment variable. Only the sealed form,
//! [`SealedSecret`], is ever written (to the compacted `vigil.secrets` topic). The secret's name
//! is the additional authenticated data of both layers, so a sealed value cannot be moved under
//! another name, and any tampering fails to open.
//!
//! A [`Keyring`] holds the current KEK, which seals, and any number of previous ones, which
//! still open. Rotating is therefore done without downtime: give every service the new key as
//! current and the old one as previous, re-wrap every secret ([`Keyring::rewrap`], `vigil
//! secrets rotate`), then drop the old key. Re-wrapping touches only the data key: the value's
//! ciphertext is unchanged.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Length of a key (KEK or data key) in bytes.
pub const KEY_LEN: usize = 32;

/// Why a secret could not be sealed or opened, or a key not loaded. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The key material is not 32 bytes of base64 (or hex).
    #[error("invalid key-encryption key {source_name}: {reason}")]
    BadKey {
        /// Where the key came from (a file path or a variable name).
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The secret was sealed under a key this keyring does not hold.
    #[error("secret {name:?} is sealed under key {kek_id}, which is not configured")]
    UnknownKey {
        /// The secret.
        name: String,
        /// The id of the key it needs.
        kek_id: String,
    },
    /// Decryption failed: the record was altered, or the key with that id is not the one used.
    #[error("secret {name:?} failed to open (altered, or sealed under another key)")]
    Corrupt {
        /// The secret.
        name: String,
    },
    /// The random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// A key-encryption key. `Debug` shows only its id.
pub struct Kek {
    id: String,
    key: LessSafeKey,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).finish()
    }
}

impl Kek {
    /// A key from 32 raw bytes; its id is the first 16 hex digits of their SHA-256.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        let id = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            id,
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte key")),
        }
    }

    /// A key written as base64 (standard alphabet, padded or not) or 64 hex digits.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, VaultError> {
        let text = text.trim();
        let bad = |reason: &str| VaultError::BadKey {
            source_name: source_name.to_owned(),
            reason: reason.to_owned(),
        };
        let bytes = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..KEY_LEN)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| bad("not hex"))?
        } else {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|_| bad("expected 32 bytes as base64 or 64 hex digits"))?
        };
        let bytes: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| bad("expected 32 bytes (a 44-character base64 string)"))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// A key read from a file (see [`Kek::parse`]).
    pub fn from_file(path: &Path) -> Result<Self, VaultError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| VaultError::BadKey {
            source_name: name.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &name)
    }

    /// A new random key, as base64 (what `vigil secrets generate-key` prints).
    pub fn generate() -> Result<String, VaultError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| VaultError::Random)?;
        Ok(B64.encode(bytes))
    }

    /// The key's id (first 16 hex digits of the SHA-256 of its bytes): safe to show.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// One secret as stored: the value sealed under a data key, the data key sealed under a KEK.
/// Holds no plaintext, so it may be logged; the API still never returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// The secret's name (`${secret:NAME}`).
    pub name: String,
    /// Id of the KEK the data key is wrapped under.
    pub kek_id: String,
    /// The data key: base64 of nonce ‖ ciphertext ‖ tag.
    pub wrapped_key: String,
    /// The value: base64 of nonce ‖ ciphertext ‖ tag.
    pub ciphertext: String,
    /// When the value was first set.
    pub created_at: Timestamp,
    /// When the value was last set.
    pub updated_at: Timestamp,
    /// Who last set it (an API key's name, or `cli:<user>`).
    pub updated_by: String,
}

impl crate::Event for SealedSecret {
    const KIND: crate::EventKind = crate::EventKind::SealedSecret;
    const VERSION: u8 = 1;
    const CODEC: crate::Codec = crate::Codec::Json;
}

/// The keys a service seals and opens secrets with.
#[derive(Debug)]
pub struct Keyring {
    current: Kek,
    previous: Vec<Kek>,
    random: SystemRandom,
}

fn seal(
    key: &LessSafeKey,
    random: &SystemRandom,
    aad: &[u8],
    plain: &[u8],
) -> Result<String, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    random.fill(&mut nonce).map_err(|_| VaultError::Random)?;
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| VaultError::Random)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    buf.fill(0);
    Ok(B64.encode(out))
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &str, name: &str) -> Result<Vec<u8>, VaultError> {
    let corrupt = || VaultError::Corrupt {
        name: name.to_owned(),
    };
    let mut bytes = B64.decode(sealed).map_err(|_| corrupt())?;
    if bytes.len() < NONCE_LEN {
        return Err(corrupt());
    }
    let nonce = Nonce::try_assume_unique_for_key(&bytes[..NONCE_LEN]).map_err(|_| corrupt())?;
    let mut body = bytes.split_off(NONCE_LEN);
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .map_err(|_| corrupt())?
        .len();
    body.truncate(len);
    Ok(body)
}

impl Keyring {
    /// A keyring sealing with `current` and also opening with `previous`.
    pub fn new(current: Kek, previous: Vec<Kek>) -> Self {
        Self {
            current,
            previous,
            random: SystemRandom::new(),
        }
    }

    /// The id of the key new secrets are sealed with.
    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    fn kek(&self, id: &str) -> Option<&Kek> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }

    /// Seals `value` as the secret `name`, keeping `created_at` of the secret it replaces.
    pub fn seal(
        &self,
        name: &str,
        value: &str,
        replaces: Option<&SealedSecret>,
        by: &str,
    ) -> Result<SealedSecret, VaultError> {
        let mut data_key = [0u8; KEY_LEN];
        self.random
            .fill(&mut data_key)
            .map_err(|_| VaultError::Random)?;
        let dek = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &data_key).expect("32-byte key"));
        let ciphertext = seal(&dek, &self.random, name.as_bytes(), value.as_bytes())?;
        let wrapped_key = seal(&self.current.key, &self.random, name.as_bytes(), &data_key)?;
        data_key.fill(0);
        let now = Timestamp::now();
        Ok(SealedSecret {
            name: name.to_owned(),
            kek_id: self.current.id.clone(),
            wrapped_key,
            ciphertext,
            created_at: replaces.map_or(now, |r| r.created_at),
            updated_at: now,
            updated_by: by.to_owned(),
        })
    }

    /// The raw data key of a sealed secret, unwrapped with the KEK it names (zero it after use).
    fn raw_data_key(&self, sealed: &SealedSecret) -> Result<Vec<u8>, VaultError> {
        let kek = self
            .kek(&sealed.kek_id)
            .ok_or_else(|| VaultError::UnknownKey {
                name: sealed.name.clone(),
                kek_id: sealed.kek_id.clone(),
            })?;
        open(
            &kek.key,
            sealed.name.as_bytes(),
            &sealed.wrapped_key,
            &sealed.name,
        )
    }

    fn data_key(&self, sealed: &SealedSecret) -> Result<LessSafeKey, VaultError> {
        let mut raw = self.raw_data_key(sealed)?;
        let key = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| VaultError::Corrupt {
            name: sealed.name.clone(),
        });
        raw.fill(0);
        Ok(LessSafeKey::new(key?))
    }

    /// The plaintext of a sealed secret.
    pub fn open(&self, sealed: &SealedSecret) -> Result<String, VaultError> {
        let dek = self.data_key(sealed)?;
        let plain = open(
            &dek,
            sealed.name.as_bytes(),
            &sealed.ciphertext,
            &sealed.name,
        )?;
        String::from_utf8(plain).map_err(|_| VaultError::Corrupt {
            name: sealed.name.clone(),
        })
    }

    /// The same secret with its data key wrapped under the current KEK (`None` when it already
    /// is). The value's ciphertext is kept as it is.
    pub fn rewrap(&self, sealed: &SealedSecret) -> Result<Option<SealedSecret>, VaultError> {
        if sealed.kek_id == self.current.id {
            return Ok(None);
        }
        let mut raw = self.raw_data_key(sealed)?;
        let wrapped_key = seal(
            &self.current.key,
            &self.random,
            sealed.name.as_bytes(),
            &raw,
        );
        raw.fill(0);
        Ok(Some(SealedSecret {
            kek_id: self.current.id.clone(),
            wrapped_key: wrapped_key?,
            ..sealed.clone()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> Kek {
        Kek::from_bytes(&[byte; KEY_LEN])
    }

    #[test]
    fn sealed_values_open_and_hold_no_plaintext() {
        let ring = Keyring::new(kek(1), vec![]);
        let sealed = ring
            .seal("slack-token", "xoxb-very-secret", None, "ops")
            .unwrap();
        let json = serde_json::to_string(&sealed).unwrap();
        assert!(!json.contains("xoxb-very-secret"), "{json}");
        assert_eq!(sealed.kek_id, kek(1).id());
        assert_eq!(ring.open(&sealed).unwrap(), "xoxb-very-secret");
        // A fresh data key and nonce each time: sealing twice never gives the same bytes.
        let again = ring
            .seal("slack-token", "xoxb-very-secret", Some(&sealed), "ops")
            .unwrap();
        assert_ne!(again.ciphertext, sealed.ciphertext);
        assert_ne!(again.wrapped_key, sealed.wrapped_key);
        assert_eq!(again.created_at, sealed.created_at);
    }

    #[test]
    fn tampering_or_renaming_fails_to_open() {
        let ring = Keyring::new(kek(1), vec![]);
        let sealed = ring.seal("a", "value-a", None, "ops").unwrap();
        let renamed = SealedSecret {
            name: "b".into(),
            ..sealed.clone()
        };
        assert_eq!(
            ring.open(&renamed),
            Err(VaultError::Corrupt { name: "b".into() })
        );
        let mut bytes = B64.decode(&sealed.ciphertext).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let flipped = SealedSecret {
            ciphertext: B64.encode(bytes),
            ..sealed.clone()
        };
        assert!(matches!(
            ring.open(&flipped),
            Err(VaultError::Corrupt { .. })
        ));
        let other = Keyring::new(kek(2), vec![]);
        assert_eq!(
            other.open(&sealed),
            Err(VaultError::UnknownKey {
                name: "a".into(),
                kek_id: kek(1).id().to_owned()
            })
        );
    }

    #[test]
    fn rotation_rewraps_only_the_data_key() {
        let old = Keyring::new(kek(1), vec![]);
        let sealed = old.seal("pd", "routing-key-1", None, "ops").unwrap();
        let rotating = Keyring::new(kek(2), vec![kek(1)]);
        // During rotation both keys open.
        assert_eq!(rotating.open(&sealed).unwrap(), "routing-key-1");
        let rewrapped = rotating.rewrap(&sealed).unwrap().unwrap();
        assert_eq!(rewrapped.kek_id, kek(2).id());
        assert_eq!(rewrapped.ciphertext, sealed.ciphertext);
        assert_eq!(rotating.rewrap(&rewrapped).unwrap(), None);
        // After it, the old key can go.
        let new = Keyring::new(kek(2), vec![]);
        assert_eq!(new.open(&rewrapped).unwrap(), "routing-key-1");
        assert!(new.open(&sealed).is_err());
    }

    #[test]
    fn keys_parse_from_base64_or_hex_and_show_only_their_id() {
        let generated = Kek::generate().unwrap();
        let a = Kek::parse(&format!("{generated}\n"), "file").unwrap();
        assert_eq!(a.id().len(), 16);
        assert!(!format!("{a:?}").contains(&generated));
        let hex = "ab".repeat(32);
        assert_eq!(Kek::parse(&hex, "env").unwrap().id(), kek(0xab).id());
        let err = Kek::parse("c2hvcnQ=", "VIGIL_SECRETS_KEY").unwrap_err();
        assert!(err.to_string().contains("VIGIL_SECRETS_KEY"), "{err}");
        assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
    }
}
