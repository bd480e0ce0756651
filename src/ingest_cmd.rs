//! `vigil apply`, `vigil export` and `vigil ingest`: monitors, alert rules and the
//! notification configuration (channels, routes, silences, maintenance windows) and status
//! pages as code, and
//! the ingest service (probe runner plus ingestion API).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;
use vigil_ingest::plan::{self, FilePlan, MonitorsFile, NotifyCurrent};
use vigil_ingest::{KafkaConnection, Spec, SpecView};
use vigil_schema::{
    ChannelSpec, MaintenanceSpec, MonitorSpec, RouteSpec, RuleSpec, SilenceSpec, StatusPageSpec,
};

use crate::config::Config;

/// How long `apply` and `export` wait to read a spec topic and for acknowledgements.
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

/// Reads a spec topic (monitors, alert rules, …); a missing topic reads as empty.
pub(crate) async fn load_view<S: Spec>(
    kafka: &KafkaConnection,
    token: &CancellationToken,
) -> anyhow::Result<SpecView<S>> {
    match vigil_ingest::monitors::load_specs(kafka, TOOL_TIMEOUT, token.child_token()).await {
        Ok(view) => Ok(view),
        Err(vigil_ingest::Error::Kafka(KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ))) => Ok(SpecView::from_specs([])),
        Err(e) => Err(e).with_context(|| {
            format!(
                "failed to read {} from {} (is Kafka running? try `scripts/stack up`)",
                S::topic(&kafka.topics),
                kafka.brokers
            )
        }),
    }
}

/// The current specs of the topics `file` has sections for (an empty list for the others).
pub(crate) async fn current(
    kafka: &KafkaConnection,
    file: &MonitorsFile,
) -> anyhow::Result<(Vec<Arc<MonitorSpec>>, Vec<Arc<RuleSpec>>)> {
    let token = CancellationToken::new();
    let monitors = async {
        match file.monitors {
            Some(_) => load_view::<MonitorSpec>(kafka, &token)
                .await
                .map(|v| v.snapshot()),
            None => Ok(Vec::new()),
        }
    };
    let rules = async {
        match file.alerts {
            Some(_) => load_view::<RuleSpec>(kafka, &token)
                .await
                .map(|v| v.snapshot()),
            None => Ok(Vec::new()),
        }
    };
    let (monitors, rules) = tokio::join!(monitors, rules);
    token.cancel();
    Ok((monitors?, rules?))
}

/// `vigil apply -f FILE [--dry-run] [--prune]`: the file's monitors and alert rules, the
/// monitors held to the `[ingest]` egress policy.
pub(crate) async fn apply(
    config: &Config,
    file: &Path,
    dry_run: bool,
    prune: bool,
) -> anyhow::Result<()> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("failed to read {shown}"))?;
    let desired = plan::parse_file(&shown, &text)?;
    apply_file(config, &shown, &desired, dry_run, prune).await
}

/// Prints the plan of a validated monitors file (`shown` names it in errors) and, unless
/// `dry_run`, applies it; its monitors are held to the `[ingest]` egress policy first.
pub(crate) async fn apply_file(
    config: &Config,
    shown: &str,
    desired: &MonitorsFile,
    dry_run: bool,
    prune: bool,
) -> anyhow::Result<()> {
    plan::check_egress(shown, desired, &config.ingest.egress_policy())?;
    let kafka = kafka(config);
    let (monitors, rules) = current(&kafka, desired).await?;
    let notify = current_notify(&kafka, desired).await?;
    let plan = FilePlan::new(desired, &monitors, &rules, prune)
        .with_notify(shown, desired, &notify, prune)?;
    print!("{plan}");
    if dry_run || plan.is_empty() {
        return Ok(());
    }
    vigil_ingest::ensure_topics(&kafka, config.kafka.replication_factor).await?;
    plan.apply(&kafka, TOOL_TIMEOUT).await?;
    let targets: Vec<String> = plan
        .targets(&kafka)
        .into_iter()
        .map(|(topic, n)| format!("{n} change(s) to {topic}"))
        .collect();
    println!("Applied {}.", targets.join(" and "));
    Ok(())
}

/// The current notification configuration a plan of `file` needs: channels and the routing
/// tree when it has either section (receivers are checked against both), silences and
/// maintenance windows when it has either (they share one key space); empty otherwise.
pub(crate) async fn current_notify(
    kafka: &KafkaConnection,
    file: &MonitorsFile,
) -> anyhow::Result<NotifyCurrent> {
    async fn snapshot<S: Spec>(
        wanted: bool,
        kafka: &KafkaConnection,
        token: &CancellationToken,
    ) -> anyhow::Result<Vec<Arc<S>>> {
        if wanted {
            Ok(load_view::<S>(kafka, token).await?.snapshot())
        } else {
            Ok(Vec::new())
        }
    }
    let token = CancellationToken::new();
    let routing = file.channels.is_some() || file.routes.is_some();
    let suppressing = file.silences.is_some() || file.maintenance.is_some();
    let (channels, routes, silences, maintenance, status_pages) = tokio::join!(
        snapshot::<ChannelSpec>(routing, kafka, &token),
        snapshot::<RouteSpec>(routing, kafka, &token),
        snapshot::<SilenceSpec>(suppressing, kafka, &token),
        snapshot::<MaintenanceSpec>(suppressing, kafka, &token),
        snapshot::<StatusPageSpec>(file.status_pages.is_some(), kafka, &token),
    );
    token.cancel();
    Ok(NotifyCurrent {
        channels: channels?,
        routes: routes?.into_iter().next(),
        silences: silences?,
        maintenance: maintenance?,
        status_pages: status_pages?,
    })
}

/// `vigil export [-o FILE]`: every monitor, alert rule, channel, silence, maintenance window and
/// status page and the routing tree, as a monitors file (secrets as their `${secret:NAME}`
/// references).
pub(crate) async fn export(config: &Config, output: Option<&PathBuf>) -> anyhow::Result<()> {
    let kafka = kafka(config);
    let everything = MonitorsFile {
        monitors: Some(Vec::new()),
        alerts: Some(Vec::new()),
        channels: Some(Vec::new()),
        silences: Some(Vec::new()),
        status_pages: Some(Vec::new()),
        ..MonitorsFile::default()
    };
    let (monitors, rules) = current(&kafka, &everything).await?;
    let notify = current_notify(&kafka, &everything).await?;
    let yaml = plan::export_all(&monitors, &rules, &notify)?;
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
    ingest.secrets = config.secrets.clone();
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
