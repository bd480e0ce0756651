//! The processor's error type.

/// Errors of the processor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Kafka consumer, producer or admin failure.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// ClickHouse rejected a request or could not be reached.
    #[error("clickhouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    /// Schema-level failure (encoding, migrations).
    #[error(transparent)]
    Schema(#[from] vigil_schema::Error),
    /// Invalid configuration.
    #[error("invalid processor config: {0}")]
    Config(String),
    /// A correction of a window no longer in memory could not be completed from the stored
    /// raw probes (retried, as any failed write).
    #[error("completing a corrected window: {0}")]
    Correction(String),
    /// A Kafka delivery was not acknowledged.
    #[error("failed to produce to {topic}: {reason}")]
    Produce {
        /// Topic written to.
        topic: String,
        /// What the broker or client said.
        reason: String,
    },
}

/// Result with the processor's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
