//! A budget of unknown monitor ids per API key.
//!
//! Events of a monitor Vigil does not know are accepted (an agent may report before its
//! monitor is applied), but each distinct id costs the processor window state, so one key may
//! introduce at most `max` of them per period; events for further new ids are refused as
//! invalid, naming the budget. Ids already admitted in the period stay admitted. Memory is
//! bounded by keys × `max`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The unknown ids one key introduced in its current period.
#[derive(Debug)]
struct Period {
    started: Instant,
    ids: HashSet<String>,
}

/// Unknown monitor ids admitted per key (`config#<position>` or a created key's id).
#[derive(Debug)]
pub(super) struct UnknownBudget {
    max: usize,
    period: Duration,
    keys: Mutex<HashMap<String, Period>>,
}

impl UnknownBudget {
    pub(super) fn new(max: usize, period: Duration) -> Self {
        Self {
            max,
            period,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` may send events of the unknown monitor `id` now (at `now`).
    pub(super) fn admit(&self, key: &str, id: &str, now: Instant) -> bool {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let period = keys.entry(key.to_owned()).or_insert_with(|| Period {
            started: now,
            ids: HashSet::new(),
        });
        if now.saturating_duration_since(period.started) >= self.period {
            period.started = now;
            period.ids.clear();
        }
        if period.ids.contains(id) {
            return true;
        }
        if period.ids.len() >= self.max {
            return false;
        }
        period.ids.insert(id.to_owned());
        true
    }

    /// Why an event was refused.
    pub(super) fn refusal(&self, id: &str) -> String {
        format!(
            "monitor_id: {id:?} is not a known monitor, and this API key already sent events of \
             {} unknown monitors in the last {}; create the monitor first",
            self.max,
            humantime::format_duration(self.period)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_introduces_at_most_max_ids_per_period() {
        let budget = UnknownBudget::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(budget.admit("0", "a", t0));
        assert!(budget.admit("0", "b", t0));
        // Known ones stay admitted, a third is refused; another key has its own budget.
        assert!(budget.admit("0", "a", t0 + Duration::from_secs(1)));
        assert!(!budget.admit("0", "c", t0 + Duration::from_secs(1)));
        assert!(budget.admit("1", "c", t0));
        // A new period starts afresh.
        assert!(budget.admit("0", "c", t0 + Duration::from_secs(60)));
        assert!(budget.admit("0", "d", t0 + Duration::from_secs(61)));
        assert!(!budget.admit("0", "a", t0 + Duration::from_secs(61)));
        assert!(
            budget
                .refusal("c")
                .contains("2 unknown monitors in the last 1m")
        );
    }

    #[test]
    fn a_zero_budget_refuses_every_unknown_id() {
        let budget = UnknownBudget::new(0, Duration::from_secs(60));
        assert!(!budget.admit("0", "a", Instant::now()));
    }
}
