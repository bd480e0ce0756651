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
use super::id::Seq;

thread_local! {
    /// The buckets of a quantile being computed, and their counts per key (reused: one
    /// evaluation after another).
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// A quantile's buckets, and their counts per key.
type Scratch = (Vec<(i32, u64)>, Vec<u64>);

/// Longest span a window-based rule is evaluated over; longer ones are cut to it.
pub(crate) const MAX_SPAN_MS: i64 = 3_600_000;

/// What the ring keeps of one window; its sketch's buckets are in [`Ring::buckets`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    start: i64,
    count: u64,
    ok_count: u64,
    status: [u64; 5],
    sketch: Option<Meta>,
}

/// A window's sketch, but for its buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Meta {
    alpha: f64,
    zero_count: u64,
    /// Number of its buckets.
    len: u32,
}

/// Recent windows of one series, oldest first.
///
/// The buckets of every window's sketch are kept in one buffer, in window order, rather than
/// one allocation per window: a span's buckets are then one contiguous run, read without a
/// cache miss per window. Stored (see `Serialize`) as a list of windows with their sketches.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "RingData")]
pub(crate) struct Ring {
    entries: VecDeque<Entry>,
    /// (key, count) of the windows' sketches, in the order of `entries`.
    buckets: VecDeque<(i32, u64)>,
}

/// The stored form of a [`Ring`].
#[derive(Deserialize)]
struct RingData {
    entries: VecDeque<EntryData<SketchData>>,
}

/// The stored form of an [`Entry`].
#[derive(Serialize, Deserialize)]
struct EntryData<S> {
    start: i64,
    count: u64,
    ok_count: u64,
    status: [u64; 5],
    sketch: Option<S>,
}

impl From<RingData> for Ring {
    fn from(data: RingData) -> Self {
        let mut ring = Ring::default();
        for e in data.entries {
            let sketch = e
                .sketch
                .filter(|d: &SketchData| d.keys.len() == d.counts.len())
                .and_then(|d| {
                    let len = u32::try_from(d.keys.len()).ok()?;
                    ring.buckets
                        .extend(d.keys.iter().copied().zip(d.counts.iter().copied()));
                    Some(Meta {
                        alpha: d.alpha,
                        zero_count: d.zero_count,
                        len,
                    })
                });
            ring.entries.push_back(Entry {
                start: e.start,
                count: e.count,
                ok_count: e.ok_count,
                status: e.status,
                sketch,
            });
        }
        ring
    }
}

impl Serialize for Ring {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        /// The windows, each with its run of buckets.
        struct Entries<'a>(&'a Ring);
        impl Serialize for Entries<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let ring = self.0;
                let mut at = 0;
                s.collect_seq(ring.entries.iter().map(|e| {
                    let sketch = e.sketch.map(|m| {
                        let from = at;
                        at += m.len as usize;
                        SketchRef(ring, m, from..at)
                    });
                    EntryData {
                        start: e.start,
                        count: e.count,
                        ok_count: e.ok_count,
                        status: e.status,
                        sketch,
                    }
                }))
            }
        }
        /// A window's sketch, serialized as [`SketchData`].
        struct SketchRef<'a>(&'a Ring, Meta, std::ops::Range<usize>);
        impl Serialize for SketchRef<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let SketchRef(ring, meta, range) = self;
                let run = || ring.buckets.range(range.clone());
                let mut st = s.serialize_struct("SketchData", 4)?;
                st.serialize_field("alpha", &meta.alpha)?;
                st.serialize_field("keys", &Seq(run().map(|b| b.0)))?;
                st.serialize_field("counts", &Seq(run().map(|b| b.1)))?;
                st.serialize_field("zero_count", &meta.zero_count)?;
                st.end()
            }
        }
        let mut st = s.serialize_struct("Ring", 1)?;
        st.serialize_field("entries", &Entries(self))?;
        st.end()
    }
}

