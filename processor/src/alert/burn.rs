//! Error-budget burn rates over long and short windows (SRE workbook, chapter 5:
//! multiwindow, multi-burn-rate alerts).
//!
//! The burn rate over a span `S` ending at `end` is `(bad / total) / (1 - objective)`: 1 spends
//! the budget exactly over the SLO period, 14.4 spends 2% of a 30-day budget in an hour.
//!
//! Per (rule, series) the bad and total check counts of each closed window are added to two
//! rings of buckets, each slot two `u32` counters:
//! - fine buckets of one minute (or the window length when longer), covering the longest window
//!   of the rule up to [`FINE_MAX_MS`] (6 h: 360 slots);
//! - hourly buckets, kept only when the rule has a window longer than that, covering it (3 d:
//!   72 slots).
//!
//! A span covers the buckets starting in `[end - S, end)`. Spans up to 6 h are read from the
//! fine buckets, so with one-minute windows they are exact; longer spans are read from the
//! hourly buckets and cover between `S - 1h` and `S` (the partly covered oldest hour is left
//! out). Memory per (rule, series) is therefore at most about 3.5 KiB, whatever the period.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Longest span read from the fine buckets.
pub(crate) const FINE_MAX_MS: i64 = 6 * HOUR_MS;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// One ring of equal-width buckets, oldest first; the last slot is bucket `newest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Level {
    width_ms: i64,
    newest: i64,
    /// (bad, total) per bucket.
    slots: VecDeque<(u32, u32)>,
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Level {
    fn new(width_ms: i64) -> Self {
        Self {
            width_ms,
            newest: i64::MIN,
            slots: VecDeque::new(),
        }
    }

    /// Adds counts at time `t_ms`, keeping at most `cap` buckets. Counts older than the ring
    /// are dropped.
    fn add(&mut self, t_ms: i64, bad: u64, total: u64, cap: usize) {
        if cap == 0 {
            self.slots.clear();
            return;
        }
        let idx = t_ms.div_euclid(self.width_ms);
        if self.slots.is_empty() {
            self.newest = idx;
            self.slots.push_back((0, 0));
        } else if idx > self.newest {
            let gap = idx - self.newest;
            match usize::try_from(gap) {
                Ok(gap) if gap < cap => self.slots.extend(std::iter::repeat_n((0, 0), gap)),
                _ => {
                    self.slots.clear();
                    self.slots.push_back((0, 0));
                }
            }
            self.newest = idx;
        }
        while self.slots.len() > cap {
            self.slots.pop_front();
        }
        let back = usize::try_from(self.newest - idx).unwrap_or(usize::MAX);
        if back < self.slots.len() {
            let pos = self.slots.len() - 1 - back;
            if let Some(slot) = self.slots.get_mut(pos) {
                slot.0 = slot.0.saturating_add(saturate(bad));
                slot.1 = slot.1.saturating_add(saturate(total));
            }
        }
    }

    /// (bad, total) over the buckets starting in `[from_ms, to_ms)`: only those slots are read.
    fn sum(&self, from_ms: i64, to_ms: i64) -> (u64, u64) {
        let Some(oldest) = i64::try_from(self.slots.len())
            .ok()
            .and_then(|len| self.newest.checked_sub(len - 1))
        else {
            return (0, 0);
        };
        // Bucket `idx` starts at `idx × width`: in the span when `from ≤ idx × width < to`.
        let first_at_or_after = |t: i64| {
            let w = i128::from(self.width_ms);
            (i128::from(t) + w - 1).div_euclid(w)
        };
        let slot = |idx: i128| {
            usize::try_from((idx - i128::from(oldest)).clamp(0, self.slots.len() as i128))
                .unwrap_or(0)
        };
        let (lo, hi) = (
            slot(first_at_or_after(from_ms)),
            slot(first_at_or_after(to_ms)),
        );
        if lo >= hi {
            return (0, 0);
        }
        self.slots
            .range(lo..hi)
            .fold((0, 0), |(b, t), &(bad, total)| {
                (b + u64::from(bad), t + u64::from(total))
            })
    }
}

/// Bad and total checks of one (rule, series) over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Buckets {
    /// What a good check was when these were counted (latency threshold in µs, or `u64::MAX`
    /// for availability); counts are dropped when it changes.
    slo: u64,
    fine: Level,
    coarse: Level,
}

impl Buckets {
    /// Empty buckets for SLO `slo` and windows of `window_ms`.
    pub(crate) fn new(slo: u64, window_ms: i64) -> Self {
        let fine = window_ms.max(MINUTE_MS);
        Self {
            slo,
            fine: Level::new(fine),
            coarse: Level::new(HOUR_MS.max(fine)),
        }
    }

    /// Whether these buckets count the same good checks at the same width.
    pub(crate) fn matches(&self, slo: u64, window_ms: i64) -> bool {
        self.slo == slo && self.fine.width_ms == window_ms.max(MINUTE_MS)
    }

    /// Adds a window's counts at its start; `longest_ms` is the rule's longest window.
    pub(crate) fn add(&mut self, start_ms: i64, bad: u64, total: u64, longest_ms: i64) {
        let cap = |covered: i64, width: i64| {
            usize::try_from(covered.saturating_add(width - 1) / width).unwrap_or(0)
        };
        let fine_cap = cap(longest_ms.min(FINE_MAX_MS), self.fine.width_ms);
        let coarse_cap = if longest_ms > FINE_MAX_MS {
            cap(longest_ms, self.coarse.width_ms)
        } else {
            0
        };
        self.fine.add(start_ms, bad, total, fine_cap);
        self.coarse.add(start_ms, bad, total, coarse_cap);
    }

