//! The evaluator on its own thread ([`Stage`]) against the evaluator called inline with every
//! watermark: identical transitions (in order) and changelog records.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::alert::Stage;

/// Rules with timers (`for`, `keep_firing_for`, no data) and window kinds.
fn rules() -> Vec<RuleSpec> {
    serde_json::from_value(serde_json::json!([
        {"id": "down", "condition": {"consecutive_failures": {"failures": 2}}, "for": "1m"},
        {"id": "slow", "condition": {"latency_percentile":
            {"percentile": 90, "above": "300ms", "recover_below": "200ms", "window": "3m"}},
         "keep_firing_for": "2m"},
        {"id": "avail", "condition": {"availability": {"below": 0.8, "window": "2m"}}},
        {"id": "silent", "condition": {"no_data": {"intervals": 2}}},
    ]))
    .expect("rules")
}

/// One step of a run: a window of (monitor, checks as (offset, ok, latency µs)), or a
/// watermark moved `ms` further.
#[derive(Debug, Clone)]
enum Step {
    Window(usize, Vec<(i64, bool, f64)>),
    Watermark(i64),
    Take,
}

fn step() -> impl Strategy<Value = Step> {
    let check = (0..L, any::<bool>(), 1_000.0..600_000.0f64);
    prop_oneof![
        4 => (0..3usize, prop::collection::vec(check, 1..5)).prop_map(|(m, c)| Step::Window(m, c)),
        3 => (0..3 * L).prop_map(Step::Watermark),
        1 => Just(Step::Take),
    ]
}

/// Runs `steps` on an inline evaluator and on a stage; returns what each produced.
type Produced = (
    Vec<AlertTransition>,
    Vec<(i32, String, Option<bytes::Bytes>)>,
);

fn run(steps: &[Step]) -> (Produced, Produced) {
    let set = || RuleSet::new(rules(), HashMap::new(), false);
    let mut inline = Evaluator::new(L);
    inline.set_rules(set());
    let mut stage = Stage::start(L, Arc::default());
    stage.set_rules(set());
    let (mut a, mut b): (Produced, Produced) = Default::default();
    // Windows go out in start order per monitor, none ending at or before a watermark
    // already given (the evaluator's contract).
    let mut next = [0i64; 3];
    let mut watermark = T0;
    for s in steps {
        match s {
            Step::Window(m, checks) => {
                let idx = next[*m].max((watermark - T0).div_euclid(L));
                next[*m] = idx + 1;
                let mut w = W::new(&format!("m{m}"), "eu", idx);
                let mut checks = checks.clone();
                checks.sort_by_key(|c| c.0);
                for (offset, ok, us) in checks {
                    w = w.check(offset, ok, us);
                }
                inline.on_window(&w.closed(), &mut a.0);
                stage.on_window(&w.closed());
            }
            Step::Watermark(ms) => {
                watermark += ms;
                inline.on_watermark(0, watermark, &mut a.0);
                stage.on_watermark(0, watermark);
            }
            Step::Take => {
                a.1.extend(inline.take_changes());
                let (t, c) = stage.take_changes();
                b.0.extend(t);
                b.1.extend(c);
            }
        }
        if matches!(s, Step::Window(..)) && b.0.len() % 3 == 0 {
            stage.send_batch();
            b.0.extend(stage.fresh());
        }
    }
    a.1.extend(inline.take_changes());
    let (t, c) = stage.take_changes();
    b.0.extend(t);
    b.1.extend(c);
    (a, b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stage_produces_what_the_inline_evaluator_does(steps in prop::collection::vec(step(), 1..60)) {
        let (inline, stage) = run(&steps);
        prop_assert_eq!(&inline.0, &stage.0);
        prop_assert_eq!(&inline.1, &stage.1);
    }
}

#[test]
fn a_run_with_timers_fires_resolves_and_matches() {
    // m0 fails for three windows then recovers; m1 reports once and goes silent.
    let mut steps = Vec::new();
    for i in 0..8 {
        let ok = !(1..4).contains(&i);
        steps.push(Step::Window(
            0,
            vec![(1_000, ok, 50_000.0), (31_000, ok, 50_000.0)],
        ));
        if i == 0 {
            steps.push(Step::Window(
                1,
                vec![(5_000, true, 40_000.0), (35_000, true, 40_000.0)],
            ));
        }
        steps.push(Step::Watermark(L));
        if i % 3 == 2 {
            steps.push(Step::Take);
        }
    }
    let (inline, stage) = run(&steps);
    let kinds: Vec<_> = inline
        .0
        .iter()
        .map(|t| (t.rule_id.as_str(), t.to))
        .collect();
    assert!(kinds.contains(&("down", FIRING)), "{kinds:?}");
    assert!(kinds.contains(&("down", OK)), "{kinds:?}");
    assert!(kinds.contains(&("silent", FIRING)), "{kinds:?}");
    assert_eq!(inline.0, stage.0);
    assert_eq!(inline.1, stage.1);
}
