//! [`ProbeResult`]: the measurement of one HTTP check.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// One HTTP check of one monitor from one region, as measured by a probe runner or an external
/// agent. Keyed by monitor id on `vigil.probes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Unique id of this check; duplicates (producer retries, agent re-sends) share it.
    pub event_id: Uuid,
    /// The monitor checked.
    pub monitor_id: String,
    /// Where the check ran from (`eu-west`, `local`, …).
    pub region: String,
    /// Which probe runner or agent ran it.
    pub agent: String,
    /// When the scheduler meant the check to start.
    pub scheduled_at: Timestamp,
    /// When the check started: the event time windows are assigned by.
    pub event_time: Timestamp,
    /// HTTP method used.
    pub method: String,
    /// URL checked, as configured (secrets referenced as `${VAR}` are not expanded here).
    pub url: String,
    /// HTTP status code, when a response was received.
    pub status_code: Option<u16>,
    /// Whether the check passed, or the first thing that failed.
    pub outcome: Outcome,
    /// Human-readable detail of the failure, if any.
    pub error: Option<String>,
    /// Timing breakdown in microseconds.
    pub timings: Timings,
    /// Size of the response body in bytes, when read.
    pub response_size: Option<u64>,
    /// Every assertion evaluated, in the order configured.
    pub assertions: Vec<AssertionResult>,
    /// Expiry of the peer's leaf certificate, for HTTPS checks.
    pub tls_cert_expiry: Option<Timestamp>,
    /// The steps of a multi-step check, in order, up to the first that failed; empty for a
    /// single request. The check's own fields then sum their timings and sizes, list every
    /// step's assertions (each prefixed with `STEP: `), and carry the first failure.
    #[serde(default)]
    pub steps: Vec<StepResult>,
}

/// One step of a multi-step check, as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// The step's name.
    pub name: String,
    /// HTTP method used.
    pub method: String,
    /// URL as configured (relative to the monitor's, references not expanded).
    pub url: String,
    /// HTTP status code, when a response was received.
    pub status_code: Option<u16>,
    /// Whether the step passed, or what failed.
    pub outcome: Outcome,
    /// Detail of the failure, if any.
    pub error: Option<String>,
    /// Timing breakdown in microseconds (`total_us` is the step's own).
    pub timings: Timings,
    /// Size of the response body in bytes, when read.
    pub response_size: Option<u64>,
    /// The step's assertions, in the order configured.
    pub assertions: Vec<AssertionResult>,
}

/// [`ProbeResult`] as version 1 of its event wrote it (before multi-step checks).
#[derive(Debug, Deserialize)]
pub(crate) struct ProbeResultV1 {
    event_id: Uuid,
    monitor_id: String,
    region: String,
    agent: String,
    scheduled_at: Timestamp,
    event_time: Timestamp,
    method: String,
    url: String,
    status_code: Option<u16>,
    outcome: Outcome,
    error: Option<String>,
    timings: Timings,
    response_size: Option<u64>,
    assertions: Vec<AssertionResult>,
    tls_cert_expiry: Option<Timestamp>,
}

impl From<ProbeResultV1> for ProbeResult {
    fn from(v1: ProbeResultV1) -> Self {
        Self {
            event_id: v1.event_id,
            monitor_id: v1.monitor_id,
            region: v1.region,
            agent: v1.agent,
            scheduled_at: v1.scheduled_at,
            event_time: v1.event_time,
            method: v1.method,
            url: v1.url,
            status_code: v1.status_code,
            outcome: v1.outcome,
            error: v1.error,
            timings: v1.timings,
            response_size: v1.response_size,
            assertions: v1.assertions,
            tls_cert_expiry: v1.tls_cert_expiry,
            steps: Vec::new(),
        }
    }
}

impl ProbeResult {
    /// Whether the check counts as available.
    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

/// Timing breakdown of one check, in microseconds. A phase that did not happen (no DNS lookup for
/// an IP literal, no TLS for `http://`, no response after a timeout) is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Name resolution.
    pub dns_us: Option<u64>,
    /// TCP connect.
    pub connect_us: Option<u64>,
    /// TLS handshake.
    pub tls_us: Option<u64>,
    /// From sending the request to the first response byte.
    pub ttfb_us: Option<u64>,
    /// Whole check, start to last body byte (or to the failure).
    pub total_us: u64,
}

/// Result of one assertion (`[STATUS] == 200`, `[BODY].status == UP`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionResult {
    /// The condition as written.
    pub condition: String,
    /// Whether it held.
    pub passed: bool,
    /// The value the left-hand side resolved to, when it resolved.
    pub actual: Option<String>,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every assertion held.
    Ok,
    /// Name resolution failed.
    Dns,
    /// The TCP connection failed or was refused.
    Connect,
    /// The TLS handshake or certificate verification failed.
    Tls,
    /// The check exceeded its timeout.
    Timeout,
    /// A response came with a failing status and no assertion overrode it.
    HttpStatus,
    /// An assertion failed.
    Assertion,
    /// The body was larger than the configured cap.
    BodyTooLarge,
    /// The URL could not be used (bad syntax, unsupported scheme, a `${…}` reference that
    /// cannot be expanded).
    InvalidUrl,
    /// The peer spoke something other than valid HTTP.
    Protocol,
    /// The egress policy refused the connection: the target (or a redirect hop) resolves to a
    /// non-public address the allow-list does not cover, or a redirect downgrades https to http.
    Blocked,
}

impl Outcome {
    /// Every outcome, `Ok` first.
    pub const ALL: [Outcome; 11] = [
        Outcome::Ok,
        Outcome::Dns,
        Outcome::Connect,
        Outcome::Tls,
        Outcome::Timeout,
        Outcome::HttpStatus,
        Outcome::Assertion,
        Outcome::BodyTooLarge,
        Outcome::InvalidUrl,
        Outcome::Protocol,
        Outcome::Blocked,
    ];

    /// The name used in JSON, ClickHouse and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Dns => "dns",
            Outcome::Connect => "connect",
            Outcome::Tls => "tls",
            Outcome::Timeout => "timeout",
            Outcome::HttpStatus => "http_status",
            Outcome::Assertion => "assertion",
            Outcome::BodyTooLarge => "body_too_large",
            Outcome::InvalidUrl => "invalid_url",
            Outcome::Protocol => "protocol",
            Outcome::Blocked => "blocked",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_outcomes_keep_the_existing_encodings() {
        // postcard writes the variant index: appending keeps every older index.
        let indexes: Vec<u8> = Outcome::ALL
            .iter()
            .map(|o| postcard::to_stdvec(o).unwrap()[0])
            .collect();
        assert_eq!(indexes, (0..11).collect::<Vec<u8>>());
        assert_eq!(Outcome::Blocked as usize, 10);
    }

    #[test]
    fn outcome_names_match_serde() {
        for outcome in Outcome::ALL {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
        }
    }
}
