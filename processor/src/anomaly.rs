//! Streaming anomaly detection for one univariate series (one value per window: p95 latency,
//! error rate, …). Causal (no look-ahead), bounded memory, deterministic, no per-series tuning.
//!
//! Scored on the Numenta Anomaly Benchmark by `cargo bench -p vigil-benches --bench nab`.
//!
//! Each point is scored against four cheap views of "normal" behaviour, and every view is
//! calibrated against its own history so that one global threshold fits every series:
//!
//! * **spike**: distance from a slow exponentially-weighted baseline, in units of the
//!   baseline's mean absolute deviation;
//! * **shift**: the same distance for a fast exponentially-weighted mean (level shifts,
//!   sustained drift);
//! * **season**: distance from the value usually seen at this time of day (48 half-hour
//!   buckets, each with its own mean and deviation);
//! * **range**: how far the value lies outside every value seen so far, relative to that range.
//!
//! Each raw feature feeds a decayed, log-binned histogram; the score of a point is the
//! surprise `-log10 P(feature >= current)` of its most surprising feature (Bonferroni-corrected
//! for the number of features) divided by [`Config::cap`]. Beyond the largest value seen the tail
//! is extrapolated as a power law, so bigger breaks of a record score higher. Once a season
//! bucket is mature, spike surprise is capped by seasonal surprise, so that regular daily
//! spikes (cron jobs) stop firing. After a score reaches [`Config::fire`] the output is held at
//! zero for [`Config::rest`] points so that one incident produces one alert.
//!
//! State is bounded (4 histograms of at most [`Config::num_bins`] bins, only the occupied ones
//! stored, plus one small struct per season bucket: [`Detector::heap_bytes`]), every update is
//! O(occupied bins), and the detector is deterministic: replaying the same history rebuilds the
//! same state.

pub mod series;

use std::sync::Arc;

/// Tunable parameters. [`Config::default`] is the configuration evaluated on NAB.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Points observed before feature histograms start learning (baseline settling).
    pub stat_warmup: u64,
    /// Points observed before any non-zero score is emitted.
    pub warmup: u64,
    /// Rate of the slow exponentially-weighted baseline (mean and absolute deviation).
    pub slow_rate: f64,
    /// Rate of the fast exponentially-weighted mean used by the level-shift feature.
    pub fast_rate: f64,
    /// Per-point decay of the feature histograms (effective memory `1 / (1 - decay)` points).
    pub hist_decay: f64,
    /// Histogram resolution, bins per factor of two.
    pub bins_per_octave: i32,
    /// Smallest histogram octave (raw feature values below `2^lowest_octave` share a bin).
    pub lowest_octave: i32,
    /// Largest histogram octave.
    pub highest_octave: i32,
    /// Power-law exponent of the tail extrapolated beyond the largest value seen.
    pub beyond_exponent: f64,
    /// Surprise (`-log10 p`) that maps to score 1.
    pub cap: f64,
    /// Points during which output is suppressed after an alert.
    pub rest: u64,
    /// Score at which an alert is considered raised (starts the rest period).
    pub fire: f64,
    /// Number of time-of-day buckets of the seasonal profile.
    pub season_buckets: usize,
    /// Exponential rate inside a mature season bucket.
    pub season_rate: f64,
    /// Samples a bucket needs before the seasonal feature uses it (counts stop at 255, so
    /// larger values act as 255).
    pub season_min: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            stat_warmup: 30,
            warmup: 150,
            slow_rate: 0.01,
            fast_rate: 0.2,
            hist_decay: 0.9999,
            bins_per_octave: 4,
            lowest_octave: -40,
            highest_octave: 40,
            beyond_exponent: 2.0,
            cap: 4.0,
            rest: 150,
            fire: 0.5,
            season_buckets: 48,
            season_rate: 0.1,
            season_min: 3,
        }
    }
}

impl Config {
    /// Number of bins of each feature histogram.
    pub fn num_bins(&self) -> usize {
        let octaves = (self.highest_octave - self.lowest_octave).max(0);
        usize::try_from(octaves * self.bins_per_octave.max(1)).unwrap_or(0) + 2
    }
}

