//! The pipeline's memory of windows and where it stands: eviction, the offsets to commit and
//! the resume points restarts start from, and (in tests) a full recount of the incremental
//! bookkeeping.

use super::{
    MONITOR_OVERHEAD, PartitionState, Pipeline, REGION_OVERHEAD, WINDOW_OVERHEAD, WindowRef,
};
use crate::alert::Stage;
use crate::window::watermark::Watermark;

/// What a commit records besides the offset (as the commit's metadata), so a restarted
/// processor resumes a partition exactly where the committed state was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPoint {
    /// The partition's watermark when the offset was computed.
    pub watermark: i64,
    /// The offset it had read up to (exclusive).
    pub read_until: i64,
    /// When closed windows are evicted at once ([`crate::Config::evicts_closed`]): records
    /// below this offset whose window had closed at `watermark` are in rows already written
    /// (the first offset of the oldest closed window still in memory, else `read_until`).
    pub settled: i64,
}

impl CommitPoint {
    /// The commit metadata: `vigil1 wm=<ms> read=<offset> settled=<offset>`.
    pub fn metadata(&self) -> String {
        format!(
            "vigil1 wm={} read={} settled={}",
            self.watermark, self.read_until, self.settled
        )
    }

    /// Reads commit metadata written by [`CommitPoint::metadata`] (`None` for anything else,
    /// such as commits of older versions). Without `settled` (written before closed windows
    /// were evicted at once) nothing counts as settled: closed windows re-read are recomputed.
    pub fn parse(metadata: &str) -> Option<Self> {
        let rest = metadata.strip_prefix("vigil1 wm=")?;
        let (watermark, rest) = rest.split_once(" read=")?;
        let (read, settled) = match rest.split_once(" settled=") {
            Some((read, settled)) => (read, Some(settled.parse().ok()?)),
            None => (rest, None),
        };
        Some(Self {
            watermark: watermark.parse().ok()?,
            read_until: read.parse().ok()?,
            settled: settled.unwrap_or(0),
        })
    }
}

impl Pipeline {
    /// Windows held in memory (open and kept for corrections).
    pub fn windows_in_memory(&self) -> usize {
        self.partitions.values().map(|s| s.windows).sum()
    }

