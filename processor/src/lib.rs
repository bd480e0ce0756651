//! Vigil's processor: consumes probe results, assigns them to event-time windows per
//! (monitor, region), computes percentiles from mergeable sketches, availability, status mix and
//! anomaly scores, and writes window rows to ClickHouse exactly once in effect.
//!
//! # Layout
//! - [`config`]: window length, lateness, correction horizon, batching, memory cap.
//! - [`window`]: tumbling window assignment, the per-window aggregate, and
//!   [`window::watermark`].
//! - [`pipeline`]: the pure core (decode → window → sketch → emit, per partition), with
//!   commit-offset and eviction rules.
//! - [`row`]: ClickHouse rows; [`sink`]: inserts, hourly rollups, detector history.
//! - [`consumer`]: the live Kafka loop with batched writes and offset commits.
//! - [`replay`]: recomputing windows from the topic.
//! - [`anomaly`]: the streaming anomaly detector scored on the Numenta Anomaly Benchmark, and
//!   [`anomaly::series`] for feeding it `timestamp,value` CSV.
//! - [`alert`]: alert-rule evaluation (pure, event time): rules → transitions.
//! - [`backtest`]: alert rules run over the retained probes topic, nothing written.
//! - [`catalog`]: the alert rules and monitor tags, followed from their compacted topics.
//! - [`changelog`]: the alert evaluator's state changelog topic (restore and partitioning).
//! - [`health`]: write-stall reporting for readiness probes.
//! - [`error`]: the crate's error type.

pub mod alert;
pub mod anomaly;
pub mod backtest;
pub mod catalog;
pub mod changelog;
pub mod config;
pub mod consumer;
pub mod error;
pub mod health;
pub mod pipeline;
pub mod replay;
pub mod row;
pub mod sink;
pub mod window;

pub use config::Config;
pub use consumer::{Settings, run};
pub use error::{Error, Result};
pub use health::Health;
pub use pipeline::{Disposition, EmittedWindow, Output, Pipeline};
pub use replay::{ReplayProgress, ReplayRequest, replay};
