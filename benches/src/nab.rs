//! Numenta Anomaly Benchmark (NAB) scoring, following `nab/sweeper.py` of numenta/NAB.
//!
//! * The first `min(floor(0.15 n), 0.15 * 5000)` rows of a file are probationary and ignored.
//! * A window is entered at the row whose timestamp equals its start and left after the row
//!   equal to its end. A row at index `i` in a window `[l, r]` is worth
//!   `tp * sigma(-(r - i + 1) / (r - l + 1)) / sigma(-1)` where
//!   `sigma(x) = 2 / (1 + e^(5x)) - 1` (and `-1` for `x >= 3`).
//! * A row outside windows is worth `fp * sigma(|i - r_prev| / (w_prev - 1))` after a window
//!   of width `w_prev` ending at `r_prev`, or `-fp` before any window. Every detected row
//!   outside windows counts.
//! * Each window starts at `-fn` and takes the best (earliest) detection inside it.
//! * One threshold per profile is chosen over the whole corpus (detection: `score >= threshold`).
//! * Normalised score: `100 (S - S_null) / (S_perfect - S_null)` with `S_null = -fn * windows`
//!   and `S_perfect = tp * windows`.

pub mod cv;

use std::collections::BTreeMap;
use std::path::Path;

use vigil_processor::anomaly::series::{self, Point};

/// Cost weights of a NAB profile (`profiles.json`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Profile name as in NAB.
    pub name: &'static str,
    /// Weight of a true positive.
    pub tp: f64,
    /// Weight of a false positive.
    pub fp: f64,
    /// Weight of a missed window.
    pub fn_: f64,
}

/// NAB's three standard profiles.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fp: 0.22,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fp: 0.11,
        fn_: 2.0,
    },
];

/// One scored data file.
#[derive(Debug, Clone, Copy)]
pub struct FileScores<'a> {
    /// Row timestamps (any monotone unit, e.g. epoch seconds).
    pub timestamps: &'a [i64],
    /// Detector output per row.
    pub scores: &'a [f64],
    /// Labelled windows as `(start, end)` timestamps (must be row timestamps).
    pub windows: &'a [(i64, i64)],
}

/// Score of one file at a fixed threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FileResult {
    /// Raw (unnormalised) NAB score.
    pub raw: f64,
    /// Windows with at least one scorable row.
    pub windows: usize,
    /// Windows detected.
    pub detected: usize,
    /// Rows counted as false positives.
    pub false_positives: usize,
}

/// Result of scoring a corpus with one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusResult {
    /// Corpus-optimal threshold.
    pub threshold: f64,
    /// Per-file results at that threshold, in input order.
    pub files: Vec<FileResult>,
    /// Normalised score of the whole corpus.
    pub normalised: f64,
}

