//! `for`, `keep_firing_for`, hysteresis, no data, quorum and rule changes.

use vigil_schema::RuleCondition;

use super::*;

fn availability(recover_above: Option<f64>) -> RuleCondition {
    RuleCondition::Availability {
        below: 0.99,
        recover_above,
        window: mins(1),
    }
}

fn anomaly() -> RuleCondition {
    RuleCondition::Anomaly {
        above: 0.8,
        recover_below: None,
    }
}

/// Windows `idx..` of 100 checks with `bad` failures each.
fn failing(bad: &[u64]) -> Vec<W> {
    (0..)
        .zip(bad)
        .map(|(i, &b)| W::new("api", "eu", i).bulk(100, b, 1e3))
        .collect()
}

fn scored(scores: &[f64]) -> Vec<W> {
    (0..)
        .zip(scores)
        .map(|(i, &s)| W::new("api", "eu", i).bulk(10, 0, 1e3).anomaly(s))
        .collect()
}

#[test]
fn for_goes_pending_and_fires_at_pending_since_plus_for() {
    let slow = RuleSpec {
        for_: mins(2),
        ..rule("avail", availability(None))
    };
    let mut ev = evaluator(vec![slow.clone()]);
    let got = feed_all(&mut ev, &failing(&[3, 3, 3, 0]));
    assert_eq!(
        brief(&got),
        [
            (OK, PENDING, L, 0.97, 0.99),
            (PENDING, FIRING, 3 * L, 0.97, 0.99),
            (FIRING, OK, 4 * L, 1.0, 0.99),
        ]
    );
    assert_eq!(
        got[0].message,
        "api eu: availability 97% below 99% for 1m (pending)"
    );

    // Recovering while pending.
    let mut ev = evaluator(vec![slow.clone()]);
    let got = feed_all(&mut ev, &failing(&[3, 0]));
    assert_eq!(
        brief(&got),
        [
            (OK, PENDING, L, 0.97, 0.99),
            (PENDING, OK, 2 * L, 1.0, 0.99)
        ]
    );

    // The same deadline reached by the watermark when no window follows.
    let mut ev = evaluator(vec![slow]);
    assert_eq!(feed_all(&mut ev, &failing(&[3, 3])).len(), 1);
    assert!(watermark(&mut ev, 0, 3 * L - 1 + T0).is_empty());
    let got = watermark(&mut ev, 0, 3 * L + T0);
    assert_eq!(brief(&got), [(PENDING, FIRING, 3 * L, 0.97, 0.99)]);
    assert!(watermark(&mut ev, 0, 10 * L + T0).is_empty());
}

#[test]
fn keep_firing_for_holds_a_resolved_condition() {
    let sticky = RuleSpec {
        keep_firing_for: mins(3),
        ..rule("odd", anomaly())
    };
    let mut ev = evaluator(vec![sticky.clone()]);
    let got = feed_all(&mut ev, &scored(&[0.9, 0.5, 0.5, 0.5, 0.5, 0.5]));
    // Recovered at 2L: firing until 5L.
    assert_eq!(
        brief(&got),
        [(OK, FIRING, L, 0.9, 0.8), (FIRING, OK, 5 * L, 0.5, 0.8)]
    );

    // Holding again before the end restarts the wait from the next recovery.
    let mut ev = evaluator(vec![sticky.clone()]);
    let got = feed_all(
        &mut ev,
        &scored(&[0.9, 0.5, 0.5, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5]),
    );
    assert_eq!(
        brief(&got),
        [(OK, FIRING, L, 0.9, 0.8), (FIRING, OK, 8 * L, 0.5, 0.8)]
    );

    // Expired by the watermark.
    let mut ev = evaluator(vec![sticky]);
    assert_eq!(feed_all(&mut ev, &scored(&[0.9, 0.5])).len(), 1);
    assert!(watermark(&mut ev, 0, 5 * L - 1 + T0).is_empty());
    let got = watermark(&mut ev, 0, 5 * L + T0);
    assert_eq!(brief(&got), [(FIRING, OK, 5 * L, 0.5, 0.8)]);
}

#[test]
fn hysteresis_stops_flapping() {
    // Availability alternating 98.5% and 99.2% around a 99% threshold.
    let bad: Vec<u64> = (0..10).map(|i| if i % 2 == 0 { 15 } else { 8 }).collect();
    let windows: Vec<W> = (0..)
        .zip(&bad)
        .map(|(i, &b)| W::new("api", "eu", i).bulk(1000, b, 1e3))
        .collect();
    let mut plain = evaluator(vec![rule("avail", availability(None))]);
    let got = feed_all(&mut plain, &windows);
    assert_eq!(got.len(), 10, "fires and resolves every window");
    assert_eq!(
        brief(&got[..2]),
        [
            (OK, FIRING, L, 0.985, 0.99),
            (FIRING, OK, 2 * L, 0.992, 0.99)
        ]
    );
    let mut damped = evaluator(vec![rule("avail", availability(Some(0.995)))]);
    let got = feed_all(&mut damped, &windows);
    assert_eq!(brief(&got), [(OK, FIRING, L, 0.985, 0.99)]);
    // Only crossing 99.5% resolves it, reporting the recovery threshold.
    let got = feed(&mut damped, &W::new("api", "eu", 10).bulk(1000, 5, 1e3));
    assert_eq!(brief(&got), [(FIRING, OK, 11 * L, 0.995, 0.995)]);
}

