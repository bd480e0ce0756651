//! The processor's pure core: decode → validate → window → sketch → emit, per Kafka partition.
//!
//! [`Pipeline`] owns no I/O. The consumer feeds it records with their partition and offset and
//! the wall-clock time, and periodically takes its [`Output`] (window rows, raw probes, dead
//! letters), writes it, and then asks for [`Pipeline::evict`] and [`Pipeline::commit_offsets`].
//!
//! Invariants:
//! - A window is emitted when the partition's watermark passes its end, with version = number of
//!   distinct events; a late event within the correction horizon re-emits it with a higher
//!   version; a later one is dead-lettered. No event is dropped without a dead letter.
//! - A window stays in memory until its latest version was written (and its alert evaluation
//!   taken) and it is closed ([`Config::evicts_closed`], raw probes stored: a later event starts
//!   a partial window that the writer completes from the stored probes) or beyond the correction
//!   horizon (raw probes not stored). The commit offset of a partition never passes the first
//!   offset of a window still in memory, and the commit records which re-read records are
//!   already in written rows ([`CommitPoint`]). A restart re-reading from the committed offset
//!   therefore rebuilds every open window from all of its events, completes every correction
//!   from the stored probes, and writes identical rows.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use vigil_schema::{AlertTransition, ProbeResult, decode};

use crate::Config;
use crate::alert::{RuleSet, Stage};
use crate::window::watermark::Watermark;
use crate::window::{WindowAgg, window_start};

/// Earliest event time accepted (2000-01-01): anything older is a producer bug.
const MIN_EVENT_MS: i64 = 946_684_800_000;

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Added to its window.
    Windowed,
    /// Added to a window that had already been emitted: a correction follows.
    Corrected,
    /// Same event id already counted in its window.
    Duplicate,
    /// Beyond the correction horizon: dead-lettered.
    Late,
    /// Read again after a restart, for a window that was final before it: already in its
    /// stored row (or dead-lettered then), so skipped.
    Replayed,
    /// Undecodable or invalid: dead-lettered.
    Invalid,
}

impl Disposition {
    /// Every disposition, in declaration order (`d as usize` indexes it).
    pub const ALL: [Disposition; 6] = [
        Disposition::Windowed,
        Disposition::Corrected,
        Disposition::Duplicate,
        Disposition::Late,
        Disposition::Replayed,
        Disposition::Invalid,
    ];

    /// Label used in metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Disposition::Windowed => "windowed",
            Disposition::Corrected => "corrected",
            Disposition::Duplicate => "duplicate",
            Disposition::Late => "late",
            Disposition::Replayed => "replayed",
            Disposition::Invalid => "invalid",
        }
    }
}

/// Heap bytes a window costs beyond its own allocations, as accounted: the window itself (boxed,
/// so a series' tree node holds pointers, not windows), a whole tree leaf (most series hold a
/// single window, alone in its leaf), and its entries in the by-end and closing indexes (a
/// [`WindowRef`] and the two strings it owns, each).
const WINDOW_OVERHEAD: usize =
    std::mem::size_of::<WindowAgg>() + BTREE_LEAF + 2 * (std::mem::size_of::<WindowRef>() + 2 * 24);

/// A B-tree leaf of `i64` keys and boxed windows: eleven of each, its parent link and lengths.
const BTREE_LEAF: usize = 8 + 11 * 8 + 11 * 8 + 8;

/// Heap bytes a monitor with windows in memory costs besides them: its slot in the series map
/// (key and region map, at the map's load factor) and its region map's first allocation (four
/// slots and their control bytes). Plus the monitor id's bytes.
const MONITOR_OVERHEAD: usize = 2 * (24 + 32) + 4 * (24 + 24) + 20;

/// Heap bytes a region of a monitor costs besides its windows, plus its name's bytes (the
/// allocator's granule).
const REGION_OVERHEAD: usize = 16;

type Windows = BTreeMap<i64, Box<WindowAgg>>;
type WindowRef = (String, String, i64);

