//! A mergeable relative-error quantile sketch (DDSketch mapping), and the same quantile in SQL.
//!
//! Values `v > MIN_INDEXABLE` fall into bucket `k = ceil(log_gamma(v))`, which covers
//! `(gamma^(k-1), gamma^k]` with `gamma = (1 + alpha) / (1 - alpha)`. A quantile is answered
//! with the bucket's representative `2 gamma^k / (gamma + 1)`, which lies within relative
//! distance `alpha` of every value in the bucket: **every quantile is within `alpha` (relative)
//! of the exact rank-`floor(q (n - 1))` value of the input** (the lower-nearest-rank quantile).
//! Values `<= MIN_INDEXABLE` (zero latencies) are counted apart and answered as `0`.
//!
//! Buckets are never collapsed: latencies in microseconds between 1 µs and one hour span
//! about 1,100 buckets at 1% accuracy, so the sketch stays bounded without giving up the
//! guarantee, and a typical one-minute window holds a few dozen buckets.
//!
//! Merging adds counts bucket by bucket, so it is exact, commutative and associative: the merge
//! of two sketches equals the sketch of the concatenated input. Windows store the buckets as
//! parallel arrays (`sketch_keys`, `sketch_counts`), so ClickHouse merges them with `sumMap`
//! and [`quantile_sql`] computes the same quantile as [`Sketch::quantile`] in SQL.
//!
//! A hand-written sketch rather than a crate: the stored bucket mapping must be exactly the one
//! the SQL expression inverts, which the available crates neither expose nor promise to keep.

use crate::SketchData;

/// Default relative accuracy (1%).
pub const DEFAULT_ALPHA: f64 = 0.01;

/// Values at or below this are counted in the zero bucket.
pub const MIN_INDEXABLE: f64 = 1e-9;

/// Why stored sketch data cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SketchError {
    /// `alpha` outside `(0, 1)`.
    #[error("sketch alpha must be in (0, 1), got {0}")]
    Alpha(f64),
    /// `keys` and `counts` differ in length.
    #[error("sketch has {keys} keys but {counts} counts")]
    Length {
        /// Number of keys.
        keys: usize,
        /// Number of counts.
        counts: usize,
    },
    /// Sketches with different accuracies cannot be merged.
    #[error("cannot merge sketches with alpha {0} and {1}")]
    Mismatch(f64, f64),
}

/// A DDSketch-style quantile sketch over non-negative values (negative values count as zero).
#[derive(Debug, PartialEq)]
pub struct Sketch {
    alpha: f64,
    gamma: f64,
    ln_gamma: f64,
    /// Non-empty buckets, ascending by key: a sorted vector rather than a tree, so a window's
    /// handful of buckets costs one small allocation (a tree node is ~200 bytes however few).
    bins: Vec<(i32, u64)>,
    zero_count: u64,
    count: u64,
}

impl Clone for Sketch {
    fn clone(&self) -> Self {
        Self {
            bins: self.bins.clone(),
            ..*self
        }
    }

    /// Copies `source` into `self`, reusing its bucket buffer.
    fn clone_from(&mut self, source: &Self) {
        self.bins.clone_from(&source.bins);
        self.alpha = source.alpha;
        self.gamma = source.gamma;
        self.ln_gamma = source.ln_gamma;
        self.zero_count = source.zero_count;
        self.count = source.count;
    }
}

impl Default for Sketch {
    fn default() -> Self {
        Self::new(DEFAULT_ALPHA)
    }
}

impl Sketch {
    /// An empty sketch with relative accuracy `alpha`.
    ///
    /// # Panics
    /// If `alpha` is not in `(0, 1)`; use [`Sketch::try_new`] for untrusted values.
    pub fn new(alpha: f64) -> Self {
        match Self::try_new(alpha) {
            Ok(sketch) => sketch,
            Err(e) => panic!("{e}"),
        }
    }

