//! `vigil serve`: the query API (REST under `/api/v1`, GraphQL with subscriptions, `/docs`,
//! `/metrics`, `/healthz`, `/readyz`) on one listener.

use std::net::SocketAddr;

use anyhow::Context;

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
    if let Some(listen) = listen {
        query.http.listen = listen;
    }
    query
}

/// Serves the query API until SIGINT/SIGTERM.
pub(crate) async fn serve(config: &Config, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let query = query_config(config, listen);
    query.validate()?;
    let handle = metrics();
    let token = shutdown_token();
    vigil_query::run_with_metrics(query, Some(handle), token)
        .await
        .context("query service failed")
}
