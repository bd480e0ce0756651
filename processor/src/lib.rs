//! Vigil's processor: consumes probe results, assigns them to event-time windows per
//! (monitor, region), computes percentiles from mergeable sketches, availability, status mix and
//! anomaly scores, and writes window rows to ClickHouse exactly once in effect. It also
//! evaluates the alert rules as windows close and writes their transitions.
//!
//! # Why alert rules are evaluated here
//! Rules are evaluated inside the processor, on each window's first emission, rather than by a
//! separate stage consuming `vigil.windows` and `vigil.probes`:
//! - **Event time for free.** The processor already owns the per-partition watermark, so a rule
//!   sees a window exactly when it closes, with all of its checks in event-time order; a stage
//!   joining two topics would need its own watermarks and could not order the two streams
//!   deterministically.
//! - **One partitioning.** Probes are keyed by monitor, so every region of a monitor lands in
//!   one partition: regional quorum needs no shuffle, and a rebalance moves a monitor's windows
//!   and its alert state together (state changelog partition = probes partition).
//! - **Anomaly scores** exist only here, at the moment the window closes.
//! - **Cost.** Evaluation reuses the merged window instead of re-windowing the probes (see the
//!   `alerts` bench for its share of the pipeline's time).
//!
//! Within the processor, the evaluator runs on a thread of its own ([`alert`]'s `stage.rs`),
//! fed the closed windows and watermarks in order through a channel: the per-record path
//! only copies what a window's evaluation reads, and evaluating a burst of windows closing
//! together overlaps with reading the next records. Taking an output waits for the evaluation
//! of every window it covers, so offsets are committed only after their transitions and state.
//!
//! The services still share only topics and tables: rules and monitor tags come from their
//! compacted topics ([`catalog`]), transitions go to `vigil.alerts` and the `alerts` table,
//! and the evaluator's state goes to the `vigil.alert-state` changelog ([`changelog`]). The
//! evaluation core ([`alert`]) is pure, so [`backtest`] runs the very same code over the topic.
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
//! - [`monitors_table`]: the monitors topic materialized into the `monitors` table.
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
pub mod monitors_table;
pub mod pipeline;
pub mod replay;
pub mod row;
pub mod sink;
pub mod window;

pub use config::Config;
pub use consumer::{Settings, run};
pub use error::{Error, Result};
pub use health::Health;
pub use pipeline::{CommitPoint, Disposition, EmittedWindow, Output, Pipeline};
pub use replay::{ReplayProgress, ReplayRequest, replay};
