//! Resolving `${secret:NAME}` references at send time.
//!
//! Specs only ever hold references ([`SecretRef`]); the value is looked up through a
//! [`SecretResolver`] right before a request is built and is never stored, logged or put in an
//! error message. [`EnvSecrets`] reads `VIGIL_SECRET_<NAME>` variables (and nothing else);
//! [`MemorySecrets`] is a map, for tests and embedding.

use std::collections::BTreeMap;
use std::fmt;

use vigil_schema::SecretRef;

use crate::{Error, Result};

/// Looks secrets up by name.
pub trait SecretResolver: Send + Sync {
    /// The value of the secret `name`, if it is set.
    fn resolve(&self, name: &str) -> Option<String>;
}

/// Secrets from environment variables `VIGIL_SECRET_<NAME>` (the name upper-cased, `-` as
/// `_`). Only variables with that prefix can be read, so a reference can never reach other
/// variables of the process; [`EnvSecrets::only`] narrows it to a list of names.
#[derive(Debug, Clone)]
pub struct EnvSecrets {
    prefix: String,
    allowed: Option<Vec<String>>,
}

impl Default for EnvSecrets {
    fn default() -> Self {
        Self {
            prefix: ENV_PREFIX.to_owned(),
            allowed: None,
        }
    }
}

/// Prefix of the environment variables [`EnvSecrets`] reads.
pub const ENV_PREFIX: &str = "VIGIL_SECRET_";

impl EnvSecrets {
    /// Every `VIGIL_SECRET_*` variable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Variables under another prefix (an installation running several Vigils).
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            allowed: None,
        }
    }

    /// Only the secrets named here.
    pub fn only<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The variable holding the secret `name`.
    pub fn variable(&self, name: &str) -> String {
        format!(
            "{}{}",
            self.prefix,
            name.to_ascii_uppercase().replace('-', "_")
        )
    }
}

impl SecretResolver for EnvSecrets {
    fn resolve(&self, name: &str) -> Option<String> {
        if !vigil_schema::event::is_secret_name(name) {
            return None;
        }
        if let Some(allowed) = &self.allowed
            && !allowed.iter().any(|a| a == name)
        {
            return None;
        }
        std::env::var(self.variable(name)).ok()
    }
}

/// Secrets held in memory.
#[derive(Default, Clone)]
pub struct MemorySecrets(BTreeMap<String, String>);

impl MemorySecrets {
    /// No secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a secret.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }
}

impl fmt::Debug for MemorySecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl SecretResolver for MemorySecrets {
    fn resolve(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// The value behind a reference.
pub fn resolve(secrets: &dyn SecretResolver, reference: &SecretRef) -> Result<String> {
    let name = reference
        .name()
        .ok_or_else(|| Error::MissingSecret(reference.as_str().to_owned()))?;
    secrets
        .resolve(name)
        .ok_or_else(|| Error::MissingSecret(name.to_owned()))
}

/// `text` with every `${secret:NAME}` replaced by its value (webhook header values).
pub fn expand(secrets: &dyn SecretResolver, text: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${secret:") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let reference = SecretRef(rest[start..=start + len].to_owned());
        out.push_str(&resolve(secrets, &reference)?);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_references() {
        let secrets = MemorySecrets::new()
            .with("HOOK", "whsec_abc")
            .with("TOKEN", "t0k");
        assert_eq!(
            resolve(&secrets, &SecretRef::to("HOOK")).unwrap(),
            "whsec_abc"
        );
        let err = resolve(&secrets, &SecretRef::to("NOPE")).unwrap_err();
        assert_eq!(err.to_string(), "secret NOPE is not set");
        assert_eq!(
            expand(&secrets, "Bearer ${secret:TOKEN}; k=${secret:HOOK}").unwrap(),
            "Bearer t0k; k=whsec_abc"
        );
        assert_eq!(expand(&secrets, "plain ${x} {").unwrap(), "plain ${x} {");
        assert!(expand(&secrets, "${secret:NOPE}").is_err());
        assert_eq!(
            format!("{secrets:?}"),
            r#"{"HOOK", "TOKEN"}"#,
            "no values in Debug"
        );
    }

    #[test]
    fn environment_only_under_the_prefix() {
        assert_eq!(
            EnvSecrets::new().variable("slack-ops"),
            "VIGIL_SECRET_SLACK_OPS"
        );
        // `PATH` is always set; a reference can never read it.
        assert_eq!(EnvSecrets::new().resolve("PATH"), None);
        assert_eq!(EnvSecrets::new().resolve("../PATH"), None);
        // Cargo sets `CARGO_PKG_NAME` for tests: read through another prefix.
        let cargo = EnvSecrets::with_prefix("CARGO_PKG_");
        assert_eq!(cargo.resolve("name").as_deref(), Some("vigil-notify"));
        assert_eq!(cargo.clone().only(["version"]).resolve("name"), None);
        assert_eq!(
            cargo.only(["version"]).resolve("version").as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
    }
}
