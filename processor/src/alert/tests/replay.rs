//! Determinism, restart from the changelog, and bounded state.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use vigil_schema::{BurnWindow, RuleCondition, Severity, SloKind};

use super::*;

/// One call into the evaluator.
#[derive(Debug, Clone)]
enum Step {
    Window(Box<W>),
    Watermark(i32, i64),
}

fn rules() -> Vec<RuleSpec> {
    let pair = |long, short, burn_rate, severity| BurnWindow {
        long: mins(long),
        short: mins(short),
        burn_rate,
        severity,
    };
    vec![
        RuleSpec {
            for_: mins(2),
            keep_firing_for: mins(2),
            ..rule(
                "avail",
                RuleCondition::Availability {
                    below: 0.9,
                    recover_above: Some(0.95),
                    window: mins(2),
                },
            )
        },
        rule(
            "slow",
            RuleCondition::LatencyPercentile {
                percentile: 95.0,
                above: Duration::from_millis(500),
                recover_below: None,
                window: mins(3),
            },
        ),
        RuleSpec {
            keep_firing_for: mins(1),
            ..rule("silent", RuleCondition::NoData { intervals: 2 })
        },
        rule(
            "budget",
            RuleCondition::BurnRate {
                slo: SloKind::Availability,
                objective: 0.99,
                period: Duration::from_secs(30 * 86_400),
                windows: vec![
                    pair(60, 5, 14.4, Severity::Critical),
                    pair(360, 30, 6.0, Severity::Critical),
                    pair(600, 60, 1.0, Severity::Warning),
                ],
            },
        ),
        RuleSpec {
            quorum: Some(2),
            ..rule(
                "odd",
                RuleCondition::Anomaly {
                    above: 0.8,
                    recover_below: Some(0.6),
                },
            )
        },
        rule(
            "cert",
            RuleCondition::CertificateExpiry {
                within: Duration::from_secs(86_400),
            },
        ),
    ]
}

fn evaluator_with_default() -> Evaluator {
    let mut ev = Evaluator::new(L);
    ev.set_rules(RuleSet::new(rules(), HashMap::new(), true));
    ev
}

/// A window from compact parameters: `fails` marks failed checks among six at 10 s steps
/// (bit i: check i failed; bit 6: the checks stop after the third), `slow` makes them take
/// 800 ms, `score` is the anomaly score in tenths.
fn window(region: &str, idx: i64, fails: u8, slow: bool, score: Option<u8>) -> W {
    let mut w = W::new("api", region, idx);
    let n = if fails & 0x40 != 0 { 3 } else { 6 };
    for i in 0..n {
        let ok = fails & (1 << i) == 0;
        w = w.check(i * 10_000, ok, if slow { 800_000.0 } else { 50_000.0 });
        if let Some(s) = w.samples.last_mut() {
            s.cert_expiry_ms = Some(s.t_ms + 86_400_000 * i64::from(fails % 3));
        }
    }
    w.anomaly = score.map(|s| f64::from(s) / 10.0);
    w
}

/// A window's parameters (see [`window`]), `None` for no window.
type Params = Option<(u8, bool, Option<u8>)>;

/// Per window index: a window per region that is present, then the watermark at its end.
fn steps(plan: &[[Params; 3]]) -> Vec<Step> {
    let mut steps = Vec::new();
    for (idx, regions) in (0..).zip(plan) {
        for (region, params) in ["a", "b", "c"].iter().zip(regions) {
            if let Some((fails, slow, score)) = *params {
                steps.push(Step::Window(Box::new(window(
                    region, idx, fails, slow, score,
                ))));
            }
        }
        steps.push(Step::Watermark(0, T0 + (idx + 1) * L));
    }
    steps
}

/// Runs `steps`, folding every changelog batch into `changelog` like a compacted topic, and
/// returns the transitions of each step.
fn run(
    ev: &mut Evaluator,
    steps: &[Step],
    changelog: &mut BTreeMap<String, (i32, Vec<u8>)>,
) -> Vec<Vec<AlertTransition>> {
    let mut out = Vec::new();
    for step in steps {
        let mut transitions = Vec::new();
        match step {
            Step::Window(w) => ev.on_window(&w.closed(), &mut transitions),
            Step::Watermark(p, at) => ev.on_watermark(*p, *at, &mut transitions),
        }
        out.push(transitions);
        for (partition, key, value) in ev.take_changes() {
            match value {
                Some(v) => changelog.insert(key, (partition, v.to_vec())),
                None => changelog.remove(&key),
            };
        }
    }
    out
}

/// Runs `steps[..split]`, restores a fresh evaluator from the changelog and runs the rest.
fn run_with_restart(steps: &[Step], split: usize) -> (Vec<Vec<AlertTransition>>, Evaluator) {
    let mut first = evaluator_with_default();
    let mut changelog = BTreeMap::new();
    let mut out = run(&mut first, &steps[..split], &mut changelog);
    let mut second = evaluator_with_default();
    for (key, (partition, value)) in &changelog {
        second.restore(*partition, key, value).unwrap();
    }
    // Replaying the windows logged since each snapshot repeats transitions already out.
    let mut replayed = Vec::new();
    second.finish_restore(0, &mut replayed);
    for t in &replayed {
        assert!(out.iter().flatten().any(|o| o == t), "replay made {t:?}");
    }
    out.extend(run(&mut second, &steps[split..], &mut BTreeMap::new()));
    (out, second)
}

