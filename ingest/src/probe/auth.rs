//! Request secrets: `${ENV_VAR}` expansion at probe time, and credentials (basic, bearer, API
//! key, OAuth 2 client credentials with a token cache).
//!
//! Specs are stored with references, never expanded values; expansion happens for each check, so
//! rotating a secret in the runner's environment needs only a restart of the runner.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Replaces every `${NAME}` with the environment variable's value; `$${` writes a literal `${`.
pub fn expand_env(text: &str) -> Result<String, String> {
    expand_with(text, |name| std::env::var(name).ok())
}

/// [`expand_env`] with another variable source.
pub fn expand_with(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let name = &after[..end];
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!("invalid variable name {name:?}"));
            }
            let value =
                lookup(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `Basic base64(user:password)`.
pub(crate) fn basic(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// Cached OAuth 2 access tokens, keyed by token endpoint, client and scopes.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    pub(crate) token_url: String,
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    valid_until: Instant,
}

/// Tokens are refreshed this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Lifetime assumed when the token response has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

impl TokenCache {
    pub(crate) fn get(&self, key: &TokenKey, now: Instant) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(key)
            .filter(|t| t.valid_until > now)
            .map(|t| t.token.clone())
    }

    /// Stores a token from a token response body; returns the access token.
    pub(crate) fn store(&self, key: TokenKey, body: &[u8], now: Instant) -> Result<String, String> {
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            access_token: String,
            expires_in: Option<u64>,
        }
        let response: TokenResponse = serde_json::from_slice(body)
            .map_err(|e| format!("invalid oauth2 token response: {e}"))?;
        let lifetime = response
            .expires_in
            .map_or(DEFAULT_LIFETIME, Duration::from_secs);
        let valid_until = now + lifetime.saturating_sub(EXPIRY_MARGIN);
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.insert(
            key,
            CachedToken {
                token: response.access_token.clone(),
                valid_until,
            },
        );
        Ok(response.access_token)
    }
}

/// `application/x-www-form-urlencoded` body of a client-credentials token request.
pub(crate) fn token_request_body(
    client_id: &str,
    client_secret: &str,
    scopes: &[String],
) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    form.append_pair("client_id", client_id);
    form.append_pair("client_secret", client_secret);
    if !scopes.is_empty() {
        form.append_pair("scope", &scopes.join(" "));
    }
    form.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("api.example.com".into()),
            "TOKEN" => Some("t0k".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_references() {
        assert_eq!(
            expand_with("https://${HOST}/x?k=${TOKEN}", vars).unwrap(),
            "https://api.example.com/x?k=t0k"
        );
        assert_eq!(
            expand_with("cost $5, $${HOST}", vars).unwrap(),
            "cost $5, ${HOST}"
        );
        assert_eq!(
            expand_with("${MISSING}", vars).unwrap_err(),
            "environment variable MISSING is not set"
        );
        assert_eq!(
            expand_with("${HOST", vars).unwrap_err(),
            "unclosed ${ in \"${HOST\""
        );
        assert_eq!(
            expand_with("${A-B}", vars).unwrap_err(),
            "invalid variable name \"A-B\""
        );
    }

    #[test]
    fn basic_header() {
        assert_eq!(
            basic("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn token_cache_expires_early() {
        let cache = TokenCache::default();
        let key = TokenKey {
            token_url: "https://auth/token".into(),
            client_id: "c".into(),
            scopes: vec![],
        };
        let now = Instant::now();
        assert_eq!(cache.get(&key, now), None);
        let token = cache
            .store(
                key.clone(),
                br#"{"access_token":"abc","expires_in":60}"#,
                now,
            )
            .unwrap();
        assert_eq!(token, "abc");
        assert_eq!(
            cache.get(&key, now + Duration::from_secs(29)),
            Some("abc".into())
        );
        assert_eq!(cache.get(&key, now + Duration::from_secs(30)), None);
        assert!(
            cache
                .store(key, b"{}", now)
                .unwrap_err()
                .contains("access_token")
        );
        assert_eq!(
            token_request_body("id", "s&cret", &["read".into(), "write".into()]),
            "grant_type=client_credentials&client_id=id&client_secret=s%26cret&scope=read+write"
        );
    }
}
