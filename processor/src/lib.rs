//! Vigil's processor: consumes probe results, assigns them to event-time windows per
//! (monitor, region), computes percentiles from mergeable sketches, availability, status mix and
//! anomaly scores, and writes window rows to ClickHouse exactly once in effect.
//!
//! # Layout
//! - [`anomaly`]: the streaming anomaly detector scored on the Numenta Anomaly Benchmark, and
//!   [`anomaly::series`] for feeding it `timestamp,value` CSV.

pub mod anomaly;
