//! The anomaly detectors of each series, and the scores they keep from history.

use rustc_hash::FxBuildHasher;

type HashMap<K, V> = hashbrown::HashMap<K, V, FxBuildHasher>;

use crate::anomaly::Detector;
use vigil_schema::AnomalyScores;

use super::Pipeline;

/// Bytes a (monitor, region) entry costs besides its detectors' heap: the detectors (boxed, so
/// a monitor's region map, which allocates four slots for its first region, holds pointers), a
/// slot of the monitor map at its load factor, the region map's first allocation and the
/// allocator's granule of each key.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Detectors>() + 64 + (4 * (24 + 8) + 20) + 2 * 16;

/// The detectors of every (monitor, region), and the heap they hold, kept up to date as they
/// learn (O(1) per window, no scan).
#[derive(Debug, Default)]
pub(super) struct DetectorSet {
    by_monitor: HashMap<String, HashMap<String, Box<Detectors>>>,
    heap: usize,
}

impl DetectorSet {
    /// The detectors of (monitor, region), created empty if new; the closure runs on them and
    /// the heap they hold afterwards is accounted.
    pub(super) fn with<R>(
        &mut self,
        monitor: &str,
        region: &str,
        f: impl FnOnce(&mut Detectors) -> R,
    ) -> R {
        let regions = self.by_monitor.entry_ref(monitor).or_default();
        let d = match regions.entry_ref(region) {
            hashbrown::hash_map::EntryRef::Occupied(e) => e.into_mut(),
            hashbrown::hash_map::EntryRef::Vacant(e) => {
                let d = e.insert(Box::new(Detectors::new()));
                self.heap += ENTRY_OVERHEAD + monitor.len() + region.len() + d.heap_bytes();
                d
            }
        };
        let before = d.heap_bytes();
        let result = f(d);
        self.heap = self.heap + d.heap_bytes() - before;
        result
    }

    /// Heap bytes held by every detector.
    pub(super) fn heap_bytes(&self) -> usize {
        self.heap
    }

    /// Drops the detectors of every series whose last window started before `before_ms` (and
    /// that keeps no seeded scores past it): a series silent that long is as a restarted
    /// processor would find it, with no history to seed from. A full scan: call it rarely.
    /// Returns how many (monitor, region) detectors were dropped.
    pub(super) fn expire(&mut self, before_ms: i64) -> usize {
        let mut dropped = 0;
        let mut freed = 0;
        self.by_monitor.retain(|monitor, regions| {
            regions.retain(|region, d| {
                let keep = d.last_start >= before_ms || d.stored_until >= before_ms;
                if !keep {
                    dropped += 1;
                    freed += ENTRY_OVERHEAD + monitor.len() + region.len() + d.heap_bytes();
                }
                keep
            });
            !regions.is_empty()
        });
        self.heap = self.heap.saturating_sub(freed);
        dropped
    }

    /// The (monitor, region) pairs with detectors, sorted.
    #[cfg(test)]
    pub(super) fn series(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self
            .by_monitor
            .iter()
            .flat_map(|(m, regions)| regions.keys().map(move |r| (m.clone(), r.clone())))
            .collect();
        all.sort();
        all
    }

    /// [`DetectorSet::heap_bytes`] counted again from scratch.
    #[cfg(test)]
    pub(super) fn recount(&self) -> usize {
        self.by_monitor
            .iter()
            .flat_map(|(m, regions)| regions.iter().map(move |(r, d)| (m, r, d)))
            .map(|(m, r, d)| ENTRY_OVERHEAD + m.len() + r.len() + d.heap_bytes())
            .sum()
    }
}

/// The two detectors of one (monitor, region).
#[derive(Debug, Clone)]
pub(super) struct Detectors {
    latency: Detector,
    errors: Detector,
    last_start: i64,
    /// Non-zero scores of the windows seeded from history: a window re-emitted after a
    /// restart (from the committed offsets, however far back) keeps the score it was stored
    /// with, as in an uninterrupted run. Dropped once live scoring passes `stored_until`.
    pub(super) stored: Vec<(i64, AnomalyScores)>,
    /// Start of the newest seeded window plus the correction horizon, a window and the
    /// allowed lateness (as far as windows still in memory reach back).
    pub(super) stored_until: i64,
}

pub(super) fn no_anomaly() -> AnomalyScores {
    AnomalyScores {
        latency: 0.0,
        errors: 0.0,
        combined: 0.0,
        reason: String::new(),
    }
}

