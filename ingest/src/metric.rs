//! Names of the metrics the ingest service records (through the `metrics` facade; the binary
//! installs the Prometheus recorder and `/metrics` renders it).

/// Probes refused by the egress policy, labelled by `reason` (the address range's kind, like
/// `loopback`, `private` or `metadata`, or `insecure_redirect`).
pub const PROBE_BLOCKED: &str = "vigil_probe_blocked_total";
/// Checks run, labelled by `outcome`.
pub const CHECKS: &str = "vigil_ingest_checks_total";
/// Check duration in seconds (histogram).
pub const CHECK_DURATION: &str = "vigil_ingest_check_duration_seconds";
/// Delay between a check's scheduled time and its start, in seconds (histogram).
pub const SCHEDULE_LAG: &str = "vigil_ingest_schedule_lag_seconds";
/// Scheduled ticks skipped because the runner was behind (catch-up without bursts).
pub const SKIPPED_TICKS: &str = "vigil_ingest_skipped_ticks_total";
/// Monitors this runner schedules.
pub const MONITORS_SCHEDULED: &str = "vigil_ingest_monitors_scheduled";
/// Probe results acknowledged by Kafka.
pub const PRODUCED: &str = "vigil_ingest_produced_total";
/// Probe results Kafka rejected or that could not be enqueued.
pub const PRODUCE_ERRORS: &str = "vigil_ingest_produce_errors_total";
/// Probe results waiting for Kafka (hand-off queue plus producer queue).
pub const BUFFER_DEPTH: &str = "vigil_ingest_buffer_depth";
/// Probe results dropped because the buffer was full.
pub const BUFFER_DROPPED: &str = "vigil_ingest_buffer_dropped_total";
/// Events received by the ingestion API, labelled by `result` (`accepted`, `invalid`, `failed`).
pub const API_EVENTS: &str = "vigil_ingest_api_events_total";
/// Accepted API events whose monitor id is not in the monitors topic.
pub const API_UNKNOWN_MONITOR: &str = "vigil_ingest_api_unknown_monitor_total";
/// API events refused because their key's budget of unknown monitor ids was spent.
pub const API_UNKNOWN_REFUSED: &str = "vigil_ingest_api_unknown_refused_total";
