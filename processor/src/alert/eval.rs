//! [`Evaluator`]: every rule on every series of the assigned partitions, its timers, quorum
//! alerts and state changelog.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use vigil_schema::{AlertState, AlertTransition};

use super::ClosedWindow;
use super::check::{RuleState, Tagged};
use super::id::{Key, SEP, decode, encode, monitor_key, parse_key, series_key};
use super::rules::{Check, Rule, RuleSet};
use super::series::Ring;
use super::summary::transition;
use crate::window::window_start;

/// What is stored of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SeriesState {
    partition: i32,
    /// Start of the last evaluated window (`i64::MIN`: none).
    last_start: i64,
    /// Time of the last check.
    last_sample: Option<i64>,
    ring: Ring,
    /// By rule id.
    rules: BTreeMap<String, RuleState>,
}

/// What is stored of a monitor: its quorum alerts firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MonitorState {
    /// Rule ids whose monitor-level alert is firing.
    firing: BTreeSet<String>,
}

#[derive(Debug)]
struct Series {
    monitor: String,
    region: String,
    state: SeriesState,
    /// Rules selecting it, as of rule-set generation `generation`.
    selected: Vec<Arc<Rule>>,
    generation: u64,
    /// Its entry in the timer queue: (partition, due watermark).
    queued: Option<(i32, i64)>,
}

impl Series {
    fn new(w: &ClosedWindow<'_>) -> Self {
        Self {
            monitor: w.monitor_id.to_owned(),
            region: w.region.to_owned(),
            state: SeriesState {
                partition: w.partition,
                last_start: i64::MIN,
                last_sample: None,
                ring: Ring::default(),
                rules: BTreeMap::new(),
            },
            selected: Vec::new(),
            generation: 0,
            queued: None,
        }
    }

    fn refresh(&mut self, rules: &RuleSet, generation: u64) {
        if self.generation != generation {
            self.selected = rules.select(&self.monitor, &self.region);
            self.generation = generation;
        }
    }

    /// The earliest timer of a selected rule.
    fn next_deadline(&self) -> Option<i64> {
        self.selected
            .iter()
            .filter_map(|r| self.state.rules.get(&r.spec.id))
            .filter_map(RuleState::next_deadline)
            .min()
    }
}

#[derive(Debug, Default)]
struct Monitor {
    partition: i32,
    regions: BTreeSet<String>,
    firing: BTreeSet<String>,
}

/// Timer queue per partition: (due watermark, series key).
type Timers = BTreeMap<i32, BTreeSet<(i64, String)>>;

/// Evaluates alert rules on closed windows, in event time. See the [module docs](super).
#[derive(Debug)]
pub struct Evaluator {
    window_ms: i64,
    rules: RuleSet,
    generation: u64,
    /// Rules removed from the rule set, kept to resolve their alerts.
    retired: BTreeMap<String, Arc<Rule>>,
    series: FxHashMap<String, Series>,
    monitors: FxHashMap<String, Monitor>,
    timers: Timers,
    dirty: BTreeSet<String>,
    dirty_monitors: BTreeSet<String>,
}

/// The smallest watermark at which a timer due at `deadline` may run: the end of the window
/// holding it (every check of the series before the deadline is known by then).
fn due_watermark(deadline: i64, window_ms: i64) -> i64 {
    let start = window_start(deadline, window_ms);
    if start == deadline {
        deadline
    } else {
        start.saturating_add(window_ms)
    }
}

fn requeue(timers: &mut Timers, key: &str, series: &mut Series, window_ms: i64) {
    let partition = series.state.partition;
    let due = series
        .next_deadline()
        .map(|d| (partition, due_watermark(d, window_ms)));
    if due == series.queued {
        return;
    }
    if let Some((p, at)) = series.queued.take()
        && let Some(queue) = timers.get_mut(&p)
    {
        queue.remove(&(at, key.to_owned()));
    }
    if let Some((p, at)) = due {
        timers.entry(p).or_default().insert((at, key.to_owned()));
    }
    series.queued = due;
}