impl Detectors {
    pub(super) fn new() -> Self {
        Self {
            latency: Detector::with_defaults(),
            errors: Detector::with_defaults(),
            last_start: i64::MIN,
            stored: Vec::new(),
            stored_until: i64::MIN,
        }
    }

    /// Heap bytes held (O(1)).
    fn heap_bytes(&self) -> usize {
        self.latency.heap_bytes()
            + self.errors.heap_bytes()
            + self.stored.capacity() * std::mem::size_of::<(i64, AnomalyScores)>()
            + self
                .stored
                .iter()
                .map(|(_, a)| a.reason.capacity())
                .sum::<usize>()
    }

    /// Scores a window (in start order). A window at or before the last one scored learns
    /// nothing: it gets its stored score if it was seeded with one, else none.
    pub(super) fn score(&mut self, start_ms: i64, p95_us: f64, error_rate: f64) -> AnomalyScores {
        if start_ms <= self.last_start {
            return self
                .stored
                .iter()
                .find(|(s, _)| *s == start_ms)
                .map_or_else(no_anomaly, |(_, a)| a.clone());
        }
        if start_ms > self.stored_until && !self.stored.is_empty() {
            self.stored = Vec::new();
        }
        self.learn(start_ms, p95_us, error_rate)
    }

    /// Learns a window (later than the last one) and returns its scores.
    pub(super) fn learn(&mut self, start_ms: i64, p95_us: f64, error_rate: f64) -> AnomalyScores {
        if start_ms <= self.last_start {
            return no_anomaly();
        }
        self.last_start = start_ms;
        let secs = start_ms.div_euclid(1000);
        let latency = self.latency.update(secs, p95_us);
        let errors = self.errors.update(secs, error_rate);
        let combined = latency.score.max(errors.score);
        let reason = if combined <= 0.0 {
            String::new()
        } else if latency.score >= errors.score {
            format!("p95 latency: {}", latency.reason)
        } else {
            format!("error rate: {}", errors.reason)
        };
        AnomalyScores {
            latency: latency.score,
            errors: errors.score,
            combined,
            reason,
        }
    }
}

impl Pipeline {
    /// Feeds one window of history to the detectors of (monitor, region), oldest first, so a
    /// restart continues scoring where it left off instead of treating everything as new.
    /// `stored` is the score the window was stored with: if the window is rebuilt (re-read after
    /// a restart, within the correction horizon), it keeps that score.
    pub fn seed_detector(
        &mut self,
        monitor: &str,
        region: &str,
        start_ms: i64,
        p95_us: f64,
        error_rate: f64,
        stored: Option<AnomalyScores>,
    ) {
        let horizon = self.cfg.horizon_ms();
        // How far before the newest stored window a restart may re-emit: the windows still in
        // memory reach back the correction horizon from the watermark, which is ahead of the
        // newest closed window by up to a window and the allowed lateness.
        let reach = horizon
            .saturating_add(self.cfg.window_ms())
            .saturating_add(self.cfg.lateness_ms());
        self.detectors.with(monitor, region, |d| {
            d.learn(start_ms, p95_us, error_rate);
            // Every stored score of the history is kept until live scoring passes it: how far
            // back a restart re-emits depends on the committed offsets, not on the newest window.
            if let Some(a) =
                stored.filter(|a| a.latency != 0.0 || a.errors != 0.0 || a.combined != 0.0)
            {
                d.stored.push((start_ms, a));
            }
            d.stored_until = start_ms.saturating_add(reach);
        });
    }

    /// Once per hour of event time (the newest watermark), drops the detectors of series
    /// silent for longer than the anomaly history: a restarted processor would seed them from
    /// nothing, and a series that went away should not hold memory for good.
    pub(super) fn sweep_detectors(&mut self) {
        const HOUR_MS: i64 = 3_600_000;
        let newest = self.partitions.values().map(|s| s.watermark.get()).max();
        let Some(watermark) = newest.filter(|&w| w != i64::MIN) else {
            return;
        };
        if watermark < self.detectors_swept.saturating_add(HOUR_MS) {
            return;
        }
        self.detectors_swept = watermark;
        let history = i64::try_from(self.cfg.anomaly_history.as_millis()).unwrap_or(i64::MAX);
        let dropped = self.detectors.expire(watermark.saturating_sub(history));
        if dropped > 0 {
            tracing::info!(
                dropped,
                "Detectors of series silent beyond the anomaly history dropped."
            );
        }
    }
}
