//! [`Evaluator`]: every rule on every series of the assigned partitions, its timers, quorum
//! alerts and state changelog.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::hash_map::EntryRef;
use rustc_hash::FxHashMap;
use vigil_schema::{AlertState, AlertTransition};

use super::ClosedWindow;
use super::changelog::{Delta, SNAPSHOT_EVERY, chain, delta_key, encode_delta};
use super::check::Tagged;
use super::id::{Key, SEP, decode, encode, encode_sized, monitor_key, parse_key, series_key};
use super::rules::{Rule, RuleSet};
use super::series::Ring;
use super::summary::transition;
use crate::window::window_start;

use super::tracked::{Monitor, MonitorState, Series, SeriesState, decode_series};
/// Timer queue per partition: (due watermark, series key).
type Timers = BTreeMap<i32, BTreeSet<(i64, Arc<str>)>>;

/// Evaluates alert rules on closed windows, in event time. See the [module docs](super).
#[derive(Debug)]
pub struct Evaluator {
    window_ms: i64,
    rules: RuleSet,
    generation: u64,
    /// Rules removed from the rule set, kept to resolve their alerts.
    retired: BTreeMap<String, Arc<Rule>>,
    series: hashbrown::HashMap<Arc<str>, Series, rustc_hash::FxBuildHasher>,
    monitors: FxHashMap<String, Monitor>,
    timers: Timers,
    /// Series whose state needs a snapshot at the next [`Evaluator::take_changes`].
    dirty: Vec<Arc<str>>,
    dirty_monitors: BTreeSet<String>,
    /// Deltas to write: (partition, series key, delta index, its bytes in `delta_bytes`).
    deltas: Vec<(i32, Arc<str>, u32, std::ops::Range<usize>)>,
    /// The deltas' encoded windows, one after another (one buffer rather than one allocation
    /// per window).
    delta_bytes: Vec<u8>,
    /// Deltas read by [`Evaluator::restore`], by (monitor, region), until
    /// [`Evaluator::finish_restore`] evaluates them again.
    restoring: BTreeMap<(String, String), Vec<Delta>>,
    /// Whether windows are being evaluated again from deltas (none is written for them).
    replaying: bool,
    /// Scratch buffer for series keys.
    key_buf: String,
    /// Sum of the series' `accounted` bytes.
    accounted: usize,
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

fn requeue(timers: &mut Timers, series: &mut Series, window_ms: i64) {
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
        queue.remove(&(at, Arc::clone(&series.key)));
    }
    if let Some((p, at)) = due {
        timers
            .entry(p)
            .or_default()
            .insert((at, Arc::clone(&series.key)));
    }
    series.queued = due;
}

/// Records that `monitor` has a series in `region`, on `partition`.
fn register(
    monitors: &mut FxHashMap<String, Monitor>,
    monitor: &str,
    region: &str,
    partition: i32,
) {
    if !monitors.contains_key(monitor) {
        monitors.insert(monitor.to_owned(), Monitor::default());
    }
    if let Some(m) = monitors.get_mut(monitor) {
        if !m.regions.contains(region) {
            m.regions.insert(region.to_owned());
        }
        m.partition = partition;
    }
}

/// Marks a series changed since the changelog was last taken.
fn mark(dirty: &mut Vec<Arc<str>>, series: &mut Series) {
    if !series.dirty {
        series.dirty = true;
        dirty.push(Arc::clone(&series.key));
    }
}

