//! Which keys the ingestion API accepts: the configured `api-keys`, and keys created through
//! the query API or CLI (`vigil.api-keys`) whose scopes include `ingest` (or that have none)
//! and whose role is editor or admin, while neither revoked nor expired. Every comparison is
//! in constant time; only digests of created keys exist anywhere.

use axum::http::{HeaderMap, header};
use vigil_schema::{ApiKeyRecord, KeyRole, KeyScope, Timestamp};

use crate::config::ApiConfig;
use crate::monitors::SpecView;

/// Compares in time independent of where the strings differ.
pub(super) fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The key a request presents (`Authorization: Bearer` or `X-Api-Key`).
pub(super) fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

fn sha256_hex(key: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, key.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Who a valid key belongs to (`config#<position>`, or the created key's id): the unit of the
/// rate limit and of the unknown-monitor budget. `None`: no valid key.
pub(super) fn authorized(
    config: &ApiConfig,
    stored: Option<&SpecView<ApiKeyRecord>>,
    headers: &HeaderMap,
) -> Option<String> {
    let presented = presented_key(headers).filter(|k| !k.is_empty())?;
    if let (Some(stored), Some(id)) = (stored, vigil_schema::api_key_id(presented)) {
        let record = stored.get(id)?;
        let matches = same_key(record.digest.as_bytes(), sha256_hex(presented).as_bytes());
        let allowed =
            record.usable(KeyScope::Ingest, Timestamp::now()) && record.role >= KeyRole::Editor;
        if matches && !allowed {
            tracing::warn!(key = %record.id, name = %record.name, "A revoked, expired, viewer or out-of-scope key was refused.");
        }
        return (matches && allowed).then(|| record.id.clone());
    }
    config
        .api_keys
        .iter()
        .enumerate()
        .filter(|(_, k)| !k.is_empty())
        .fold(None, |found, (i, key)| {
            let same = same_key(key.as_bytes(), presented.as_bytes());
            found.or(same.then(|| format!("config#{i}")))
        })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_str(key).unwrap());
        h
    }

    fn record(key: &str, role: KeyRole, scopes: Vec<KeyScope>) -> ApiKeyRecord {
        ApiKeyRecord {
            id: vigil_schema::api_key_id(key).unwrap().to_owned(),
            name: "agent".into(),
            digest: sha256_hex(key),
            role,
            scopes,
            expires: None,
            created_at: Timestamp::from_millis(0),
            created_by: "admin".into(),
            revoked_at: None,
        }
    }

    #[test]
    fn created_keys_need_the_ingest_scope_and_a_writing_role() {
        let config = ApiConfig {
            api_keys: vec!["configured-key-0123".into()],
            ..ApiConfig::default()
        };
        let key = "vk_0123456789ab_the-secret-part";
        let cases = [
            (record(key, KeyRole::Editor, vec![KeyScope::Ingest]), true),
            (record(key, KeyRole::Admin, vec![]), true),
            (record(key, KeyRole::Editor, vec![KeyScope::Query]), false),
            (record(key, KeyRole::Viewer, vec![KeyScope::Ingest]), false),
            (
                ApiKeyRecord {
                    revoked_at: Some(Timestamp::from_millis(1)),
                    ..record(key, KeyRole::Admin, vec![])
                },
                false,
            ),
        ];
        for (stored, accepted) in cases {
            let view = SpecView::from_specs([stored.clone()]);
            assert_eq!(
                authorized(&config, Some(&view), &headers(key)),
                accepted.then(|| "0123456789ab".to_owned()),
                "{stored:?}"
            );
            // The right id with another secret is refused.
            assert_eq!(
                authorized(&config, Some(&view), &headers("vk_0123456789ab_other")),
                None
            );
        }
        assert_eq!(
            authorized(&config, None, &headers("configured-key-0123")).as_deref(),
            Some("config#0")
        );
        assert_eq!(authorized(&config, None, &headers("nope")), None);
    }
}
