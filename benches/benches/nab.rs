//! Scores Vigil's anomaly detector on the Numenta Anomaly Benchmark: runs the processor's
//! [`Detector`] with its default configuration over every file of the corpus, then applies NAB's
//! scoring (probation, windows, scaled sigmoid, one threshold per profile optimised over the
//! whole corpus, normalisation against the null and perfect detectors).
//!
//! Then the same over a small grid of configurations (the default and its neighbours), with
//! leave-one-category-out cross-validation: the configuration and threshold
//! chosen on two categories, the third scored with them. The cross-validated score next to
//! the in-sample one shows how much of a score is fitting.
//!
//! `cargo bench -p vigil-benches --bench nab` (corpus from `VIGIL_NAB_DIR`, default
//! `../shared/data/nab` beside the checkout).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use vigil_benches::nab::cv::{self, Candidate};
use vigil_benches::nab::{self, FileScores, PROFILES};
use vigil_processor::anomaly::{Config, Detector};

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let dir = std::env::var_os("VIGIL_NAB_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nab"),
        PathBuf::from,
    );
    let corpus = match nab::load_corpus(&dir) {
        Ok(corpus) => corpus,
        Err(e) => {
            eprintln!(
                "cannot load the NAB corpus from {} ({e}); set VIGIL_NAB_DIR",
                dir.display()
            );
            std::process::exit(1);
        }
    };

    let started = Instant::now();
    let scores: Vec<Vec<f64>> = corpus
        .iter()
        .map(|series| {
            let mut detector = Detector::new(Config::default());
            series
                .points
                .iter()
                .map(|p| detector.update(p.timestamp, p.value).score)
                .collect()
        })
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    let points: usize = corpus.iter().map(|s| s.points.len()).sum();
    println!(
        "NAB: {} files, {points} points, {} windows; detector {:.0} points/s",
        corpus.len(),
        corpus.iter().map(|s| s.windows.len()).sum::<usize>(),
        points as f64 / elapsed
    );

    let timestamps: Vec<Vec<i64>> = corpus.iter().map(nab::Series::timestamps).collect();
    let files: Vec<FileScores<'_>> = corpus
        .iter()
        .zip(&timestamps)
        .zip(&scores)
        .map(|((series, timestamps), scores)| FileScores {
            timestamps,
            scores,
            windows: &series.windows,
        })
        .collect();
    println!(
        "{:<20} {:>7} {:>9} {:>10} {:>5}  per category",
        "profile", "score", "threshold", "detected", "FP"
    );
    for profile in &PROFILES {
        let result = nab::score_corpus(&files, profile);
        let mut categories: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
        for (series, file) in corpus.iter().zip(&result.files) {
            let entry = categories.entry(series.category()).or_default();
            entry.0 += file.raw;
            entry.1 += file.windows;
        }
        let detected: usize = result.files.iter().map(|f| f.detected).sum();
        let windows: usize = result.files.iter().map(|f| f.windows).sum();
        let false_positives: usize = result.files.iter().map(|f| f.false_positives).sum();
        let per_category: Vec<String> = categories
            .iter()
            .map(|(name, (raw, windows))| {
                format!("{name} {:.1}", nab::normalise(*raw, *windows, profile))
            })
            .collect();
        println!(
            "{:<20} {:>7.2} {:>9.4} {:>10} {:>5}  {}",
            profile.name,
            result.normalised,
            result.threshold,
            format!("{detected}/{windows}"),
            false_positives,
            per_category.join(", ")
        );
    }

    cross_validate(&corpus, &timestamps);
}

/// The configurations compared: the default, and its neighbours in the parameters that shape
/// what counts as normal (baseline rate, histogram memory) and how often one incident alerts
/// (rest after an alert).
fn grid() -> Vec<(String, Config)> {
    let mut grid = vec![("default".to_owned(), Config::default())];
    for slow_rate in [0.005, 0.01, 0.02] {
        for hist_decay in [0.999, 0.9999] {
            for rest in [50, 150, 300] {
                let cfg = Config {
                    slow_rate,
                    hist_decay,
                    rest,
                    ..Config::default()
                };
                if cfg != Config::default() {
                    grid.push((format!("slow{slow_rate}/decay{hist_decay}/rest{rest}"), cfg));
                }
            }
        }
    }
    grid
}

fn cross_validate(corpus: &[nab::Series], timestamps: &[Vec<i64>]) {
    let grid = grid();
    let scores: Vec<Vec<Vec<f64>>> = grid
        .iter()
        .map(|(_, cfg)| {
            corpus
                .iter()
                .map(|series| {
                    let mut detector = Detector::new(cfg.clone());
                    series
                        .points
                        .iter()
                        .map(|p| detector.update(p.timestamp, p.value).score)
                        .collect()
                })
                .collect()
        })
        .collect();
    let candidates: Vec<Candidate<'_>> = grid
        .iter()
        .zip(&scores)
        .map(|((name, _), scores)| Candidate {
            name: name.clone(),
            files: corpus
                .iter()
                .zip(timestamps)
                .zip(scores)
                .map(|((series, timestamps), scores)| FileScores {
                    timestamps,
                    scores,
                    windows: &series.windows,
                })
                .collect(),
        })
        .collect();
    let categories: Vec<&str> = corpus.iter().map(nab::Series::category).collect();
    if std::env::var_os("VIGIL_NAB_VERBOSE").is_some() {
        for candidate in &candidates {
            let each: Vec<String> = PROFILES
                .iter()
                .map(|p| format!("{:.2}", nab::score_corpus(&candidate.files, p).normalised))
                .collect();
            println!("  {:<32} {}", candidate.name, each.join("  "));
        }
    }
    println!(
        "\n{} configurations; in-sample: the best on every file; cross-validated: each category \
         scored with the configuration and threshold chosen on the others",
        grid.len()
    );
    println!(
        "{:<20} {:>9} {:>9} {:>9}  {:<28} folds",
        "profile", "in-sample", "cross-val", "default", "best in-sample"
    );
    for profile in &PROFILES {
        let Some((best, result)) = cv::in_sample(&candidates, profile) else {
            continue;
        };
        let validated = cv::leave_one_category_out(&candidates, &categories, profile);
        // The default alone: only its threshold is chosen on the other categories.
        let default = cv::leave_one_category_out(&candidates[..1], &categories, profile);
        let folds: Vec<String> = validated
            .folds
            .iter()
            .map(|f| format!("{} {:.1} ({})", f.held_out, f.normalised, f.chosen))
            .collect();
        println!(
            "{:<20} {:>9.2} {:>9.2} {:>9.2}  {:<28} {}",
            profile.name,
            result.normalised,
            validated.normalised,
            default.normalised,
            best.name,
            folds.join(", ")
        );
    }
}
