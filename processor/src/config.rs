//! Processor configuration: windows, lateness, batching, memory cap.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the processor windows, corrects and writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Kafka consumer group shared by every processor instance.
    pub group_id: String,
    /// Static group membership (`group.instance.id`): a restarted processor with the same id
    /// takes over its previous assignment at once instead of waiting for its old session to
    /// expire. Give each instance a stable, unique id (e.g. the pod name); empty: dynamic.
    pub instance_id: String,
    /// Static partition assignment `i/n`: this instance owns the probes partitions `p` with
    /// `p % n == i` and does not join the group protocol (offsets are still committed under the
    /// group id). Empty (the default): partitions are shared dynamically through the consumer
    /// group. Static shards suit fixed deployments (one per StatefulSet ordinal) and brokers
    /// whose group coordinator does not expire crashed members.
    pub shard: String,
    /// Longest pause between polls before the group coordinator considers this instance gone
    /// and gives its partitions to others (also how long a rebalance waits for members).
    #[serde(with = "humantime_serde")]
    pub max_poll_interval: Duration,
    /// Tumbling window length (10s … 1h).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How far behind the newest event time the watermark trails: events up to this late
    /// still land in their window before it is emitted.
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// A partition without events for this long advances its watermark with the wall clock,
    /// so idle monitors do not hold windows open.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Events later than their window's close, but within this horizon, produce a corrected
    /// version of the window row; later ones go to the dead-letter topic. With raw probes
    /// stored (the default) a closed window leaves memory once written, and a correction is
    /// recomputed from the window's stored probes; without them windows stay in memory (and
    /// uncommitted in Kafka) for this long after they end.
    #[serde(with = "humantime_serde")]
    pub correction_horizon: Duration,
    /// Write to ClickHouse when this many window rows or raw probes are pending.
    pub batch_rows: usize,
    /// Write to ClickHouse at least this often.
    #[serde(with = "humantime_serde")]
    pub batch_interval: Duration,
    /// Most bytes of window state (open windows and those kept for corrections, as
    /// `vigil_processor_window_bytes` accounts them) held in memory; above it consumption
    /// pauses until windows are evicted. `vigil_processor_state_bytes` adds the anomaly
    /// detectors and the alert evaluator's series to it.
    pub max_state_bytes: u64,
    /// Most windows held in memory, a second cap beside the bytes (0: none).
    pub max_windows: usize,
    /// Most bytes of probe records fetched ahead of processing (the Kafka consumer's local
    /// queue, `queued.max.messages.kbytes`), at least 1 MiB.
    pub fetch_buffer_bytes: u64,
    /// Most bytes of records waiting for the brokers' acknowledgement in the processor's
    /// producer (dead letters, window summaries, alert transitions and state;
    /// `queue.buffering.max.kbytes`), at least 1 MiB. A full queue makes a write wait.
    pub produce_buffer_bytes: u64,
    /// On shutdown, how long to keep trying to write closed windows before exiting without
    /// committing them (a restart then rewrites them).
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Relative accuracy of the percentile sketches.
    pub sketch_alpha: f64,
    /// Also insert every raw probe result into the `probes` table. Corrections of closed
    /// windows are recomputed from them, so turning this off keeps every window in memory
    /// for the whole correction horizon ([`Config::evicts_closed`]).
    pub store_probes: bool,
    /// Events stamped further than this in the future (by the processor's clock) are
    /// rejected as invalid, so one bad clock cannot push the watermark ahead.
    #[serde(with = "humantime_serde")]
    pub max_clock_skew: Duration,
    /// How much window history seeds the anomaly detectors at start, and how long a series
    /// without windows keeps its detectors in memory (swept once per hour of event time).
    #[serde(with = "humantime_serde")]
    pub anomaly_history: Duration,
    /// Evaluate alert rules (from the rules topic) as windows close.
    pub alerting: bool,
    /// Alert on every monitor no consecutive-failures rule selects when it is down
    /// (3 failed checks in a row fire, 2 good ones resolve: the built-in `default-down` rule).
    pub default_rule: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            group_id: "vigil-processor".into(),
            instance_id: String::new(),
            shard: String::new(),
            max_poll_interval: Duration::from_secs(60),
            window: Duration::from_secs(60),
            allowed_lateness: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            correction_horizon: Duration::from_secs(3600),
            batch_rows: 10_000,
            batch_interval: Duration::from_secs(1),
            max_state_bytes: 2 * 1024 * 1024 * 1024,
            max_windows: 0,
            fetch_buffer_bytes: 32 * 1024 * 1024,
            produce_buffer_bytes: 64 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(20),
            sketch_alpha: vigil_schema::sketch::DEFAULT_ALPHA,
            store_probes: true,
            max_clock_skew: Duration::from_secs(600),
            anomaly_history: Duration::from_secs(3 * 24 * 3600),
            alerting: true,
            default_rule: true,
        }
    }
}

