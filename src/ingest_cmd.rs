//! `vigil apply`, `vigil export` and `vigil ingest`: monitors as code, and the ingest service
//! (probe runner plus ingestion API).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;
use vigil_ingest::plan::{self, Plan};
use vigil_ingest::{KafkaConnection, MonitorView};

use crate::config::Config;

/// How long `apply` and `export` wait to read the monitors topic and for acknowledgements.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// `vigil ingest` options (each overrides the `[ingest]` config section).
#[derive(Debug, clap::Args)]
pub(crate) struct IngestArgs {
    /// Region this runner checks from.
    #[arg(long, env = "VIGIL_REGION")]
    region: Option<String>,
    /// Slice of the region's monitors to run, `index/count` (e.g. `0/3`).
    #[arg(long, env = "VIGIL_SHARD")]
    shard: Option<vigil_ingest::Shard>,
    /// Serve the ingestion API on this address (enables it).
    #[arg(long, env = "VIGIL_INGEST_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// API keys accepted by the ingestion API (comma-separated; added to the config's list).
    #[arg(
        long = "api-key",
        env = "VIGIL_INGEST_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    api_keys: Vec<String>,
    /// Run only the ingestion API, no probes.
    #[arg(long)]
    no_runner: bool,
}

pub(crate) fn kafka(config: &Config) -> KafkaConnection {
    KafkaConnection {
        brokers: config.kafka.brokers.clone(),
        topics: config.topics(),
        request_timeout: config.kafka.request_timeout,
    }
}

/// Reads the monitors topic; a missing topic reads as no monitors.
async fn load_view(
    kafka: &KafkaConnection,
    token: &CancellationToken,
) -> anyhow::Result<MonitorView> {
    match vigil_ingest::monitors::load(kafka, TOOL_TIMEOUT, token.child_token()).await {
        Ok(view) => Ok(view),
        Err(vigil_ingest::Error::Kafka(KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ))) => Ok(MonitorView::from_specs([])),
        Err(e) => Err(e).with_context(|| {
            format!(
                "failed to read {} from {} (is Kafka running? try `scripts/stack up`)",
                kafka.topics.monitors, kafka.brokers
            )
        }),
    }
}

/// `vigil apply -f FILE [--dry-run] [--prune]`.
pub(crate) async fn apply(
    config: &Config,
    file: &Path,
    dry_run: bool,
    prune: bool,
) -> anyhow::Result<()> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("failed to read {shown}"))?;
    let desired = plan::parse_monitors(&shown, &text)?;
    let kafka = kafka(config);
    let token = CancellationToken::new();
    let view = load_view(&kafka, &token).await;
    token.cancel();
    let plan = Plan::new(&view?.snapshot(), &desired, prune);
    print!("{plan}");
    if dry_run || plan.is_empty() {
        return Ok(());
    }
    vigil_ingest::ensure_topics(&kafka, config.kafka.replication_factor).await?;
    plan.apply(&kafka, TOOL_TIMEOUT).await?;
    println!(
        "Applied {} change(s) to {}.",
        plan.changes.len(),
        kafka.topics.monitors
    );
    Ok(())
}

/// `vigil export [-o FILE]`.
pub(crate) async fn export(config: &Config, output: Option<&PathBuf>) -> anyhow::Result<()> {
    let kafka = kafka(config);
    let token = CancellationToken::new();
    let view = load_view(&kafka, &token).await;
    token.cancel();
    let yaml = plan::export_yaml(&view?.snapshot())?;
    match output {
        Some(path) => std::fs::write(path, yaml)
            .with_context(|| format!("failed to write {}", path.display()))?,
        None => print!("{yaml}"),
    }
    Ok(())
}

/// `vigil ingest`: runs until SIGINT/SIGTERM (a second signal exits at once).
pub(crate) async fn ingest(config: &Config, args: IngestArgs) -> anyhow::Result<()> {
    let mut ingest = config.ingest.clone();
    if let Some(region) = args.region {
        ingest.region = region;
    }
    if let Some(shard) = args.shard {
        ingest.runner.shard = shard;
    }
    if let Some(listen) = args.listen {
        ingest.api.enabled = true;
        ingest.api.listen = listen;
    }
    ingest.api.api_keys.extend(args.api_keys);
    if args.no_runner {
        ingest.runner.enabled = false;
    }
    let handle = crate::service::metrics();
    let render: vigil_ingest::api::RenderMetrics = Arc::new(move || handle.render());
    let kafka = kafka(config);
    vigil_ingest::ensure_topics(&kafka, config.kafka.replication_factor)
        .await
        .with_context(|| format!("failed to create topics on {}", kafka.brokers))?;
    let token = crate::service::shutdown_token();
    vigil_ingest::run(ingest, kafka, Some(render), token).await?;
    Ok(())
}
