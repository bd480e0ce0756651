//! The recent closed windows of one series, merged over a rule's span.
//!
//! A ring of window aggregates in start order, shared by every window-based rule of the series.
//! It holds the windows that started within the longest span any of those rules needs, capped
//! at [`MAX_SPAN_MS`], so it is bounded by `MAX_SPAN_MS / window length` entries. A span ending
//! at `end` covers the windows starting in `[end - span, end)`: windows missing from it (no
//! checks, or before the series was seen) just are not there. Sketches are kept only while a
//! latency rule applies to the series.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use vigil_schema::sketch::Sketch;
use vigil_schema::{SketchData, StatusClass};

use super::ClosedWindow;

thread_local! {
    /// The buckets of a quantile being computed (reused: one evaluation after another).
    static SCRATCH: std::cell::RefCell<Vec<(i32, u64)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Longest span a window-based rule is evaluated over; longer ones are cut to it.
pub(crate) const MAX_SPAN_MS: i64 = 3_600_000;

/// What the ring keeps of one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    start: i64,
    count: u64,
    ok_count: u64,
    status: [u64; 5],
    sketch: Option<SketchData>,
}

/// Recent windows of one series, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ring {
    entries: VecDeque<Entry>,
}

impl Ring {
    /// Adds a closed window (later than every window in the ring) and drops the windows that
    /// started before `w.end_ms - retention_ms`.
    pub(crate) fn push(&mut self, w: &ClosedWindow<'_>, keep_sketch: bool, retention_ms: i64) {
        let from = w.end_ms.saturating_sub(retention_ms.min(MAX_SPAN_MS));
        // The buffers of a window leaving the ring hold the next one's sketch.
        let mut spare = None;
        while self.entries.front().is_some_and(|e| e.start < from) {
            spare = self.entries.pop_front().and_then(|e| e.sketch);
        }
        if w.start_ms >= from {
            let sketch = keep_sketch.then(|| match spare {
                Some(mut data) => {
                    w.sketch.write_data(&mut data);
                    data
                }
                None => w.sketch.to_data(),
            });
            self.entries.push_back(Entry {
                start: w.start_ms,
                count: w.count,
                ok_count: w.ok_count,
                status: w.status,
                sketch,
            });
        }
    }

    fn span(&self, end: i64, span_ms: i64) -> impl Iterator<Item = &Entry> {
        let from = end.saturating_sub(span_ms.min(MAX_SPAN_MS));
        self.entries
            .iter()
            .rev()
            .take_while(move |e| e.start >= from)
            .filter(move |e| e.start < end)
    }

    /// Share of ok checks over the span; `None` without checks.
    pub(crate) fn availability(&self, end: i64, span_ms: i64) -> Option<f64> {
        let (ok, n) = self
            .span(end, span_ms)
            .fold((0u64, 0u64), |(ok, n), e| (ok + e.ok_count, n + e.count));
        (n > 0).then(|| ok as f64 / n as f64)
    }

    /// Share of responses of `class` among responses with a status over the span; `None`
    /// without any.
    pub(crate) fn status_share(&self, end: i64, span_ms: i64, class: StatusClass) -> Option<f64> {
        let mut all = 0u64;
        let mut matching = 0u64;
        for e in self.span(end, span_ms) {
            all += e.status.iter().sum::<u64>();
            matching += match class {
                StatusClass::Informational => e.status[0],
                StatusClass::Success => e.status[1],
                StatusClass::Redirection => e.status[2],
                StatusClass::ClientError => e.status[3],
                StatusClass::ServerError => e.status[4],
                StatusClass::AnyError => e.status[3] + e.status[4],
            };
        }
        (all > 0).then(|| matching as f64 / all as f64)
    }

    /// The `q`-quantile of the merged sketches of the span (within the sketch's relative
    /// accuracy of the exact quantile of all their checks); `None` without values. Windows
    /// stored without a sketch, or with another accuracy than the newest, are left out.
    pub(crate) fn quantile(&self, end: i64, span_ms: i64, q: f64) -> Option<f64> {
        // The same answer as merging the sketches and asking the merged one (see
        // `Sketch::quantile`), without building them: collect the buckets, sort, walk.
        let newest = self.span(end, span_ms).find_map(|e| e.sketch.as_ref())?;
        let alpha = newest.alpha;
        SCRATCH.with_borrow_mut(|buckets| self.quantile_with(end, span_ms, q, alpha, buckets))
    }