/// A fixed scenario touching every kind: failures, slow spells, silences, anomalies in two
/// regions, certificates close to expiry.
fn scenario() -> Vec<Step> {
    let mut seed = 0x2545_f491_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let plan: Vec<[Params; 3]> = (0..48)
        .map(|i| {
            let mut regions = [None; 3];
            for (r, slot) in regions.iter_mut().enumerate() {
                let roll = next();
                // Region a pauses for 4 windows, every region for 5.
                let silent = ((12..16).contains(&i) && r == 0) || (30..35).contains(&i);
                if !silent {
                    let stops = if roll % 13 == 0 { 0x40 } else { 0 };
                    let fails = match (i, r) {
                        (20..26, _) | (29, 1) => 0x3f,
                        // b recovers before failing just ahead of the pause, so it goes
                        // pending and its `for` ends during the pause.
                        (26..29, 1) => 0,
                        _ => (roll as u8 & 0x05) | stops,
                    };
                    let score = (roll >> 8) % 11;
                    *slot = Some((fails, (roll >> 12) % 5 == 0, Some(score as u8)));
                }
            }
            regions
        })
        .collect();
    steps(&plan)
}

#[test]
fn restart_from_the_changelog_continues_exactly() {
    let steps = scenario();
    let mut whole = evaluator_with_default();
    let expected = run(&mut whole, &steps, &mut BTreeMap::new());
    let kinds: std::collections::BTreeSet<&str> = expected
        .iter()
        .flatten()
        .map(|t| t.rule_id.as_str())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "avail",
            "budget",
            "cert",
            "default-down",
            "odd",
            "silent",
            "slow"
        ],
        "the scenario exercises every rule"
    );
    let on_watermark: Vec<&str> = steps
        .iter()
        .zip(&expected)
        .filter(|(step, _)| matches!(step, Step::Watermark(..)))
        .flat_map(|(_, ts)| ts.iter().map(|t| t.rule_id.as_str()))
        .collect();
    assert!(on_watermark.contains(&"silent"), "{on_watermark:?}");
    assert!(on_watermark.contains(&"avail"), "{on_watermark:?}");
    for split in 0..=steps.len() {
        let (got, mut restored) = run_with_restart(&steps, split);
        assert_eq!(got, expected, "restart after step {split}");
        // Windows evaluated before the restart are re-emitted after it: nothing new.
        let mut again = Vec::new();
        for step in &steps[..split] {
            if let Step::Window(w) = step {
                restored.on_window(&w.closed(), &mut again);
            }
        }
        assert!(
            again.is_empty(),
            "re-fed windows after step {split}: {again:?}"
        );
    }
}

#[test]
fn bad_changelog_records_are_errors() {
    let mut ev = evaluator_with_default();
    assert!(ev.restore(0, "nonsense", &[1]).is_err());
    assert!(ev.restore(0, "s\u{1f}api\u{1f}a", &[]).is_err());
    assert!(ev.restore(0, "s\u{1f}api\u{1f}a", &[9, 0]).is_err());
    assert!(ev.restore(0, "s\u{1f}api\u{1f}a", &[1, 0xff]).is_err());
}

#[test]
fn state_stays_bounded() {
    let mut ev = evaluator_with_default();
    let mut heap = Vec::new();
    for idx in 0..900 {
        let w = window("a", idx, (idx % 7) as u8 & 0x05, idx % 11 == 0, Some(3));
        feed(&mut ev, &w);
        if idx == 600 || idx == 899 {
            heap.push(ev.heap_bytes());
        }
    }
    // Ten hours of windows: the longest burn window (10h) and the 3m ring are full by 600.
    assert!(heap[0] > 0);
    assert_eq!(heap[0], heap[1]);
    assert!(heap[1] < 32 * 1024, "{} bytes", heap[1]);
    let changes = ev.take_changes();
    assert_eq!(changes.len(), 1);
    assert!(changes[0].2.as_ref().is_some_and(|v| v.len() < 4 * 1024));
    // Right after a snapshot of every series, the running count is the full count; dropping
    // the partition frees all of it.
    assert_eq!(ev.accounted_bytes(), ev.series_heap_bytes());
    assert!(ev.accounted_bytes() > 1_000);
    ev.drop_partition(0);
    assert_eq!(ev.accounted_bytes(), 0);
}

fn params() -> impl Strategy<Value = Params> {
    prop::option::weighted(
        0.85,
        (any::<u8>(), any::<bool>(), prop::option::of(0u8..=10)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn same_input_same_bytes_and_restart_anywhere(
        plan in prop::collection::vec([params(), params(), params()], 1..30),
        split in any::<prop::sample::Index>(),
    ) {
        let steps = steps(&plan);
        let mut a = evaluator_with_default();
        let mut b = evaluator_with_default();
        let out_a = run(&mut a, &steps, &mut BTreeMap::new());
        let out_b = run(&mut b, &steps, &mut BTreeMap::new());
        prop_assert_eq!(
            postcard::to_stdvec(&out_a).unwrap(),
            postcard::to_stdvec(&out_b).unwrap()
        );
        let (restarted, _) = run_with_restart(&steps, split.index(steps.len() + 1));
        prop_assert_eq!(
            postcard::to_stdvec(&restarted).unwrap(),
            postcard::to_stdvec(&out_a).unwrap()
        );
    }
}
