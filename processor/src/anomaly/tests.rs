//! Detector tests: determinism, bounds, spikes and level shifts, the sparse histogram, memory.

use proptest::prelude::Just;

use super::*;

fn series(n: usize, f: impl Fn(usize) -> f64) -> Vec<Score> {
    let mut d = Detector::new(Config::default());
    (0..n).map(|i| d.update(i as i64 * 300, f(i))).collect()
}

#[test]
fn deterministic_and_bounded() {
    let f = |i: usize| ((i as f64) * 0.3).sin() + if i == 3000 { 9.0 } else { 0.0 };
    let a = series(4000, f);
    let b = series(4000, f);
    assert_eq!(a, b);
    assert!(a.iter().all(|s| (0.0..=1.0).contains(&s.score)));
    assert!(a[3000].score > 0.9, "spike scored {}", a[3000].score);
    assert!(!a[3000].reason.is_empty());
}

#[test]
fn flat_line_that_moves() {
    let s = series(2000, |i| if i < 1500 { 5.0 } else { 6.0 });
    assert!(s[1500].score >= 0.99, "jump scored {}", s[1500].score);
    assert!(s[1400].score == 0.0);
}

proptest::proptest! {
    /// The sparse histogram answers as the full grid of bins does, summed naively.
    #[test]
    fn sparse_tails_equal_a_dense_grid(
        values in proptest::collection::vec(
            proptest::prop_oneof![Just(0.0), 1e-9f64..1e9], 1..400),
        probes in proptest::collection::vec(0.0f64..2e9, 1..20),
    ) {
        let cfg = Config::default();
        let shape = TailShape::new(&cfg);
        let mut sparse = TailHistogram::new();
        let mut dense = vec![0.0f64; cfg.num_bins()];
        let (mut gain, mut total, mut max_seen) = (1.0f64, 0.0f64, 0.0f64);
        for &v in &values {
            sparse.add(&shape, v);
            gain /= cfg.hist_decay;
            dense[shape.bin(v)] += gain;
            total += gain;
            max_seen = (max_seen * cfg.hist_decay).max(v);
        }
        for &r in &probes {
            let b = shape.bin(r);
            let above: f64 = dense[b + 1..].iter().sum::<f64>() + 0.5 * dense[b];
            let mut p = (above + gain) / (total + gain);
            if r > max_seen && max_seen > 0.0 {
                p *= (max_seen / r).powf(cfg.beyond_exponent);
            } else if r > 0.0 && max_seen <= 0.0 {
                p *= FIRST_MOVE_FACTOR;
            }
            let want = -p.log10();
            let got = sparse.surprise(&shape, r);
            proptest::prop_assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{got} vs {want}");
        }
        proptest::prop_assert!(sparse.bins.len() <= values.len());
    }
}

#[test]
fn a_detector_holds_a_few_kib() {
    let mut d = Detector::new(Config::default());
    for i in 0..5_000 {
        d.update(i * 60, 100_000.0 + 5_000.0 * ((i as f64) * 0.1).sin());
    }
    // The full grid held 4 × 645 f64 = 20 KiB.
    assert!(d.heap_bytes() < 6_144, "{} bytes", d.heap_bytes());
}

#[test]
fn non_finite_is_ignored() {
    let mut d = Detector::new(Config::default());
    assert_eq!(d.update(0, f64::NAN).score, 0.0);
    assert_eq!(d.points_seen(), 0);
}

#[test]
fn explanations_say_what_was_expected_and_how_unlikely() {
    let mut d = Detector::new(Config::default());
    for i in 0..2000 {
        let s = d.update(i * 300, 100.0 + ((i as f64) * 0.7).sin());
        if i < 150 {
            assert_eq!(s.explanation, None, "warm-up");
        }
    }
    let spike = d.update(2000 * 300, 160.0);
    let e = spike.explanation.unwrap();
    assert!(spike.score > 0.9, "{spike:?}");
    assert_eq!(e.feature, "range");
    // The range seen is about [99, 101]: the value is expected at most its top.
    assert!((e.expected - 101.0).abs() < 0.01, "{e:?}");
    assert!((e.error - (160.0 - e.expected)).abs() < 1e-9);
    // The score is the probability's surprise over the cap, clamped.
    assert!(e.probability < 1e-4, "{e:?}");
    assert_eq!(spike.score, (-e.probability.log10() / 4.0).clamp(0.0, 1.0));
    // The alert rests the series: scores are 0, with nothing to explain.
    let resting = d.update(2001 * 300, 100.0);
    assert_eq!((resting.score, resting.explanation), (0.0, None));
    // After the rest, calm again.
    let mut calm = resting;
    for i in 2002..2200 {
        calm = d.update(i * 300, 100.0 + ((i as f64) * 0.7).sin());
    }
    let e = calm.explanation.unwrap();
    assert!(e.probability > 0.01, "{e:?}");
    assert!((e.expected - 100.0).abs() < 5.0, "{e:?}");
}

/// What a threshold costs on series with nothing wrong: 20 days of one-minute windows around a
/// daily cycle, of Gaussian noise, of heavy-tailed (log-normal) latency and of a noisy error
/// rate. The README quotes these bounds.
#[test]
fn false_alarms_per_day_on_normal_noise() {
    // A fixed-seed generator (xorshift) and Box–Muller: the same series every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut gauss = move || {
        let (u, v) = (uniform().max(1e-300), uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let days = 20;
    /// A series' value from the daily cycle and a standard normal draw.
    type Value = fn(f64, f64) -> f64;
    let kinds: [(&str, Value); 3] = [
        ("gaussian", |cycle, g| 100.0 * (1.0 + 0.1 * cycle) + 3.0 * g),
        ("log-normal latency", |cycle, g| {
            (200f64.ln() + 0.2 * cycle + 0.35 * g).exp()
        }),
        ("error rate", |_, g| (0.01 + 0.01 * g).max(0.0)),
    ];
    for (kind, value) in kinds {
        let mut d = Detector::new(Config::default());
        let (mut above_09, mut above_099) = (0, 0);
        for i in 0..days * 1440 {
            let cycle = (std::f64::consts::TAU * (i % 1440) as f64 / 1440.0).sin();
            let s = d
                .update(1_700_000_000 + i * 60, value(cycle, gauss()))
                .score;
            above_09 += usize::from(s >= 0.9);
            above_099 += usize::from(s >= 0.99);
        }
        let per_day = |n: usize| n as f64 / days as f64;
        assert!(
            per_day(above_09) <= 0.15,
            "{kind}: {} a day at 0.9",
            per_day(above_09)
        );
        assert!(
            per_day(above_099) <= 0.1,
            "{kind}: {} a day at 0.99",
            per_day(above_099)
        );
    }
}