/// Result of scoring one point.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// Anomaly score in `[0, 1]`; compare against one global threshold.
    pub score: f64,
    /// Short human-readable explanation (empty when nothing stands out).
    pub reason: String,
    /// What the detector expected and how unlikely the value was (`None` during the warm-up
    /// and the rest after an alert, when the score is 0 whatever the value).
    pub explanation: Option<Explanation>,
}

/// Why a point scored what it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Explanation {
    /// The view that found the point most surprising: `spike`, `shift`, `season` or `range`.
    pub feature: &'static str,
    /// What that view expected: the baseline (spike, shift), the usual value at this time of
    /// day (season), the nearest bound of the values seen so far (range).
    pub expected: f64,
    /// `value - expected`.
    pub error: f64,
    /// The probability, under the series' own history, of a point at least this unusual in that
    /// view, corrected for the four views looked at: the score is
    /// `-log10(probability) / cap`, clamped to `[0, 1]` (with `cap` 4, score 0.9 is a
    /// probability of about 2.5e-4 per point, 0.99 about 1.1e-4).
    pub probability: f64,
}

/// Exponentially-weighted mean and mean absolute deviation.
#[derive(Debug, Clone, Copy, Default)]
struct EwStats {
    mean: f64,
    dev: f64,
    initialised: bool,
}

impl EwStats {
    fn update(&mut self, x: f64, rate: f64) {
        ew_step(&mut self.mean, &mut self.dev, x, rate, self.initialised);
        self.initialised = true;
    }
}

/// One step of an exponentially-weighted mean and mean absolute deviation; the first value
/// (`initialised` false) starts them.
fn ew_step(mean: &mut f64, dev: &mut f64, x: f64, rate: f64, initialised: bool) {
    if initialised {
        let err = x - *mean;
        *mean += rate * err;
        *dev += rate * (err.abs() - *dev);
    } else {
        *mean = x;
        *dev = 0.0;
    }
}

/// [`EwStats`] of one season bucket, whose count says whether it was initialised, stored as
/// `f32` (8 bytes instead of 24, for 48 buckets per detector and two detectors per series: the
/// seasonal profile is most of a detector's memory; a bucket's mean and deviation need no more
/// than `f32`'s seven digits).
#[derive(Debug, Clone, Copy, Default)]
struct SeasonStats {
    mean: f32,
    dev: f32,
}

impl SeasonStats {
    fn mean(self) -> f64 {
        f64::from(self.mean)
    }

    fn dev(self) -> f64 {
        f64::from(self.dev)
    }

    /// [`EwStats::update`] of a bucket that has seen `count` values before (computed in `f64`).
    fn update(&mut self, x: f64, rate: f64, count: u8) {
        let (mut mean, mut dev) = (self.mean(), self.dev());
        ew_step(&mut mean, &mut dev, x, rate, count > 0);
        self.mean = mean as f32;
        self.dev = dev as f32;
    }
}

/// Tail-probability factor applied when a feature that was always zero becomes non-zero.
const FIRST_MOVE_FACTOR: f64 = 1e-3;

/// Exponentially-decayed, log-binned histogram answering `P(R >= r)`.
///
/// Decay is implemented lazily: new samples get a growing weight `gain`, and everything is
/// rescaled when the weight gets large, so an update touches a single bin. Only the bins that
/// ever received a value are stored (a feature's values span a few octaves of the 80 the bins
/// cover), in bin order, so a detector costs a few KiB rather than the full grid's 20 KiB.
#[derive(Debug, Clone)]
struct TailHistogram {
    /// Occupied bins, ascending: (bin, weight).
    bins: Vec<(u32, f64)>,
    gain: f64,
    total: f64,
    max_seen: f64,
}

/// What every histogram of a configuration shares (kept once, not in each histogram).
#[derive(Debug, Clone)]
struct TailShape {
    /// Index of the last bin (the grid has `last + 1`).
    last: usize,
    inv_decay: f64,
    bins_per_octave: i32,
    lowest_bin: i32,
    beyond_exponent: f64,
}

impl TailShape {
    fn new(cfg: &Config) -> Self {
        Self {
            last: cfg.num_bins().saturating_sub(1),
            inv_decay: 1.0 / cfg.hist_decay,
            bins_per_octave: cfg.bins_per_octave.max(1),
            lowest_bin: cfg.lowest_octave * cfg.bins_per_octave.max(1),
            beyond_exponent: cfg.beyond_exponent,
        }
    }

