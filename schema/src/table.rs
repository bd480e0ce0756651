//! ClickHouse table names. The DDL lives in `schema/ddl/` (see [`crate::migration`]).

/// Raw probe results (one row per check, deduplicated by event id, TTL-limited).
pub const PROBES: &str = "probes";
/// One-minute (configurable length) window summaries, `ReplacingMergeTree(version)`.
pub const WINDOWS_1M: &str = "windows_1m";
/// Hourly rollups merged from the minute sketches, `ReplacingMergeTree(version)`.
pub const WINDOWS_1H: &str = "windows_1h";
/// Alert transitions.
pub const ALERTS: &str = "alerts";
/// Latest spec of every monitor, materialized from the monitors topic.
pub const MONITORS: &str = "monitors";
/// Keys of the hourly rollups a processor batch rebuilds (shipped as data, see the sink).
pub const ROLLUP_KEYS: &str = "rollup_keys";
/// Every notification attempt, deduplicated by delivery id.
pub const DELIVERIES: &str = "deliveries";
/// Every write through the query API.
pub const AUDIT: &str = "audit";
/// Applied migrations.
pub const SCHEMA_MIGRATIONS: &str = "schema_migrations";
