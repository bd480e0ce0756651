//! `vigil migrate`: prepares ClickHouse (database, tables) and Kafka (topics).

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
    if skip_topics {
        return Ok(());
    }
    let kafka = &config.kafka;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .context("failed to create the Kafka admin client")?;
    let specs = config.topics().specs();
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
    Ok(())
}
