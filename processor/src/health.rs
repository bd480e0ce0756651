//! [`Health`]: what the processor tells its readiness probe.
//!
//! A write that keeps failing is not hidden behind retries: once the same error repeats
//! [`STALL_AFTER`] times in a row, the processor reports itself stalled with that error as the
//! cause (readiness goes red, `vigil_processor_write_stalled` is 1, the log says why). It keeps
//! retrying with capped backoff, so a transient outage heals by itself, and the first success
//! clears the stall.

use std::sync::{Arc, Mutex};

/// Identical consecutive write failures after which the processor reports itself stalled.
pub const STALL_AFTER: u32 = 5;

/// Shared, cheap to clone; [`Health::stalled`] is read by readiness probes.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Mutex<Option<String>>>);

impl Health {
    /// The cause of the current write stall, if any.
    pub fn stalled(&self) -> Option<String> {
        self.0.lock().map(|c| c.clone()).unwrap_or(None)
    }

    pub(crate) fn set_stalled(&self, cause: Option<String>) {
        if let Ok(mut current) = self.0.lock() {
            *current = cause;
        }
    }
}

/// Counts identical consecutive failures.
#[derive(Debug, Default)]
pub(crate) struct FailureStreak {
    last: Option<String>,
    count: u32,
}

impl FailureStreak {
    /// Records a failure; returns how many times in a row this same error occurred.
    pub(crate) fn record(&mut self, error: &str) -> u32 {
        if self.last.as_deref() == Some(error) {
            self.count += 1;
        } else {
            self.last = Some(error.to_owned());
            self.count = 1;
        }
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streak_counts_identical_errors_only() {
        let mut streak = FailureStreak::default();
        assert_eq!(streak.record("a"), 1);
        assert_eq!(streak.record("a"), 2);
        assert_eq!(streak.record("b"), 1);
        assert_eq!(streak.record("b"), 2);
        assert_eq!(streak.record("b"), 3);
    }

    #[test]
    fn health_reports_and_clears_a_stall() {
        let health = Health::default();
        assert_eq!(health.stalled(), None);
        health
            .clone()
            .set_stalled(Some("Max query size exceeded".into()));
        assert_eq!(health.stalled().as_deref(), Some("Max query size exceeded"));
        health.set_stalled(None);
        assert_eq!(health.stalled(), None);
    }
}
