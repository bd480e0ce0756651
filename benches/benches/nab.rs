//! Scores Vigil's anomaly detector on the Numenta Anomaly Benchmark: runs the processor's
//! [`Detector`] with its default configuration over every file of the corpus, then applies NAB's
//! scoring (probation, windows, scaled sigmoid, one threshold per profile optimised over the
//! whole corpus, normalisation against the null and perfect detectors).
//!
//! `cargo bench -p vigil-benches --bench nab` (corpus from `VIGIL_NAB_DIR`, default
//! `../shared/data/nab` beside the checkout).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

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
}
