//! Request secrets: `${…}` references expanded at probe time, and credentials (basic, bearer,
//! API key, OAuth 2 client credentials with a token cache).
//!
//! Specs are stored with references, never expanded values; expansion happens for each check.
//! A `${NAME}` reads the runner's environment only when the operator lists `NAME` in
//! `[ingest] env-allow`; any other `${NAME}` stays unexpanded and fails the check, so a spec
//! cannot read (and send away) the runner's own secrets. `${secret:NAME}` references are read
//! from the secret store (named secrets set through the API or CLI, sealed at rest); without a
//! store, or for a name it does not hold, they fail the check with a clear error.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use vigil_schema::egress::{self, Reference};

/// Expands the references of monitor specs.
#[derive(Clone, Default)]
pub struct References {
    env_allow: BTreeSet<String>,
    secrets: Option<std::sync::Arc<dyn vigil_notify::SecretResolver>>,
}

impl std::fmt::Debug for References {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("References")
            .field("env_allow", &self.env_allow)
            .field("secret_store", &self.secrets.is_some())
            .finish()
    }
}

impl References {
    /// Expansion that reads only the environment variables in `env_allow`.
    pub fn new(env_allow: impl IntoIterator<Item = String>) -> Self {
        Self {
            env_allow: env_allow.into_iter().collect(),
            secrets: None,
        }
    }

    /// The same, resolving `${secret:NAME}` from `secrets`.
    pub fn with_secrets(
        mut self,
        secrets: std::sync::Arc<dyn vigil_notify::SecretResolver>,
    ) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Expands `text` from the process environment; `$${` writes a literal `${`.
    pub fn expand(&self, text: &str) -> Result<String, String> {
        self.expand_with(text, |name| std::env::var(name).ok())
    }

    /// [`expand`](Self::expand) with another variable source.
    pub fn expand_with(
        &self,
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<String, String> {
        self.expand_full(text, lookup, None)
    }

    /// [`expand`](Self::expand) in a step of a multi-step check: `${steps.STEP.VALUE}` is what
    /// `step` gives, in the same single pass (an expanded value is never read for references).
    pub(crate) fn expand_in_step(
        &self,
        text: &str,
        step: &StepLookup<'_>,
    ) -> Result<String, String> {
        self.expand_full(text, |name| std::env::var(name).ok(), Some(step))
    }

    fn expand_full(
        &self,
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
        step: Option<&StepLookup<'_>>,
    ) -> Result<String, String> {
        egress::expand(text, |reference| match reference {
            Reference::Step { step: name, value } => match step {
                Some(resolve) => resolve(name, value),
                None => Err(format!(
                    "${{steps.{name}.{value}}} is only expanded in the steps of a multi-step \
                     monitor"
                )),
            },
            Reference::Env(name) if self.env_allow.contains(name) => {
                lookup(name).ok_or_else(|| format!("environment variable {name} is not set"))
            }
            Reference::Env(name) => Err(format!(
                "${{{name}}} is not expanded: environment variable {name} is not in \
                 `[ingest] env-allow`"
            )),
            Reference::Secret(name) => match &self.secrets {
                None => Err(format!(
                    "${{secret:{name}}} cannot be resolved: secret store not configured"
                )),
                Some(store) => store
                    .resolve(name)
                    .ok_or_else(|| format!("${{secret:{name}}} is not set in the secret store")),
            },
        })
    }
}

/// Resolves `${steps.STEP.VALUE}` from (step, value).
pub(crate) type StepLookup<'a> = dyn Fn(&str, &str) -> Result<String, String> + Sync + 'a;

/// Whether `text` holds a reference (its value is then a secret).
pub(crate) fn has_reference(text: &str) -> bool {
    egress::references(text).map_or(true, |found| !found.is_empty())
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
            "VIGIL_API_KEY" => Some("the-real-key".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_only_allow_listed_variables() {
        let refs = References::new(["HOST".to_owned(), "TOKEN".to_owned(), "MISSING".to_owned()]);
        assert_eq!(
            refs.expand_with("https://${HOST}/x?k=${TOKEN}", vars)
                .unwrap(),
            "https://api.example.com/x?k=t0k"
        );
        assert_eq!(
            refs.expand_with("cost $5, $${HOST}", vars).unwrap(),
            "cost $5, ${HOST}"
        );
        assert_eq!(
            refs.expand_with("${MISSING}", vars).unwrap_err(),
            "environment variable MISSING is not set"
        );
        assert_eq!(
            refs.expand_with("${HOST", vars).unwrap_err(),
            "unclosed ${ in \"${HOST\""
        );
        assert_eq!(
            refs.expand_with("${A-B}", vars).unwrap_err(),
            "invalid variable name \"A-B\""
        );
    }

    #[test]
    fn runner_secrets_are_never_expanded() {
        // The variable is set, but not allow-listed: its value never appears.
        for refs in [References::default(), References::new(["HOST".to_owned()])] {
            let err = refs
                .expand_with("https://evil.example/?k=${VIGIL_API_KEY}", vars)
                .unwrap_err();
            assert_eq!(
                err,
                "${VIGIL_API_KEY} is not expanded: environment variable VIGIL_API_KEY is not in \
                 `[ingest] env-allow`"
            );
            assert!(!err.contains("the-real-key"));
        }
        let err = References::default()
            .expand_with("${secret:checkout-token}", vars)
            .unwrap_err();
        assert_eq!(
            err,
            "${secret:checkout-token} cannot be resolved: secret store not configured"
        );
        assert!(has_reference("Bearer ${secret:t}") && has_reference("${X"));
        assert!(!has_reference("plain $${X}"));
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
