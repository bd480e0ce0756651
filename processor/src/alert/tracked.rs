//! What the [`Evaluator`](super::Evaluator) keeps per series and per monitor, and how a
//! series snapshot is stored.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::check::{RuleState, Tagged};
use super::id::{FORMAT_1, decode};
use super::rules::{Check, Rule, RuleSet};
use super::series::Ring;

/// What is stored of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct SeriesState {
    pub(super) partition: i32,
    /// Start of the last evaluated window (`i64::MIN`: none).
    pub(super) last_start: i64,
    /// Time of the last check.
    pub(super) last_sample: Option<i64>,
    pub(super) ring: Ring,
    /// By rule id: in the order of the rules selecting the series once aligned (see
    /// [`Series::align`]). Encoded like a map.
    pub(super) rules: Vec<(String, RuleState)>,
    /// Number of this snapshot (0: none written yet); see `changelog.rs`.
    pub(super) seq: u64,
}

/// A series snapshot in changelog format 1 (before deltas).
#[derive(Deserialize)]
pub(super) struct SeriesStateV1 {
    pub(super) partition: i32,
    pub(super) last_start: i64,
    pub(super) last_sample: Option<i64>,
    pub(super) ring: Ring,
    pub(super) rules: Vec<(String, RuleState)>,
}

/// Reads a series snapshot, in the current format or the previous one.
pub(super) fn decode_series(value: &[u8]) -> Result<SeriesState, String> {
    if value.first() == Some(&FORMAT_1) {
        let v1: SeriesStateV1 = decode(value)?;
        return Ok(SeriesState {
            partition: v1.partition,
            last_start: v1.last_start,
            last_sample: v1.last_sample,
            ring: v1.ring,
            rules: v1.rules,
            seq: 0,
        });
    }
    decode(value)
}

/// What is stored of a monitor: its quorum alerts firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct MonitorState {
    /// Rule ids whose monitor-level alert is firing.
    pub(super) firing: BTreeSet<String>,
}

#[derive(Debug)]
pub(super) struct Series {
    pub(super) key: Arc<str>,
    pub(super) monitor: String,
    pub(super) region: String,
    pub(super) state: SeriesState,
    /// Rules selecting it, as of rule-set generation `generation`.
    pub(super) selected: Vec<Arc<Rule>>,
    pub(super) generation: u64,
    /// The generation `state.rules` was last aligned with `selected` at.
    pub(super) aligned: u64,
    /// Longest span of the selected rules, and whether one needs sketches.
    pub(super) retention: i64,
    pub(super) keep_sketch: bool,
    /// Whether a quorum rule selects it: its state is then always snapshotted, never logged
    /// as deltas (a quorum depends on the other regions' states at the time, which replaying
    /// one series after another would not reproduce).
    pub(super) quorum: bool,
    /// Its entry in the timer queue: (partition, due watermark).
    pub(super) queued: Option<(i32, i64)>,
    /// Whether its state needs a snapshot at the next [`Evaluator::take_changes`].
    pub(super) dirty: bool,
    /// Windows evaluated since snapshot `state.seq` (each one a delta on the changelog).
    pub(super) deltas: u32,
    /// Size of its last encoded state (the next one's buffer).
    pub(super) encoded_len: usize,
    /// Heap bytes counted for it in [`Evaluator::accounted_bytes`](super::Evaluator), as of
    /// its last snapshot.
    pub(super) accounted: usize,
}

impl Series {
    pub(super) fn new(key: Arc<str>, monitor: &str, region: &str, state: SeriesState) -> Self {
        Self {
            key,
            monitor: monitor.to_owned(),
            region: region.to_owned(),
            state,
            selected: Vec::new(),
            generation: 0,
            aligned: 0,
            retention: 0,
            keep_sketch: false,
            quorum: false,
            queued: None,
            dirty: false,
            deltas: 0,
            encoded_len: 64,
            accounted: 0,
        }
    }

