//! The evaluator on its own thread ([`Stage`]) against the evaluator called inline with every
//! watermark: identical transitions (in order), and a changelog (chunked differently: the
//! stage takes it after every command) from which a restart continues exactly as the
//! uninterrupted evaluator does.

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

/// What a run produced: transitions, changelog records.
type Produced = (
    Vec<AlertTransition>,
    Vec<(i32, String, Option<bytes::Bytes>)>,
);

/// Where a run left off: the next window index per monitor, the watermark.
type End = ([i64; 3], i64);

fn set() -> RuleSet {
    RuleSet::new(rules(), HashMap::new(), false)
}

/// Window `idx` of monitor `m` with `checks`.
fn window(m: usize, idx: i64, checks: &[(i64, bool, f64)]) -> W {
    let mut w = W::new(&format!("m{m}"), "eu", idx);
    let mut checks = checks.to_vec();
    checks.sort_by_key(|c| c.0);
    for (offset, ok, us) in checks {
        w = w.check(offset, ok, us);
    }
    w
}

/// Runs `steps` on an inline evaluator (every watermark given) and on a stage; returns what
/// each produced, the inline evaluator, and where the run ended.
fn run(steps: &[Step]) -> (Produced, Produced, Evaluator, End) {
    let mut inline = Evaluator::new(L);
    inline.set_rules(set());
    let mut stage = Stage::start(L, Arc::default());
    stage.set_rules(set());
    let (mut a, mut b): (Produced, Produced) = Default::default();
    // Windows go out in start order per monitor, none ending at or before a watermark
    // already given (the evaluator's contract).
    let mut next = [0i64; 3];
    let mut watermark = T0;
    for (i, s) in steps.iter().enumerate() {
        match s {
            Step::Window(m, checks) => {
                let idx = next[*m].max((watermark - T0).div_euclid(L));
                next[*m] = idx + 1;
                let w = window(*m, idx, checks);
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
                let c = stage.collect(true);
                b.0.extend(c.transitions);
                b.1.extend(c.changes);
            }
        }
        if i % 3 == 0 {
            // Now and then, what is done so far, without waiting.
            let c = stage.collect(false);
            b.0.extend(c.transitions);
            b.1.extend(c.changes);
            b.0.extend(stage.fresh());
        }
    }
    a.1.extend(inline.take_changes());
    let c = stage.collect(true);
    b.0.extend(c.transitions);
    b.1.extend(c.changes);
    (a, b, inline, (next, watermark))
}

/// An evaluator restored from the latest record of each key of `changes`.
fn restored(changes: &[(i32, String, Option<bytes::Bytes>)]) -> Evaluator {
    let mut latest = std::collections::BTreeMap::new();
    for (p, key, value) in changes {
        latest.insert(key.clone(), (*p, value.clone()));
    }
    let mut ev = Evaluator::new(L);
    ev.set_rules(set());
    for (key, (p, value)) in latest {
        if let Some(value) = value {
            ev.restore(p, &key, &value).expect("restore");
        }
    }
    ev.finish_restore(0, &mut Vec::new());
    ev
}

/// The same continuation on `ev`: every monitor failing, then recovering, then silent.
fn continued(ev: &mut Evaluator, (next, watermark): End) -> Vec<AlertTransition> {
    let mut out = Vec::new();
    let from = next
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max((watermark - T0).div_euclid(L) + 1);
    for i in 0..6 {
        for m in 0..3 {
            let ok = i >= 3;
            let w = window(
                m,
                from + i,
                &[(2_000, ok, 400_000.0), (40_000, ok, 90_000.0)],
            );
            ev.on_window(&w.closed(), &mut out);
        }
        ev.on_watermark(0, T0 + (from + i + 1) * L, &mut out);
    }
    ev.on_watermark(0, T0 + (from + 12) * L, &mut out);
    out
}

fn check(steps: &[Step]) {
    let (inline, stage, mut uninterrupted, end) = run(steps);
    assert_eq!(inline.0, stage.0, "transitions");
    let expected = continued(&mut uninterrupted, end);
    assert!(!expected.is_empty());
    assert_eq!(
        continued(&mut restored(&inline.1), end),
        expected,
        "inline changelog"
    );
    assert_eq!(
        continued(&mut restored(&stage.1), end),
        expected,
        "stage changelog"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stage_produces_what_the_inline_evaluator_does(steps in prop::collection::vec(step(), 1..60)) {
        check(&steps);
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
    let (inline, stage, _, _) = run(&steps);
    let kinds: Vec<_> = inline
        .0
        .iter()
        .map(|t| (t.rule_id.as_str(), t.to))
        .collect();
    assert!(kinds.contains(&("down", FIRING)), "{kinds:?}");
    assert!(kinds.contains(&("down", OK)), "{kinds:?}");
    assert!(kinds.contains(&("silent", FIRING)), "{kinds:?}");
    assert_eq!(inline.0, stage.0);
    check(&steps);
}
