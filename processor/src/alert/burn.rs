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

use super::id::Seq;

/// Longest span read from the fine buckets.
pub(crate) const FINE_MAX_MS: i64 = 6 * HOUR_MS;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// One ring of equal-width buckets, oldest first; the last slot is bucket `newest`.
///
/// Each slot holds the running (bad, total) of every bucket up to it, so a span's sums are a
/// difference of two slots, not a walk over the span (six hours of minutes, evaluated every
/// minute). The running sums wrap around `u32`: a difference is exact as long as the span
/// holds fewer than 2³² checks. Stored as the counts of each bucket.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "LevelData<VecDeque<(u32, u32)>>")]
struct Level {
    width_ms: i64,
    newest: i64,
    /// Running (bad, total) up to and including each bucket.
    sums: VecDeque<(u32, u32)>,
    /// Running (bad, total) before the first bucket.
    base: (u32, u32),
}

/// The stored form of a [`Level`].
#[derive(Serialize, Deserialize)]
struct LevelData<S> {
    width_ms: i64,
    newest: i64,
    /// (bad, total) per bucket.
    slots: S,
}

impl From<LevelData<VecDeque<(u32, u32)>>> for Level {
    fn from(data: LevelData<VecDeque<(u32, u32)>>) -> Self {
        let mut level = Level::new(data.width_ms);
        level.newest = data.newest;
        let mut sum = (0u32, 0u32);
        level.sums = data
            .slots
            .into_iter()
            .map(|(bad, total)| {
                sum = (sum.0.wrapping_add(bad), sum.1.wrapping_add(total));
                sum
            })
            .collect();
        level
    }
}

impl Serialize for Level {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        LevelData {
            width_ms: self.width_ms,
            newest: self.newest,
            slots: Seq(self.slots()),
        }
        .serialize(s)
    }
}

impl PartialEq for Level {
    fn eq(&self, other: &Self) -> bool {
        self.width_ms == other.width_ms
            && self.newest == other.newest
            && self.sums.len() == other.sums.len()
            && self.slots().eq(other.slots())
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Level {
    fn new(width_ms: i64) -> Self {
        Self {
            width_ms,
            newest: i64::MIN,
            sums: VecDeque::new(),
            base: (0, 0),
        }
    }

    /// The running sums before bucket `i` of the ring.
    fn before(&self, i: usize) -> (u32, u32) {
        match i.checked_sub(1) {
            Some(prev) => self.sums.get(prev).copied().unwrap_or(self.base),
            None => self.base,
        }
    }

    /// (bad, total) of each bucket, oldest first.
    fn slots(&self) -> impl ExactSizeIterator<Item = (u32, u32)> + Clone + '_ {
        (0..self.sums.len()).map(|i| {
            let (before, at) = (self.before(i), self.sums[i]);
            (at.0.wrapping_sub(before.0), at.1.wrapping_sub(before.1))
        })
    }

    /// Number of buckets in the ring.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sums.len()
    }

    /// Adds counts at time `t_ms`, keeping at most `cap` buckets. Counts older than the ring
    /// are dropped.
    fn add(&mut self, t_ms: i64, bad: u64, total: u64, cap: usize) {
        if cap == 0 {
            self.sums.clear();
            return;
        }
        let idx = t_ms.div_euclid(self.width_ms.max(1));
        let last = self.sums.back().copied().unwrap_or(self.base);
        if self.sums.is_empty() {
            self.newest = idx;
            self.sums.push_back(last);
        } else if idx > self.newest {
            let gap = idx - self.newest;
            match usize::try_from(gap) {
                Ok(gap) if gap < cap => self.sums.extend(std::iter::repeat_n(last, gap)),
                _ => {
                    self.sums.clear();
                    self.base = last;
                    self.sums.push_back(last);
                }
            }
            self.newest = idx;
        }
        while self.sums.len() > cap {
            if let Some(first) = self.sums.pop_front() {
                self.base = first;
            }
        }
        let back = usize::try_from(self.newest - idx).unwrap_or(usize::MAX);
        if back < self.sums.len() {
            let pos = self.sums.len() - 1 - back;
            let (bad, total) = (saturate(bad), saturate(total));
            for sum in self.sums.range_mut(pos..) {
                sum.0 = sum.0.wrapping_add(bad);
                sum.1 = sum.1.wrapping_add(total);
            }
        }
    }