    /// Approximate heap bytes (O(windows in its ring + rules)).
    pub(super) fn heap_bytes(&self) -> usize {
        256 + 2 * self.key.len()
            + self.monitor.len()
            + self.region.len()
            + self.state.ring.heap_bytes()
            + self.selected.capacity() * 8
            + self
                .state
                .rules
                .iter()
                .map(|(id, rs)| 160 + id.len() + rs.heap_bytes())
                .sum::<usize>()
    }

    pub(super) fn refresh(&mut self, rules: &RuleSet, generation: u64) {
        if self.generation != generation {
            self.selected = rules.select(&self.monitor, &self.region);
            self.generation = generation;
            self.retention = self
                .selected
                .iter()
                .filter_map(|r| r.span_ms())
                .max()
                .unwrap_or(0);
            self.keep_sketch = self
                .selected
                .iter()
                .any(|r| matches!(r.check, Check::Latency { .. }));
            self.quorum = self.selected.iter().any(|r| r.quorum.is_some());
        }
    }

    /// The state of `rule`, found by id.
    pub(super) fn rule_state(&self, id: &str) -> Option<&RuleState> {
        self.state
            .rules
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, rs)| rs)
    }

    /// Puts the rule states in the order of `selected` (new ones start afresh); the states of
    /// rules that no longer select the series, or changed kind, are reset at `at` through
    /// `resolve` (the rule they were built for, if it is known) and dropped.
    pub(super) fn align(
        &mut self,
        at: i64,
        resolve: impl Fn(&str) -> Option<Arc<Rule>>,
        changes: &mut Vec<(Arc<Rule>, Tagged)>,
    ) {
        let mut old = std::mem::take(&mut self.state.rules);
        let mut rules = Vec::with_capacity(self.selected.len());
        for rule in &self.selected {
            let found = old
                .iter()
                .position(|(id, rs)| *id == rule.spec.id && rs.kind == rule.kind);
            let rs = match found {
                Some(i) => old.swap_remove(i).1,
                None => RuleState::new(rule.kind),
            };
            rules.push((rule.spec.id.clone(), rs));
        }
        old.sort_by(|a, b| a.0.cmp(&b.0));
        let mut tagged = Vec::new();
        for (id, mut rs) in old {
            if let Some(rule) = resolve(&id).filter(|r| r.kind == rs.kind) {
                rs.reset(&rule, at, &mut tagged);
                changes.extend(tagged.drain(..).map(|t| (Arc::clone(&rule), t)));
            }
        }
        self.state.rules = rules;
        self.aligned = self.generation;
    }

    /// The earliest timer of a selected rule.
    pub(super) fn next_deadline(&self) -> Option<i64> {
        if self.aligned == self.generation {
            return self
                .state
                .rules
                .iter()
                .filter_map(|(_, rs)| rs.next_deadline())
                .min();
        }
        self.selected
            .iter()
            .filter_map(|r| self.rule_state(&r.spec.id))
            .filter_map(RuleState::next_deadline)
            .min()
    }
}

#[derive(Debug, Default)]
pub(super) struct Monitor {
    pub(super) partition: i32,
    pub(super) regions: BTreeSet<String>,
    pub(super) firing: BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_1_snapshots_are_read_as_never_numbered() {
        let state = SeriesState {
            partition: 3,
            last_start: 120_000,
            last_sample: Some(125_000),
            ring: Ring::default(),
            rules: Vec::new(),
            seq: 0,
        };
        let current = super::super::id::encode(&state).unwrap();
        assert_eq!(decode_series(&current).unwrap(), state);
        // Format 1 is the same layout without the trailing sequence number (0: one byte).
        let mut v1 = current.clone();
        v1[0] = FORMAT_1;
        assert_eq!(v1.pop(), Some(0));
        assert_eq!(decode_series(&v1).unwrap(), state);
        assert!(decode_series(&[FORMAT_1]).is_err());
    }
}
