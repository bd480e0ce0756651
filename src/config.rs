//! Configuration: defaults < file (TOML or YAML) < environment < command-line flags.
//!
//! Environment variables and flags are the same clap arguments (`--kafka-brokers` /
//! `VIGIL_KAFKA_BROKERS`), so the precedence between them is clap's: a flag beats its variable.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::Cli;

/// Errors loading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("failed to read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("config file {path} must end in .toml, .yaml or .yml")]
    Extension { path: String },
    #[error("invalid config: {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// Vigil's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub(crate) struct Config {
    /// Kafka connection and topics.
    pub(crate) kafka: KafkaConfig,
    /// ClickHouse connection.
    pub(crate) clickhouse: ClickHouseConfig,
    /// Logging.
    pub(crate) log: LogConfig,
    /// Processor: windows, lateness, batching (`vigil process`, `vigil replay`).
    pub(crate) processor: vigil_processor::Config,
    /// The ingest service: probe runner, checker, producer, ingestion API (`vigil ingest`).
    #[serde(default)]
    pub(crate) ingest: vigil_ingest::Config,
    /// The query API: listener, CORS, API keys, GraphQL limits (`vigil serve`).
    #[serde(default)]
    pub(crate) query: vigil_query::Config,
    /// The notification stage: links, send timeout, retries (`vigil notify`).
    #[serde(default)]
    pub(crate) notify: vigil_notify::Config,
    /// How long each topic and table keeps data (applied by `vigil migrate`).
    #[serde(default)]
    pub(crate) retention: vigil_schema::Retention,
    /// The secret store's key-encryption keys (named secrets are sealed with them).
    #[serde(default)]
    pub(crate) secrets: vigil_notify::VaultConfig,
}

/// Kafka connection and topics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub(crate) struct KafkaConfig {
    /// Bootstrap servers, `host:port` separated by commas.
    pub(crate) brokers: String,
    /// Topic names are `{topic-prefix}.probes`, `{topic-prefix}.monitors`, ….
    pub(crate) topic_prefix: String,
    /// Replication factor of topics Vigil creates.
    pub(crate) replication_factor: i32,
    /// Timeout of admin and metadata requests.
    #[serde(with = "humantime_serde")]
    pub(crate) request_timeout: Duration,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "vigil".into(),
            replication_factor: 1,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// ClickHouse connection (HTTP interface). `Debug` leaves the password out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub(crate) struct ClickHouseConfig {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    pub(crate) url: String,
    /// User name.
    pub(crate) user: String,
    /// Password.
    pub(crate) password: String,
    /// Database holding Vigil's tables (created by `vigil migrate`).
    pub(crate) database: String,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &vigil_query::config::REDACTED)
            .field("database", &self.database)
            .finish()
    }
}

impl Config {
    /// The configuration with every secret replaced (`vigil config`): the ClickHouse
    /// password, API keys of both APIs.
    pub(crate) fn redacted(&self) -> Self {
        let hide = |s: &mut String| {
            if !s.is_empty() {
                *s = vigil_query::config::REDACTED.to_owned();
            }
        };
        let mut c = self.clone();
        hide(&mut c.clickhouse.password);
        for key in &mut c.query.auth.keys {
            hide(&mut key.key);
        }
        for key in &mut c.ingest.api.api_keys {
            hide(key);
        }
        c
    }
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            user: "default".into(),
            password: String::new(),
            database: "vigil".into(),
        }
    }
}

impl ClickHouseConfig {
    /// A client for the server, without a default database.
    pub(crate) fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_password(&self.password)
    }
}

