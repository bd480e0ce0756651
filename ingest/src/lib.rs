//! Vigil's ingest service: probe runners that check HTTP APIs on schedules, the ingestion API
//! for external probe agents, and the idempotent Kafka producer that writes every
//! [`vigil_schema::ProbeResult`] to the probes topic.
//!
//! # Layout
//! - [`config`]: the service's configuration ([`Config`]) and the Kafka connection.
//! - [`monitors`]: [`MonitorView`], the monitors as read from the compacted monitors topic (and
//!   [`RuleView`], the alert rules, and the notification configuration, the same way).
//! - [`import`]: monitors discovered from an OpenAPI document (`vigil import openapi`).
//! - [`plan`]: monitors, alert rules, channels, routes, silences and maintenance windows as code
//!   (`vigil apply`, `vigil export`).
//! - [`probe`]: the HTTP checker, the egress policy, assertions, secrets, and the scheduler.
//! - [`producer`]: the Kafka producer and the scheduler's non-blocking buffer in front of it.
//! - [`api`]: `POST /v1/events`, `/healthz`, `/readyz`, `/metrics`.
//! - [`metric`]: metric names.
//! - [`error`]: the crate's error type.
//!
//! [`run`] wires them together: load the monitors, start the producer, the scheduler and the
//! API, and on shutdown stop the API, then the scheduler, then flush the producer.

pub mod api;
pub mod config;
pub mod error;
mod glob;
mod hash;
pub mod import;
pub mod metric;
pub mod monitors;
pub mod plan;
pub mod probe;
pub mod producer;

use std::sync::Arc;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use tokio_util::sync::CancellationToken;

pub use config::{Config, KafkaConnection, Shard};
pub use error::{Error, Result};
pub use monitors::{
    ChannelView, MaintenanceView, MonitorView, RouteView, RuleView, SilenceView, Spec, SpecView,
};
pub use producer::{ProbeProducer, ProbeSink};

/// Creates the topics the service uses (the secrets and API keys it reads included), and the
/// configuration topics `vigil apply` writes (rules, channels, routes, silences, status pages),
/// if they are missing.
pub async fn ensure_topics(kafka: &KafkaConnection, replication_factor: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let specs: Vec<_> = kafka
        .topics
        .specs()
        .into_iter()
        .filter(|s| {
            [
                &kafka.topics.monitors,
                &kafka.topics.probes,
                &kafka.topics.rules,
                &kafka.topics.channels,
                &kafka.topics.routes,
                &kafka.topics.silences,
                &kafka.topics.status_pages,
                &kafka.topics.secrets,
                &kafka.topics.api_keys,
                &kafka.topics.api_key_usage,
            ]
            .contains(&&s.name)
        })
        .collect();
    vigil_schema::kafka::ensure_topics(&admin, &specs, kafka.request_timeout, replication_factor)
        .await?;
    Ok(())
}

/// Runs the ingest service until `token` is cancelled or a part of it fails.
pub async fn run(
    config: Config,
    kafka: KafkaConnection,
    render_metrics: Option<api::RenderMetrics>,
    token: CancellationToken,
) -> Result<()> {
    config.validate()?;
    let view = monitors::load(&kafka, config.runner.load_timeout, token.child_token()).await?;
    let producer = ProbeProducer::new(&kafka, &config.producer)?;

    let api_token = token.child_token();
    let api = if config.api.enabled {
        let listener = tokio::net::TcpListener::bind(config.api.listen)
            .await
            .map_err(Error::Serve)?;
        tracing::info!(
            listen = %config.api.listen,
            configured_keys = config.api.api_keys.len(),
            "Ingestion API listening (keys: the configured ones and those created with scope ingest)."
        );
        let keys = monitors::load_specs::<vigil_schema::ApiKeyRecord>(
            &kafka,
            config.runner.load_timeout,
            token.child_token(),
        )
        .await?;
        let usage = Arc::new(vigil_schema::UsageRecorder::new(
            vigil_schema::reporter_name("ingest", config.api.listen.port()),
        ));
        let usage_producer: rdkafka::producer::FutureProducer = kafka.client_config().create()?;
        tokio::spawn(vigil_schema::kafka::report_usage(
            Arc::clone(&usage),
            usage_producer,
            kafka.topics.api_key_usage.clone(),
            std::time::Duration::from_secs(10),
            token.child_token(),
        ));
        let state = api::ApiState::new(
            config.api.clone(),
            producer.clone(),
            view.clone(),
            render_metrics,
        )
        .with_keys(keys, usage);
        let token = api_token.clone();
        let root = token.clone();
        Some(tokio::spawn(async move {
            let served = api::serve(listener, state, token).await;
            root.cancel();
            served
        }))
    } else {
        None
    };

    let forwarder_token = CancellationToken::new();
    let (sink, forwarder) =
        producer::spawn_forwarder(producer.clone(), &config.producer, forwarder_token.clone());
    let runner_token = token.child_token();
    let runner = if config.runner.enabled {
        let mut checker = probe::Checker::new(
            config.checker.clone(),
            config.region.clone(),
            config.agent_name(),
        )
        .with_policy(config.egress_policy());
        let keyring = config.secrets.keyring().map_err(|e| Error::Config {
            field: "secrets",
            reason: e.to_string(),
        })?;
        if let Some(keyring) = keyring {
            let store = vigil_notify::SecretStore::new(keyring);
            store
                .follow(
                    &kafka.client_config(),
                    &kafka.topics.secrets,
                    kafka.request_timeout,
                    runner_token.clone(),
                )
                .await
                .map_err(|e| Error::Config {
                    field: "secrets",
                    reason: e.to_string(),
                })?;
            checker = checker.with_secrets(store);
        }
        let checker = Arc::new(checker);
        let runner = probe::Runner::new(
            view.clone(),
            checker,
            Arc::new(sink),
            config.region.clone(),
            &config.runner,
            probe::Clock::now(),
        );
        tracing::info!(
            region = config.region,
            shard = %config.runner.shard,
            monitors = view.len(),
            "Probe runner started."
        );
        Some(tokio::spawn(runner.run(runner_token.clone())))
    } else {
        drop(sink);
        None
    };

    token.cancelled().await;
    tracing::info!("Shutting down: API, then scheduler, then producer.");
    api_token.cancel();
    let served = match api {
        Some(api) => api
            .await
            .unwrap_or_else(|e| Err(Error::Serve(std::io::Error::other(e)))),
        None => Ok(()),
    };
    runner_token.cancel();
    if let Some(runner) = runner {
        let _stopped = runner.await;
    }
    forwarder_token.cancel();
    let _forwarded = forwarder.await;
    let flush_timeout = config.producer.flush_timeout;
    let flushed = tokio::task::spawn_blocking(move || producer.flush(flush_timeout)).await;
    match flushed {
        Ok(Ok(())) => tracing::info!("Producer flushed."),
        Ok(Err(error)) => {
            tracing::error!(%error, "Probe results still unacknowledged at shutdown were lost.")
        }
        Err(error) => tracing::error!(%error, "Producer flush panicked."),
    }
    served
}