impl Evaluator {
    /// An evaluator without rules for windows of `window_len_ms`.
    pub fn new(window_len_ms: i64) -> Self {
        Self {
            window_ms: window_len_ms.max(1),
            rules: RuleSet::default(),
            generation: 1,
            retired: BTreeMap::new(),
            series: hashbrown::HashMap::default(),
            monitors: FxHashMap::default(),
            timers: BTreeMap::new(),
            dirty: Vec::new(),
            dirty_monitors: BTreeSet::new(),
            deltas: Vec::new(),
            delta_bytes: Vec::new(),
            restoring: BTreeMap::new(),
            replaying: false,
            key_buf: String::new(),
            accounted: 0,
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
        for series in self.series.values_mut() {
            series.refresh(&self.rules, self.generation);
            requeue(&mut self.timers, series, self.window_ms);
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
        let window_ms = self.window_ms;
        self.key_buf.clear();
        for part in ["s", w.monitor_id, w.region] {
            if !self.key_buf.is_empty() {
                self.key_buf.push(SEP);
            }
            self.key_buf.push_str(part);
        }
        // One lookup: found, or inserted (its key shared with the series).
        let (series, known) = match self.series.entry_ref(self.key_buf.as_str()) {
            EntryRef::Occupied(e) => (e.into_mut(), true),
            EntryRef::Vacant(e) => {
                let key: Arc<str> = Arc::from(e.key());
                let state = SeriesState {
                    partition: w.partition,
                    last_start: i64::MIN,
                    last_sample: None,
                    ring: Ring::default(),
                    rules: Vec::new(),
                    seq: 0,
                };
                let mut series = Series::new(Arc::clone(&key), w.monitor_id, w.region, state);
                series.accounted = series.heap_bytes();
                self.accounted += series.accounted;
                (e.insert_with_key(key, series), false)
            }
        };
        if w.start_ms <= series.state.last_start {
            return;
        }
        series.refresh(&self.rules, self.generation);
        series.state.last_start = w.start_ms;
        // A series seen before on this partition has its monitor's entry already.
        let registered = known && series.state.partition == w.partition;
        series.state.partition = w.partition;
        if !registered {
            register(&mut self.monitors, w.monitor_id, w.region, w.partition);
        }
        if series.selected.is_empty() && series.state.rules.is_empty() {
            // No rule has state or applies here: nothing to evaluate, nothing to keep (a
            // replayed delta still counts, so the next one gets the next index).
            if self.replaying {
                series.deltas += 1;
            }
            if let Some(s) = w.samples.last() {
                let last = &mut series.state.last_sample;
                *last = Some(last.map_or(s.t_ms, |l| l.max(s.t_ms)));
            }
            return;
        }
        series
            .state
            .ring
            .push(w, series.keep_sketch, series.retention);

        let mut changes: Vec<(Arc<Rule>, Tagged)> = Vec::new();
        if series.aligned != series.generation {
            let (rules, retired) = (&self.rules, &self.retired);
            let resolve = |id: &str| rules.get(id).or_else(|| retired.get(id)).cloned();
            series.align(w.end_ms, resolve, &mut changes);
        }
        let mut tagged = Vec::new();
        let state = &mut series.state;
        let last_sample = state.last_sample;
        for (rule, (_, rs)) in series.selected.iter().zip(state.rules.iter_mut()) {
            rs.on_window(rule, w, &state.ring, last_sample, window_ms, &mut tagged);
            changes.extend(tagged.drain(..).map(|t| (Arc::clone(rule), t)));
        }
        if let Some(s) = w.samples.last() {
            state.last_sample = Some(state.last_sample.map_or(s.t_ms, |l| l.max(s.t_ms)));
        }
        requeue(&mut self.timers, series, window_ms);
        if self.replaying {
            series.deltas += 1;
        } else if !series.dirty {
            // A snapshot pending covers this window; otherwise the window is a delta.
            if series.state.seq > 0 && !series.quorum && series.deltas + 1 < SNAPSHOT_EVERY {
                series.deltas += 1;
                let start = self.delta_bytes.len();
                encode_delta(series.state.seq, series.deltas, w, &mut self.delta_bytes);
                let bytes = start..self.delta_bytes.len();
                let key = Arc::clone(&series.key);
                self.deltas.push((w.partition, key, series.deltas, bytes));
            } else {
                mark(&mut self.dirty, series);
            }
        }
        if !changes.is_empty() {
            self.emit(w.monitor_id, w.region, changes, out);
        }
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
                let rs = series
                    .state
                    .rules
                    .iter_mut()
                    .find(|(id, _)| *id == rule.spec.id)
                    .map(|(_, rs)| rs);
                if let Some(rs) = rs {
                    rs.advance(rule, until, last, &mut tagged);
                    changes.extend(tagged.drain(..).map(|t| (Arc::clone(rule), t)));
                }
            }
            requeue(&mut self.timers, series, self.window_ms);
            // A timer ran: the state changed even when no transition came of it (a no-data
            // deadline reached while firing).
            mark(&mut self.dirty, series);
            if !changes.is_empty() {
                let (monitor, region) = (series.monitor.clone(), series.region.clone());
                self.emit(&monitor, &region, changes, out);
            }
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
                        .get(series_key(monitor, other).as_str())
                        .and_then(|s| s.rule_state(&rule.spec.id))
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

    /// The changelog since the last call: (input partition the state belongs to, key,
    /// serialized state or `None` when deleted): deltas, snapshots and quorum states (see
    /// `changelog.rs`). Write them durably, to the same partition of the changelog topic,
    /// after the transitions of the same windows and before committing their offsets.
    pub fn take_changes(&mut self) -> Vec<(i32, String, Option<Bytes>)> {
        let mut records =
            Vec::with_capacity(self.deltas.len() + self.dirty.len() + self.dirty_monitors.len());
        // The next buffer is sized like this one: grown once rather than doubling its way up
        // (each step on fresh pages).
        let next = Vec::with_capacity(self.delta_bytes.len() + self.delta_bytes.len() / 8);
        let bytes = Bytes::from(std::mem::replace(&mut self.delta_bytes, next));
        for (partition, series, index, range) in self.deltas.drain(..) {
            let value = bytes.slice(range.start.min(range.end)..range.end.min(bytes.len()));
            if let Some(Key::Series(monitor, region)) = parse_key(&series) {
                records.push((partition, delta_key(monitor, region, index), Some(value)));
            }
        }
        let mut failed = Vec::new();
        for key in std::mem::take(&mut self.dirty) {
            let Some(series) = self.series.get_mut(&key) else {
                continue;
            };
            series.state.seq += 1;
            match encode_sized(&series.state, series.encoded_len + 16) {
                Some(value) => {
                    series.dirty = false;
                    series.deltas = 0;
                    series.encoded_len = value.len();
                    let heap = series.heap_bytes();
                    self.accounted = (self.accounted + heap).saturating_sub(series.accounted);
                    series.accounted = heap;
                    records.push((
                        series.state.partition,
                        key.to_string(),
                        Some(Bytes::from(value)),
                    ));
                }
                None => {
                    series.state.seq -= 1;
                    failed.push(key);
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
            records.push((m.partition, monitor_key(&monitor), value.map(Bytes::from)));
        }
        records
    }

    /// Restores one changelog record of input partition `partition` (at start-up or on
    /// assignment of the partition, before any window of its series). Once every record of
    /// the partition is read, call [`Evaluator::finish_restore`].
    pub fn restore(&mut self, partition: i32, key: &str, value: &[u8]) -> Result<(), String> {
        match parse_key(key) {
            Some(Key::Delta(monitor, region)) => {
                let delta: Delta = decode(value)?;
                self.restoring
                    .entry((monitor.to_owned(), region.to_owned()))
                    .or_default()
                    .push(delta);
                Ok(())
            }
            Some(Key::Series(monitor, region)) => {
                let mut state = decode_series(value)?;
                state.partition = partition;
                let m = self.monitors.entry(monitor.to_owned()).or_default();
                m.regions.insert(region.to_owned());
                m.partition = state.partition;
                let key: Arc<str> = Arc::from(key);
                let mut series = Series::new(Arc::clone(&key), monitor, region, state);
                series.refresh(&self.rules, self.generation);
                if let Some(old) = self.series.get_mut(&key) {
                    // Its old timer entry goes with it.
                    series.queued = old.queued.take();
                    series.dirty = old.dirty;
                }
                requeue(&mut self.timers, &mut series, self.window_ms);
                series.accounted = series.heap_bytes();
                self.accounted += series.accounted;
                if let Some(old) = self.series.insert(key, series) {
                    self.accounted = self.accounted.saturating_sub(old.accounted);
                }
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

    /// Evaluates again the windows logged since each restored snapshot of `partition`
    /// (see `changelog.rs`), pushing their transitions to `out`: repeats of transitions
    /// written before, under the same ids, unless the rules changed since.
    pub fn finish_restore(&mut self, partition: i32, out: &mut Vec<AlertTransition>) {
        let restoring = std::mem::take(&mut self.restoring);
        self.replaying = true;
        for ((monitor, region), deltas) in restoring {
            let key = series_key(&monitor, &region);
            let Some(series) = self.series.get(key.as_str()) else {
                continue;
            };
            if series.state.partition != partition {
                continue;
            }
            for delta in chain(deltas, series.state.seq) {
                let replayed = delta.with_window(partition, &monitor, &region, |w| {
                    self.on_window(w, out);
                });
                if let Err(e) = replayed {
                    tracing::warn!(monitor, region, error = %e, "Skipped an undecodable alert state delta.");
                    break;
                }
            }
        }
        self.replaying = false;
    }

    /// Drops the state of a partition (revoked: its new owner restores it from the changelog),
    /// without changelog records.
    pub fn drop_partition(&mut self, partition: i32) {
        let mut freed = 0;
        self.series.retain(|_, s| {
            let keep = s.state.partition != partition;
            if !keep {
                freed += s.accounted;
            }
            keep
        });
        self.accounted = self.accounted.saturating_sub(freed);
        // Their bytes stay in the buffer until the next changelog is taken (unreferenced).
        self.deltas.retain(|(p, ..)| *p != partition);
        self.restoring.clear();
        let series = &self.series;
        self.dirty.retain(|key| series.contains_key(key));
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

    /// Approximate heap bytes of the series, as of their last snapshots (O(1): kept up to
    /// date as series are created, snapshotted, restored and dropped).
    pub fn accounted_bytes(&self) -> usize {
        self.accounted
    }

    /// The series' part of [`Evaluator::heap_bytes`], counted now.
    #[cfg(test)]
    pub(crate) fn series_heap_bytes(&self) -> usize {
        self.series.values().map(Series::heap_bytes).sum()
    }

    /// Approximate heap bytes of the state (O(series)).
    pub fn heap_bytes(&self) -> usize {
        let series: usize = self.series.values().map(Series::heap_bytes).sum();
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