/// State of one Kafka partition.
#[derive(Debug)]
struct PartitionState {
    /// monitor → region → window start → window.
    series: HashMap<String, HashMap<String, Windows>>,
    watermark: Watermark,
    /// Open windows by end time, to close them in order as the watermark passes.
    closing: BTreeMap<i64, Vec<WindowRef>>,
    /// Windows changed after their last emission.
    dirty: Vec<WindowRef>,
    windows: usize,
    next_offset: i64,
    /// Offsets below this were read before a restart ([`Pipeline::resume`]): until the
    /// partition reads past it, windows rebuilt from them are incomplete and not emitted.
    replayed_until: i64,
    /// When closed windows are evicted at once: offsets below this, of windows closed at the
    /// resumed watermark ([`CommitPoint::settled`]), are in rows already written.
    settled_until: i64,
    /// The watermark the partition resumed at (`i64::MIN`: not resumed).
    settled_wm: i64,
    /// No window ending after this was evicted (or written before a restart): one created
    /// after its close but ending later cannot have lost events to an eviction.
    evicted_until: i64,
    /// Windows rebuilt during the replay wait in `dirty`: emit them (in time order) before any
    /// window that closes after it, so detectors see every series in order.
    rebuilt_pending: bool,
    /// Every window in memory by end time: eviction takes them from the front instead of
    /// scanning every window at every flush.
    by_end: BTreeMap<i64, Vec<WindowRef>>,
    /// First offsets of the windows in memory (a multiset): the commit offset is the smallest.
    first_offsets: BTreeMap<i64, usize>,
    /// Heap bytes accounted to the windows in memory, kept up to date as they change.
    heap: usize,
}

impl PartitionState {
    fn new(cfg: &Config) -> Self {
        Self {
            series: HashMap::default(),
            watermark: Watermark::new(cfg.lateness_ms(), cfg.idle_ms()),
            closing: BTreeMap::new(),
            dirty: Vec::new(),
            windows: 0,
            next_offset: 0,
            replayed_until: 0,
            settled_until: 0,
            settled_wm: i64::MIN,
            evicted_until: i64::MIN,
            rebuilt_pending: false,
            by_end: BTreeMap::new(),
            first_offsets: BTreeMap::new(),
            heap: 0,
        }
    }

    /// Whether the partition is still re-reading what a previous run had read.
    fn replaying(&self) -> bool {
        self.next_offset < self.replayed_until
    }

    fn window(&self, (monitor, region, start): &WindowRef) -> Option<&WindowAgg> {
        self.series
            .get(monitor)?
            .get(region)?
            .get(start)
            .map(|w| &**w)
    }

    fn window_mut(&mut self, (monitor, region, start): &WindowRef) -> Option<&mut WindowAgg> {
        self.series
            .get_mut(monitor)?
            .get_mut(region)?
            .get_mut(start)
            .map(|w| &mut **w)
    }
}

/// Windowing state of every assigned partition, plus the anomaly detectors.
#[derive(Debug)]
pub struct Pipeline {
    cfg: Config,
    partitions: HashMap<i32, PartitionState>,
    detectors: DetectorSet,
    /// The newest watermark at the last sweep of silent series' detectors.
    detectors_swept: i64,
    /// Alert rule evaluation (on its own thread), once rules were set.
    alerts: Option<Stage>,
    /// Notified when the alert evaluation has transitions to hand out.
    alerts_ready: std::sync::Arc<tokio::sync::Notify>,
    out: Output,
    /// Transitions of `out` already returned by [`Pipeline::fresh_transitions`].
    fresh_from: usize,
}