    fn bin(&self, r: f64) -> usize {
        if r.is_nan() || r <= 0.0 {
            return 0;
        }
        let last = self.last;
        let raw =
            (r.log2() * f64::from(self.bins_per_octave)).floor() - f64::from(self.lowest_bin) + 1.0;
        if raw < 1.0 {
            1.min(last)
        } else if raw >= last as f64 {
            last
        } else {
            // In range (1..last), so the conversion is exact.
            raw as usize
        }
    }
}

impl TailHistogram {
    fn new() -> Self {
        Self {
            bins: Vec::new(),
            gain: 1.0,
            total: 0.0,
            max_seen: 0.0,
        }
    }

    /// Surprise `-log10 P(R >= r)` under the decayed history (0 when empty).
    fn surprise(&self, shape: &TailShape, r: f64) -> f64 {
        if self.total <= 0.0 {
            return 0.0;
        }
        let b = shape.bin(r);
        // Weight below bin `b`, and in it.
        let (mut below, mut at) = (0.0, 0.0);
        for &(i, w) in &self.bins {
            match (i as usize).cmp(&b) {
                std::cmp::Ordering::Less => below += w,
                std::cmp::Ordering::Equal => at = w,
                std::cmp::Ordering::Greater => break,
            }
        }
        let above = (self.total - below - at).max(0.0) + 0.5 * at;
        // One pseudo-observation at +infinity keeps p > 0.
        let mut p = (above + self.gain) / (self.total + self.gain);
        if r > self.max_seen && self.max_seen > 0.0 {
            p *= (self.max_seen / r).powf(shape.beyond_exponent);
        } else if r > 0.0 && self.max_seen <= 0.0 {
            // The feature has only ever been exactly zero (e.g. a flat line): any movement
            // is treated as far beyond the record.
            p *= FIRST_MOVE_FACTOR;
        }
        -p.log10()
    }

    fn add(&mut self, shape: &TailShape, r: f64) {
        self.gain *= shape.inv_decay;
        let b = u32::try_from(shape.bin(r)).unwrap_or(u32::MAX);
        match self.bins.binary_search_by_key(&b, |&(i, _)| i) {
            Ok(pos) => self.bins[pos].1 += self.gain,
            Err(pos) => {
                // Bins are added a few dozen times in a histogram's life: exact capacity
                // keeps the doubling's slack out of a million detectors.
                self.bins.reserve_exact(1);
                self.bins.insert(pos, (b, self.gain));
            }
        }
        self.total += self.gain;
        self.max_seen = (self.max_seen * (1.0 / shape.inv_decay)).max(r);
        if self.gain > 1e50 {
            let g = self.gain;
            self.bins.iter_mut().for_each(|(_, x)| *x /= g);
            self.total /= g;
            self.gain = 1.0;
        }
    }

    /// Heap bytes held.
    fn heap_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<(u32, f64)>()
    }
}

/// The views of normal behaviour a point is compared against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feature {
    Spike = 0,
    Shift = 1,
    Season = 2,
    Range = 3,
}

impl Feature {
    fn name(self) -> &'static str {
        match self {
            Feature::Spike => "spike",
            Feature::Shift => "shift",
            Feature::Season => "season",
            Feature::Range => "range",
        }
    }
}

const FEATURES: [Feature; 4] = [
    Feature::Spike,
    Feature::Shift,
    Feature::Season,
    Feature::Range,
];

/// Streaming anomaly detector; feed points in time order with [`Detector::update`].
#[derive(Debug, Clone)]
pub struct Detector {
    shared: Arc<Shared>,
    seen: u64,
    baseline: EwStats,
    fast: EwStats,
    lowest: f64,
    highest: f64,
    season: Box<[SeasonStats]>,
    /// Values each bucket has seen, saturating (only small counts are ever compared).
    season_count: Box<[u8]>,
    tails: [TailHistogram; 4],
    since_alert: u64,
}

/// The configuration and what follows from it, shared by every detector made with it.
#[derive(Debug)]
struct Shared {
    cfg: Config,
    shape: TailShape,
}

