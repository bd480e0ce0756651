//! `vigil notify`: the notification stage (routing, grouping, silences, delivery) with its
//! operations endpoints.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use vigil_notify::{EnvSecrets, Sender};

use crate::config::Config;
use crate::service::{Readiness, serve_ops, shutdown_token};

/// The stage's settings from the configuration, resolving channel secrets with `secrets`.
pub(crate) fn settings_with(
    config: &Config,
    secrets: impl vigil_notify::SecretResolver + 'static,
) -> anyhow::Result<vigil_notify::stage::Settings> {
    let mut settings = settings(config)?;
    settings.secrets = Arc::new(secrets);
    Ok(settings)
}

/// The stage's settings from the configuration. Channel secrets come from
/// `VIGIL_SECRET_<NAME>` environment variables.
pub(crate) fn settings(config: &Config) -> anyhow::Result<vigil_notify::stage::Settings> {
    let sender = Sender::new(config.notify.send_timeout).context("notification sender")?;
    Ok(vigil_notify::stage::Settings {
        config: config.notify.clone(),
        brokers: config.kafka.brokers.clone(),
        topics: config.topics(),
        clickhouse: config
            .clickhouse
            .client()
            .with_database(&config.clickhouse.database),
        group_id: "vigil-notify".into(),
        secrets: Arc::new(EnvSecrets::new()),
        sender,
    })
}

/// Runs the notification stage until SIGINT/SIGTERM, serving `/metrics`, `/healthz` and
/// `/readyz` on `listen`.
pub(crate) async fn notify(config: &Config, listen: SocketAddr) -> anyhow::Result<()> {
    config.notify.validate()?;
    crate::service::metrics();
    let token = shutdown_token();
    let readiness = Readiness::default();
    let ops = serve_ops(listen, readiness.clone(), token.clone()).await?;
    let (ready, mut started) = tokio::sync::watch::channel(false);
    {
        let readiness = readiness.clone();
        tokio::spawn(async move {
            if started.wait_for(|r| *r).await.is_ok() {
                readiness.set(true);
            }
        });
    }
    let mut settings = settings(config)?;
    settings.secrets = crate::secrets_cmd::resolver(config, &token).await?;
    let result = vigil_notify::stage::run(settings, token.clone(), ready).await;
    token.cancel();
    let _joined = ops.await;
    result.context("notification stage failed")
}
