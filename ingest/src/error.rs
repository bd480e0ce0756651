//! The crate's error type.

use rdkafka::error::KafkaError;

/// Errors raised by the ingest service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kafka client could not be created or a Kafka request failed.
    #[error("kafka request failed: {0}")]
    Kafka(#[from] KafkaError),
    /// An event could not be encoded or a schema helper failed.
    #[error(transparent)]
    Schema(#[from] vigil_schema::Error),
    /// JSON (de)serialization failed.
    #[error("invalid json: {0}")]
    Json(#[from] serde_json::Error),
    /// A monitors file could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A monitors file is invalid; one line per problem, each naming its field.
    #[error("{path} is invalid:\n{}", problems.join("\n"))]
    InvalidMonitors {
        /// The file.
        path: String,
        /// `monitors[3].interval: must be ≥ 1s, got 0s`, `alerts[0].for: …`, ….
        problems: Vec<String>,
    },
    /// A spec topic (monitors, rules) could not be read up to its end in time.
    #[error("timed out after {timeout:?} reading the {kind}s topic to its end")]
    NotLoaded {
        /// What the topic holds (`monitor`, `rule`).
        kind: &'static str,
        /// How long it was given.
        timeout: std::time::Duration,
    },
    /// Writing a spec or tombstone failed.
    #[error("failed to write {kind} {id} to {topic}: {reason}")]
    WriteSpec {
        /// What was written (`monitor`, `rule`).
        kind: &'static str,
        /// Its id.
        id: String,
        /// The topic.
        topic: String,
        /// What Kafka said.
        reason: String,
    },
    /// The ingestion API could not listen or serve.
    #[error("ingestion api failed: {0}")]
    Serve(#[source] std::io::Error),
    /// Invalid configuration.
    #[error("invalid ingest config: {field}: {reason}")]
    Config {
        /// The field (`runner.shard`).
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// YAML output failed.
    #[error("failed to write yaml: {0}")]
    Yaml(#[from] serde_norway::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
