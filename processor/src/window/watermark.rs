//! Per-partition event-time watermark.
//!
//! The watermark is the largest event time seen minus the allowed lateness: the processor
//! promises that windows ending at or before it are complete, except for late events, which it
//! handles as corrections. It never moves backwards. When a partition receives nothing for the
//! idle timeout, event time is assumed to advance with the wall clock from the last event, so
//! windows of a quiet partition still close.

/// A monotone event-time watermark with idle advancement. All times are unix milliseconds and
/// passed in by the caller (no clock reads), so behaviour is deterministic and testable.
#[derive(Debug, Clone)]
pub struct Watermark {
    lateness_ms: i64,
    idle_ms: i64,
    max_event_ms: Option<i64>,
    last_event_wall_ms: i64,
    current: i64,
}

impl Watermark {
    /// A watermark that has seen nothing (it stands at `i64::MIN`).
    pub fn new(lateness_ms: i64, idle_ms: i64) -> Self {
        Self {
            lateness_ms,
            idle_ms,
            max_event_ms: None,
            last_event_wall_ms: 0,
            current: i64::MIN,
        }
    }

    /// The current watermark (`i64::MIN` before the first event).
    pub fn get(&self) -> i64 {
        self.current
    }

    /// Largest event time seen.
    pub fn max_event_ms(&self) -> Option<i64> {
        self.max_event_ms
    }

    /// Records an event's time, read at wall-clock `now_ms`; returns the new watermark.
    pub fn observe(&mut self, event_ms: i64, now_ms: i64) -> i64 {
        let max = self.max_event_ms.map_or(event_ms, |m| m.max(event_ms));
        self.max_event_ms = Some(max);
        self.last_event_wall_ms = now_ms;
        self.advance_to(max.saturating_sub(self.lateness_ms))
    }

    /// Advances an idle partition at wall-clock `now_ms`: after `idle_ms` without events, event
    /// time is taken to have moved on by the wall-clock time since the last event. Returns the
    /// watermark.
    pub fn idle(&mut self, now_ms: i64) -> i64 {
        let Some(max) = self.max_event_ms else {
            return self.current;
        };
        let quiet = now_ms.saturating_sub(self.last_event_wall_ms);
        if quiet < self.idle_ms {
            return self.current;
        }
        self.advance_to(max.saturating_add(quiet).saturating_sub(self.lateness_ms))
    }

    /// A watermark resumed where a previous run committed it (`at`): it never goes below it.
    pub fn resumed(lateness_ms: i64, idle_ms: i64, at: i64) -> Self {
        Self {
            current: at,
            ..Self::new(lateness_ms, idle_ms)
        }
    }

    fn advance_to(&mut self, candidate: i64) -> i64 {
        self.current = self.current.max(candidate);
        self.current
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn trails_by_lateness_and_advances_when_idle() {
        let mut w = Watermark::new(30_000, 10_000);
        assert_eq!(w.get(), i64::MIN);
        assert_eq!(w.idle(1_000_000), i64::MIN, "nothing seen yet");
        assert_eq!(w.observe(100_000, 0), 70_000);
        assert_eq!(w.observe(90_000, 1), 70_000, "older event does not move it");
        assert_eq!(w.idle(5_000), 70_000, "not idle long enough");
        assert_eq!(w.idle(60_000), 100_000 + 59_999 - 30_000);
    }

    proptest! {
        /// Whatever the order of events and idle ticks, the watermark never moves back.
        #[test]
        fn never_moves_backwards(
            steps in prop::collection::vec((any::<bool>(), 0i64..10_000_000, 0i64..100_000), 1..200),
        ) {
            let mut w = Watermark::new(30_000, 20_000);
            let mut now = 0;
            let mut last = w.get();
            for (is_event, t, dt) in steps {
                now += dt;
                let got = if is_event { w.observe(t, now) } else { w.idle(now) };
                prop_assert!(got >= last);
                prop_assert_eq!(got, w.get());
                last = got;
            }
        }
    }
}