    /// Windows still open (not yet emitted).
    pub fn open_windows(&self) -> usize {
        self.partitions
            .values()
            .map(|s| s.closing.values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// Approximate heap bytes of the windows in memory.
    pub fn window_heap_bytes(&self) -> usize {
        self.partitions.values().map(|s| s.heap).sum()
    }

    /// Approximate heap bytes of the anomaly detectors (kept up to date, O(1)).
    pub fn detector_heap_bytes(&self) -> usize {
        self.detectors.heap_bytes()
    }

    /// Approximate heap bytes of the whole state: windows, detectors and the alert
    /// evaluator's series (O(partitions)).
    pub fn heap_bytes(&self) -> usize {
        self.window_heap_bytes()
            + self.detectors.heap_bytes()
            + self.alerts.as_ref().map_or(0, Stage::accounted_bytes)
    }

    /// Drops windows that are closed (or, when closed windows are kept for corrections,
    /// beyond the correction horizon) and whose latest version was emitted (and whose alert
    /// evaluation was in an output taken). Call only after the last output was written. Takes
    /// them from the front of the by-end index: the cost is the windows evicted, not the
    /// windows in memory.
    pub fn evict(&mut self) -> usize {
        let horizon = match self.cfg.evicts_closed() {
            true => 0,
            false => self.cfg.horizon_ms(),
        };
        let evaluated = self.alerts.as_ref().map_or(u64::MAX, Stage::collected);
        let mut evicted = 0;
        for state in self.partitions.values_mut() {
            let watermark = state.watermark.get();
            state.evicted_until = state.evicted_until.max(watermark.saturating_sub(horizon));
            let mut kept: Vec<(i64, WindowRef)> = Vec::new();
            while let Some(entry) = state.by_end.first_entry() {
                let end = *entry.key();
                if end.saturating_add(horizon) > watermark {
                    break;
                }
                for window_ref in entry.remove() {
                    let (monitor, region, start) = &window_ref;
                    let Some(regions) = state.series.get_mut(monitor) else {
                        continue;
                    };
                    let Some(windows) = regions.get_mut(region) else {
                        continue;
                    };
                    let Some(window) = windows.get(start) else {
                        continue;
                    };
                    if window.emitted_version != window.version() || window.alert_seq > evaluated {
                        // A correction not emitted yet, or alert rules still being evaluated
                        // on it: kept until an output has it.
                        kept.push((end, window_ref));
                        continue;
                    }
                    let (first_offset, bytes) =
                        (window.first_offset, window.heap_bytes() + WINDOW_OVERHEAD);
                    windows.remove(start);
                    let mut freed = bytes;
                    if windows.is_empty() {
                        regions.remove(region);
                        freed += REGION_OVERHEAD + region.len();
                        if regions.is_empty() {
                            state.series.remove(monitor);
                            freed += MONITOR_OVERHEAD + monitor.len();
                        }
                    }
                    if let Some(n) = state.first_offsets.get_mut(&first_offset) {
                        *n -= 1;
                        if *n == 0 {
                            state.first_offsets.remove(&first_offset);
                        }
                    }
                    state.heap = state.heap.saturating_sub(freed);
                    state.windows = state.windows.saturating_sub(1);
                    evicted += 1;
                }
            }
            for (end, window_ref) in kept {
                state.by_end.entry(end).or_default().push(window_ref);
            }
        }
        evicted
    }

    /// Resumes `partition` where a previous run committed it: its watermark at that commit, and
    /// the offset it had read up to. Records re-read below that offset for windows already
    /// final are skipped ([`Disposition::Replayed`]), and windows rebuilt from them are not
    /// emitted until the partition has read past it, so a restart never publishes a partial
    /// window. No effect on a partition that already has state.
    pub fn resume(&mut self, partition: i32, point: CommitPoint) {
        if self.partitions.contains_key(&partition) {
            return;
        }
        let mut state = PartitionState::new(&self.cfg);
        state.watermark =
            Watermark::resumed(self.cfg.lateness_ms(), self.cfg.idle_ms(), point.watermark);
        state.replayed_until = point.read_until;
        state.settled_until = point.settled.min(point.read_until);
        state.settled_wm = point.watermark;
        state.evicted_until = point.watermark;
        state.rebuilt_pending = true;
        self.partitions.insert(partition, state);
    }

    /// Per partition, where to resume after a restart: see [`CommitPoint`]. Call only after the
    /// last output was written.
    pub fn commit_points(&self) -> Vec<(i32, i64, CommitPoint)> {
        let mut points: Vec<(i32, i64, CommitPoint)> = self
            .commit_offsets()
            .into_iter()
            .filter_map(|(p, offset)| {
                let state = self.partitions.get(&p)?;
                let watermark = state.watermark.get();
                let read_until = state.next_offset.max(state.replayed_until);
                // Closed windows still in memory (alert evaluation or a correction pending;
                // after `evict` there are few): their records are not settled yet.
                let unsettled = state
                    .by_end
                    .range(..=watermark)
                    .flat_map(|(_, refs)| refs)
                    .filter_map(|r| state.window(r).map(|w| w.first_offset))
                    .min();
                let point = CommitPoint {
                    watermark,
                    read_until,
                    settled: unsettled.map_or(read_until, |o| o.min(read_until)),
                };
                Some((p, offset, point))
            })
            .collect();
        points.sort_unstable_by_key(|(p, _, _)| *p);
        points
    }

    /// Per partition, the offset to commit (the next one to read after a restart): the first
    /// offset of the oldest window still in memory, or past the last record read. Call only
    /// after the last output was written.
    pub fn commit_offsets(&self) -> Vec<(i32, i64)> {
        let mut offsets: Vec<(i32, i64)> = self
            .partitions
            .iter()
            .map(|(&p, state)| {
                let oldest = state.first_offsets.keys().next().copied();
                (
                    p,
                    oldest.map_or(state.next_offset, |o| o.min(state.next_offset)),
                )
            })
            .collect();
        offsets.sort_unstable();
        offsets
    }

    /// Checks the incremental bookkeeping against a full recount (tests only): window count,
    /// accounted heap, the first-offset multiset and the by-end index.
    #[cfg(test)]
    pub(crate) fn check_bookkeeping(&self) {
        use std::collections::BTreeMap;

        use crate::window::WindowAgg;

        for (p, state) in &self.partitions {
            let windows: Vec<(&String, &String, &WindowAgg)> = state
                .series
                .iter()
                .flat_map(|(m, r)| r.iter().map(move |(region, w)| (m, region, w)))
                .flat_map(|(m, r, w)| w.values().map(move |w| (m, r, &**w)))
                .collect();
            assert_eq!(state.windows, windows.len(), "partition {p}: window count");
            let series: usize = state
                .series
                .iter()
                .map(|(m, regions)| {
                    MONITOR_OVERHEAD
                        + m.len()
                        + regions
                            .keys()
                            .map(|r| REGION_OVERHEAD + r.len())
                            .sum::<usize>()
                })
                .sum();
            let heap: usize = series
                + windows
                    .iter()
                    .map(|(_, _, w)| w.heap_bytes() + WINDOW_OVERHEAD)
                    .sum::<usize>();
            assert_eq!(state.heap, heap, "partition {p}: heap");
            let mut offsets: BTreeMap<i64, usize> = BTreeMap::new();
            for (_, _, w) in &windows {
                *offsets.entry(w.first_offset).or_default() += 1;
            }
            assert_eq!(state.first_offsets, offsets, "partition {p}: first offsets");
            let mut indexed: Vec<(i64, WindowRef)> = state
                .by_end
                .iter()
                .flat_map(|(end, refs)| refs.iter().map(move |r| (*end, r.clone())))
                .collect();
            indexed.sort();
            let mut all: Vec<(i64, WindowRef)> = windows
                .iter()
                .map(|(m, r, w)| (w.end, ((*m).clone(), (*r).clone(), w.start)))
                .collect();
            all.sort();
            assert_eq!(indexed, all, "partition {p}: by-end index");
        }
    }
}