impl Ring {
    /// Adds a closed window (later than every window in the ring) and drops the windows that
    /// started before `w.end_ms - retention_ms`.
    pub(crate) fn push(&mut self, w: &ClosedWindow<'_>, keep_sketch: bool, retention_ms: i64) {
        let from = w.end_ms.saturating_sub(retention_ms.min(MAX_SPAN_MS));
        while let Some(e) = self.entries.front().filter(|e| e.start < from) {
            let len = e.sketch.map_or(0, |m| m.len as usize);
            self.buckets.drain(..len.min(self.buckets.len()));
            self.entries.pop_front();
        }
        if w.start_ms >= from {
            let buckets = w.sketch.buckets();
            let sketch = match u32::try_from(buckets.len()) {
                Ok(len) if keep_sketch => {
                    self.buckets.extend(buckets.iter().copied());
                    Some(Meta {
                        alpha: w.sketch.alpha(),
                        zero_count: w.sketch.zero_count(),
                        len,
                    })
                }
                _ => None,
            };
            self.entries.push_back(Entry {
                start: w.start_ms,
                count: w.count,
                ok_count: w.ok_count,
                status: w.status,
                sketch,
            });
        }
    }

    /// The windows that started in `[end - span, end)`, newest first, each with the end of its
    /// run of buckets in [`Ring::buckets`].
    fn span(&self, end: i64, span_ms: i64) -> impl Iterator<Item = (&Entry, usize)> {
        let from = end.saturating_sub(span_ms.min(MAX_SPAN_MS));
        let mut run_end = self.buckets.len();
        self.entries
            .iter()
            .rev()
            .map(move |e| {
                let at = run_end;
                run_end = run_end.saturating_sub(e.sketch.map_or(0, |m| m.len as usize));
                (e, at)
            })
            .take_while(move |(e, _)| e.start >= from)
            .filter(move |(e, _)| e.start < end)
    }

    /// Share of ok checks over the span; `None` without checks.
    pub(crate) fn availability(&self, end: i64, span_ms: i64) -> Option<f64> {
        let (ok, n) = self
            .span(end, span_ms)
            .fold((0u64, 0u64), |(ok, n), (e, _)| {
                (ok + e.ok_count, n + e.count)
            });
        (n > 0).then(|| ok as f64 / n as f64)
    }

