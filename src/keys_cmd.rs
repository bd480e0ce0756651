//! `vigil keys generate`: a new random API key, shown once, and the configuration entry that
//! holds only its SHA-256.

use vigil_query::auth::Role;

/// `vigil keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Print a new random API key once, and the `[[query.auth.keys]]` entry with its hash.
    Generate {
        /// Who holds the key (shown in logs and metrics).
        #[arg(long)]
        name: String,
        /// What it may do.
        #[arg(long, value_parser = ["viewer", "editor", "admin"], default_value = "viewer")]
        role: String,
        /// When it stops working (RFC 3339).
        #[arg(long, value_parser = parse_expiry)]
        expires: Option<vigil_schema::Timestamp>,
    },
}

fn parse_expiry(s: &str) -> Result<vigil_schema::Timestamp, String> {
    vigil_schema::Timestamp::parse_rfc3339(s).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

/// A key of 256 random bits, `vgl_` and 64 hex digits.
fn new_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("no system randomness"))?;
    Ok(format!("vgl_{}", hex::encode(bytes)))
}

/// The configuration entry of `key`.
fn entry(name: &str, role: &str, key: &str, expires: Option<vigil_schema::Timestamp>) -> String {
    let mut out = format!(
        "[[query.auth.keys]]\nname = {name:?}\nrole = {role:?}\nkey = {:?}\n",
        vigil_query::auth::hashed(key)
    );
    if let Some(at) = expires {
        out.push_str(&format!("expires = {:?}\n", at.to_string()));
    }
    out
}

pub(crate) fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate {
            name,
            role,
            expires,
        } => {
            let _role: Role = serde_json::from_value(serde_json::Value::String(role.clone()))?;
            let key = new_key()?;
            println!("API key (shown once; give it to {name}):\n\n  {key}\n");
            println!("Configuration entry (holds only its SHA-256):\n");
            print!("{}", entry(&name, &role, &key, expires));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_entries_hold_only_the_hash() {
        let (a, b) = (new_key().unwrap(), new_key().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        let text = entry("ci", "viewer", &a, Some(vigil_schema::Timestamp(0)));
        assert!(!text.contains(&a));
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        let k = &parsed["query"]["auth"]["keys"][0];
        let config: vigil_query::config::ApiKeyConfig = k.clone().try_into().unwrap();
        assert_eq!(config.key, vigil_query::auth::hashed(&a));
        assert_eq!(config.expires, Some(vigil_schema::Timestamp(0)));
        let auth = vigil_query::auth::Authenticator::new(&[vigil_query::config::ApiKeyConfig {
            expires: None,
            ..config
        }]);
        assert!(auth.authenticate(Some(&format!("Bearer {a}"))).is_ok());
    }
}
