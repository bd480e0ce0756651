//! Kafka topic names and their defaults.
//!
//! Every topic Vigil uses is listed in [`TopicNames::specs`]; services create the missing ones
//! at start-up (see [`crate::kafka`]), since not every broker auto-creates topics.

/// Monitor specs, compacted: key = monitor id, tombstone = deleted.
pub const MONITORS: &str = "vigil.monitors";
/// Probe results, the source of truth: key = monitor id.
pub const PROBES: &str = "vigil.probes";
/// Window summaries for live subscribers: key = monitor id.
pub const WINDOWS: &str = "vigil.windows";
/// Alert transitions: key = rule id.
pub const ALERTS: &str = "vigil.alerts";
/// Alert rules, compacted: key = rule id, tombstone = deleted.
pub const RULES: &str = "vigil.rules";
/// Changelog of the alert evaluator's state, compacted: key = rule id + series, value = the
/// state and the input offsets it reflects.
pub const ALERT_STATE: &str = "vigil.alert-state";
/// Notification channels, compacted: key = channel id, tombstone = deleted.
pub const CHANNELS: &str = "vigil.channels";
/// Silences and maintenance windows, compacted: key = id, tombstone = deleted.
pub const SILENCES: &str = "vigil.silences";
/// Every notification attempt: key = channel id.
pub const DELIVERIES: &str = "vigil.deliveries";
/// Changelog of the notification stage's state (groups, timers, what was notified where),
/// compacted. One partition: groups span rules, so one notifier owns them all.
pub const NOTIFY_STATE: &str = "vigil.notify-state";
/// The routing tree of the notification stage, compacted: one record under [`ROUTES_KEY`]
/// holding the root [`RouteSpec`](crate::RouteSpec); a tombstone removes the tree.
pub const ROUTES: &str = "vigil.routes";
/// The key of the routing tree's one record on [`ROUTES`].
pub const ROUTES_KEY: &str = "root";
/// Commands to the notification stage ([`NotifyCommand`](crate::NotifyCommand):
/// acknowledgements, redeliveries), retained 7 days: key = the alert key or the idempotency key.
/// One partition: the one notifier applies them in order.
pub const NOTIFY_COMMANDS: &str = "vigil.notify-commands";
/// Every write through the query API ([`AuditEvent`](crate::AuditEvent)), retained 400 days:
/// key = the resource id. Also in the `audit` table.
pub const AUDIT: &str = "vigil.audit";
/// Named secrets, sealed ([`SealedSecret`](crate::vault::SealedSecret)), compacted: key = the
/// secret's name, tombstone = deleted.
pub const SECRETS: &str = "vigil.secrets";
/// API keys created through the API or CLI ([`ApiKeyRecord`](crate::ApiKeyRecord)), compacted:
/// key = the key's public id.
pub const API_KEYS: &str = "vigil.api-keys";
/// When each service last saw each created API key used
/// ([`ApiKeyUsage`](crate::ApiKeyUsage)), compacted: key = `<key id>/<reporter>`.
pub const API_KEY_USAGE: &str = "vigil.api-key-usage";
/// Where each processor group stands on each probes partition, compacted: key =
/// `<group>/<partition>`, value = the committed offset with the partition's watermark and read
/// position at that commit (written before the offset is committed), so a restart resumes
/// exactly there on brokers that do not keep commit metadata.
pub const PROCESSOR_POSITIONS: &str = "vigil.processor-positions";
/// Public status pages ([`StatusPageSpec`](crate::StatusPageSpec)), compacted: key = the page's
/// id, tombstone = deleted.
pub const STATUS_PAGES: &str = "vigil.status-pages";
/// Undecodable or unprocessable events: the raw bytes plus a `vigil-reason` header.
pub const DEADLETTER: &str = "vigil.deadletter";

/// Header carrying the reason an event was dead-lettered.
pub const REASON_HEADER: &str = "vigil-reason";
/// Header carrying the topic an event was dead-lettered from.
pub const SOURCE_TOPIC_HEADER: &str = "vigil-source-topic";

/// The names of Vigil's topics. Defaults to the `vigil.` names above; tests and multi-tenant
/// installs use [`TopicNames::with_prefix`] so that several sets share one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicNames {
    /// See [`MONITORS`].
    pub monitors: String,
    /// See [`PROBES`].
    pub probes: String,
    /// See [`WINDOWS`].
    pub windows: String,
    /// See [`ALERTS`].
    pub alerts: String,
    /// See [`DEADLETTER`].
    pub deadletter: String,
    /// See [`RULES`].
    pub rules: String,
    /// See [`ALERT_STATE`].
    pub alert_state: String,
    /// See [`CHANNELS`].
    pub channels: String,
    /// See [`SILENCES`].
    pub silences: String,
    /// See [`DELIVERIES`].
    pub deliveries: String,
    /// See [`NOTIFY_STATE`].
    pub notify_state: String,
    /// See [`ROUTES`].
    pub routes: String,
    /// See [`NOTIFY_COMMANDS`].
    pub notify_commands: String,
    /// See [`AUDIT`].
    pub audit: String,
    /// See [`SECRETS`].
    pub secrets: String,
    /// See [`API_KEYS`].
    pub api_keys: String,
    /// See [`API_KEY_USAGE`].
    pub api_key_usage: String,
    /// See [`PROCESSOR_POSITIONS`].
    pub processor_positions: String,
    /// See [`STATUS_PAGES`].
    pub status_pages: String,
}

impl Default for TopicNames {
    fn default() -> Self {
        Self::with_prefix("vigil")
    }
}