/// Logging.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub(crate) struct LogConfig {
    /// `text` for people, `json` for log pipelines. The filter comes from `RUST_LOG`.
    pub(crate) format: LogFormat,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Merges defaults, the file named by `--config` (if any) and the flag/env overrides, then
    /// validates the result.
    pub(crate) fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let mut config = match &cli.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        let overrides = [
            (&cli.kafka_brokers, &mut config.kafka.brokers),
            (&cli.topic_prefix, &mut config.kafka.topic_prefix),
            (&cli.clickhouse_url, &mut config.clickhouse.url),
            (&cli.clickhouse_user, &mut config.clickhouse.user),
            (&cli.clickhouse_password, &mut config.clickhouse.password),
            (&cli.clickhouse_database, &mut config.clickhouse.database),
        ];
        for (value, slot) in overrides {
            if let Some(value) = value {
                value.clone_into(slot);
            }
        }
        if let Some(format) = cli.log_format {
            config.log.format = format;
        }
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let parse_error = |reason: String| ConfigError::Parse {
            path: shown.clone(),
            reason,
        };
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => toml::from_str(&text).map_err(|e| parse_error(e.to_string())),
            Some("yaml" | "yml") => {
                serde_norway::from_str(&text).map_err(|e| parse_error(e.to_string()))
            }
            _ => Err(ConfigError::Extension { path: shown }),
        }
    }

    /// Rejects values no service could run with.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.into(),
            })
        };
        if self.kafka.brokers.trim().is_empty() {
            return invalid("kafka.brokers", "must name at least one broker");
        }
        if self.kafka.topic_prefix.is_empty()
            || !self
                .kafka
                .topic_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return invalid(
                "kafka.topic-prefix",
                "must be non-empty and use only a-z, 0-9, '.', '_', '-'",
            );
        }
        if self.kafka.replication_factor < 1 {
            return invalid("kafka.replication-factor", "must be at least 1");
        }
        if !(self.clickhouse.url.starts_with("http://")
            || self.clickhouse.url.starts_with("https://"))
        {
            return invalid("clickhouse.url", "must start with http:// or https://");
        }
        let db = &self.clickhouse.database;
        if db.is_empty() || !db.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return invalid(
                "clickhouse.database",
                "must be non-empty and use only a-z, 0-9, '_'",
            );
        }
        if let Err(e) = self.processor.validate() {
            return invalid("processor", &e.to_string());
        }
        self.validate_retention()
    }

    /// The retention, and how it fits what the services read back.
    fn validate_retention(&self) -> Result<(), ConfigError> {
        let r = &self.retention;
        if let Err((field, reason)) = r.validate() {
            return Err(ConfigError::Invalid { field, reason });
        }
        let days = |d: std::time::Duration| humantime::format_duration(d).to_string();
        let checks = [
            (
                // A restarted processor re-reads the windows it has not finished.
                r.probes_topic < self.processor.correction_horizon,
                "retention.probes-topic",
                format!(
                    "must be at least processor.correction-horizon ({})",
                    days(self.processor.correction_horizon)
                ),
            ),
            (
                // A correction of a window no longer in memory is recomputed from its probes.
                self.processor.store_probes && r.probes_table < self.processor.correction_horizon,
                "retention.probes-table",
                format!(
                    "must be at least processor.correction-horizon ({}): corrections of closed \
                     windows are recomputed from the stored probes",
                    days(self.processor.correction_horizon)
                ),
            ),
            (
                r.windows_1m < self.processor.anomaly_history,
                "retention.windows-1m",
                format!(
                    "must be at least processor.anomaly-history ({}), which the detectors are \
                     seeded from",
                    days(self.processor.anomaly_history)
                ),
            ),
            (
                r.windows_1m < self.query.limits.max_range_1m,
                "retention.windows-1m",
                format!(
                    "must be at least query.limits.max-range-1m ({}), the range the API serves \
                     from it",
                    days(self.query.limits.max_range_1m)
                ),
            ),
            (
                r.windows_1h < self.query.limits.max_range_1h,
                "retention.windows-1h",
                format!(
                    "must be at least query.limits.max-range-1h ({}), the range the API serves \
                     from it",
                    days(self.query.limits.max_range_1h)
                ),
            ),
        ];
        for (bad, field, reason) in checks {
            if bad {
                return Err(ConfigError::Invalid { field, reason });
            }
        }
        Ok(())
    }

    /// Topic names derived from the prefix.
    pub(crate) fn topics(&self) -> vigil_schema::TopicNames {
        vigil_schema::TopicNames::with_prefix(&self.kafka.topic_prefix)
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    #[test]
    fn config_output_and_debug_hide_every_secret() {
        let mut config = Config::default();
        config.clickhouse.password = "ch-password-9f2".into();
        config.ingest.api.api_keys = vec!["ingest-key-7c1d0a".into()];
        config.query.auth.keys = vec![vigil_query::config::ApiKeyConfig {
            name: "ops".into(),
            key: "query-key-55aa0123".into(),
            role: vigil_query::auth::Role::Admin,
            expires: None,
        }];
        let shown = [
            toml::to_string_pretty(&config.redacted()).unwrap(),
            format!("{config:?}"),
            format!("{:?}", crate::serve_cmd::query_config(&config, None)),
        ];
        for text in shown {
            for secret in ["ch-password-9f2", "ingest-key-7c1d0a", "query-key-55aa0123"] {
                assert!(!text.contains(secret), "{secret} shown in {text}");
            }
            assert!(text.contains("redacted"), "{text}");
        }
        assert_eq!(config.redacted().query.auth.keys[0].name, "ops");
    }

    /// Parses flags as `main` does, but without the `VIGIL_*` environment of whoever runs the
    /// tests.
    fn load(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["vigil"];
        argv.extend_from_slice(args);
        argv.push("config");
        let command = Cli::command().mut_args(|arg| arg.env(None));
        let cli = Cli::from_arg_matches(&command.try_get_matches_from(argv).unwrap()).unwrap();
        Config::load(&cli)
    }

    #[test]
    fn file_then_flags() {
        let dir = std::env::temp_dir().join(format!("vigil-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("vigil.yaml");
        std::fs::write(
            &yaml,
            "kafka:\n  brokers: k1:9092\n  request-timeout: 3s\nlog:\n  format: json\n",
        )
        .unwrap();
        let config = load(&[
            "--config",
            yaml.to_str().unwrap(),
            "--clickhouse-database",
            "x",
        ])
        .unwrap();
        assert_eq!(config.kafka.brokers, "k1:9092");
        assert_eq!(config.kafka.request_timeout, Duration::from_secs(3));
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.clickhouse.database, "x");
        assert_eq!(config.clickhouse.url, "http://127.0.0.1:8123");

        let toml_path = dir.join("vigil.toml");
        std::fs::write(&toml_path, "[kafka]\nbrokers = \"k2:9092\"\n").unwrap();
        let config = load(&[
            "--config",
            toml_path.to_str().unwrap(),
            "--kafka-brokers",
            "k3:9092",
        ])
        .unwrap();
        assert_eq!(config.kafka.brokers, "k3:9092", "a flag beats the file");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = std::env::temp_dir().join(format!("vigil-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vigil.toml");
        std::fs::write(&path, "[kafka]\nbrokerz = \"k\"\n").unwrap();
        let err = load(&["--config", path.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `brokerz`"), "{err}");

        let err = load(&["--clickhouse-database", "my-db"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid config: clickhouse.database: must be non-empty and use only a-z, 0-9, '_'"
        );

        // Corrections are recomputed from the stored probes: they must outlive the horizon.
        std::fs::write(
            &path,
            "[processor]\ncorrection-horizon = \"3h\"\n[retention]\nprobes-table = \"2h\"\n",
        )
        .unwrap();
        let err = load(&["--config", path.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("retention.probes-table: must be at least processor.correction-horizon"),
            "{err}"
        );
        std::fs::write(
            &path,
            "[processor]\ncorrection-horizon = \"3h\"\nstore-probes = false\n\
             [retention]\nprobes-table = \"2h\"\n",
        )
        .unwrap();
        load(&["--config", path.to_str().unwrap()]).unwrap();
    }

    #[test]
    fn effective_config_round_trips_through_toml() {
        let config = Config::default();
        let text = toml::to_string_pretty(&config).unwrap();
        assert_eq!(toml::from_str::<Config>(&text).unwrap(), config);
    }
}
