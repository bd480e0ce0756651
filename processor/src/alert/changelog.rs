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

/// Encodes delta `index` of snapshot `base`: window `w`, serialized straight from the window
/// (the bytes of [`Delta`], without building one).
pub(crate) fn encode_delta(base: u64, index: u32, w: &ClosedWindow<'_>) -> Option<Vec<u8>> {
    /// The samples as [`Delta::samples`] holds them.
    struct Samples<'a>(&'a [Sample]);
    impl Serialize for Samples<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(|s| (s.t_ms, s.ok, s.cert_expiry_ms)))
        }
    }
    #[derive(Serialize)]
    struct DeltaRef<'a> {
        base: u64,
        index: u32,
        start_ms: i64,
        end_ms: i64,
        count: u64,
        ok_count: u64,
        status: [u64; 5],
        sketch: vigil_schema::sketch::DataRef<'a>,
        anomaly: Option<f64>,
        samples: Samples<'a>,
    }
    let delta = DeltaRef {
        base,
        index,
        start_ms: w.start_ms,
        end_ms: w.end_ms,
        count: w.count,
        ok_count: w.ok_count,
        status: w.status,
        sketch: w.sketch.as_data(),
        anomaly: w.anomaly,
        samples: Samples(w.samples),
    };
    let mut buf = Vec::with_capacity(96 + 20 * w.samples.len() + 12 * w.sketch.bucket_count());
    buf.push(FORMAT);
    postcard::to_extend(&delta, buf).ok()
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
        let bytes = encode_delta(7, 3, &w).unwrap();
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
