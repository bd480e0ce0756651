//! The crate's error type.

use crate::envelope::DecodeError;

/// Errors raised by the schema helpers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An event could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An event could not be encoded.
    #[error("failed to encode {kind}: {reason}")]
    Encode {
        /// The kind of event.
        kind: &'static str,
        /// What the encoder said.
        reason: String,
    },
    /// A Kafka admin operation failed.
    #[cfg(feature = "kafka")]
    #[error("kafka admin operation failed: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A topic could not be created.
    #[cfg(feature = "kafka")]
    #[error("failed to create topic {topic}: {reason}")]
    CreateTopic {
        /// The topic's name.
        topic: String,
        /// What the broker said.
        reason: String,
    },
    /// A ClickHouse request failed.
    #[cfg(feature = "clickhouse")]
    #[error("clickhouse request failed: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    /// A migration was changed after it had been applied.
    #[error(
        "migration {version} ({name}) was applied with checksum {applied} but the file now has \
         {current}; migrations are append-only, add a new one instead"
    )]
    MigrationChanged {
        /// The migration's number.
        version: u32,
        /// The migration's name.
        name: String,
        /// Checksum recorded when it was applied.
        applied: String,
        /// Checksum of the file now.
        current: String,
    },
    /// The database holds migrations this build does not know about.
    #[error(
        "database has migration {version} applied, newer than this build knows ({latest}); \
         upgrade vigil"
    )]
    MigrationFromTheFuture {
        /// The unknown migration's number.
        version: u32,
        /// The newest migration this build has.
        latest: u32,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