    /// An empty sketch, or an error when `alpha` is not in `(0, 1)`.
    pub fn try_new(alpha: f64) -> Result<Self, SketchError> {
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(SketchError::Alpha(alpha));
        }
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        Ok(Self {
            alpha,
            gamma,
            ln_gamma: gamma.ln(),
            bins: Vec::new(),
            zero_count: 0,
            count: 0,
        })
    }

    /// The relative accuracy.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The non-empty buckets, ascending by key: (key, count).
    pub fn buckets(&self) -> &[(i32, u64)] {
        &self.bins
    }

    /// Values counted in the zero bucket (at or below [`MIN_INDEXABLE`]).
    pub fn zero_count(&self) -> u64 {
        self.zero_count
    }

    /// Number of non-empty buckets (memory is proportional to it).
    pub fn bucket_count(&self) -> usize {
        self.bins.len()
    }

    /// The bucket index of a value above [`MIN_INDEXABLE`].
    pub fn key(&self, value: f64) -> i32 {
        // ceil(log_gamma(v)); clamped so absurd inputs cannot overflow the key type.
        let k = (value.ln() / self.ln_gamma).ceil();
        k.clamp(f64::from(i32::MIN + 1), f64::from(i32::MAX - 1)) as i32
    }

    /// The value a bucket answers with: within `alpha` of every value it holds.
    pub fn value_of(&self, key: i32) -> f64 {
        2.0 * self.gamma.powi(key) / (self.gamma + 1.0)
    }

    /// Adds one value. NaN is ignored.
    pub fn add(&mut self, value: f64) {
        self.add_n(value, 1);
    }

    /// Adds `n` copies of one value. NaN is ignored.
    pub fn add_n(&mut self, value: f64, n: u64) {
        if value.is_nan() || n == 0 {
            return;
        }
        if value <= MIN_INDEXABLE {
            self.zero_count += n;
        } else {
            self.add_to_bucket(self.key(value), n);
        }
        self.count += n;
    }

    /// Adds `n` to bucket `k`.
    fn add_to_bucket(&mut self, k: i32, n: u64) {
        // Values often land in the newest, largest bucket: try the end first.
        match self.bins.last_mut() {
            Some(last) if last.0 == k => last.1 += n,
            Some(last) if last.0 < k => self.bins.push((k, n)),
            None => self.bins.push((k, n)),
            Some(_) => match self.bins.binary_search_by_key(&k, |&(key, _)| key) {
                Ok(i) => self.bins[i].1 += n,
                Err(i) => self.bins.insert(i, (k, n)),
            },
        }
    }

    /// Heap bytes held by the buckets.
    pub fn heap_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<(i32, u64)>()
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Sketch) -> Result<(), SketchError> {
        if self.alpha != other.alpha {
            return Err(SketchError::Mismatch(self.alpha, other.alpha));
        }
        if self.bins.is_empty() {
            self.bins.clone_from(&other.bins);
        } else if other.bins.len() <= 8 {
            for &(k, c) in &other.bins {
                self.add_to_bucket(k, c);
            }
        } else {
            // One pass over both sorted lists.
            let mut merged = Vec::with_capacity(self.bins.len() + other.bins.len());
            let (mut a, mut b) = (self.bins.iter().peekable(), other.bins.iter().peekable());
            loop {
                let next = match (a.peek(), b.peek()) {
                    (Some(&&x), Some(&&y)) if x.0 == y.0 => {
                        a.next();
                        b.next();
                        (x.0, x.1 + y.1)
                    }
                    (Some(&&x), Some(&&y)) if x.0 < y.0 => {
                        a.next();
                        x
                    }
                    (_, Some(&&y)) => {
                        b.next();
                        y
                    }
                    (Some(&&x), None) => {
                        a.next();
                        x
                    }
                    (None, None) => break,
                };
                merged.push(next);
            }
            self.bins = merged;
        }
        self.zero_count += other.zero_count;
        self.count += other.count;
        Ok(())
    }

    /// The `q`-quantile (`q` clamped to `[0, 1]`): within `alpha` of the exact value of rank
    /// `floor(q (n - 1))` in the sorted input. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        if rank < self.zero_count {
            return Some(0.0);
        }
        let mut seen = self.zero_count;
        for &(k, c) in &self.bins {
            seen += c;
            if seen > rank {
                return Some(self.value_of(k));
            }
        }
        // Unreachable when counts are consistent; answer with the largest bucket.
        self.bins.last().map(|&(k, _)| self.value_of(k))
    }

    /// Number of values at most `x`, read from the buckets (the good checks of a latency SLO).
    ///
    /// Every value `<= x` is counted. Values of the bucket holding `x` that lie above it are
    /// counted too: they are below `gamma * x` (`gamma = (1 + alpha) / (1 - alpha)`, about 2%
    /// above `x` at 1% accuracy). So the answer never undercounts, and overcounts only values
    /// within that relative distance above `x`. `0` for a negative or NaN `x`.
    pub fn count_at_most(&self, x: f64) -> u64 {
        if x.is_nan() || x < 0.0 {
            return 0;
        }
        if x <= MIN_INDEXABLE {
            return self.zero_count;
        }
        let k = self.key(x);
        self.zero_count
            + self
                .bins
                .iter()
                .take_while(|&&(key, _)| key <= k)
                .map(|&(_, c)| c)
                .sum::<u64>()
    }

    /// The storable form.
    pub fn to_data(&self) -> SketchData {
        SketchData {
            alpha: self.alpha,
            keys: self.bins.iter().map(|&(k, _)| k).collect(),
            counts: self.bins.iter().map(|&(_, c)| c).collect(),
            zero_count: self.zero_count,
        }
    }

    /// [`Sketch::to_data`] into `data`, reusing its buffers.
    pub fn write_data(&self, data: &mut SketchData) {
        data.alpha = self.alpha;
        data.keys.clear();
        data.keys.extend(self.bins.iter().map(|&(k, _)| k));
        data.counts.clear();
        data.counts.extend(self.bins.iter().map(|&(_, c)| c));
        data.zero_count = self.zero_count;
    }

    /// Rebuilds a sketch from its stored form (keys need not be sorted or unique).
    pub fn from_data(data: &SketchData) -> Result<Self, SketchError> {
        if data.keys.len() != data.counts.len() {
            return Err(SketchError::Length {
                keys: data.keys.len(),
                counts: data.counts.len(),
            });
        }
        let mut sketch = Self::try_new(data.alpha)?;
        let mut bins: Vec<(i32, u64)> = data
            .keys
            .iter()
            .copied()
            .zip(data.counts.iter().copied())
            .filter(|&(_, c)| c > 0)
            .collect();
        bins.sort_unstable_by_key(|&(k, _)| k);
        // Equal keys (a merged, unnormalised form) add up.
        bins.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 += later.1;
            }
            same
        });
        sketch.count = bins.iter().map(|&(_, c)| c).sum();
        sketch.bins = bins;
        sketch.zero_count = data.zero_count;
        sketch.count += data.zero_count;
        Ok(sketch)
    }
}

