//! `vigil serve`: the query API (REST under `/api/v1`, GraphQL with subscriptions, `/docs`,
//! `/metrics`, `/healthz`, `/readyz`) on one listener.

use std::net::SocketAddr;

use anyhow::Context;

use vigil_query::auth::Role;
use vigil_query::config::ApiKeyConfig;

use crate::config::Config;
use crate::service::{metrics, shutdown_token};

/// The query service's configuration: its own `[query]` section plus the shared Kafka and
/// ClickHouse sections, the `[processor]` section backtests run with, and the probes' egress
/// policy (`[ingest.egress]`, `[ingest] env-allow`) monitor writes are checked against.
pub(crate) fn query_config(config: &Config, listen: Option<SocketAddr>) -> vigil_query::Config {
    let mut query = config.query.clone();
    query.kafka = vigil_query::config::KafkaConfig {
        brokers: config.kafka.brokers.clone(),
        topic_prefix: config.kafka.topic_prefix.clone(),
        request_timeout: config.kafka.request_timeout,
    };
    query.clickhouse = vigil_query::config::ClickHouseConfig {
        url: config.clickhouse.url.clone(),
        user: config.clickhouse.user.clone(),
        password: config.clickhouse.password.clone(),
        database: config.clickhouse.database.clone(),
    };
    query.processor = config.processor.clone();
    query.egress = config.ingest.egress_policy();
    query.secrets = config.secrets.clone();
    if let Some(listen) = listen {
        query.http.listen = listen;
    }
    query
}

/// `vigil serve` options.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (default: `query.http.listen`, 127.0.0.1:8080).
    #[arg(long, env = "VIGIL_QUERY_LISTEN")]
    listen: Option<SocketAddr>,
    /// API keys as `NAME:ROLE:KEY` (role viewer, editor or admin; key at least 16 characters),
    /// comma-separated in the environment; added to `query.auth.keys`.
    #[arg(
        long = "api-key",
        env = "VIGIL_QUERY_API_KEYS",
        value_delimiter = ',',
        value_parser = parse_api_key,
        hide_env_values = true
    )]
    api_keys: Vec<ApiKeyConfig>,
    /// Serve without API keys on a non-loopback address: anyone who reaches it is an admin.
    #[arg(long)]
    insecure_no_auth: bool,
}

/// `NAME:ROLE:KEY`; the key itself is never repeated in the error.
fn parse_api_key(value: &str) -> Result<ApiKeyConfig, String> {
    let mut parts = value.trim().splitn(3, ':');
    let (Some(name), Some(role), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected NAME:ROLE:KEY".into());
    };
    let role = match role {
        "viewer" => Role::Viewer,
        "editor" => Role::Editor,
        "admin" => Role::Admin,
        other => return Err(format!("role {other:?} is not viewer, editor or admin")),
    };
    if name.is_empty() {
        return Err("the key's NAME is empty".into());
    }
    Ok(ApiKeyConfig {
        name: name.to_owned(),
        key: key.to_owned(),
        role,
        expires: None,
    })
}

/// Serves the query API until SIGINT/SIGTERM.
pub(crate) async fn serve(config: &Config, args: ServeArgs) -> anyhow::Result<()> {
    let mut query = query_config(config, args.listen);
    query.auth.keys.extend(args.api_keys);
    query.auth.insecure_no_auth |= args.insecure_no_auth;
    query.validate_settings()?;
    if query.auth.keys.is_empty() {
        tracing::warn!(
            listen = %query.http.listen,
            "Serving without API keys: every caller is an admin."
        );
    }
    let handle = metrics();
    let token = shutdown_token();
    vigil_query::run_with_metrics(query, Some(handle), token)
        .await
        .context("query service failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_parse_without_echoing_the_key() {
        let k = parse_api_key("ops:editor:0123456789abcdef:with-colon").unwrap();
        assert_eq!((k.name.as_str(), k.role), ("ops", Role::Editor));
        assert_eq!(k.key, "0123456789abcdef:with-colon");
        let e = parse_api_key("ops:root:supersecretvalue123").unwrap_err();
        assert!(!e.contains("supersecret"), "{e}");
        assert!(parse_api_key("just-a-key").is_err());
        assert!(parse_api_key(":viewer:0123456789abcdef").is_err());
    }

    #[test]
    fn no_keys_off_loopback_needs_the_explicit_flag() {
        let config = Config::default();
        let mut query = query_config(&config, Some("0.0.0.0:8080".parse().unwrap()));
        let e = query.validate().unwrap_err().to_string();
        assert!(e.contains("--insecure-no-auth"), "{e}");
        query.auth.insecure_no_auth = true;
        assert!(query.validate().is_ok());
        let query = query_config(&config, Some("[::1]:8080".parse().unwrap()));
        assert!(query.validate().is_ok(), "loopback needs no keys");
        let mut query = query_config(&config, Some("0.0.0.0:8080".parse().unwrap()));
        query
            .auth
            .keys
            .push(parse_api_key("ops:admin:0123456789abcdef").unwrap());
        assert!(query.validate().is_ok());
    }
}
