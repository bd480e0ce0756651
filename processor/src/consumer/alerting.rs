//! The alerting side of the processing loop: follows the rules and monitor tags, and restores
//! the evaluator's state of a partition from its changelog before the partition's first record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::StreamConsumer;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{GroupContext, Settings};
use crate::alert::RuleSet;
use crate::catalog::{self, Catalog};
use crate::changelog;
use crate::pipeline::Pipeline;
use crate::{Error, Result};

/// The alerting side of the loop: follows the rules, restores evaluator state per partition.
pub(super) struct Alerting {
    catalog: tokio::sync::watch::Receiver<Arc<Catalog>>,
    brokers: String,
    changelog: String,
    pub(super) changelog_partitions: i32,
    default_rule: bool,
}

impl Alerting {
    /// Loads the rules (waiting until the rules and monitors topics were read).
    pub(super) async fn start(
        settings: &Settings,
        pipeline: &mut Pipeline,
        token: &CancellationToken,
    ) -> Result<Self> {
        let catalog = catalog::load(
            &settings.brokers,
            &settings.topics,
            Duration::from_secs(60),
            token.child_token(),
        )
        .await?;
        let changelog = settings.topics.alert_state.clone();
        let changelog_partitions = {
            let (brokers, topic) = (settings.brokers.clone(), changelog.clone());
            tokio::task::spawn_blocking(move || changelog::partitions(&brokers, &topic))
                .await
                .map_err(|e| Error::Config(format!("changelog metadata task failed: {e}")))??
        };
        let mut alerting = Self {
            catalog,
            brokers: settings.brokers.clone(),
            changelog,
            changelog_partitions,
            default_rule: settings.config.default_rule,
        };
        alerting.catalog.mark_changed();
        alerting.refresh_rules(pipeline);
        Ok(alerting)
    }

    /// Applies a changed catalog.
    pub(super) fn refresh_rules(&mut self, pipeline: &mut Pipeline) {
        if !self.catalog.has_changed().unwrap_or(false) {
            return;
        }
        let catalog = Arc::clone(&self.catalog.borrow_and_update());
        let rules = RuleSet::new(
            catalog.rules.values().cloned().collect(),
            catalog.tags.clone(),
            self.default_rule,
        );
        for (rule, reason) in rules.rejected() {
            warn!(rule, reason, "Alert rule rejected; it is not evaluated.");
        }
        info!(rules = rules.len(), "Alert rules loaded.");
        pipeline.set_rules(rules);
    }

    /// Reads the evaluator state of probes `partition` from its changelog partition (blocking
    /// reads on the blocking pool); apply it with [`Pipeline::restore_alert_partition`] before
    /// the partition's first record. Its offsets are asked on `consumer`, the processor's own
    /// connected client (see [`changelog::read_partition`]).
    pub(super) async fn read_state(
        &self,
        partition: i32,
        consumer: Arc<StreamConsumer<GroupContext>>,
    ) -> Result<BTreeMap<String, Vec<u8>>> {
        let started = Instant::now();
        let (brokers, topic) = (self.brokers.clone(), self.changelog.clone());
        let source = changelog::partition_for(partition, self.changelog_partitions);
        let records = tokio::task::spawn_blocking(move || {
            changelog::read_partition(&*consumer, &brokers, &topic, source)
        })
        .await
        .map_err(|e| Error::Config(format!("changelog restore task failed: {e}")))??;
        info!(partition, records = records.len(), elapsed = ?started.elapsed(), "Alert state read.");
        Ok(records)
    }
}