impl Pipeline {
    /// An empty pipeline. The config must have passed [`Config::validate`].
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            partitions: HashMap::default(),
            detectors: DetectorSet::default(),
            detectors_swept: i64::MIN,
            alerts: None,
            alerts_ready: std::sync::Arc::default(),
            out: Output::default(),
            fresh_from: 0,
        }
    }

    /// Sets the alert rules evaluated from the next closing window on.
    pub fn set_rules(&mut self, rules: RuleSet) {
        self.alert_stage().set_rules(rules);
    }

    /// The alert evaluation stage, started on first use.
    fn alert_stage(&mut self) -> &mut Stage {
        let len = self.cfg.window_ms();
        let ready = &self.alerts_ready;
        self.alerts
            .get_or_insert_with(|| Stage::start(len, std::sync::Arc::clone(ready)))
    }

    /// Notified whenever alert transitions are ready for [`Pipeline::fresh_transitions`]
    /// (rules are evaluated on a thread of their own, so they may come after the call that
    /// closed their window returned).
    pub fn transitions_ready(&self) -> std::sync::Arc<tokio::sync::Notify> {
        std::sync::Arc::clone(&self.alerts_ready)
    }

    /// Restores the alert evaluator's state of probes `partition` from the latest records of
    /// its changelog partition (keys [`StateRecord::changelog_key`]), before the partition's
    /// first event is processed. Records of other partitions are ignored; undecodable ones are
    /// logged and skipped (that series starts afresh).
    pub fn restore_alert_partition(
        &mut self,
        partition: i32,
        records: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) {
        let records = records
            .into_iter()
            .filter_map(|(key, value)| {
                let (p, key) = StateRecord::parse_changelog_key(&key)?;
                (p == partition).then(|| (key.to_owned(), value))
            })
            .collect();
        self.alert_stage().restore(partition, records);
    }

    /// Whether `partition` has state (it was seen since it was last revoked).
    pub fn has_partition(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Processes one record of the probes topic read at wall-clock `now_ms`.
    pub fn process(
        &mut self,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        now_ms: i64,
    ) -> Disposition {
        let Some(payload) = payload else {
            return self.dead_letter(
                partition,
                offset,
                key,
                &[],
                "undecodable: empty value".into(),
            );
        };
        match decode::<ProbeResult>(payload) {
            Ok(event) => self.process_event(partition, offset, key, payload, event, now_ms),
            Err(e) => {
                self.dead_letter(partition, offset, key, payload, format!("undecodable: {e}"))
            }
        }
    }

    /// Processes one decoded event (`raw` is kept for a dead letter if it cannot be windowed).
    pub fn process_event(
        &mut self,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        raw: &[u8],
        event: ProbeResult,
        now_ms: i64,
    ) -> Disposition {
        if let Err(reason) = self.check(&event, now_ms) {
            return self.dead_letter(partition, offset, key, raw, format!("invalid: {reason}"));
        }
        let len = self.cfg.window_ms();
        let horizon = self.cfg.horizon_ms();
        let alpha = self.cfg.sketch_alpha;
        let t = event.event_time.as_millis();
        let start = window_start(t, len);
        let end = start + len;

        let state = self
            .partitions
            .entry(partition)
            .or_insert_with(|| PartitionState::new(&self.cfg));
        state.next_offset = state.next_offset.max(offset + 1);
        let watermark = state.watermark.get();
        if end.saturating_add(horizon) <= watermark {
            if offset < state.replayed_until {
                return Disposition::Replayed;
            }
            let reason = format!(
                "late: event time {} is beyond the correction horizon (window ended {}, \
                 watermark {})",
                event.event_time,
                vigil_schema::Timestamp::from_millis(end),
                vigil_schema::Timestamp::from_millis(watermark),
            );
            return self.dead_letter(partition, offset, key, raw, reason);
        }
        let evicts = self.cfg.evicts_closed();
        if evicts && offset < state.settled_until && end <= state.settled_wm {
            // Closed before the restart, and written with this event in it.
            return Disposition::Replayed;
        }
        // Closed windows are evicted once written: one created after its close (and after an
        // eviction that could have taken it) holds only the events that came since, and is
        // completed from the stored raw probes.
        let partial = evicts && end <= watermark && end <= state.evicted_until;

        let windows = match state.series.get_mut(event.monitor_id.as_str()) {
            Some(regions) => match regions.get_mut(event.region.as_str()) {
                Some(w) => w,
                None => {
                    state.heap += REGION_OVERHEAD + event.region.len();
                    regions.entry(event.region.clone()).or_default()
                }
            },
            None => {
                state.heap += MONITOR_OVERHEAD
                    + event.monitor_id.len()
                    + REGION_OVERHEAD
                    + event.region.len();
                state
                    .series
                    .entry(event.monitor_id.clone())
                    .or_default()
                    .entry(event.region.clone())
                    .or_default()
            }
        };
        let mut created = false;
        let window = windows.entry(start).or_insert_with(|| {
            created = true;
            let mut w = Box::new(WindowAgg::new(start, end, offset, alpha));
            w.partial = partial;
            w
        });
        let before = if created {
            0
        } else {
            window.heap_bytes() + WINDOW_OVERHEAD
        };
        if !window.add(&event) {
            return Disposition::Duplicate;
        }
        let after = window.heap_bytes() + WINDOW_OVERHEAD;
        let already_closed = end <= watermark;
        let needs_correction = already_closed && (window.emitted_version > 0 || created);
        // Field by field: `window` still borrows `state.series`.
        state.heap = (state.heap + after).saturating_sub(before);
        if created {
            state.windows += 1;
            state.by_end.entry(end).or_default().push((
                event.monitor_id.clone(),
                event.region.clone(),
                start,
            ));
            *state.first_offsets.entry(offset).or_default() += 1;
            if !already_closed {
                state.closing.entry(end).or_default().push((
                    event.monitor_id.clone(),
                    event.region.clone(),
                    start,
                ));
            }
        }
        if needs_correction && window.count() == window.emitted_version + 1 {
            // First change since the last emission.
            state
                .dirty
                .push((event.monitor_id.clone(), event.region.clone(), start));
        }

        let before = state.watermark.get();
        let after = state.watermark.observe(t, now_ms);
        if after > before {
            self.close_until(partition);
        }
        if self.cfg.store_probes {
            self.out.probes.push(event);
        }
        if already_closed {
            Disposition::Corrected
        } else {
            Disposition::Windowed
        }
    }

    fn check(&self, event: &ProbeResult, now_ms: i64) -> Result<(), String> {
        if event.monitor_id.is_empty() {
            return Err("monitor_id is empty".into());
        }
        if event.region.is_empty() {
            return Err("region is empty".into());
        }
        let t = event.event_time.as_millis();
        if t < MIN_EVENT_MS {
            return Err(format!("event_time {} is before 2000", event.event_time));
        }
        let skew = self.cfg.max_clock_skew.as_millis() as i64;
        if t > now_ms.saturating_add(skew) {
            return Err(format!(
                "event_time {} is more than {:?} ahead of the processor's clock",
                event.event_time, self.cfg.max_clock_skew
            ));
        }
        Ok(())
    }

    fn dead_letter(
        &mut self,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        payload: &[u8],
        reason: String,
    ) -> Disposition {
        let late = reason.starts_with("late");
        let state = self
            .partitions
            .entry(partition)
            .or_insert_with(|| PartitionState::new(&self.cfg));
        state.next_offset = state.next_offset.max(offset + 1);
        self.out.dead_letters.push(DeadLetter {
            partition,
            offset,
            key: key.map(<[u8]>::to_vec),
            payload: payload.to_vec(),
            reason,
        });
        if late {
            Disposition::Late
        } else {
            Disposition::Invalid
        }
    }

    /// Emits every open window of `partition` that the watermark has passed.
    fn close_until(&mut self, partition: i32) {
        if self
            .partitions
            .get(&partition)
            .is_some_and(|s| s.rebuilt_pending && !s.replaying())
        {
            self.emit_dirty(partition);
        }
        let Some(state) = self.partitions.get_mut(&partition) else {
            return;
        };
        let watermark = state.watermark.get();
        while let Some(entry) = state.closing.first_entry() {
            let end = *entry.key();
            if end > watermark {
                break;
            }
            // Windows closing together are evaluated in key order, not arrival order, and
            // timers run at every window end, so alert transitions come out in the same order
            // however events interleaved and however the watermark advanced.
            let mut refs = entry.remove();
            refs.sort_unstable();
            let emitting = (
                &mut self.detectors,
                &mut self.alerts,
                &mut self.out,
                partition,
            );
            state.emit_windows(&refs, false, emitting);
            if let Some(alerts) = &mut self.alerts {
                alerts.on_watermark(partition, end);
            }
        }
        if let Some(alerts) = &mut self.alerts {
            alerts.on_watermark(partition, watermark);
            alerts.send_batch();
        }
    }

    /// Periodic work at wall-clock `now_ms`: advances idle partitions' watermarks (closing
    /// their windows) and emits corrections of windows changed since their last emission.
    pub fn tick(&mut self, now_ms: i64) {
        let partitions: Vec<i32> = self.partitions.keys().copied().collect();
        for partition in partitions {
            let Some(state) = self.partitions.get_mut(&partition) else {
                continue;
            };
            let before = state.watermark.get();
            if state.watermark.idle(now_ms) > before {
                self.close_until(partition);
            }
            self.emit_dirty(partition);
        }
        self.sweep_detectors();
    }

    /// Emits the windows of `partition` changed since their last emission (corrections, and
    /// windows rebuilt after a restart), in time order. Nothing while the partition re-reads
    /// what a previous run had read: a window rebuilt from those records is partial until
    /// then, and emitting it would publish (and score, and alert on) a window that never
    /// existed.
    fn emit_dirty(&mut self, partition: i32) {
        let Some(state) = self.partitions.get_mut(&partition) else {
            return;
        };
        if state.replaying() {
            return;
        }
        state.rebuilt_pending = false;
        let mut refs = std::mem::take(&mut state.dirty);
        refs.sort_unstable_by(|a, b| (a.2, &a.0, &a.1).cmp(&(b.2, &b.0, &b.1)));
        let emitting = (
            &mut self.detectors,
            &mut self.alerts,
            &mut self.out,
            partition,
        );
        state.emit_windows(&refs, true, emitting);
        if let Some(alerts) = &mut self.alerts {
            alerts.send_batch();
        }
    }

    /// Emits every window still open (end of a bounded replay, or tests).
    pub fn finish(&mut self) {
        let mut partitions: Vec<i32> = self.partitions.keys().copied().collect();
        partitions.sort_unstable();
        for partition in partitions {
            let Some(state) = self.partitions.get_mut(&partition) else {
                continue;
            };
            for (_, mut refs) in std::mem::take(&mut state.closing) {
                refs.sort_unstable();
                let emitting = (
                    &mut self.detectors,
                    &mut self.alerts,
                    &mut self.out,
                    partition,
                );
                state.emit_windows(&refs, false, emitting);
            }
        }
        self.tick(i64::MIN);
    }

    /// Items waiting to be written.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Takes everything produced so far, after waiting for the alert rules to be evaluated on
    /// every window emitted. After writing it durably, call [`Pipeline::evict`] and then
    /// [`Pipeline::commit_offsets`].
    pub fn take_output(&mut self) -> Output {
        self.take(true)
    }

    /// Takes everything produced so far, with the alert evaluation's output as far as it has
    /// got, without waiting for it: windows whose evaluation is still running stay in memory
    /// (and so hold back the commit offset) until an output holding it is taken. What a
    /// running processor flushes. After writing it durably, call [`Pipeline::evict`] and then
    /// [`Pipeline::commit_offsets`].
    pub fn take_ready_output(&mut self) -> Output {
        self.take(false)
    }

    fn take(&mut self, wait: bool) -> Output {
        if let Some(alerts) = &mut self.alerts {
            let collected = alerts.collect(wait);
            self.out.transitions.extend(collected.transitions);
            self.out
                .alert_state
                .extend(
                    collected
                        .changes
                        .into_iter()
                        .map(|(partition, key, value)| StateRecord {
                            partition,
                            key,
                            value,
                        }),
                );
        }
        self.fresh_from = 0;
        std::mem::take(&mut self.out)
    }

    /// The transitions evaluated since the last call (or the last [`Pipeline::take_output`]),
    /// to publish ahead of their batch; they stay in the next output. Does not wait for
    /// evaluations still running: their transitions come at a later call (see
    /// [`Pipeline::transitions_ready`]) and in the next output in any case.
    pub fn fresh_transitions(&mut self) -> &[AlertTransition] {
        if let Some(alerts) = &mut self.alerts {
            self.out.transitions.extend(alerts.fresh());
        }
        let all = &self.out.transitions;
        let from = self.fresh_from.min(all.len());
        self.fresh_from = all.len();
        &all[from..]
    }

    /// Forgets a partition (revoked in a rebalance): its new owner rebuilds it from the log
    /// (and the alert state from the changelog).
    pub fn revoke(&mut self, partition: i32) {
        self.partitions.remove(&partition);
        if let Some(alerts) = &mut self.alerts {
            alerts.drop_partition(partition);
        }
    }

    /// Partitions with state.
    pub fn partitions(&self) -> Vec<i32> {
        let mut p: Vec<i32> = self.partitions.keys().copied().collect();
        p.sort_unstable();
        p
    }

    /// Watermark of a partition (unix ms), if it has seen events.
    pub fn watermark(&self, partition: i32) -> Option<i64> {
        self.partitions
            .get(&partition)
            .map(|s| s.watermark.get())
            .filter(|&w| w != i64::MIN)
    }
}

mod complete;
mod detectors;
mod emit;
mod memory;
mod output;

use detectors::DetectorSet;
pub use memory::CommitPoint;
pub use output::{DeadLetter, EmittedWindow, Output, StateRecord};

#[cfg(test)]
mod restart_tests;
#[cfg(test)]
mod tests;