    /// Share of responses of `class` among responses with a status over the span; `None`
    /// without any.
    pub(crate) fn status_share(&self, end: i64, span_ms: i64, class: StatusClass) -> Option<f64> {
        let mut all = 0u64;
        let mut matching = 0u64;
        for (e, _) in self.span(end, span_ms) {
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
        SCRATCH
            .with_borrow_mut(|(buckets, dense)| self.quantile_with(end, span_ms, q, buckets, dense))
    }

    /// The same answer as merging the sketches and asking the merged one (see
    /// `Sketch::quantile`), without building it: the buckets are collected, then counted per
    /// key when their keys are close together (latencies of one endpoint), else sorted.
    fn quantile_with(
        &self,
        end: i64,
        span_ms: i64,
        q: f64,
        buckets: &mut Vec<(i32, u64)>,
        dense: &mut Vec<u64>,
    ) -> Option<f64> {
        buckets.clear();
        let mut alpha = None;
        let (mut zero, mut count) = (0u64, 0u64);
        let (mut lo, mut hi) = (i32::MAX, i32::MIN);
        for (m, run_end) in self
            .span(end, span_ms)
            .filter_map(|(e, at)| e.sketch.map(|m| (m, at)))
        {
            if *alpha.get_or_insert(m.alpha) != m.alpha {
                continue;
            }
            zero += m.zero_count;
            count += m.zero_count;
            let run = run_end.saturating_sub(m.len as usize)..run_end;
            for &(k, c) in self.buckets.range(run) {
                count += c;
                lo = lo.min(k);
                hi = hi.max(k);
                buckets.push((k, c));
            }
        }
        let sketch = Sketch::try_new(alpha?).ok()?;
        if count == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = (q * (count - 1) as f64).floor() as u64;
        if rank < zero || buckets.is_empty() {
            return Some(0.0);
        }
        // The answer is the key holding the `rank`-th value from the bottom, the
        // `count - 1 - rank`-th from the top: walked from the nearer end (high percentiles,
        // the usual ones, from the top).
        let above = count - 1 - rank;
        let from_top = above < rank - zero;
        let width = usize::try_from(i64::from(hi) - i64::from(lo) + 1).unwrap_or(usize::MAX);
        if width <= 8 * buckets.len() + 512 {
            dense.clear();
            dense.resize(width, 0);
            for &(k, c) in buckets.iter() {
                if let Some(n) = dense.get_mut((i64::from(k) - i64::from(lo)) as usize) {
                    *n += c;
                }
            }
            // `lo + i` is at most `hi`.
            let key = |i: usize| sketch.value_of(lo.saturating_add(i as i32));
            if from_top {
                let mut seen = 0;
                for (i, &c) in dense.iter().enumerate().rev() {
                    seen += c;
                    if seen > above {
                        return Some(key(i));
                    }
                }
            } else {
                let mut seen = zero;
                for (i, &c) in dense.iter().enumerate() {
                    seen += c;
                    if seen > rank {
                        return Some(key(i));
                    }
                }
            }
        } else {
            buckets.sort_unstable_by_key(|b| b.0);
            let mut seen = zero;
            for &(key, c) in buckets.iter() {
                seen += c;
                if seen > rank {
                    return Some(sketch.value_of(key));
                }
            }
        }
        Some(sketch.value_of(hi))
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.buckets.capacity() * std::mem::size_of::<(i32, u64)>()
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
    use proptest::prelude::{Just, prop_oneof};

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

    proptest::proptest! {
        /// The ring's quantile over a span is the merged sketch's, whether the keys are close
        /// together (counted per key) or far apart (sorted).
        #[test]
        fn quantiles_are_the_merged_sketchs(
            windows in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(0.0), 1.0..1e3f64, 1e3..1e12f64], 0..40),
                1..8,
            ),
            q in 0.0..=1.0f64,
            span in 1i64..10,
        ) {
            let mut ring = Ring::default();
            let mut merged = Sketch::default();
            let n = windows.len() as i64;
            for (i, values) in windows.iter().enumerate() {
                let mut s = Sketch::default();
                for &v in values {
                    s.add(v);
                }
                let start = i as i64 * 60_000;
                ring.push(&window(start, 0, 0, [0; 5], &s), true, 3_600_000);
                if i as i64 >= n - span {
                    merged.merge(&s).unwrap();
                }
            }
            let got = ring.quantile(n * 60_000, span * 60_000, q);
            proptest::prop_assert_eq!(got, merged.quantile(q));
        }
    }

    /// A ring as it was stored before its buckets were pooled: one sketch per window.
    #[derive(Serialize)]
    struct Stored {
        entries: Vec<EntryData<SketchData>>,
    }

    #[test]
    fn rings_are_stored_as_windows_with_their_sketches() {
        let mut ring = Ring::default();
        let mut stored = Vec::new();
        for i in 0..6u64 {
            let mut s = Sketch::default();
            for v in 0..i * 3 {
                s.add(1_000.0 * (v + 1) as f64);
            }
            s.add(0.0);
            let start = i as i64 * 60_000;
            // Every other window without its sketch; a 3-minute retention drops the first ones.
            let keep = i % 2 == 0;
            let w = window(start, i, i + 1, [0, i, 0, 0, 1], &s);
            ring.push(&w, keep, 180_000);
            stored.push(EntryData {
                start,
                count: i + 1,
                ok_count: i,
                status: [0, i, 0, 0, 1],
                sketch: keep.then(|| s.to_data()),
            });
        }
        let kept = stored.split_off(3);
        let bytes = postcard::to_stdvec(&ring).unwrap();
        assert_eq!(
            bytes,
            postcard::to_stdvec(&Stored { entries: kept }).unwrap()
        );
        let again: Ring = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(again, ring);
        assert_eq!(
            again.quantile(360_000, 180_000, 0.5),
            ring.quantile(360_000, 180_000, 0.5)
        );
    }

    #[test]
    fn interval_is_the_last_gap_or_the_window() {
        assert_eq!(interval_ms(None, Some(5), 60_000), 60_000);
        assert_eq!(interval_ms(Some(0), Some(30_000), 60_000), 30_000);
        assert_eq!(interval_ms(Some(0), Some(10), 60_000), 1_000);
    }
}
