//! Tumbling event-time windows and what one window accumulates.
//!
//! An event with event time `t` belongs to exactly one window of length `L`: the one starting at
//! `floor(t / L) * L` (unix milliseconds, so windows align to the epoch and every processor,
//! replay and SQL rollup agrees on the boundaries).
//!
//! [`WindowAgg`] keeps only integer counts and sums plus two sketches, so its result does not
//! depend on the order events arrive in: the same set of events always yields the same row.

pub mod watermark;

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use uuid::Uuid;
use vigil_schema::sketch::Sketch;
use vigil_schema::{AnomalyScores, Outcome, ProbeResult, Timestamp, WindowSummary};

/// Start of the window of length `len_ms` holding event time `t_ms`.
pub fn window_start(t_ms: i64, len_ms: i64) -> i64 {
    t_ms.div_euclid(len_ms) * len_ms
}

/// Event ids already counted in a window: a short list scanned linearly (windows usually hold
/// a few dozen checks), a hash set once it grows.
#[derive(Debug, Clone)]
enum Seen {
    Few(Vec<Uuid>),
    Many(FxHashSet<Uuid>),
}

impl Seen {
    const FEW: usize = 48;

    /// Adds an id; `false` when it was already there.
    fn insert(&mut self, id: Uuid) -> bool {
        match self {
            Seen::Few(ids) => {
                if ids.contains(&id) {
                    return false;
                }
                if ids.len() < Self::FEW {
                    ids.push(id);
                } else {
                    let mut set: FxHashSet<Uuid> = ids.drain(..).collect();
                    set.insert(id);
                    *self = Seen::Many(set);
                }
                true
            }
            Seen::Many(set) => set.insert(id),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Seen::Few(ids) => ids.len(),
            Seen::Many(set) => set.len(),
        }
    }
}

/// Everything one (monitor, region, window) accumulates.
#[derive(Debug, Clone)]
pub struct WindowAgg {
    /// Inclusive start, unix ms.
    pub start: i64,
    /// Exclusive end, unix ms.
    pub end: i64,
    /// Offset of the first event of this window read in this run (it bounds the commit).
    pub first_offset: i64,
    count: u64,
    ok_count: u64,
    errors: [u64; Outcome::ALL.len()],
    status: [u64; 5],
    total_min: u64,
    total_max: u64,
    total_sum: u128,
    dns: (u128, u64),
    connect: (u128, u64),
    tls: (u128, u64),
    ttfb: (u128, u64),
    assertion_failures: u64,
    sketch: Sketch,
    ttfb_sketch: Sketch,
    seen: Seen,
    /// Version of the last row emitted for this window (0: never emitted).
    pub emitted_version: u64,
    /// Scores given when the window first closed; corrections keep them.
    pub anomaly: Option<AnomalyScores>,
    /// The number of the alert-evaluation command that carries its first emission (0:
    /// none); see `alert/stage.rs`.
    pub alert_seq: u64,
    /// Its checks as alert rules see them, kept until the window is first emitted (rules are
    /// evaluated once, when it closes).
    checks: Vec<Check>,
    /// Created after the window had closed and been evicted: holds only the events read
    /// since, and is completed from the stored raw probes when written.
    pub partial: bool,
}

/// One check of a window, for per-check alert rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Check {
    /// Event time, unix ms.
    pub t_ms: i64,
    /// Event id (orders checks with equal times).
    pub id: u128,
    /// Whether the check passed.
    pub ok: bool,
    /// Certificate expiry, unix ms.
    pub cert_expiry_ms: Option<i64>,
}