/// An aggregate ClickHouse expression giving the merged-sketch `q`-quantile (µs, `Float64`,
/// `nan` when there are no values) over the rows of a `GROUP BY` (or the whole selection) of a
/// table with the window columns `sketch_keys`, `sketch_counts`, `sketch_zero_count` and
/// `sketch_alpha`. It computes exactly what [`Sketch::quantile`] computes on the merged sketch:
/// same rank, same bucket, same representative value, so the same relative error bound.
///
/// ```text
/// SELECT monitor_id, {quantile_sql(0.99)} AS p99_us
/// FROM windows_1m FINAL WHERE window_start >= now() - INTERVAL 30 DAY GROUP BY monitor_id
/// ```
pub fn quantile_sql(q: f64) -> String {
    quantile_sql_for(
        q,
        "sketch_keys",
        "sketch_counts",
        "sketch_zero_count",
        "sketch_alpha",
    )
}

/// [`quantile_sql`] over differently named (or qualified) columns.
pub fn quantile_sql_for(q: f64, keys: &str, counts: &str, zero_count: &str, alpha: &str) -> String {
    let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
    // m: merged buckets (sorted keys, counts); z: zero count; n: total; r: target rank; g: gamma.
    let m = format!("sumMap({keys}, {counts})");
    let z = format!("sum({zero_count})");
    let n = format!("({z} + arraySum(({m}).2))");
    let r = format!("toUInt64(floor({q:?} * (greatest({n}, 1) - 1)))");
    let g = format!("((1 + any({alpha})) / (1 - any({alpha})))");
    format!(
        "if({n} = 0, nan, if({r} < {z}, 0., \
         2 * pow({g}, arrayElement(({m}).1, \
         arrayFirstIndex((c, rank) -> c > rank, arrayCumSum(({m}).2), \
         arrayResize([{r} - {z}], length(({m}).2), {r} - {z})))) / ({g} + 1)))"
    )
}