impl TopicNames {
    /// Names `{prefix}.monitors`, `{prefix}.probes`, ….
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            monitors: format!("{prefix}.monitors"),
            probes: format!("{prefix}.probes"),
            windows: format!("{prefix}.windows"),
            alerts: format!("{prefix}.alerts"),
            deadletter: format!("{prefix}.deadletter"),
            rules: format!("{prefix}.rules"),
            alert_state: format!("{prefix}.alert-state"),
            channels: format!("{prefix}.channels"),
            silences: format!("{prefix}.silences"),
            deliveries: format!("{prefix}.deliveries"),
            notify_state: format!("{prefix}.notify-state"),
            routes: format!("{prefix}.routes"),
            notify_commands: format!("{prefix}.notify-commands"),
            audit: format!("{prefix}.audit"),
            secrets: format!("{prefix}.secrets"),
            api_keys: format!("{prefix}.api-keys"),
            api_key_usage: format!("{prefix}.api-key-usage"),
            processor_positions: format!("{prefix}.processor-positions"),
            status_pages: format!("{prefix}.status-pages"),
        }
    }

    /// Every topic with its default layout and configuration.
    pub fn specs(&self) -> Vec<TopicSpec> {
        self.specs_with(&crate::Retention::default())
    }

    /// Every topic with its default layout, retained as `retention` says.
    pub fn specs_with(&self, retention: &crate::Retention) -> Vec<TopicSpec> {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        vec![
            TopicSpec {
                name: self.monitors.clone(),
                partitions: 1,
                configs: vec![
                    ("cleanup.policy", "compact".into()),
                    ("min.compaction.lag.ms", "0".into()),
                ],
            },
            TopicSpec::retained(&self.probes, 12, ms(retention.probes_topic)),
            TopicSpec::retained(&self.windows, 6, ms(retention.windows_topic)),
            TopicSpec::retained(&self.alerts, 3, ms(retention.alerts_topic)),
            TopicSpec::retained(&self.deadletter, 3, ms(retention.deadletter_topic)),
            TopicSpec::compacted(&self.rules, 1),
            TopicSpec::compacted(&self.alert_state, 12),
            TopicSpec::compacted(&self.channels, 1),
            TopicSpec::compacted(&self.silences, 1),
            TopicSpec::retained(&self.deliveries, 3, ms(retention.deliveries_topic)),
            TopicSpec::compacted(&self.notify_state, 1),
            TopicSpec::compacted(&self.routes, 1),
            TopicSpec::retained(
                &self.notify_commands,
                1,
                ms(retention.notify_commands_topic),
            ),
            TopicSpec::retained(&self.audit, 1, ms(retention.audit_topic)),
            TopicSpec::compacted(&self.secrets, 1),
            TopicSpec::compacted(&self.api_keys, 1),
            TopicSpec::compacted(&self.api_key_usage, 1),
            TopicSpec::compacted(&self.processor_positions, 1),
            TopicSpec::compacted(&self.status_pages, 1),
        ]
    }
}

/// How a topic is created when missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Number of partitions; the unit of parallelism of consumers.
    pub partitions: i32,
    /// Topic-level configuration (`retention.ms`, `cleanup.policy`, …).
    pub configs: Vec<(&'static str, String)>,
}

impl TopicSpec {
    fn compacted(name: &str, partitions: i32) -> Self {
        Self {
            name: name.to_owned(),
            partitions,
            configs: vec![
                ("cleanup.policy", "compact".into()),
                ("min.compaction.lag.ms", "0".into()),
            ],
        }
    }

    fn retained(name: &str, partitions: i32, retention_ms: i64) -> Self {
        Self {
            name: name.to_owned(),
            partitions,
            configs: vec![
                ("cleanup.policy", "delete".into()),
                ("retention.ms", retention_ms.to_string()),
            ],
        }
    }

    /// The same topic with another partition count (at least 1).
    pub fn with_partitions(mut self, partitions: i32) -> Self {
        self.partitions = partitions.max(1);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_match_constants() {
        let names = TopicNames::default();
        let specs = names.specs();
        let got: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            got,
            [
                MONITORS,
                PROBES,
                WINDOWS,
                ALERTS,
                DEADLETTER,
                RULES,
                ALERT_STATE,
                CHANNELS,
                SILENCES,
                DELIVERIES,
                NOTIFY_STATE,
                ROUTES,
                NOTIFY_COMMANDS,
                AUDIT,
                SECRETS,
                API_KEYS,
                API_KEY_USAGE,
                PROCESSOR_POSITIONS,
                STATUS_PAGES,
            ]
        );
        for compacted in [7, 8, 10, 11] {
            assert!(
                specs[compacted]
                    .configs
                    .contains(&("cleanup.policy", "compact".to_owned())),
                "{}",
                specs[compacted].name
            );
        }
        assert!(
            specs[9]
                .configs
                .contains(&("retention.ms", "2592000000".to_owned()))
        );
        assert_eq!(
            TopicNames::with_prefix("t1").notify_state,
            "t1.notify-state"
        );
        assert_eq!(TopicNames::with_prefix("t1").routes, "t1.routes");
        assert_eq!(
            TopicNames::with_prefix("t1").notify_commands,
            "t1.notify-commands"
        );
        assert_eq!(specs[12].partitions, 1);
        assert!(
            specs[12]
                .configs
                .contains(&("retention.ms", "604800000".to_owned()))
        );
        assert!(
            specs[0]
                .configs
                .contains(&("cleanup.policy", "compact".to_owned()))
        );
        assert!(
            specs[1]
                .configs
                .contains(&("retention.ms", "604800000".to_owned()))
        );
    }
}
