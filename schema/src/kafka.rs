//! Creating Vigil's topics through the Kafka admin API.
//!
//! Brokers differ in whether they auto-create topics (tansu and many managed clusters do not),
//! and auto-created topics get the broker's defaults rather than compaction for monitors. Every
//! service therefore calls [`ensure_topics`] at start-up.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::{Error, Result, TopicSpec};

/// Creates every topic in `specs` that the cluster does not have yet. Existing topics are left
/// as they are (partition counts are never changed behind an operator's back). Returns the names
/// of the topics it created. `replication_factor` applies to the topics it creates. Safe to call concurrently: losing a creation race is success.
pub async fn ensure_topics<C: ClientContext>(
    admin: &AdminClient<C>,
    specs: &[TopicSpec],
    timeout: Duration,
    replication_factor: i32,
) -> Result<Vec<String>> {
    let metadata = admin.inner().fetch_metadata(None, timeout)?;
    let existing: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
    let missing: Vec<&TopicSpec> = specs
        .iter()
        .filter(|s| !existing.contains(&s.name.as_str()))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }

    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|spec| {
            spec.configs.iter().fold(
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(replication_factor),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let results = admin.create_topics(&new_topics, &options).await?;

    let mut created = Vec::new();
    for result in results {
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, "Created topic.");
                created.push(name);
            }
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "Topic was created concurrently.");
            }
            Err((topic, code)) => {
                return Err(Error::CreateTopic {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(created)
}

/// Sets the configuration of every existing topic of `specs` whose time-based retention
/// (`retention.ms`) differs from the spec's, so a changed retention applies to topics created
/// before. Compacted topics are left alone. Returns the names of the topics it set.
pub async fn apply_retention<C: ClientContext>(
    admin: &AdminClient<C>,
    specs: &[TopicSpec],
    timeout: Duration,
) -> Result<Vec<String>> {
    use rdkafka::admin::{AlterConfig, ResourceSpecifier};
    let metadata = admin.inner().fetch_metadata(None, timeout)?;
    let existing: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
    let retained: Vec<&TopicSpec> = specs
        .iter()
        .filter(|s| existing.contains(&s.name.as_str()))
        .filter(|s| s.configs.iter().any(|(k, _)| *k == "retention.ms"))
        .collect();
    // Only those whose retention differs (as far as the broker describes them).
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let resources: Vec<ResourceSpecifier<'_>> = retained
        .iter()
        .map(|s| ResourceSpecifier::Topic(&s.name))
        .collect();
    let described = admin.describe_configs(&resources, &options).await?;
    let differs = |spec: &TopicSpec, i: usize| {
        let want = spec
            .configs
            .iter()
            .find(|(k, _)| *k == "retention.ms")
            .map(|(_, v)| v);
        let has = described
            .get(i)
            .and_then(|r| r.as_ref().ok())
            .and_then(|r| r.get("retention.ms"))
            .and_then(|e| e.value.as_ref());
        has != want
    };
    let configs: Vec<AlterConfig<'_>> = retained
        .iter()
        .enumerate()
        .filter(|(i, s)| differs(s, *i))
        .map(|(_, s)| *s)
        // The whole set: the legacy call resets what it does not name.
        .map(|s| {
            s.configs.iter().fold(
                AlterConfig::new(ResourceSpecifier::Topic(&s.name)),
                |c, (k, v)| c.set(k, v),
            )
        })
        .collect();
    if configs.is_empty() {
        return Ok(Vec::new());
    }
    let mut set = Vec::new();
    for result in admin.alter_configs(&configs, &options).await? {
        match result {
            Ok(rdkafka::admin::OwnedResourceSpecifier::Topic(name)) => set.push(name),
            Ok(_) => {}
            Err((resource, code)) => {
                return Err(Error::CreateTopic {
                    topic: format!("{resource:?}"),
                    reason: format!("cannot set its retention: {code}"),
                });
            }
        }
    }
    Ok(set)
}

/// Reports the key uses this process saw to `topic` every `every`, and once more when `token`
/// is cancelled. A failed report is retried with the next one.
pub async fn report_usage(
    usage: std::sync::Arc<crate::UsageRecorder>,
    producer: rdkafka::producer::FutureProducer,
    topic: String,
    every: std::time::Duration,
    token: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            () = token.cancelled() => true,
            _ = tick.tick() => false,
        };
        for record in usage.changed() {
            let Ok(bytes) = crate::encode(&record) else {
                continue;
            };
            let sent = producer
                .send(
                    rdkafka::producer::FutureRecord::<str, [u8]>::to(&topic)
                        .key(&record.id)
                        .payload(&bytes),
                    rdkafka::util::Timeout::After(std::time::Duration::from_secs(5)),
                )
                .await;
            if let Err((e, _)) = sent {
                tracing::warn!(error = %e, key = %record.key_id, "Key usage not reported; retrying later.");
                usage.unreported(&record);
            }
        }
        if last {
            return;
        }
    }
}
