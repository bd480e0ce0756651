//! `vigil migrate`: prepares ClickHouse (database, tables and their TTLs) and Kafka (topics and
//! their retention), as `[retention]` says.

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;

use crate::config::Config;

/// Applies pending ClickHouse migrations and creates missing topics.
pub(crate) async fn run(config: &Config, skip_topics: bool) -> anyhow::Result<()> {
    let ch = &config.clickhouse;
    let report = vigil_schema::migration::migrate(&ch.client(), &ch.database)
        .await
        .with_context(|| {
            format!(
                "failed to migrate ClickHouse at {} (is it running? try `scripts/stack up`)",
                ch.url
            )
        })?;
    println!(
        "clickhouse {}/{}: applied {:?}, already applied {:?}",
        ch.url, ch.database, report.applied, report.already_applied
    );
    let ttls =
        vigil_schema::migration::apply_retention(&ch.client(), &ch.database, &config.retention)
            .await
            .context("failed to set the tables' retention")?;
    println!(
        "clickhouse {}/{}: retention set on {} tables",
        ch.url,
        ch.database,
        ttls.len()
    );
    if skip_topics {
        return Ok(());
    }
    let kafka = &config.kafka;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .context("failed to create the Kafka admin client")?;
    let specs = config.topics().specs_with(&config.retention);
    let created = vigil_schema::kafka::ensure_topics(
        &admin,
        &specs,
        kafka.request_timeout,
        kafka.replication_factor,
    )
    .await
    .with_context(|| {
        format!(
            "failed to create topics on {} (is it running? try `scripts/stack up`)",
            kafka.brokers
        )
    })?;
    println!("kafka {}: created {created:?}", kafka.brokers);
    // Topics created above already have it; a broker that cannot alter configurations keeps
    // older topics' retention, which is said rather than fatal.
    match vigil_schema::kafka::apply_retention(&admin, &specs, kafka.request_timeout).await {
        Ok(set) => println!(
            "kafka {}: retention set on {} topics",
            kafka.brokers,
            set.len()
        ),
        Err(e) => {
            tracing::warn!(error = %e, "Could not set the retention of existing topics.");
            eprintln!(
                "warning: kafka {}: could not set the retention of existing topics ({e}); \
                 new topics have it",
                kafka.brokers
            );
        }
    }
    Ok(())
}