    fn quantile_with(
        &self,
        end: i64,
        span_ms: i64,
        q: f64,
        alpha: f64,
        buckets: &mut Vec<(i32, u64)>,
    ) -> Option<f64> {
        buckets.clear();
        let mut zero = 0u64;
        for data in self
            .span(end, span_ms)
            .filter_map(|e| e.sketch.as_ref())
            .filter(|d| d.alpha == alpha && d.keys.len() == d.counts.len())
        {
            zero += data.zero_count;
            buckets.extend(data.keys.iter().copied().zip(data.counts.iter().copied()));
        }
        let count = zero + buckets.iter().map(|b| b.1).sum::<u64>();
        if count == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = (q * (count - 1) as f64).floor() as u64;
        if rank < zero {
            return Some(0.0);
        }
        buckets.sort_unstable_by_key(|b| b.0);
        let sketch = Sketch::try_new(alpha).ok()?;
        let mut seen = zero;
        for &(key, n) in buckets.iter() {
            seen += n;
            if seen > rank {
                return Some(sketch.value_of(key));
            }
        }
        buckets.last().map(|b| sketch.value_of(b.0))
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|e| {
                std::mem::size_of::<Entry>()
                    + e.sketch.as_ref().map_or(0, |s| {
                        s.keys.capacity() * std::mem::size_of::<i32>()
                            + s.counts.capacity() * std::mem::size_of::<u64>()
                    })
            })
            .sum()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The check interval of a series, estimated from its last two samples (at least 1 s), or
/// `fallback_ms` (the window length) before it has two.
pub(crate) fn interval_ms(prev: Option<i64>, last: Option<i64>, fallback_ms: i64) -> i64 {
    match (prev, last) {
        (Some(p), Some(l)) => l.saturating_sub(p).max(1_000),
        _ => fallback_ms.max(1_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window<'a>(
        start: i64,
        ok: u64,
        count: u64,
        status: [u64; 5],
        s: &'a Sketch,
    ) -> ClosedWindow<'a> {
        ClosedWindow {
            partition: 0,
            monitor_id: "m",
            region: "r",
            start_ms: start,
            end_ms: start + 60_000,
            count,
            ok_count: ok,
            status,
            sketch: s,
            anomaly: None,
            samples: &[],
        }
    }

    #[test]
    fn spans_merge_the_windows_that_started_in_them() {
        let mut ring = Ring::default();
        let mut slow = Sketch::default();
        slow.add_n(2_000_000.0, 10);
        let mut fast = Sketch::default();
        fast.add_n(1_000.0, 90);
        ring.push(&window(0, 10, 10, [0, 10, 0, 0, 0], &slow), true, 180_000);
        ring.push(
            &window(60_000, 45, 90, [0, 45, 0, 5, 40], &fast),
            true,
            180_000,
        );
        // Span 1m at end 120 s: only the second window.
        assert_eq!(ring.availability(120_000, 60_000), Some(0.5));
        assert_eq!(ring.availability(120_000, 120_000), Some(0.55));
        assert_eq!(
            ring.status_share(120_000, 120_000, StatusClass::AnyError),
            Some(0.45)
        );
        assert_eq!(
            ring.status_share(120_000, 60_000, StatusClass::ServerError),
            Some(40.0 / 90.0)
        );
        let p95 = ring.quantile(120_000, 120_000, 0.95).unwrap();
        assert!((p95 - 2_000_000.0).abs() <= 0.01 * 2_000_000.0, "{p95}");
        let p50 = ring.quantile(120_000, 120_000, 0.5).unwrap();
        assert!((p50 - 1_000.0).abs() <= 10.0, "{p50}");
        // Retention 3m: the window at 0 leaves when the one at 180 s arrives.
        ring.push(&window(120_000, 1, 1, [0; 5], &fast), true, 180_000);
        assert_eq!(ring.len(), 3);
        ring.push(&window(180_000, 1, 1, [0; 5], &fast), true, 180_000);
        assert_eq!(ring.len(), 3);
        assert_eq!(
            ring.status_share(240_000, 60_000, StatusClass::AnyError),
            None
        );
    }

    #[test]
    fn interval_is_the_last_gap_or_the_window() {
        assert_eq!(interval_ms(None, Some(5), 60_000), 60_000);
        assert_eq!(interval_ms(Some(0), Some(30_000), 60_000), 30_000);
        assert_eq!(interval_ms(Some(0), Some(10), 60_000), 1_000);
    }
}
