//! `vigil secrets generate-key | set | list | delete | rotate`: the secret store from the
//! command line, written to and read from the compacted secrets topic like the API does, and
//! the resolver every service resolves `${secret:NAME}` with.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use vigil_ingest::plan::{Change, Plan};
use vigil_notify::{EnvSecrets, SecretResolver};
use vigil_schema::vault::{Kek, SealedSecret};

use crate::config::Config;

/// How long the command waits to read the topic and for the write's acknowledgement.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `vigil secrets …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SecretsCommand {
    /// Print a new random key-encryption key (base64); save it to the file `[secrets]
    /// key-file` names, readable only by Vigil.
    GenerateKey,
    /// Set a secret, reading its value from standard input (never from the command line).
    Set {
        /// The name, referenced as `${secret:NAME}`.
        name: String,
    },
    /// List secrets: names, key ids and when they were set (never values).
    List,
    /// Delete a secret.
    Delete {
        /// The name.
        name: String,
    },
    /// Re-wrap every secret's data key with the current key-encryption key. Run it with the
    /// new key as `key-file` and the old one in `previous-key-files` (every service configured
    /// the same way keeps resolving throughout); then drop the old key.
    Rotate,
}

/// Who the command writes as.
fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// The resolver of `${secret:NAME}` for a service: the store (when a key-encryption key is
/// configured), then the operator's `VIGIL_SECRET_*` variables.
pub(crate) async fn resolver(
    config: &Config,
    token: &CancellationToken,
) -> anyhow::Result<Arc<dyn SecretResolver>> {
    let env: Arc<dyn SecretResolver> = Arc::new(EnvSecrets::new());
    let Some(keyring) = config.secrets.keyring().context("invalid [secrets]")? else {
        return Ok(env);
    };
    let store = vigil_notify::SecretStore::new(keyring);
    let kafka = crate::ingest_cmd::kafka(config);
    store
        .follow(
            &kafka.client_config(),
            &kafka.topics.secrets,
            kafka.request_timeout,
            token.child_token(),
        )
        .await
        .context("failed to read the secrets topic")?;
    Ok(Arc::new(vigil_notify::vault::Layered {
        first: store,
        then: env,
    }))
}

pub(crate) async fn run(config: &Config, command: SecretsCommand) -> anyhow::Result<()> {
    if let SecretsCommand::GenerateKey = command {
        println!("{}", Kek::generate()?);
        return Ok(());
    }
    let kafka = crate::ingest_cmd::kafka(config);
    vigil_ingest::ensure_topics(&kafka, config.kafka.replication_factor)
        .await
        .with_context(|| format!("failed to create topics on {}", kafka.brokers))?;
    let token = CancellationToken::new();
    let secrets = crate::ingest_cmd::load_view::<SealedSecret>(&kafka, &token).await?;
    let keyring = || -> anyhow::Result<vigil_schema::vault::Keyring> {
        config.secrets.keyring()?.context(
            "no key-encryption key: set [secrets] key-file or the VIGIL_SECRETS_KEY variable \
             (`vigil secrets generate-key` makes one)",
        )
    };
    let changes = match command {
        SecretsCommand::GenerateKey => Vec::new(),
        SecretsCommand::List => {
            let mut all = secrets.snapshot();
            all.sort_by(|a, b| a.name.cmp(&b.name));
            println!("{:<32} {:<16} {:<24} BY", "NAME", "KEY", "UPDATED");
            for s in all {
                println!(
                    "{:<32} {:<16} {:<24} {}",
                    s.name, s.kek_id, s.updated_at, s.updated_by
                );
            }
            Vec::new()
        }
        SecretsCommand::Set { name } => {
            if !vigil_schema::event::is_secret_name(&name) {
                bail!("invalid secret name {name:?}: 1–64 of A-Z, a-z, 0-9, '_' or '-'");
            }
            let mut value = String::new();
            std::io::stdin()
                .take(vigil_query::service::credentials::MAX_SECRET_LEN as u64 + 2)
                .read_to_string(&mut value)
                .context("failed to read the value from standard input")?;
            let value = value.strip_suffix('\n').unwrap_or(&value);
            let value = value.strip_suffix('\r').unwrap_or(value);
            if value.is_empty() || value.len() > vigil_query::service::credentials::MAX_SECRET_LEN {
                bail!("the value must be 1 to 8192 bytes (read from standard input)");
            }
            let current = secrets.get(&name);
            let sealed = keyring()?.seal(&name, value, current.as_deref(), &actor())?;
            println!("Secret {name:?} set (key {}).", sealed.kek_id);
            vec![Change::Create(sealed)]
        }
        SecretsCommand::Delete { name } => {
            if secrets.get(&name).is_none() {
                bail!("no secret named {name:?}");
            }
            println!("Secret {name:?} deleted.");
            vec![Change::Delete(name)]
        }
        SecretsCommand::Rotate => {
            let keyring = keyring()?;
            let mut changes = Vec::new();
            let all = secrets.snapshot();
            for sealed in &all {
                if let Some(rewrapped) = keyring.rewrap(sealed)? {
                    changes.push(Change::Create(rewrapped));
                }
            }
            println!(
                "{} of {} secrets re-wrapped under key {}.",
                changes.len(),
                all.len(),
                keyring.current_id()
            );
            changes
        }
    };
    token.cancel();
    if !changes.is_empty() {
        let plan = Plan {
            changes,
            unchanged: 0,
        };
        plan.apply(&kafka, TIMEOUT).await?;
    }
    Ok(())
}
