//! `vigil keys generate`: a new random API key, shown once, and the configuration entry that
//! holds only its SHA-256. `vigil keys create | list | revoke`: keys kept on the compacted
//! api-keys topic (as the query API's `/api/v1/keys` does), accepted by every running service
//! at once and revoked the same way.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use vigil_ingest::plan::{Change, Plan};
use vigil_query::auth::Role;
use vigil_schema::{ApiKeyRecord, KeyRole, KeyScope, Timestamp};

use crate::config::Config;

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
    /// Create a key on the api-keys topic; it is printed once and stored only as its SHA-256.
    Create {
        /// What it is for (shown as the author of its writes).
        #[arg(long)]
        name: String,
        /// What it may do.
        #[arg(long, value_parser = ["viewer", "editor", "admin"], default_value = "viewer")]
        role: String,
        /// The API it may be used on (repeatable: `query`, `ingest`); default: both.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// When it stops working (RFC 3339).
        #[arg(long, value_parser = parse_expiry)]
        expires: Option<vigil_schema::Timestamp>,
    },
    /// List the keys on the api-keys topic (never the keys themselves).
    List,
    /// Revoke a key by its id: refused by every service from now on.
    Revoke {
        /// The key's id (12 hex digits, as listed).
        id: String,
    },
}

/// How long the command waits to read the topic and for the write's acknowledgement.
const TIMEOUT: Duration = Duration::from_secs(30);

fn key_role(role: &str) -> anyhow::Result<KeyRole> {
    Ok(serde_json::from_value(serde_json::Value::String(
        role.to_owned(),
    ))?)
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

pub(crate) async fn run(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { .. } => generate(command),
        KeysCommand::Create { .. } | KeysCommand::List | KeysCommand::Revoke { .. } => {
            stored(config, command).await
        }
    }
}

async fn stored(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let kafka = crate::ingest_cmd::kafka(config);
    vigil_ingest::ensure_topics(&kafka, config.kafka.replication_factor)
        .await
        .with_context(|| format!("failed to create topics on {}", kafka.brokers))?;
    let token = CancellationToken::new();
    let keys = crate::ingest_cmd::load_view::<ApiKeyRecord>(&kafka, &token).await?;
    token.cancel();
    let change = match command {
        KeysCommand::Generate { .. } => return Ok(()),
        KeysCommand::List => {
            let mut all = keys.snapshot();
            all.sort_by(|a, b| a.id.cmp(&b.id));
            println!(
                "{:<12} {:<24} {:<7} {:<13} {:<24} STATE",
                "ID", "NAME", "ROLE", "SCOPES", "CREATED"
            );
            let now = Timestamp::now();
            for k in all {
                let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                let state = match (k.revoked_at, k.expires) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, Some(e)) if e <= now => format!("expired {e}"),
                    (None, Some(e)) => format!("expires {e}"),
                    (None, None) => "active".into(),
                };
                println!(
                    "{:<12} {:<24} {:<7} {:<13} {:<24} {state}",
                    k.id,
                    k.name,
                    Role::from(k.role).to_string(),
                    if scopes.is_empty() {
                        "all".into()
                    } else {
                        scopes.join(",")
                    },
                    k.created_at.to_string(),
                );
            }
            return Ok(());
        }
        KeysCommand::Create {
            name,
            role,
            scopes,
            expires,
        } => {
            if name.trim().is_empty() || name.chars().count() > 64 {
                bail!("--name must be 1–64 characters");
            }
            let mut scopes = scopes
                .iter()
                .map(|s| s.parse::<KeyScope>().map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?;
            scopes.sort();
            scopes.dedup();
            let (key, id) = vigil_query::service::credentials::generate_key()?;
            let record = ApiKeyRecord {
                id: id.clone(),
                name: name.trim().to_owned(),
                digest: hex::encode(vigil_query::auth::digest(&key)),
                role: key_role(&role)?,
                scopes,
                expires,
                created_at: Timestamp::now(),
                created_by: format!(
                    "cli:{}",
                    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
                ),
                revoked_at: None,
            };
            println!("API key {id} (shown once; give it to {name}):\n\n  {key}\n");
            Change::Create(record)
        }
        KeysCommand::Revoke { id } => {
            let Some(current) = keys.get(&id) else {
                bail!("no key with id {id:?} (see `vigil keys list`)");
            };
            if current.revoked_at.is_some() {
                println!("Key {id} was already revoked.");
                return Ok(());
            }
            println!("Key {id} ({}) revoked.", current.name);
            Change::Create(ApiKeyRecord {
                revoked_at: Some(Timestamp::now()),
                ..(*current).clone()
            })
        }
    };
    let plan = Plan {
        changes: vec![change],
        unchanged: 0,
    };
    plan.apply(&kafka, TIMEOUT).await?;
    Ok(())
}

fn generate(command: KeysCommand) -> anyhow::Result<()> {
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
        _ => Ok(()),
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