impl WindowAgg {
    /// An empty window.
    pub fn new(start: i64, end: i64, first_offset: i64, alpha: f64) -> Self {
        Self {
            start,
            end,
            first_offset,
            count: 0,
            ok_count: 0,
            errors: [0; Outcome::ALL.len()],
            status: [0; 5],
            total_min: u64::MAX,
            total_max: 0,
            total_sum: 0,
            dns: (0, 0),
            connect: (0, 0),
            tls: (0, 0),
            ttfb: (0, 0),
            assertion_failures: 0,
            sketch: Sketch::new(alpha),
            ttfb_sketch: Sketch::new(alpha),
            seen: Seen::Few(Vec::new()),
            emitted_version: 0,
            anomaly: None,
            alert_seq: 0,
            checks: Vec::new(),
            partial: false,
        }
    }

    /// Adds an event; `false` (and no change) when an event with the same id was already added.
    pub fn add(&mut self, event: &ProbeResult) -> bool {
        if !self.seen.insert(event.event_id) {
            return false;
        }
        self.count += 1;
        if event.outcome == Outcome::Ok {
            self.ok_count += 1;
        } else {
            self.errors[event.outcome as usize] += 1;
        }
        if let Some(code) = event.status_code
            && (100..600).contains(&code)
        {
            self.status[usize::from(code / 100) - 1] += 1;
        }
        let t = &event.timings;
        self.total_min = self.total_min.min(t.total_us);
        self.total_max = self.total_max.max(t.total_us);
        self.total_sum += u128::from(t.total_us);
        for (phase, acc) in [
            (t.dns_us, &mut self.dns),
            (t.connect_us, &mut self.connect),
            (t.tls_us, &mut self.tls),
            (t.ttfb_us, &mut self.ttfb),
        ] {
            if let Some(us) = phase {
                acc.0 += u128::from(us);
                acc.1 += 1;
            }
        }
        if let Some(ttfb) = t.ttfb_us {
            self.ttfb_sketch.add(ttfb as f64);
        }
        if event.assertions.iter().any(|a| !a.passed) {
            self.assertion_failures += 1;
        }
        self.sketch.add(t.total_us as f64);
        if self.emitted_version == 0 {
            self.checks.push(Check {
                t_ms: event.event_time.as_millis(),
                id: event.event_id.as_u128(),
                ok: event.outcome == Outcome::Ok,
                cert_expiry_ms: event.tls_cert_expiry.map(Timestamp::as_millis),
            });
        }
        true
    }

    /// Takes the checks in event-time order (then by id, so arrival order does not matter),
    /// leaving none: called once, at the first emission.
    pub fn take_checks(&mut self) -> Vec<Check> {
        let mut checks = std::mem::take(&mut self.checks);
        checks.sort_unstable();
        checks
    }