    /// (bad, total) over the buckets starting in `[from_ms, to_ms)`: two slots are read.
    fn sum(&self, from_ms: i64, to_ms: i64) -> (u64, u64) {
        let Some(oldest) = i64::try_from(self.sums.len())
            .ok()
            .and_then(|len| self.newest.checked_sub(len - 1))
        else {
            return (0, 0);
        };
        // Bucket `idx` starts at `idx × width`: in the span when `from ≤ idx × width < to`.
        let first_at_or_after = |t: i64| {
            let w = self.width_ms.max(1);
            t.div_euclid(w) + i64::from(t.rem_euclid(w) != 0)
        };
        let len = self.sums.len();
        let slot = |idx: i64| {
            usize::try_from(idx.saturating_sub(oldest).max(0)).map_or(len, |i| i.min(len))
        };
        let (lo, hi) = (
            slot(first_at_or_after(from_ms)),
            slot(first_at_or_after(to_ms)),
        );
        if lo >= hi {
            return (0, 0);
        }
        let (before, upto) = (self.before(lo), self.before(hi));
        (
            u64::from(upto.0.wrapping_sub(before.0)),
            u64::from(upto.1.wrapping_sub(before.1)),
        )
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
        (self.fine.sums.capacity() + self.coarse.sums.capacity()) * 8
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
        assert_eq!(b.fine.len(), 60);
        b.add(60 * MIN, 0, 100, HOUR_MS);
        assert_eq!(b.fine.len(), 60);
        assert_eq!(
            b.rate(61 * MIN, HOUR_MS, 0.001),
            b.rate(61 * MIN, HOUR_MS, 0.001)
        );
        let (bad, total) = b.fine.sum(MIN, 61 * MIN);
        assert_eq!((bad, total), (100, 6000));
    }

    proptest::proptest! {
        /// Span sums, and the stored form, are those of a plain map of buckets: a ring of
        /// `cap` buckets ending at the newest, cleared by a gap as long as the ring.
        #[test]
        fn levels_are_a_window_of_buckets(
            adds in proptest::collection::vec((0i64..400, 0u64..50, 0u64..100), 1..80),
            width in proptest::sample::select(vec![MIN, 5 * MIN, HOUR_MS]),
            cap in 1usize..120,
            from in -100i64..500,
            len in 0i64..500,
        ) {
            let mut level = Level::new(width);
            let mut model = std::collections::BTreeMap::<i64, (u64, u64)>::new();
            // The newest bucket, and the first since the ring was (re)started.
            let (mut newest, mut start) = (None::<i64>, 0);
            for (minute, bad, total) in adds {
                level.add(minute * MIN, bad, total, cap);
                let idx = (minute * MIN).div_euclid(width);
                match newest {
                    None => (newest, start) = (Some(idx), idx),
                    Some(n) if idx > n => {
                        if idx - n >= cap as i64 {
                            model.clear();
                            start = idx;
                        }
                        newest = Some(idx);
                    }
                    Some(_) => {}
                }
                let newest = newest.unwrap_or(idx);
                let oldest = start.max(newest - cap as i64 + 1);
                model.retain(|&i, _| i >= oldest);
                if idx >= oldest {
                    let slot = model.entry(idx).or_default();
                    *slot = (slot.0 + bad, slot.1 + total);
                }
            }
            let (from_ms, to_ms) = (from * MIN, (from + len) * MIN);
            let expected = model
                .iter()
                .filter(|&(&i, _)| i * width >= from_ms && i * width < to_ms)
                .fold((0, 0), |(b, t), (_, &(bad, total))| (b + bad, t + total));
            proptest::prop_assert_eq!(level.sum(from_ms, to_ms), expected);
            // Stored as every bucket of the ring, oldest first, the empty ones included.
            let newest = newest.unwrap_or(i64::MIN);
            let oldest = newest - level.len() as i64 + 1;
            let slots: Vec<(u32, u32)> = (oldest..=newest)
                .map(|i| model.get(&i).map_or((0, 0), |&(b, t)| (b as u32, t as u32)))
                .collect();
            let stored = LevelData { width_ms: width, newest, slots };
            let bytes = postcard::to_stdvec(&level).unwrap();
            proptest::prop_assert_eq!(&bytes, &postcard::to_stdvec(&stored).unwrap());
            let again: Level = postcard::from_bytes(&bytes).unwrap();
            proptest::prop_assert_eq!(again.sum(from_ms, to_ms), expected);
            proptest::prop_assert_eq!(again, level);
        }
    }

    #[test]
    fn gaps_leave_empty_buckets_and_a_long_gap_clears() {
        let mut b = Buckets::new(u64::MAX, MIN);
        b.add(0, 1, 10, 10 * MIN);
        b.add(3 * MIN, 2, 10, 10 * MIN);
        assert_eq!(b.fine.len(), 4);
        assert_eq!(b.fine.sum(0, 4 * MIN), (3, 20));
        b.add(30 * MIN, 5, 10, 10 * MIN);
        assert_eq!(b.fine.len(), 1);
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
        assert_eq!(b.fine.len(), 360);
        assert_eq!(b.coarse.len(), 72);
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
