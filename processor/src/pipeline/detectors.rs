//! The anomaly detectors of each series, and the scores they keep from history.

use crate::anomaly::{Config as DetectorConfig, Detector};
use vigil_schema::AnomalyScores;

/// The two detectors of one (monitor, region).
#[derive(Debug, Clone)]
pub(super) struct Detectors {
    latency: Detector,
    errors: Detector,
    last_start: i64,
    /// Non-zero scores of the windows seeded from history: a window re-emitted after a
    /// restart (from the committed offsets, however far back) keeps the score it was stored
    /// with, as in an uninterrupted run. Dropped once live scoring passes `stored_until`.
    pub(super) stored: Vec<(i64, AnomalyScores)>,
    /// Start of the newest seeded window plus the correction horizon, a window and the
    /// allowed lateness (as far as windows still in memory reach back).
    pub(super) stored_until: i64,
}

pub(super) fn no_anomaly() -> AnomalyScores {
    AnomalyScores {
        latency: 0.0,
        errors: 0.0,
        combined: 0.0,
        reason: String::new(),
    }
}

impl Detectors {
    pub(super) fn new() -> Self {
        Self {
            latency: Detector::new(DetectorConfig::default()),
            errors: Detector::new(DetectorConfig::default()),
            last_start: i64::MIN,
            stored: Vec::new(),
            stored_until: i64::MIN,
        }
    }

    /// Scores a window (in start order). A window at or before the last one scored learns
    /// nothing: it gets its stored score if it was seeded with one, else none.
    pub(super) fn score(&mut self, start_ms: i64, p95_us: f64, error_rate: f64) -> AnomalyScores {
        if start_ms <= self.last_start {
            return self
                .stored
                .iter()
                .find(|(s, _)| *s == start_ms)
                .map_or_else(no_anomaly, |(_, a)| a.clone());
        }
        if start_ms > self.stored_until && !self.stored.is_empty() {
            self.stored = Vec::new();
        }
        self.learn(start_ms, p95_us, error_rate)
    }

    /// Learns a window (later than the last one) and returns its scores.
    pub(super) fn learn(&mut self, start_ms: i64, p95_us: f64, error_rate: f64) -> AnomalyScores {
        if start_ms <= self.last_start {
            return no_anomaly();
        }
        self.last_start = start_ms;
        let secs = start_ms.div_euclid(1000);
        let latency = self.latency.update(secs, p95_us);
        let errors = self.errors.update(secs, error_rate);
        let combined = latency.score.max(errors.score);
        let reason = if combined <= 0.0 {
            String::new()
        } else if latency.score >= errors.score {
            format!("p95 latency: {}", latency.reason)
        } else {
            format!("error rate: {}", errors.reason)
        };
        AnomalyScores {
            latency: latency.score,
            errors: errors.score,
            combined,
            reason,
        }
    }
}