    /// Checks by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub fn status_counts(&self) -> [u64; 5] {
        self.status
    }

    /// Checks that passed.
    pub fn ok_count(&self) -> u64 {
        self.ok_count
    }

    /// The total-time sketch.
    pub fn sketch(&self) -> &Sketch {
        &self.sketch
    }

    /// Number of distinct events.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The version a row emitted now carries: the number of distinct events. It grows with
    /// every correction (a late event adds one) and is identical when the same events are
    /// processed again, so ReplacingMergeTree keeps the most complete row.
    pub fn version(&self) -> u64 {
        self.count
    }

    /// Share of checks that passed (1 for an empty window).
    pub fn availability(&self) -> f64 {
        if self.count == 0 {
            1.0
        } else {
            self.ok_count as f64 / self.count as f64
        }
    }

    /// p95 of total time, µs (0 when empty).
    pub fn p95_us(&self) -> f64 {
        self.sketch.quantile(0.95).unwrap_or(0.0)
    }

    /// The row's content as the event published on `vigil.windows`.
    pub fn summary(&self, monitor_id: &str, region: &str) -> WindowSummary {
        let q = |s: &Sketch, q: f64| s.quantile(q).unwrap_or(0.0);
        let mean = |(sum, n): (u128, u64)| if n == 0 { 0.0 } else { sum as f64 / n as f64 };
        let errors: BTreeMap<String, u64> = Outcome::ALL
            .iter()
            .filter(|o| self.errors[**o as usize] > 0)
            .map(|o| (o.as_str().to_owned(), self.errors[*o as usize]))
            .collect();
        WindowSummary {
            monitor_id: monitor_id.to_owned(),
            region: region.to_owned(),
            window_start: Timestamp::from_millis(self.start),
            window_end: Timestamp::from_millis(self.end),
            version: self.version(),
            count: self.count,
            ok_count: self.ok_count,
            availability: self.availability(),
            errors,
            status_1xx: self.status[0],
            status_2xx: self.status[1],
            status_3xx: self.status[2],
            status_4xx: self.status[3],
            status_5xx: self.status[4],
            total_min_us: if self.count == 0 { 0 } else { self.total_min },
            total_max_us: self.total_max,
            total_mean_us: mean((self.total_sum, self.count)),
            p50_us: q(&self.sketch, 0.5),
            p75_us: q(&self.sketch, 0.75),
            p90_us: q(&self.sketch, 0.9),
            p95_us: q(&self.sketch, 0.95),
            p99_us: q(&self.sketch, 0.99),
            p999_us: q(&self.sketch, 0.999),
            dns_mean_us: mean(self.dns),
            connect_mean_us: mean(self.connect),
            tls_mean_us: mean(self.tls),
            ttfb_mean_us: mean(self.ttfb),
            ttfb_p95_us: q(&self.ttfb_sketch, 0.95),
            assertion_failures: self.assertion_failures,
            sketch: self.sketch.to_data(),
            anomaly: self.anomaly.clone(),
        }
    }

    /// Observation counts of the timing phases (dns, connect, tls, ttfb): the weights of
    /// their means when windows are merged.
    pub fn phase_counts(&self) -> [u64; 4] {
        [self.dns.1, self.connect.1, self.tls.1, self.ttfb.1]
    }

    /// The time-to-first-byte sketch.
    pub fn ttfb_sketch(&self) -> &Sketch {
        &self.ttfb_sketch
    }

    /// Heap bytes held beyond the window itself (sketch buckets, the duplicate filter,
    /// pending checks, the anomaly explanation), from the buffers' capacities.
    pub fn heap_bytes(&self) -> usize {
        self.sketch.heap_bytes()
            + self.ttfb_sketch.heap_bytes()
            + match &self.seen {
                Seen::Few(ids) => ids.capacity() * std::mem::size_of::<Uuid>(),
                // A hash table: its slots plus a control byte each.
                Seen::Many(set) => set.capacity() * (std::mem::size_of::<Uuid>() + 1),
            }
            + self.checks.capacity() * std::mem::size_of::<Check>()
            + self.anomaly.as_ref().map_or(0, |a| a.reason.capacity())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn duplicates_are_found_in_small_and_large_windows() {
        let mut seen = Seen::Few(Vec::new());
        for i in 0..200u128 {
            assert!(seen.insert(Uuid::from_u128(i)));
            assert!(!seen.insert(Uuid::from_u128(i)));
            assert!(!seen.insert(Uuid::from_u128(i / 2)));
        }
        assert!(matches!(seen, Seen::Many(_)));
        assert_eq!(seen.len(), 200);
    }

    proptest! {
        /// Each event lands in exactly one window per length, and that window covers it.
        #[test]
        fn each_event_in_exactly_one_window(
            t in -1_000_000_000_000i64..4_000_000_000_000,
            len_s in prop::sample::select(vec![10i64, 15, 30, 60, 300, 600, 3600]),
        ) {
            let len = len_s * 1000;
            let start = window_start(t, len);
            prop_assert!(start <= t && t < start + len);
            prop_assert_eq!(start.rem_euclid(len), 0);
            // The neighbouring windows do not cover it.
            prop_assert!(!(start - len <= t && t < start));
            prop_assert!(!(start + len <= t && t < start + 2 * len));
        }
    }
}
