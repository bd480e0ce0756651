//! The state machine of one (rule, series): ok → pending → firing → ok, in event time.
//!
//! Each evaluation places the observed value against the rule's two thresholds as a [`Level`]:
//! past the firing threshold, past the recovery threshold, or in the band between them. An
//! inactive (ok) alert holds its condition only at [`Level::Fire`]; an active one (pending or
//! firing) holds it until [`Level::Recover`], which is the hysteresis.
//!
//! Between evaluations the condition keeps the value it had at the last one. Two timers follow
//! from that, each stored as an absolute event time so that state restored from the changelog
//! continues exactly:
//! - `fire_at = pending_since + for`: a pending alert fires there (at exactly that time);
//! - `resolve_at = first non-holding evaluation + keep_firing_for`: a firing alert whose
//!   condition stopped holding resolves there unless an evaluation before it holds again.
//!
//! Invariant: timers due at or before an evaluation's time run before it, so the transitions do
//! not depend on whether a deadline was reached by an evaluation or by the watermark.

use serde::{Deserialize, Serialize};
use vigil_schema::AlertState;

/// Where an evaluated value stands against a rule's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Past the firing threshold.
    Fire,
    /// Between the thresholds: an active alert stays active, an ok one stays ok.
    Band,
    /// Past the recovery threshold.
    Recover,
}

impl Level {
    /// The level of a value that fires above `fire` and recovers at or below `recover`
    /// (`recover <= fire`).
    pub(crate) fn above(value: f64, fire: f64, recover: f64) -> Self {
        if value > fire {
            Level::Fire
        } else if value <= recover {
            Level::Recover
        } else {
            Level::Band
        }
    }

    /// The level of a value that fires below `fire` and recovers at or above `recover`
    /// (`recover >= fire`).
    pub(crate) fn below(value: f64, fire: f64, recover: f64) -> Self {
        if value < fire {
            Level::Fire
        } else if value >= recover {
            Level::Recover
        } else {
            Level::Band
        }
    }
}

/// The durations of a rule, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Timing {
    /// `for`.
    pub(crate) for_ms: i64,
    /// `keep_firing_for`.
    pub(crate) keep_ms: i64,
}

/// One change of state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Change {
    pub(crate) from: AlertState,
    pub(crate) to: AlertState,
    /// Event time that caused it.
    pub(crate) at: i64,
    /// The value observed then (the last evaluated one for a timer).
    pub(crate) value: f64,
}

/// The alert state of one (rule, series).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Machine {
    state: AlertState,
    /// Event time the current state was entered (`pending_since`, firing since, ok since).
    since: i64,
    /// Pending: when it fires.
    fire_at: Option<i64>,
    /// Firing without its condition: when it resolves.
    resolve_at: Option<i64>,
    /// The last evaluated value.
    value: f64,
}

impl Default for Machine {
    fn default() -> Self {
        Self {
            state: AlertState::Ok,
            since: i64::MIN,
            fire_at: None,
            resolve_at: None,
            value: 0.0,
        }
    }
}

impl Machine {
    /// The current state.
    pub(crate) fn state(&self) -> AlertState {
        self.state
    }

    /// Whether pending or firing.
    pub(crate) fn is_active(&self) -> bool {
        self.state != AlertState::Ok
    }