impl Config {
    /// Rejects values and combinations the processor cannot honour.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, reason: String| Err(Error::Config(format!("{field}: {reason}")));
        let window = self.window;
        if window < Duration::from_secs(10) || window > Duration::from_secs(3600) {
            return bad(
                "window",
                format!("must be between 10s and 1h, got {window:?}"),
            );
        }
        if !window.as_millis().is_multiple_of(1000)
            || !3_600_000u128.is_multiple_of(window.as_millis())
        {
            return bad(
                "window",
                format!("must divide one hour into whole seconds, got {window:?}"),
            );
        }
        if self.allowed_lateness >= window {
            return bad(
                "allowed-lateness",
                format!(
                    "must be shorter than the window ({window:?}), got {:?}",
                    self.allowed_lateness
                ),
            );
        }
        if self.correction_horizon < self.allowed_lateness {
            return bad(
                "correction-horizon",
                "must be at least the allowed lateness".into(),
            );
        }
        if !self.shard.is_empty() {
            self.parse_shard()?;
        }
        if self.batch_rows == 0 {
            return bad("batch-rows", "must be at least 1".into());
        }
        for (field, bytes) in [
            ("fetch-buffer-bytes", self.fetch_buffer_bytes),
            ("produce-buffer-bytes", self.produce_buffer_bytes),
        ] {
            if !(1 << 20..=1 << 40).contains(&bytes) {
                return bad(
                    field,
                    format!("must be between 1 MiB and 1 TiB, got {bytes}"),
                );
            }
        }
        if self.max_state_bytes == 0 {
            return bad("max-state-bytes", "must be positive".into());
        }
        if !(self.sketch_alpha > 0.0 && self.sketch_alpha < 0.5) {
            return bad(
                "sketch-alpha",
                format!("must be in (0, 0.5), got {}", self.sketch_alpha),
            );
        }
        Ok(())
    }

    /// The static shard `(i, n)`, if configured.
    pub fn parse_shard(&self) -> Result<Option<(i32, i32)>> {
        if self.shard.is_empty() {
            return Ok(None);
        }
        let parsed = self.shard.split_once('/').and_then(|(i, n)| {
            let (i, n) = (i.trim().parse::<i32>().ok()?, n.trim().parse::<i32>().ok()?);
            (n >= 1 && (0..n).contains(&i)).then_some((i, n))
        });
        match parsed {
            Some(shard) => Ok(Some(shard)),
            None => Err(Error::Config(format!(
                "shard: expected i/n with 0 <= i < n, got {:?}",
                self.shard
            ))),
        }
    }

    /// Whether closed windows leave memory as soon as they are written (raw probes are
    /// stored, so a late event's correction can be recomputed from them) rather than after
    /// the correction horizon. One window per series in memory instead of one per window of
    /// the horizon: 60 times less state with the defaults.
    pub fn evicts_closed(&self) -> bool {
        self.store_probes
    }

    pub(crate) fn window_ms(&self) -> i64 {
        self.window.as_millis() as i64
    }

    pub(crate) fn lateness_ms(&self) -> i64 {
        self.allowed_lateness.as_millis() as i64
    }

    pub(crate) fn horizon_ms(&self) -> i64 {
        self.correction_horizon.as_millis() as i64
    }

    pub(crate) fn idle_ms(&self) -> i64 {
        self.idle_timeout.as_millis() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_the_field() {
        Config::default().validate().unwrap();
        let sharded = Config {
            shard: "1/3".into(),
            ..Config::default()
        };
        assert_eq!(sharded.parse_shard().unwrap(), Some((1, 3)));
        let cases = [
            (
                Config {
                    window: Duration::from_secs(5),
                    ..Config::default()
                },
                "window",
            ),
            (
                Config {
                    fetch_buffer_bytes: 1000,
                    ..Config::default()
                },
                "fetch-buffer-bytes",
            ),
            (
                Config {
                    produce_buffer_bytes: 0,
                    ..Config::default()
                },
                "produce-buffer-bytes",
            ),
            (
                Config {
                    window: Duration::from_secs(7 * 60),
                    ..Config::default()
                },
                "window",
            ),
            (
                Config {
                    allowed_lateness: Duration::from_secs(60),
                    ..Config::default()
                },
                "allowed-lateness",
            ),
            (
                Config {
                    batch_rows: 0,
                    ..Config::default()
                },
                "batch-rows",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }
}