    /// The burn rate over `span_ms` ending at `end_ms` for an error budget of `budget`
    /// (`1 - objective`); `None` without checks in the span.
    pub(crate) fn rate(&self, end_ms: i64, span_ms: i64, budget: f64) -> Option<f64> {
        let level = if span_ms <= FINE_MAX_MS {
            &self.fine
        } else {
            &self.coarse
        };
        let (bad, total) = level.sum(end_ms.saturating_sub(span_ms), end_ms);
        (total > 0).then(|| bad as f64 / total as f64 / budget)
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        (self.fine.slots.capacity() + self.coarse.slots.capacity()) * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = MINUTE_MS;

    #[test]
    fn fine_spans_are_exact_with_minute_windows() {
        let mut b = Buckets::new(u64::MAX, MIN);
        // 60 windows of 100 checks, the last 5 with 20 bad each.
        for i in 0..60 {
            let bad = if i >= 55 { 20 } else { 0 };
            b.add(i * MIN, bad, 100, HOUR_MS);
        }
        let end = 60 * MIN;
        // 1h: 100 / 6000 = 1/60 of checks bad, over a budget of 0.001: 16.666…
        let long = b.rate(end, HOUR_MS, 0.001).unwrap();
        assert!((long - 100.0 / 6000.0 / 0.001).abs() < 1e-9, "{long}");
        // 5m: 100 / 500 = 0.2 over 0.001: 200.
        let short = b.rate(end, 5 * MIN, 0.001).unwrap();
        assert!((short - 200.0).abs() < 1e-9, "{short}");
        // Nothing in a span before the data.
        assert_eq!(b.rate(0, 5 * MIN, 0.001), None);
        // The ring keeps one hour: 60 slots.
        assert_eq!(b.fine.slots.len(), 60);
        b.add(60 * MIN, 0, 100, HOUR_MS);
        assert_eq!(b.fine.slots.len(), 60);
        assert_eq!(
            b.rate(61 * MIN, HOUR_MS, 0.001),
            b.rate(61 * MIN, HOUR_MS, 0.001)
        );
        let (bad, total) = b.fine.sum(MIN, 61 * MIN);
        assert_eq!((bad, total), (100, 6000));
    }

    proptest::proptest! {
        /// Reading only the slots of the span gives what filtering every slot by its start
        /// gives.
        #[test]
        fn span_sums_equal_a_scan_of_every_slot(
            adds in proptest::collection::vec((0i64..400, 0u64..50, 0u64..100), 1..80),
            width in proptest::sample::select(vec![MIN, 5 * MIN, HOUR_MS]),
            cap in 1usize..120,
            from in -100i64..500,
            len in 0i64..500,
        ) {
            let mut level = Level::new(width);
            for (minute, bad, total) in adds {
                level.add(minute * MIN, bad, total, cap);
            }
            let (from_ms, to_ms) = (from * MIN, (from + len) * MIN);
            let n = level.slots.len() as i64;
            let scan = level.slots.iter().enumerate().filter(|&(i, _)| {
                let start = (level.newest - (n - 1 - i as i64)) * width;
                start >= from_ms && start < to_ms
            }).fold((0, 0), |(b, t), (_, &(bad, total))| (b + u64::from(bad), t + u64::from(total)));
            proptest::prop_assert_eq!(level.sum(from_ms, to_ms), scan);
        }
    }

    #[test]
    fn gaps_leave_empty_buckets_and_a_long_gap_clears() {
        let mut b = Buckets::new(u64::MAX, MIN);
        b.add(0, 1, 10, 10 * MIN);
        b.add(3 * MIN, 2, 10, 10 * MIN);
        assert_eq!(b.fine.slots.len(), 4);
        assert_eq!(b.fine.sum(0, 4 * MIN), (3, 20));
        b.add(30 * MIN, 5, 10, 10 * MIN);
        assert_eq!(b.fine.slots.len(), 1);
        assert_eq!(b.fine.sum(0, 31 * MIN), (5, 10));
        // A window older than the ring is dropped.
        b.add(0, 7, 7, 10 * MIN);
        assert_eq!(b.fine.sum(0, 31 * MIN), (5, 10));
    }

    #[test]
    fn long_spans_use_hourly_buckets() {
        let longest = 3 * 24 * HOUR_MS;
        let mut b = Buckets::new(u64::MAX, MIN);
        // 80 hours of one bad in 100 per minute; then 30 minutes all bad.
        for m in 0..80 * 60 {
            b.add(m * MIN, 1, 100, longest);
        }
        for m in 80 * 60..80 * 60 + 30 {
            b.add(m * MIN, 100, 100, longest);
        }
        assert_eq!(b.fine.slots.len(), 360);
        assert_eq!(b.coarse.slots.len(), 72);
        let end = (80 * 60 + 30) * MIN;
        // 3d ending at 80h30m: hours 9..=80 start within [8h30m, 80h30m): 71 full hours and the
        // current half hour. The hour starting at 8h (partly in the span) is left out.
        let bad = 71 * 60 + 30 * 100;
        let total = 71 * 60 * 100 + 30 * 100;
        let got = b.rate(end, longest, 0.01).unwrap();
        let want = bad as f64 / total as f64 / 0.01;
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        // 6h is read from minute buckets: exact.
        let got = b.rate(end, FINE_MAX_MS, 0.01).unwrap();
        let want = (330.0 + 3000.0) / 36_000.0 / 0.01;
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }
}