impl Detector {
    /// Creates a detector with an empty history.
    pub fn new(cfg: Config) -> Self {
        let shape = TailShape::new(&cfg);
        Self::with_shared(Arc::new(Shared { cfg, shape }))
    }

    /// A detector with the default configuration, sharing it with every other one (what the
    /// processor keeps per series).
    pub fn with_defaults() -> Self {
        static DEFAULTS: std::sync::LazyLock<Arc<Shared>> = std::sync::LazyLock::new(|| {
            let cfg = Config::default();
            let shape = TailShape::new(&cfg);
            Arc::new(Shared { cfg, shape })
        });
        Self::with_shared(Arc::clone(&DEFAULTS))
    }

    fn with_shared(shared: Arc<Shared>) -> Self {
        let buckets = shared.cfg.season_buckets.max(1);
        Self {
            seen: 0,
            baseline: EwStats::default(),
            fast: EwStats::default(),
            lowest: f64::INFINITY,
            highest: f64::NEG_INFINITY,
            season: vec![SeasonStats::default(); buckets].into_boxed_slice(),
            season_count: vec![0; buckets].into_boxed_slice(),
            tails: std::array::from_fn(|_| TailHistogram::new()),
            since_alert: u64::MAX / 2,
            shared,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.shared.cfg
    }

    /// Heap bytes held (O(1)): the occupied histogram bins and the seasonal profile (the
    /// shared configuration not included).
    pub fn heap_bytes(&self) -> usize {
        self.tails
            .iter()
            .map(TailHistogram::heap_bytes)
            .sum::<usize>()
            + self.season.len() * std::mem::size_of::<SeasonStats>()
            + self.season_count.len() * std::mem::size_of::<u8>()
    }

    /// Number of points processed so far.
    pub fn points_seen(&self) -> u64 {
        self.seen
    }

    fn bucket(&self, timestamp_secs: i64) -> usize {
        let n = self.season.len() as i64;
        let idx = timestamp_secs.rem_euclid(86_400) * n / 86_400;
        usize::try_from(idx).unwrap_or(0)
    }

    fn epsilon(&self) -> f64 {
        1e-6 * (self.baseline.mean.abs() + 1.0)
    }

    fn raw_features(&self, bucket: usize, value: f64) -> [f64; 4] {
        let eps = self.epsilon();
        let scale = self.baseline.dev + eps;
        let spike = (value - self.baseline.mean).abs() / scale;
        let fast = if self.fast.initialised {
            self.fast.mean + self.shared.cfg.fast_rate * (value - self.fast.mean)
        } else {
            value
        };
        let shift = (fast - self.baseline.mean).abs() / scale;
        let b = self.season[bucket];
        let season = if self.season_mature(bucket) {
            (value - b.mean()).abs() / (b.dev() + 0.5 * self.baseline.dev + eps)
        } else {
            0.0
        };
        let range = if self.seen > 0 {
            let outside = (value - self.highest).max(self.lowest - value).max(0.0);
            outside / (self.highest - self.lowest + eps)
        } else {
            0.0
        };
        [spike, shift, season, range]
    }

    /// Whether a bucket has seen enough values for the seasonal feature.
    fn season_mature(&self, bucket: usize) -> bool {
        u32::from(self.season_count[bucket]) >= self.shared.cfg.season_min.min(u32::from(u8::MAX))
    }

    fn learn(&mut self, bucket: usize, value: f64) {
        let slow = if self.seen > 20 {
            self.shared.cfg.slow_rate
        } else {
            1.0 / (self.seen as f64 + 1.0)
        };
        self.baseline.update(value, slow);
        self.fast.update(value, self.shared.cfg.fast_rate);
        self.lowest = self.lowest.min(value);
        self.highest = self.highest.max(value);
        let count = self.season_count[bucket];
        let rate = if count > 5 {
            self.shared.cfg.season_rate
        } else {
            1.0 / (f64::from(count) + 1.0)
        };
        self.season[bucket].update(value, rate, count);
        self.season_count[bucket] = count.saturating_add(1);
    }

    /// What `feature` expected of the point (before learning it).
    fn expected(&self, feature: Feature, bucket: usize, value: f64) -> f64 {
        match feature {
            Feature::Spike | Feature::Shift => self.baseline.mean,
            Feature::Season => self.season[bucket].mean(),
            Feature::Range if value > self.highest => self.highest,
            Feature::Range if value < self.lowest => self.lowest,
            Feature::Range => value,
        }
    }

    fn explain(&self, feature: Feature, bucket: usize, value: f64) -> String {
        let base = self.baseline.mean;
        let dev = self.baseline.dev + self.epsilon();
        let dir = |x: f64, r: f64| if x >= r { "above" } else { "below" };
        match feature {
            Feature::Spike => {
                let k = (value - base).abs() / dev;
                format!(
                    "value {value:.4} is {k:.1}x the usual deviation {} its recent baseline {base:.4}",
                    dir(value, base)
                )
            }
            Feature::Shift => {
                let level = self.fast.mean + self.shared.cfg.fast_rate * (value - self.fast.mean);
                let k = (level - base).abs() / dev;
                format!(
                    "short-term level {level:.4} shifted {k:.1}x the usual deviation {} baseline {base:.4}",
                    dir(level, base)
                )
            }
            Feature::Season => {
                let mean = self.season[bucket].mean();
                format!(
                    "value {value:.4} {} the {mean:.4} typical at this time of day",
                    dir(value, mean),
                )
            }
            Feature::Range => format!(
                "value {value:.4} outside the range seen so far [{:.4}, {:.4}]",
                self.lowest, self.highest
            ),
        }
    }

    /// Scores one point and then learns from it. Points must arrive in time order;
    /// non-finite values are ignored (score 0, state unchanged).
    pub fn update(&mut self, timestamp_secs: i64, value: f64) -> Score {
        if !value.is_finite() {
            return Score {
                score: 0.0,
                reason: "non-finite value ignored".to_owned(),
                explanation: None,
            };
        }
        let bucket = self.bucket(timestamp_secs);
        let raw = self.raw_features(bucket, value);
        self.seen += 1;

        let mut score = 0.0;
        let mut corrected = 0.0;
        let mut winner = None;
        if self.seen > self.shared.cfg.warmup {
            let mut surprise = [0.0; 4];
            for f in FEATURES {
                surprise[f as usize] =
                    self.tails[f as usize].surprise(&self.shared.shape, raw[f as usize]);
            }
            // A regular daily peak is not a spike: the season caps it (and is then the view
            // the point is explained by).
            let mut capped = false;
            if self.season_mature(bucket) {
                let (spike, season) = (Feature::Spike as usize, Feature::Season as usize);
                capped = surprise[spike] > surprise[season];
                surprise[spike] = surprise[spike].min(surprise[season]);
            }
            let mut best = 0.0;
            for f in FEATURES {
                if surprise[f as usize] > best {
                    best = surprise[f as usize];
                    winner = Some(f);
                }
            }
            if capped && winner == Some(Feature::Spike) {
                winner = Some(Feature::Season);
            }
            best -= (FEATURES.len() as f64).log10();
            corrected = best.max(0.0);
            score = (best / self.shared.cfg.cap).clamp(0.0, 1.0);
        }
        let reason = match winner {
            Some(f) if score > 0.0 => self.explain(f, bucket, value),
            _ => String::new(),
        };
        let explanation = match (winner, self.seen > self.shared.cfg.warmup) {
            (_, false) => None,
            (winner, true) => {
                let feature = winner.unwrap_or(Feature::Spike);
                let expected = self.expected(feature, bucket, value);
                Some(Explanation {
                    feature: feature.name(),
                    expected,
                    error: value - expected,
                    probability: 10f64.powf(-corrected),
                })
            }
        };

        if self.seen > self.shared.cfg.stat_warmup {
            for (tail, r) in self.tails.iter_mut().zip(raw) {
                tail.add(&self.shared.shape, r);
            }
        }
        self.learn(bucket, value);

        self.since_alert = self.since_alert.saturating_add(1);
        if self.since_alert <= self.shared.cfg.rest {
            return Score {
                score: 0.0,
                reason: String::new(),
                explanation: None,
            };
        }
        if score >= self.shared.cfg.fire && score > 0.0 {
            self.since_alert = 0;
        }
        Score {
            score,
            reason,
            explanation,
        }
    }
}

#[cfg(test)]
mod tests;
