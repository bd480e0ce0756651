//! Leave-one-category-out cross-validation of detector configurations on NAB: for each
//! category, the configuration and threshold are chosen on the other categories (the best
//! normalised score there), then the held-out category is scored with that choice. The held-out
//! raw scores, summed over the folds and normalised together, are what a user bringing data of a
//! kind nobody tuned on can expect; next to the in-sample score they show how much tuning fits.

use super::{FileScores, Profile, normalise, score_at, score_corpus};

/// Every file's scores under one candidate configuration, in corpus order.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// A short name of the configuration.
    pub name: String,
    /// The scored files.
    pub files: Vec<FileScores<'a>>,
}

/// One held-out category.
#[derive(Debug, Clone, PartialEq)]
pub struct Fold {
    /// The category scored.
    pub held_out: String,
    /// The configuration chosen on the other categories.
    pub chosen: String,
    /// The threshold chosen with it.
    pub threshold: f64,
    /// The held-out category's normalised score.
    pub normalised: f64,
}

/// The cross-validated score of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossValidation {
    /// One fold per category, by name.
    pub folds: Vec<Fold>,
    /// The held-out scores of every fold, normalised together.
    pub normalised: f64,
}

/// The best candidate on `files` (the first of equals), and its corpus result.
fn best<'c, 'a>(
    candidates: &'c [Candidate<'a>],
    keep: impl Fn(usize) -> bool,
    profile: &Profile,
) -> Option<(&'c Candidate<'a>, super::CorpusResult)> {
    let mut found: Option<(&Candidate<'a>, super::CorpusResult)> = None;
    for candidate in candidates {
        let files: Vec<FileScores<'a>> = candidate
            .files
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, f)| *f)
            .collect();
        let result = score_corpus(&files, profile);
        if found
            .as_ref()
            .is_none_or(|(_, r)| result.normalised > r.normalised)
        {
            found = Some((candidate, result));
        }
    }
    found
}

/// The candidate (and its result) that scores best in-sample, on every file.
pub fn in_sample<'c, 'a>(
    candidates: &'c [Candidate<'a>],
    profile: &Profile,
) -> Option<(&'c Candidate<'a>, super::CorpusResult)> {
    best(candidates, |_| true, profile)
}

/// Leave-one-category-out cross-validation; `categories[i]` is file `i`'s category.
pub fn leave_one_category_out(
    candidates: &[Candidate<'_>],
    categories: &[&str],
    profile: &Profile,
) -> CrossValidation {
    let mut names: Vec<&str> = categories.to_vec();
    names.sort_unstable();
    names.dedup();
    let (mut raw, mut windows) = (0.0, 0);
    let mut folds = Vec::new();
    for held in names {
        let Some((chosen, trained)) = best(candidates, |i| categories[i] != held, profile) else {
            continue;
        };
        let test: Vec<FileScores<'_>> = chosen
            .files
            .iter()
            .zip(categories)
            .filter(|(_, c)| **c == held)
            .map(|(f, _)| *f)
            .collect();
        let result = score_at(&test, profile, trained.threshold);
        let fold_raw: f64 = result.files.iter().map(|f| f.raw).sum();
        let fold_windows: usize = result.files.iter().map(|f| f.windows).sum();
        raw += fold_raw;
        windows += fold_windows;
        folds.push(Fold {
            held_out: held.to_owned(),
            chosen: chosen.name.clone(),
            threshold: trained.threshold,
            normalised: result.normalised,
        });
    }
    CrossValidation {
        folds,
        normalised: normalise(raw, windows, profile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nab::PROFILES;

    /// Two categories of two files; `good` detects every window at its start, `fits` only the
    /// first category's (and fires at random in the second).
    #[test]
    fn the_held_out_category_is_scored_with_what_the_others_chose() {
        let ts: Vec<i64> = (0..1000).map(|i| i * 60).collect();
        let windows = vec![(ts[500], ts[599])];
        let mut hit = vec![0.0; 1000];
        hit[500] = 1.0;
        let mut noisy = vec![0.0; 1000];
        noisy[300] = 1.0;
        noisy[700] = 1.0;
        let file = |scores: &'static [f64]| FileScores {
            timestamps: Box::leak(ts.clone().into_boxed_slice()),
            scores,
            windows: Box::leak(windows.clone().into_boxed_slice()),
        };
        let hit: &'static [f64] = Box::leak(hit.into_boxed_slice());
        let noisy: &'static [f64] = Box::leak(noisy.into_boxed_slice());
        let good = Candidate {
            name: "good".into(),
            files: vec![file(hit), file(hit), file(hit), file(hit)],
        };
        let fits = Candidate {
            name: "fits".into(),
            files: vec![file(hit), file(hit), file(noisy), file(noisy)],
        };
        let categories = ["a", "a", "b", "b"];
        let profile = &PROFILES[0];
        let candidates = [fits, good];
        let cv = leave_one_category_out(&candidates, &categories, profile);
        // Either fold: both candidates tie on the one kept or `good` wins; `good` is chosen
        // where it wins, and the first of equals where they tie.
        assert_eq!(cv.folds.len(), 2);
        assert_eq!(cv.folds[0].held_out, "a");
        assert_eq!(cv.folds[0].chosen, "good");
        assert_eq!(cv.folds[1].held_out, "b");
        assert_eq!(cv.folds[1].chosen, "fits");
        assert!((cv.folds[0].normalised - 100.0).abs() < 1e-9);
        // Chosen on `a` alone, `fits` misses every window of `b`.
        assert!(cv.folds[1].normalised < 1.0, "{cv:?}");
        assert!(cv.normalised < 60.0, "{cv:?}");
        let (chosen, result) = in_sample(&candidates, profile).unwrap();
        assert_eq!(chosen.name, "good");
        assert!((result.normalised - 100.0).abs() < 1e-9);
    }
}