    /// The next timer, if any.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        match self.state {
            AlertState::Ok => None,
            AlertState::Pending => self.fire_at,
            AlertState::Firing => self.resolve_at,
        }
    }

    fn enter(&mut self, to: AlertState, at: i64, out: &mut Vec<Change>) {
        out.push(Change {
            from: self.state,
            to,
            at,
            value: self.value,
        });
        self.state = to;
        self.since = at;
        self.fire_at = None;
        self.resolve_at = None;
    }

    /// Records an evaluated value that changes nothing else (ok, and not at the firing
    /// threshold): what [`Machine::observe`] does then.
    pub(crate) fn keep(&mut self, value: f64) {
        self.value = value;
    }

    /// Runs the timers due at or before `until`.
    pub(crate) fn advance(&mut self, until: i64, out: &mut Vec<Change>) {
        while let Some(at) = self.next_deadline().filter(|&d| d <= until) {
            let to = match self.state {
                AlertState::Pending => AlertState::Firing,
                _ => AlertState::Ok,
            };
            self.enter(to, at, out);
        }
    }

    /// Evaluates the condition at `at` (after the timers due by then).
    pub(crate) fn observe(
        &mut self,
        at: i64,
        level: Level,
        value: f64,
        timing: Timing,
        out: &mut Vec<Change>,
    ) {
        self.advance(at, out);
        self.value = value;
        let holds = match self.state {
            AlertState::Ok => level == Level::Fire,
            AlertState::Pending | AlertState::Firing => level != Level::Recover,
        };
        match (self.state, holds) {
            (AlertState::Ok, true) if timing.for_ms <= 0 => {
                self.enter(AlertState::Firing, at, out);
            }
            (AlertState::Ok, true) => {
                self.enter(AlertState::Pending, at, out);
                self.fire_at = Some(at.saturating_add(timing.for_ms));
            }
            (AlertState::Pending, false) => self.enter(AlertState::Ok, at, out),
            (AlertState::Firing, true) => self.resolve_at = None,
            (AlertState::Firing, false) if timing.keep_ms <= 0 => {
                self.enter(AlertState::Ok, at, out);
            }
            (AlertState::Firing, false) => {
                if self.resolve_at.is_none() {
                    self.resolve_at = Some(at.saturating_add(timing.keep_ms));
                }
            }
            (AlertState::Ok, false) | (AlertState::Pending, true) => {}
        }
    }

    /// Returns to ok at `at` whatever the condition (the rule no longer applies).
    pub(crate) fn reset(&mut self, at: i64, out: &mut Vec<Change>) {
        self.advance(at, out);
        if self.is_active() {
            self.enter(AlertState::Ok, at, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use AlertState::{Firing, Ok as Fine, Pending};

    use super::*;

    fn run(timing: Timing, steps: &[(i64, Level)]) -> Vec<(AlertState, AlertState, i64)> {
        let mut m = Machine::default();
        let mut out = Vec::new();
        for &(at, level) in steps {
            m.observe(at, level, 0.0, timing, &mut out);
        }
        out.iter().map(|c| (c.from, c.to, c.at)).collect()
    }

    const NO_WAIT: Timing = Timing {
        for_ms: 0,
        keep_ms: 0,
    };

    #[test]
    fn fires_at_once_without_for() {
        let got = run(
            NO_WAIT,
            &[
                (10, Level::Recover),
                (20, Level::Fire),
                (30, Level::Recover),
            ],
        );
        assert_eq!(got, vec![(Fine, Firing, 20), (Firing, Fine, 30)]);
    }

    #[test]
    fn band_keeps_the_current_state() {
        let got = run(
            NO_WAIT,
            &[
                (10, Level::Band),
                (20, Level::Fire),
                (30, Level::Band),
                (40, Level::Recover),
            ],
        );
        assert_eq!(got, vec![(Fine, Firing, 20), (Firing, Fine, 40)]);
    }

    #[test]
    fn for_fires_at_the_exact_deadline() {
        let timing = Timing {
            for_ms: 25,
            keep_ms: 0,
        };
        let got = run(
            timing,
            &[(10, Level::Fire), (20, Level::Band), (40, Level::Fire)],
        );
        // Pending at 10, fires at 35 (before the evaluation at 40 is applied).
        assert_eq!(got, vec![(Fine, Pending, 10), (Pending, Firing, 35)]);
        let got = run(
            timing,
            &[(10, Level::Fire), (20, Level::Recover), (40, Level::Fire)],
        );
        assert_eq!(
            got,
            vec![
                (Fine, Pending, 10),
                (Pending, Fine, 20),
                (Fine, Pending, 40)
            ]
        );
    }

    #[test]
    fn keep_firing_for_holds_then_expires() {
        let timing = Timing {
            for_ms: 0,
            keep_ms: 30,
        };
        // Recovers at 20: stays firing; holds again at 40 (< 50): the timer is cleared.
        let got = run(
            timing,
            &[
                (10, Level::Fire),
                (20, Level::Recover),
                (40, Level::Band),
                (60, Level::Recover),
            ],
        );
        assert_eq!(got, vec![(Fine, Firing, 10)]);
        let mut m = Machine::default();
        let mut out = Vec::new();
        for (at, level) in [
            (10, Level::Fire),
            (20, Level::Recover),
            (30, Level::Recover),
        ] {
            m.observe(at, level, 0.0, timing, &mut out);
        }
        assert_eq!(
            m.next_deadline(),
            Some(50),
            "counted from the first recovery"
        );
        m.advance(49, &mut out);
        assert_eq!(out.len(), 1);
        m.advance(50, &mut out);
        assert_eq!((out[1].from, out[1].to, out[1].at), (Firing, Fine, 50));
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn reset_ends_an_active_alert() {
        let mut m = Machine::default();
        let mut out = Vec::new();
        m.reset(5, &mut out);
        assert!(out.is_empty());
        m.observe(10, Level::Fire, 7.0, NO_WAIT, &mut out);
        m.reset(20, &mut out);
        assert_eq!(
            (out[1].from, out[1].to, out[1].at, out[1].value),
            (Firing, Fine, 20, 7.0)
        );
    }
}
