//! The evaluator's changelog: snapshots of a series' state, and the windows evaluated since.
//!
//! Writing a series' whole state after every window would cost far more than evaluating it
//! (an hour of windows with their sketches, hours of burn-rate buckets). Evaluation is
//! deterministic, so the changelog holds instead, per series:
//! - a **snapshot** (`s␟monitor␟region`): the whole state, numbered by `seq` (1, 2, …);
//! - up to [`SNAPSHOT_EVERY`]` − 1` **deltas** (`d␟monitor␟region␟i`): the `i`-th window
//!   evaluated since snapshot `seq`, as the evaluator received it.
//!
//! A snapshot is taken at the first window of a series, after every [`SNAPSHOT_EVERY`]
//! windows, and whenever the state changed outside a window (a timer ran, a restore replayed):
//! everything a delta cannot reproduce. Restoring reads the snapshot, then evaluates its deltas
//! `1, 2, …` again in order (the contiguous ones based on that snapshot: older ones, left on
//! the compacted topic under the same keys, are skipped). Delta keys are reused cycle after
//! cycle, so a series never holds more than [`SNAPSHOT_EVERY`] records.
//!
//! The deltas' transitions were written before the deltas were (see the consumer), so the
//! replay repeats them under the same ids; if the rules changed meanwhile it produces what the
//! new rules make of those windows, rather than leaving a state no transition announced.

use serde::{Deserialize, Serialize};
use vigil_schema::SketchData;
use vigil_schema::sketch::Sketch;

use super::id::{FORMAT, SEP};
use super::{ClosedWindow, Sample};

/// Windows per snapshot: at most this many minus one deltas follow one.
pub(crate) const SNAPSHOT_EVERY: u32 = 32;

/// The changelog key of delta `index` of a series.
pub(crate) fn delta_key(monitor: &str, region: &str, index: u32) -> String {
    let mut key = String::with_capacity(monitor.len() + region.len() + 16);
    key.push('d');
    for part in [monitor, region] {
        key.push(SEP);
        key.push_str(part);
    }
    key.push(SEP);
    key.push_str(itoa::Buffer::new().format(index));
    key
}

/// One window evaluated since snapshot `base`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Delta {
    pub(crate) base: u64,
    pub(crate) index: u32,
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) count: u64,
    pub(crate) ok_count: u64,
    pub(crate) status: [u64; 5],
    pub(crate) sketch: SketchData,
    pub(crate) anomaly: Option<f64>,
    /// (event time, ok, certificate expiry) of each check.
    pub(crate) samples: Vec<(i64, bool, Option<i64>)>,
}

/// Appends delta `index` of snapshot `base` to `buf`: window `w`, written straight from the window in
/// the bytes postcard gives [`Delta`] (varints, zigzag for signed integers, little-endian
/// floats, length-prefixed sequences), without building one. Every window evaluated outside a
/// replay is one of these, so it is written by hand; a test holds it to postcard's bytes.
pub(crate) fn encode_delta(base: u64, index: u32, w: &ClosedWindow<'_>, buf: &mut Vec<u8>) {
    let buckets = w.sketch.buckets();
    buf.reserve(80 + 16 * w.samples.len() + 12 * buckets.len());
    let mut out = Postcard(buf);
    out.0.push(FORMAT);
    out.uint(base);
    out.uint(u64::from(index));
    out.int(w.start_ms);
    out.int(w.end_ms);
    out.uint(w.count);
    out.uint(w.ok_count);
    for n in w.status {
        out.uint(n);
    }
    out.0.extend_from_slice(&w.sketch.alpha().to_le_bytes());
    out.uint(buckets.len() as u64);
    for &(key, _) in buckets {
        out.int(i64::from(key));
    }
    out.uint(buckets.len() as u64);
    for &(_, count) in buckets {
        out.uint(count);
    }
    out.uint(w.sketch.zero_count());
    match w.anomaly {
        Some(a) => {
            out.0.push(1);
            out.0.extend_from_slice(&a.to_le_bytes());
        }
        None => out.0.push(0),
    }
    out.uint(w.samples.len() as u64);
    for s in w.samples {
        out.int(s.t_ms);
        out.0.push(u8::from(s.ok));
        match s.cert_expiry_ms {
            Some(t) => {
                out.0.push(1);
                out.int(t);
            }
            None => out.0.push(0),
        }
    }
}

/// A buffer written in postcard's encoding.
struct Postcard<'a>(&'a mut Vec<u8>);

impl Postcard<'_> {
    /// An unsigned integer: LEB128, 7 bits a byte, low bits first.
    fn uint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    /// A signed integer: zigzag (0, -1, 1, -2, … as 0, 1, 2, 3, …), then as unsigned.
    fn int(&mut self, n: i64) {
        self.uint(((n << 1) ^ (n >> 63)) as u64);
    }
}