/// NAB's scaled sigmoid of a relative position.
pub fn scaled_sigmoid(x: f64) -> f64 {
    if x >= 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// Length of the probationary period of a file with `rows` rows.
pub fn probation_length(rows: usize) -> usize {
    // NAB: min(floor(0.15 * n), 0.15 * 5000); both are whole numbers here.
    (0.15 * rows as f64).floor().min(0.15 * 5000.0) as usize
}

/// Per-row weight and window membership of a file.
#[derive(Debug, Clone, Copy)]
struct Row {
    weight: f64,
    window: Option<usize>,
    scorable: bool,
}

fn label_rows(file: &FileScores<'_>, profile: &Profile) -> Vec<Row> {
    let ts = file.timestamps;
    let index_of = |t: i64| ts.iter().position(|&x| x == t);
    let windows: Vec<(usize, usize)> = file
        .windows
        .iter()
        .filter_map(|&(a, b)| Some((index_of(a)?, index_of(b)?)))
        .collect();
    let probation = probation_length(ts.len());
    let max_tp = scaled_sigmoid(-1.0);
    let mut rows = Vec::with_capacity(ts.len());
    let mut next = 0;
    let mut current: Option<usize> = None;
    let mut previous: Option<(usize, f64)> = None;
    for i in 0..ts.len() {
        if current.is_none() && next < windows.len() && i == windows[next].0 {
            current = Some(next);
            next += 1;
        }
        let (weight, window) = match current {
            Some(w) => {
                let (l, r) = windows[w];
                let width = (r - l + 1) as f64;
                let pos = -((r as f64) - (i as f64) + 1.0) / width;
                (scaled_sigmoid(pos) * profile.tp / max_tp, Some(w))
            }
            None => {
                let pos = match previous {
                    None => 3.0,
                    Some((right, width)) => (i as f64 - right as f64).abs() / (width - 1.0),
                };
                (scaled_sigmoid(pos) * profile.fp, None)
            }
        };
        rows.push(Row {
            weight,
            window,
            scorable: i >= probation,
        });
        if let Some(w) = current {
            let (l, r) = windows[w];
            if i == r {
                previous = Some((i, (r - l + 1) as f64));
                current = None;
            }
        }
    }
    rows
}

fn score_file(scores: &[f64], rows: &[Row], threshold: f64, profile: &Profile) -> FileResult {
    let mut best: Vec<Option<f64>> = Vec::new();
    let mut result = FileResult::default();
    let mut fp_sum = 0.0;
    for (&s, row) in scores.iter().zip(rows).filter(|(_, r)| r.scorable) {
        match row.window {
            Some(w) => {
                if best.len() <= w {
                    best.resize(w + 1, None);
                }
                let slot = best[w].get_or_insert(-profile.fn_);
                if s >= threshold && row.weight > *slot {
                    *slot = row.weight;
                }
            }
            None if s >= threshold => {
                fp_sum += row.weight;
                result.false_positives += 1;
            }
            None => {}
        }
    }
    let windows: Vec<f64> = best.into_iter().flatten().collect();
    result.windows = windows.len();
    result.detected = windows.iter().filter(|&&v| v > -profile.fn_).count();
    result.raw = fp_sum + windows.iter().sum::<f64>();
    result
}

/// Normalises a raw score given the number of windows.
pub fn normalise(raw: f64, windows: usize, profile: &Profile) -> f64 {
    let n = windows as f64;
    let null = -profile.fn_ * n;
    let perfect = profile.tp * n;
    if windows == 0 {
        f64::NAN
    } else {
        100.0 * (raw - null) / (perfect - null)
    }
}

/// Scores every file at a given threshold (one chosen elsewhere, e.g. on other files).
pub fn score_at(files: &[FileScores<'_>], profile: &Profile, threshold: f64) -> CorpusResult {
    let results: Vec<FileResult> = files
        .iter()
        .map(|f| score_file(f.scores, &label_rows(f, profile), threshold, profile))
        .collect();
    let raw: f64 = results.iter().map(|r| r.raw).sum();
    let windows: usize = results.iter().map(|r| r.windows).sum();
    CorpusResult {
        threshold,
        normalised: normalise(raw, windows, profile),
        files: results,
    }
}

/// Optimises the threshold over the corpus (NAB sweeper) and scores every file with it.
pub fn score_corpus(files: &[FileScores<'_>], profile: &Profile) -> CorpusResult {
    let labelled: Vec<Vec<Row>> = files.iter().map(|f| label_rows(f, profile)).collect();
    // (score, weight, global window id) of every scorable row.
    let mut points: Vec<(f64, f64, Option<usize>)> = Vec::new();
    let mut n_windows = 0;
    for (file, rows) in files.iter().zip(&labelled) {
        for (&s, row) in file.scores.iter().zip(rows).filter(|(_, r)| r.scorable) {
            points.push((s, row.weight, row.window.map(|w| n_windows + w)));
        }
        n_windows += file.windows.len();
    }
    points.sort_by(|a, b| b.0.total_cmp(&a.0));

    // Only windows with at least one scorable row count (as in NAB).
    let mut scorable = vec![false; n_windows];
    for w in points.iter().filter_map(|p| p.2) {
        scorable[w] = true;
    }
    let mut window_best = vec![-profile.fn_; n_windows];
    let mut total = -profile.fn_ * scorable.iter().filter(|&&s| s).count() as f64;

    let (mut best_total, mut best_threshold) = (total, 1.1);
    let mut i = 0;
    while i < points.len() {
        let threshold = points[i].0;
        while i < points.len() && points[i].0 == threshold {
            let (_, weight, window) = points[i];
            match window {
                None => total += weight,
                Some(w) => {
                    if weight > window_best[w] {
                        total += weight - window_best[w];
                        window_best[w] = weight;
                    }
                }
            }
            i += 1;
        }
        if total > best_total {
            best_total = total;
            best_threshold = threshold;
        }
    }

    let results: Vec<FileResult> = files
        .iter()
        .zip(&labelled)
        .map(|(f, rows)| score_file(f.scores, rows, best_threshold, profile))
        .collect();
    let raw: f64 = results.iter().map(|r| r.raw).sum();
    let windows: usize = results.iter().map(|r| r.windows).sum();
    CorpusResult {
        threshold: best_threshold,
        normalised: normalise(raw, windows, profile),
        files: results,
    }
}

/// One labelled data file of the corpus.
#[derive(Debug, Clone)]
pub struct Series {
    /// `category/file.csv`, as in `combined_windows.json`.
    pub name: String,
    /// The rows.
    pub points: Vec<Point>,
    /// Labelled anomaly windows as `(start, end)` unix seconds.
    pub windows: Vec<(i64, i64)>,
}

impl Series {
    /// The file's category (`realKnownCause`, …).
    pub fn category(&self) -> &str {
        self.name.split('/').next().unwrap_or_default()
    }

    /// Row timestamps in unix seconds.
    pub fn timestamps(&self) -> Vec<i64> {
        self.points.iter().map(|p| p.timestamp).collect()
    }
}

/// Loads every file named in `dir/combined_windows.json` from `dir/data/`.
pub fn load_corpus(dir: &Path) -> Result<Vec<Series>, String> {
    let path = dir.join("combined_windows.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let labels: BTreeMap<String, Vec<[String; 2]>> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut corpus = Vec::with_capacity(labels.len());
    for (name, windows) in labels {
        let file = dir.join("data").join(&name);
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let points = series::parse_csv(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let windows = windows
            .iter()
            .map(|[a, b]| {
                let parse = |s: &str| {
                    series::parse_timestamp(s.split('.').next().unwrap_or(s))
                        .ok_or_else(|| format!("{name}: invalid window timestamp {s:?}"))
                };
                Ok((parse(a)?, parse(b)?))
            })
            .collect::<Result<_, String>>()?;
        corpus.push(Series {
            name,
            points,
            windows,
        });
    }
    Ok(corpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(rows: usize, window: (usize, usize)) -> (Vec<i64>, Vec<(i64, i64)>) {
        let ts: Vec<i64> = (0..rows as i64).map(|i| i * 300).collect();
        let w = vec![(ts[window.0], ts[window.1])];
        (ts, w)
    }

    fn run(scores: &[f64], ts: &[i64], w: &[(i64, i64)], p: &Profile) -> f64 {
        let f = FileScores {
            timestamps: ts,
            scores,
            windows: w,
        };
        score_corpus(&[f], p).normalised
    }

    #[test]
    fn reference_detectors() {
        let (ts, w) = corpus(1000, (500, 599));
        for p in &PROFILES {
            let null = vec![0.0; ts.len()];
            let mut perfect = null.clone();
            perfect[500] = 1.0;
            let mut late = null.clone();
            late[599] = 1.0;
            let mut fp = perfect.clone();
            fp[300] = 1.0;
            assert!(run(&null, &ts, &w, p).abs() < 1e-9);
            assert!((run(&perfect, &ts, &w, p) - 100.0).abs() < 1e-9);
            let late_score = run(&late, &ts, &w, p);
            assert!(late_score < 100.0 && late_score > 0.0);
            assert!(run(&fp, &ts, &w, p) < 100.0);
        }
    }

    #[test]
    fn earlier_detection_in_a_window_scores_more() {
        let (ts, w) = corpus(1000, (500, 599));
        let at = |row: usize| {
            let mut s = vec![0.0; ts.len()];
            s[row] = 1.0;
            run(&s, &ts, &w, &PROFILES[0])
        };
        let (start, middle, end) = (at(500), at(550), at(599));
        assert!((start - 100.0).abs() < 1e-9, "{start}");
        assert!(
            start > middle && middle > end && end > 0.0,
            "{start} {middle} {end}"
        );
        // A lone false positive: the optimised threshold then never fires, which is the null score.
        assert!(at(450).abs() < 1e-9);
    }

    #[test]
    fn only_the_first_detection_in_a_window_counts() {
        let (ts, w) = corpus(1000, (500, 599));
        let mut s = vec![0.0; ts.len()];
        s[500..600].fill(1.0);
        assert!((run(&s, &ts, &w, &PROFILES[0]) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn probation_rows_are_ignored() {
        let (ts, w) = corpus(1000, (500, 599));
        let mut s = vec![0.0; ts.len()];
        s[10] = 1.0; // inside the probationary period: not a false positive
        s[500] = 1.0;
        assert!((run(&s, &ts, &w, &PROFILES[0]) - 100.0).abs() < 1e-9);
        assert_eq!(probation_length(1000), 150);
        assert_eq!(probation_length(22_695), 750);
    }
}