/// A per-row ClickHouse expression giving what [`Sketch::count_at_most`] gives for `x` on the
/// row's sketch (`UInt64`): the zero count plus the counts of every bucket up to the one holding
/// `x`. Sum it over rows for a merged sketch (`sum(count_at_most_sql(x))`): counting is
/// additive, so that equals the merged sketch's answer. The bucket of `x` is computed from the
/// row's own `sketch_alpha`, as [`Sketch::key`] computes it.
///
/// ```text
/// SELECT monitor_id, sum(sketch_zero_count + arraySum(sketch_counts)) AS checks,
///        checks - sum({count_at_most_sql(300000.0)}) AS slower_than_300ms
/// FROM windows_1m FINAL GROUP BY monitor_id
/// ```
pub fn count_at_most_sql(x: f64) -> String {
    count_at_most_sql_for(
        x,
        "sketch_keys",
        "sketch_counts",
        "sketch_zero_count",
        "sketch_alpha",
    )
}

/// [`count_at_most_sql`] over differently named (or qualified) columns.
pub fn count_at_most_sql_for(
    x: f64,
    keys: &str,
    counts: &str,
    zero_count: &str,
    alpha: &str,
) -> String {
    if x.is_nan() || x < 0.0 {
        return "toUInt64(0)".to_owned();
    }
    if x <= MIN_INDEXABLE {
        return format!("toUInt64({zero_count})");
    }
    // The same operations as `Sketch::key`: ln(x) / ln(gamma), rounded up.
    let key = format!("ceil(log({x:?}) / log((1 + {alpha}) / (1 - {alpha})))");
    format!("toUInt64({zero_count} + arraySum((k, c) -> if(k <= {key}, c, 0), {keys}, {counts}))")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn exact(values: &[f64], q: f64) -> f64 {
        let mut sorted: Vec<f64> = values.iter().map(|v| v.max(0.0)).collect();
        sorted.sort_by(f64::total_cmp);
        let rank = (q * (sorted.len() - 1) as f64).floor() as usize;
        sorted[rank]
    }

    fn within(estimate: f64, exact: f64, alpha: f64) -> bool {
        if exact <= MIN_INDEXABLE {
            return estimate == 0.0;
        }
        (estimate - exact).abs() <= alpha * exact * (1.0 + 1e-9)
    }

    fn sketch_of(values: &[f64]) -> Sketch {
        let mut s = Sketch::default();
        for &v in values {
            s.add(v);
        }
        s
    }

    #[test]
    fn known_answers() {
        let s = sketch_of(&[100.0, 200.0, 300.0, 400.0, 1000.0]);
        assert_eq!(s.count(), 5);
        assert_eq!(s.count_at_most(250.0), 2);
        assert_eq!(s.count_at_most(1e6), 5);
        assert_eq!(s.count_at_most(50.0), 0);
        assert_eq!(s.count_at_most(-1.0), 0);
        for (q, want) in [
            (0.0, 100.0),
            (0.5, 300.0),
            (0.75, 400.0),
            (0.99, 400.0),
            (1.0, 1000.0),
        ] {
            let got = s.quantile(q).unwrap();
            assert!(within(got, want, 0.01), "q={q}: {got} vs {want}");
        }
        assert_eq!(Sketch::default().quantile(0.5), None);
        let zeros = sketch_of(&[0.0, 0.0, 5.0]);
        assert_eq!(zeros.quantile(0.5), Some(0.0));
        assert_eq!(zeros.count_at_most(0.0), 2);
        assert!(within(zeros.quantile(1.0).unwrap(), 5.0, 0.01));
    }

    #[test]
    fn count_at_most_sql_takes_the_bucket_of_x_from_the_row() {
        assert_eq!(
            count_at_most_sql(300_000.0),
            "toUInt64(sketch_zero_count + arraySum((k, c) -> if(k <= ceil(log(300000.0) / \
             log((1 + sketch_alpha) / (1 - sketch_alpha))), c, 0), sketch_keys, sketch_counts))"
        );
        assert_eq!(count_at_most_sql(0.0), "toUInt64(sketch_zero_count)");
        assert_eq!(count_at_most_sql(-1.0), "toUInt64(0)");
    }

    #[test]
    fn bad_data_is_an_error() {
        assert_eq!(Sketch::try_new(0.0), Err(SketchError::Alpha(0.0)));
        let bad = SketchData {
            alpha: 0.01,
            keys: vec![1, 2],
            counts: vec![1],
            zero_count: 0,
        };
        assert!(matches!(
            Sketch::from_data(&bad),
            Err(SketchError::Length { .. })
        ));
        let mut a = Sketch::new(0.01);
        assert!(a.merge(&Sketch::new(0.02)).is_err());
    }

    #[test]
    fn typical_window_is_small() {
        // A minute of checks every second with log-normal-ish spread: a few dozen buckets.
        let values: Vec<f64> = (0..600)
            .map(|i| 30_000.0 * (1.0 + (i % 97) as f64 / 50.0))
            .collect();
        let data = sketch_of(&values).to_data();
        let bytes = postcard::to_stdvec(&data).unwrap();
        assert!(bytes.len() <= 2048, "{} bytes", bytes.len());
    }

    proptest! {
        #[test]
        fn quantiles_within_relative_error(
            values in prop::collection::vec(0.0f64..1e8, 1..500),
            q in 0.0f64..=1.0,
        ) {
            let s = sketch_of(&values);
            let got = s.quantile(q).unwrap();
            let want = exact(&values, q);
            prop_assert!(within(got, want, s.alpha()), "q={} got={} want={}", q, got, want);
        }

        #[test]
        fn merge_equals_sketch_of_concatenation(
            a in prop::collection::vec(0.0f64..1e7, 0..200),
            b in prop::collection::vec(0.0f64..1e7, 0..200),
            c in prop::collection::vec(0.0f64..1e7, 0..200),
        ) {
            let (sa, sb, sc) = (sketch_of(&a), sketch_of(&b), sketch_of(&c));
            let mut ab = sa.clone();
            ab.merge(&sb).unwrap();
            let mut ba = sb.clone();
            ba.merge(&sa).unwrap();
            prop_assert_eq!(&ab, &ba);
            let mut ab_c = ab.clone();
            ab_c.merge(&sc).unwrap();
            let mut bc = sb.clone();
            bc.merge(&sc).unwrap();
            let mut a_bc = sa.clone();
            a_bc.merge(&bc).unwrap();
            prop_assert_eq!(&ab_c, &a_bc);
            let all: Vec<f64> = a.iter().chain(&b).chain(&c).copied().collect();
            prop_assert_eq!(&ab_c, &sketch_of(&all));
        }

        #[test]
        fn count_at_most_never_undercounts(
            values in prop::collection::vec(0.0f64..1e7, 0..300),
            x in 0.0f64..1e7,
        ) {
            let s = sketch_of(&values);
            let gamma = (1.0 + s.alpha()) / (1.0 - s.alpha());
            let at_most = |limit: f64| values.iter().filter(|&&v| v <= limit).count() as u64;
            let got = s.count_at_most(x);
            prop_assert!(got >= at_most(x), "x={} got={} exact={}", x, got, at_most(x));
            prop_assert!(got <= at_most(x * gamma), "x={} got={}", x, got);
        }

        #[test]
        fn storage_round_trip(values in prop::collection::vec(0.0f64..1e9, 0..300)) {
            let s = sketch_of(&values);
            prop_assert_eq!(Sketch::from_data(&s.to_data()).unwrap(), s);
        }
    }
}