impl Delta {
    /// The window again, for `f` (`Err` if its sketch is invalid).
    pub(crate) fn with_window<R>(
        &self,
        partition: i32,
        monitor_id: &str,
        region: &str,
        f: impl FnOnce(&ClosedWindow<'_>) -> R,
    ) -> Result<R, String> {
        let sketch = Sketch::from_data(&self.sketch).map_err(|e| e.to_string())?;
        let samples: Vec<Sample> = self
            .samples
            .iter()
            .map(|&(t_ms, ok, cert_expiry_ms)| Sample {
                t_ms,
                ok,
                cert_expiry_ms,
            })
            .collect();
        Ok(f(&ClosedWindow {
            partition,
            monitor_id,
            region,
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            count: self.count,
            ok_count: self.ok_count,
            status: self.status,
            sketch: &sketch,
            anomaly: self.anomaly,
            samples: &samples,
        }))
    }
}

/// Of the deltas found for one series, those based on snapshot `seq`, in order, as long as
/// they are contiguous from 1.
pub(crate) fn chain(mut deltas: Vec<Delta>, seq: u64) -> Vec<Delta> {
    deltas.retain(|d| d.base == seq);
    deltas.sort_by_key(|d| d.index);
    let contiguous = deltas
        .iter()
        .zip(1..)
        .take_while(|(d, i)| d.index == *i)
        .count();
    deltas.truncate(contiguous);
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(base: u64, index: u32) -> Delta {
        Delta {
            base,
            index,
            start_ms: i64::from(index) * 60_000,
            end_ms: i64::from(index + 1) * 60_000,
            count: 1,
            ok_count: 1,
            status: [0, 1, 0, 0, 0],
            sketch: SketchData::default(),
            anomaly: None,
            samples: vec![(i64::from(index) * 60_000, true, None)],
        }
    }

    #[test]
    fn chain_keeps_the_contiguous_deltas_of_the_snapshot() {
        let found = vec![
            delta(3, 2),
            delta(2, 3),
            delta(3, 1),
            delta(3, 4),
            delta(2, 5),
        ];
        let got: Vec<(u64, u32)> = chain(found, 3).iter().map(|d| (d.base, d.index)).collect();
        assert_eq!(got, [(3, 1), (3, 2)]);
        assert!(chain(vec![delta(3, 2)], 3).is_empty());
        assert!(chain(vec![delta(1, 1)], 2).is_empty());
    }

    proptest::proptest! {
        /// The hand-written encoding is postcard's encoding of the same [`Delta`].
        #[test]
        fn deltas_are_postcards_bytes(
            base in proptest::num::u64::ANY,
            index in proptest::num::u32::ANY,
            start_ms in proptest::num::i64::ANY,
            end_ms in proptest::num::i64::ANY,
            count in proptest::num::u64::ANY,
            status in proptest::array::uniform5(proptest::num::u64::ANY),
            values in proptest::collection::vec(0.0..1e15f64, 0..50),
            anomaly in proptest::option::of(proptest::num::f64::ANY),
            samples in proptest::collection::vec(
                (proptest::num::i64::ANY, proptest::bool::ANY, proptest::option::of(proptest::num::i64::ANY)),
                0..20,
            ),
        ) {
            let mut sketch = Sketch::default();
            for v in values {
                sketch.add(v);
            }
            let samples: Vec<Sample> = samples
                .into_iter()
                .map(|(t_ms, ok, cert_expiry_ms)| Sample { t_ms, ok, cert_expiry_ms })
                .collect();
            let w = ClosedWindow {
                partition: 0,
                monitor_id: "m",
                region: "r",
                start_ms,
                end_ms,
                count,
                ok_count: count / 2,
                status,
                sketch: &sketch,
                anomaly,
                samples: &samples,
            };
            let delta = Delta {
                base,
                index,
                start_ms,
                end_ms,
                count,
                ok_count: count / 2,
                status,
                sketch: sketch.to_data(),
                anomaly,
                samples: samples.iter().map(|s| (s.t_ms, s.ok, s.cert_expiry_ms)).collect(),
            };
            let expected = vec![FORMAT];
            let expected = postcard::to_extend(&delta, expected).unwrap();
            // Appended after what the buffer held.
            let mut buf = vec![7];
            encode_delta(base, index, &w, &mut buf);
            proptest::prop_assert_eq!(&buf[..1], &[7]);
            proptest::prop_assert_eq!(&buf[1..], &expected[..]);
        }
    }

    #[test]
    fn deltas_round_trip() {
        let sketch = {
            let mut s = Sketch::default();
            for v in [1_000.0, 20_000.0, 300_000.0] {
                s.add(v);
            }
            s
        };
        let samples = [
            Sample {
                t_ms: 5,
                ok: true,
                cert_expiry_ms: Some(9),
            },
            Sample {
                t_ms: 7,
                ok: false,
                cert_expiry_ms: None,
            },
        ];
        let w = ClosedWindow {
            partition: 4,
            monitor_id: "m",
            region: "eu",
            start_ms: 0,
            end_ms: 60_000,
            count: 2,
            ok_count: 1,
            status: [0, 1, 0, 0, 1],
            sketch: &sketch,
            anomaly: Some(0.5),
            samples: &samples,
        };
        assert_eq!(delta_key("m", "eu", 31), format!("d{SEP}m{SEP}eu{SEP}31"));
        let mut bytes = Vec::new();
        encode_delta(7, 3, &w, &mut bytes);
        let d: Delta = super::super::id::decode(&bytes).unwrap();
        assert_eq!((d.base, d.index), (7, 3));
        d.with_window(4, "m", "eu", |again| {
            assert_eq!(again.samples, w.samples);
            assert_eq!(again.sketch.to_data(), sketch.to_data());
            assert_eq!(
                (again.start_ms, again.end_ms, again.count, again.ok_count),
                (0, 60_000, 2, 1)
            );
            assert_eq!((again.status, again.anomaly), (w.status, w.anomaly));
        })
        .unwrap();
    }
}