impl Evaluator {
    /// An evaluator without rules for windows of `window_len_ms`.
    pub fn new(window_len_ms: i64) -> Self {
        Self {
            window_ms: window_len_ms.max(1),
            rules: RuleSet::default(),
            generation: 1,
            retired: BTreeMap::new(),
            series: FxHashMap::default(),
            monitors: FxHashMap::default(),
            timers: BTreeMap::new(),
            dirty: BTreeSet::new(),
            dirty_monitors: BTreeSet::new(),
        }
    }

    /// Replaces the rules. Alerts of rules that are gone, disabled or no longer select their
    /// series resolve at the next window of the series.
    pub fn set_rules(&mut self, rules: RuleSet) {
        let old = std::mem::replace(&mut self.rules, rules);
        for rule in old.all() {
            if self.rules.get(&rule.spec.id).is_none() {
                self.retired.insert(rule.spec.id.clone(), Arc::clone(rule));
            }
        }
        for rule in self.rules.all() {
            self.retired.remove(&rule.spec.id);
        }
        self.generation += 1;
        for (key, series) in &mut self.series {
            series.refresh(&self.rules, self.generation);
            requeue(&mut self.timers, key, series, self.window_ms);
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Evaluates every rule selecting the window's (monitor, region). Windows of one series
    /// must arrive in start order; one starting at or before the last evaluated start of its
    /// series is ignored (a re-emission after a restart), which makes replays idempotent.
    pub fn on_window(&mut self, w: &ClosedWindow<'_>, out: &mut Vec<AlertTransition>) {
        let key = series_key(w.monitor_id, w.region);
        let window_ms = self.window_ms;
        if !self.series.contains_key(&key) {
            self.series.insert(key.clone(), Series::new(w));
        }
        let Some(series) = self.series.get_mut(&key) else {
            return;
        };
        if w.start_ms <= series.state.last_start {
            return;
        }
        series.refresh(&self.rules, self.generation);
        let state = &mut series.state;
        state.last_start = w.start_ms;
        state.partition = w.partition;
        let retention = series
            .selected
            .iter()
            .filter_map(|r| r.span_ms())
            .max()
            .unwrap_or(0);
        let keep_sketch = series
            .selected
            .iter()
            .any(|r| matches!(r.check, Check::Latency { .. }));
        state.ring.push(w, keep_sketch, retention);

        let mut changes: Vec<(Arc<Rule>, Tagged)> = Vec::new();
        let mut tagged = Vec::new();
        let orphans: Vec<String> = if state.rules.len() == series.selected.len()
            && series.selected.iter().all(|r| {
                state
                    .rules
                    .get(&r.spec.id)
                    .is_some_and(|rs| rs.kind == r.kind)
            }) {
            Vec::new()
        } else {
            state
                .rules
                .iter()
                .filter(|(id, rs)| {
                    !series
                        .selected
                        .iter()
                        .any(|r| &r.spec.id == *id && r.kind == rs.kind)
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in orphans {
            let Some(mut rs) = state.rules.remove(&id) else {
                continue;
            };
            let rule = self.rules.get(&id).or_else(|| self.retired.get(&id));
            if let Some(rule) = rule.filter(|r| r.kind == rs.kind) {
                rs.reset(rule, w.end_ms, &mut tagged);
                changes.extend(tagged.drain(..).map(|t| (Arc::clone(rule), t)));
            }
        }
        let last_sample = state.last_sample;
        for rule in &series.selected {
            if !state.rules.contains_key(&rule.spec.id) {
                state
                    .rules
                    .insert(rule.spec.id.clone(), RuleState::new(rule.kind));
            }
            let Some(rs) = state.rules.get_mut(&rule.spec.id) else {
                continue;
            };
            rs.on_window(rule, w, &state.ring, last_sample, window_ms, &mut tagged);
            changes.extend(tagged.drain(..).map(|t| (Arc::clone(rule), t)));
        }
        if let Some(s) = w.samples.last() {
            state.last_sample = Some(state.last_sample.map_or(s.t_ms, |l| l.max(s.t_ms)));
        }
        requeue(&mut self.timers, &key, series, window_ms);
        if !self.monitors.contains_key(w.monitor_id) {
            self.monitors
                .insert(w.monitor_id.to_owned(), Monitor::default());
        }
        if let Some(m) = self.monitors.get_mut(w.monitor_id) {
            if !m.regions.contains(w.region) {
                m.regions.insert(w.region.to_owned());
            }
            m.partition = w.partition;
        }
        self.dirty.insert(key);
        self.emit(w.monitor_id, w.region, changes, out);
    }

    /// The watermark of `partition` reached `watermark_ms`: runs the timers that are due (no
    /// data, `for`, `keep_firing_for`). Call it after passing every window of the partition
    /// that ends at or before `watermark_ms` to [`Evaluator::on_window`]. Costs O(timers due).
    pub fn on_watermark(
        &mut self,
        partition: i32,
        watermark_ms: i64,
        out: &mut Vec<AlertTransition>,
    ) {
        let Some(queue) = self.timers.get_mut(&partition) else {
            return;
        };
        let mut due = Vec::new();
        while let Some(first) = queue.first() {
            if first.0 > watermark_ms {
                break;
            }
            if let Some((_, key)) = queue.pop_first() {
                due.push(key);
            }
        }
        let until = window_start(watermark_ms, self.window_ms);
        for key in due {
            let Some(series) = self.series.get_mut(&key) else {
                continue;
            };
            series.queued = None;
            series.refresh(&self.rules, self.generation);
            let mut changes: Vec<(Arc<Rule>, Tagged)> = Vec::new();
            let mut tagged = Vec::new();
            let last = series.state.last_sample;
            for rule in &series.selected {
                if let Some(rs) = series.state.rules.get_mut(&rule.spec.id) {
                    rs.advance(rule, until, last, &mut tagged);
                    changes.extend(tagged.drain(..).map(|t| (Arc::clone(rule), t)));
                }
            }
            requeue(&mut self.timers, &key, series, self.window_ms);
            // A timer ran: the state changed even when no transition came of it (a no-data
            // deadline reached while firing).
            let (monitor, region) = (series.monitor.clone(), series.region.clone());
            self.dirty.insert(key);
            self.emit(&monitor, &region, changes, out);
        }
    }

    /// Turns the changes of one series into transitions: regional ones, or for quorum rules the
    /// monitor-level ones they cause.
    fn emit(
        &mut self,
        monitor: &str,
        region: &str,
        changes: Vec<(Arc<Rule>, Tagged)>,
        out: &mut Vec<AlertTransition>,
    ) {
        for (rule, t) in changes {
            let Some(k) = rule.quorum else {
                out.push(transition(&rule, monitor, Some(region), region, &t));
                continue;
            };
            let mut firing: Vec<String> = Vec::new();
            if let Some(m) = self.monitors.get(monitor) {
                for other in m.regions.iter().filter(|r| r.as_str() != region) {
                    let fires = self
                        .series
                        .get(&series_key(monitor, other))
                        .and_then(|s| s.state.rules.get(&rule.spec.id))
                        .is_some_and(|rs| rs.machine.state() == AlertState::Firing);
                    if fires {
                        firing.push(other.clone());
                    }
                }
            }
            if t.change.to == AlertState::Firing {
                firing.push(region.to_owned());
                firing.sort_unstable();
            }
            let Some(m) = self.monitors.get_mut(monitor) else {
                continue;
            };
            let was = m.firing.contains(&rule.spec.id);
            let now = firing.len() >= k;
            if was == now {
                continue;
            }
            if now {
                m.firing.insert(rule.spec.id.clone());
            } else {
                m.firing.remove(&rule.spec.id);
            }
            self.dirty_monitors.insert(monitor.to_owned());
            let (from, to) = if now {
                (AlertState::Ok, AlertState::Firing)
            } else {
                (AlertState::Firing, AlertState::Ok)
            };
            let quorum = Tagged {
                change: super::state::Change {
                    from,
                    to,
                    at: t.change.at,
                    value: firing.len() as f64,
                },
                threshold: k as f64,
                severity: t.severity,
            };
            out.push(transition(&rule, monitor, None, &firing.join(","), &quorum));
        }
    }

    /// The changelog since the last call, in key order: (input partition the state belongs
    /// to, key, serialized state or `None` when deleted). Write them durably, to the same
    /// partition of the changelog topic, before committing the offsets of the windows
    /// evaluated.
    pub fn take_changes(&mut self) -> Vec<(i32, String, Option<Vec<u8>>)> {
        let mut records = Vec::with_capacity(self.dirty.len() + self.dirty_monitors.len());
        let mut failed = BTreeSet::new();
        for key in std::mem::take(&mut self.dirty) {
            let Some(series) = self.series.get(&key) else {
                continue;
            };
            match encode(&series.state) {
                Some(value) => records.push((series.state.partition, key, Some(value))),
                None => {
                    failed.insert(key);
                }
            }
        }
        // Encoding cannot fail for these types; if it did, the key is retried next time.
        self.dirty = failed;
        for monitor in std::mem::take(&mut self.dirty_monitors) {
            let Some(m) = self.monitors.get(&monitor) else {
                continue;
            };
            let state = MonitorState {
                firing: m.firing.clone(),
            };
            let value = if m.firing.is_empty() {
                None
            } else if let Some(value) = encode(&state) {
                Some(value)
            } else {
                self.dirty_monitors.insert(monitor);
                continue;
            };
            records.push((m.partition, monitor_key(&monitor), value));
        }
        records.sort_by(|a, b| a.1.cmp(&b.1));
        records
    }

    /// Restores one changelog record of input partition `partition` (at start-up or on
    /// assignment of the partition, before any window of its series).
    pub fn restore(&mut self, partition: i32, key: &str, value: &[u8]) -> Result<(), String> {
        match parse_key(key) {
            Some(Key::Series(monitor, region)) => {
                let mut state: SeriesState = decode(value)?;
                state.partition = partition;
                let m = self.monitors.entry(monitor.to_owned()).or_default();
                m.regions.insert(region.to_owned());
                m.partition = state.partition;
                let mut series = Series {
                    monitor: monitor.to_owned(),
                    region: region.to_owned(),
                    state,
                    selected: Vec::new(),
                    generation: 0,
                    queued: None,
                };
                series.refresh(&self.rules, self.generation);
                if let Some(old) = self.series.get_mut(key) {
                    // Its old timer entry goes with it.
                    series.queued = old.queued.take();
                }
                requeue(&mut self.timers, key, &mut series, self.window_ms);
                self.series.insert(key.to_owned(), series);
                Ok(())
            }
            Some(Key::Monitor(monitor)) => {
                let state: MonitorState = decode(value)?;
                let m = self.monitors.entry(monitor.to_owned()).or_default();
                m.partition = partition;
                m.firing = state.firing;
                Ok(())
            }
            None => Err(format!(
                "not an alert state key: {:?}",
                key.replace(SEP, "␟")
            )),
        }
    }

    /// Drops the state of a partition (revoked: its new owner restores it from the changelog),
    /// without changelog records.
    pub fn drop_partition(&mut self, partition: i32) {
        self.series.retain(|key, s| {
            let keep = s.state.partition != partition;
            if !keep {
                self.dirty.remove(key);
            }
            keep
        });
        self.monitors.retain(|monitor, m| {
            let keep = m.partition != partition;
            if !keep {
                self.dirty_monitors.remove(monitor);
            }
            keep
        });
        self.timers.remove(&partition);
    }

    /// Number of series with state.
    pub fn series(&self) -> usize {
        self.series.len()
    }

    /// Approximate heap bytes of the state (O(series)).
    pub fn heap_bytes(&self) -> usize {
        let series: usize = self
            .series
            .iter()
            .map(|(key, s)| {
                256 + 2 * key.len()
                    + s.state.ring.heap_bytes()
                    + s.selected.capacity() * 8
                    + s.state
                        .rules
                        .iter()
                        .map(|(id, rs)| 160 + id.len() + rs.heap_bytes())
                        .sum::<usize>()
            })
            .sum();
        let monitors: usize = self
            .monitors
            .iter()
            .map(|(id, m)| {
                64 + id.len()
                    + m.regions.iter().map(|r| 32 + r.len()).sum::<usize>()
                    + m.firing.iter().map(|r| 32 + r.len()).sum::<usize>()
            })
            .sum();
        let timers: usize = self
            .timers
            .values()
            .flat_map(|q| q.iter())
            .map(|(_, k)| 48 + k.len())
            .sum();
        series + monitors + timers
    }
}