#[test]
fn no_data_fires_at_the_deadline_and_resolves_on_the_next_check() {
    let rules = vec![rule("silent", RuleCondition::NoData { intervals: 3 })];
    let every_10s = (0..6).fold(W::new("api", "eu", 0), |w, i| {
        w.check(i * 10_000, true, 1e3)
    });
    let resumed = W::new("api", "eu", 3).check(5_000, true, 1e3);

    // Last check at 50 s, every 10 s: deadline 80 s, run once the window holding it closed.
    let mut ev = evaluator(rules.clone());
    assert!(feed(&mut ev, &every_10s).is_empty());
    assert!(watermark(&mut ev, 0, T0 + 2 * L - 1).is_empty());
    let fired = watermark(&mut ev, 0, T0 + 2 * L);
    assert_eq!(brief(&fired), [(OK, FIRING, 80_000, 30.0, 30.0)]);
    assert_eq!(fired[0].message, "api eu: no results for 30s");
    let resolved = feed(&mut ev, &resumed);
    assert_eq!(brief(&resolved), [(FIRING, OK, 185_000, 135.0, 30.0)]);

    // Without watermarks the next window finds the deadline passed: the same transitions.
    let mut direct = evaluator(rules.clone());
    let got = feed_all(&mut direct, &[every_10s, resumed]);
    assert_eq!(got, [fired, resolved].concat());

    // One check: the interval is taken to be the window length (deadline 3 minutes after).
    let mut single = evaluator(rules);
    feed(&mut single, &W::new("api", "eu", 0).check(1_000, true, 1e3));
    assert!(watermark(&mut single, 0, T0 + 3 * L).is_empty());
    let got = watermark(&mut single, 0, T0 + 4 * L);
    assert_eq!(brief(&got), [(OK, FIRING, 181_000, 180.0, 180.0)]);
}

#[test]
fn quorum_two_of_three_regions() {
    let quorum = RuleSpec {
        quorum: Some(2),
        ..rule("odd", anomaly())
    };
    let mut ev = evaluator(vec![quorum]);
    let round = |i: i64, scores: [f64; 3]| -> Vec<W> {
        ["a", "b", "c"]
            .iter()
            .zip(scores)
            .map(|(r, s)| W::new("api", r, i).bulk(10, 0, 1e3).anomaly(s))
            .collect()
    };
    assert!(feed_all(&mut ev, &round(0, [0.9, 0.5, 0.5])).is_empty());
    let fired = feed_all(&mut ev, &round(1, [0.9, 0.9, 0.5]));
    assert_eq!(brief(&fired), [(OK, FIRING, 2 * L, 2.0, 2.0)]);
    assert_eq!(fired[0].region, None);
    assert_eq!(
        fired[0].message,
        "api: odd firing in 2 regions (a,b), quorum 2"
    );
    let resolved = feed_all(&mut ev, &round(2, [0.5, 0.9, 0.5]));
    assert_eq!(brief(&resolved), [(FIRING, OK, 3 * L, 1.0, 2.0)]);
    assert_eq!(resolved[0].region, None);
    assert!(feed_all(&mut ev, &round(3, [0.5, 0.5, 0.5])).is_empty());
}

#[test]
fn removed_rules_resolve_at_the_next_window() {
    let mut ev = evaluator(vec![rule("odd", anomaly()), rule("other", anomaly())]);
    assert_eq!(feed_all(&mut ev, &scored(&[0.9])).len(), 2);
    ev.set_rules(RuleSet::new(
        vec![rule("other", anomaly())],
        HashMap::new(),
        false,
    ));
    let got = feed(
        &mut ev,
        &W::new("api", "eu", 1).bulk(10, 0, 1e3).anomaly(0.95),
    );
    assert_eq!(brief(&got), [(FIRING, OK, 2 * L, 0.9, 0.8)]);
    assert_eq!(got[0].rule_id, "odd");
    // Disabling works the same way.
    let off = RuleSpec {
        enabled: false,
        ..rule("other", anomaly())
    };
    ev.set_rules(RuleSet::new(vec![off], HashMap::new(), false));
    let got = feed(&mut ev, &W::new("api", "eu", 2).bulk(10, 0, 1e3));
    assert_eq!(brief(&got), [(FIRING, OK, 3 * L, 0.95, 0.8)]);
    assert!(
        feed(
            &mut ev,
            &W::new("api", "eu", 3).bulk(10, 0, 1e3).anomaly(0.99)
        )
        .is_empty()
    );
}

#[test]
fn summary_templates_render_placeholders() {
    let mut labels = std::collections::BTreeMap::new();
    labels.insert("team".to_owned(), "payments".to_owned());
    let templated = RuleSpec {
        name: "Odd traffic".into(),
        summary: "[{{severity}}] {{rule}} ({{kind}}) on {{monitor}}/{{region}}: {{value}} vs \
                  {{ threshold }}, {{state}}, team {{labels.team}}"
            .into(),
        labels,
        ..rule("odd", anomaly())
    };
    let mut ev = evaluator(vec![templated]);
    let got = feed_all(&mut ev, &scored(&[0.912]));
    assert_eq!(
        got[0].message,
        "[warning] odd (anomaly) on api/eu: 0.91 vs 0.8, firing, team payments"
    );
    assert_eq!(
        got[0].labels.get("team").map(String::as_str),
        Some("payments")
    );
}
