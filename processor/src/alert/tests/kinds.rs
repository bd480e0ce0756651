//! Every kind of rule, with the exact transitions it produces.

use std::time::Duration;

use vigil_schema::{AlertKind, BurnWindow, RuleCondition, Severity, SloKind, StatusClass};

use super::*;

#[test]
fn consecutive_failures_fire_on_the_streak_and_resolve_on_successes() {
    let cf = RuleCondition::ConsecutiveFailures {
        failures: 3,
        successes: 2,
    };
    let mut ev = evaluator(vec![rule("down", cf)]);
    let windows = [
        W::new("api", "eu", 0)
            .check(0, true, 1e3)
            .check(10_000, false, 1e3)
            .check(20_000, false, 1e3)
            .check(30_000, false, 1e3)
            .check(40_000, false, 1e3)
            .check(50_000, true, 1e3),
        W::new("api", "eu", 1).check(0, true, 1e3),
    ];
    let got = feed_all(&mut ev, &windows);
    assert_eq!(
        brief(&got),
        [
            (OK, FIRING, 30_000, 3.0, 3.0),
            (FIRING, OK, 60_000, 2.0, 2.0)
        ]
    );
    assert_eq!(got[0].kind, AlertKind::ConsecutiveFailures);
    assert_eq!(got[0].region.as_deref(), Some("eu"));
    assert_eq!(got[0].severity, Severity::Warning);
    assert_eq!(got[0].message, "api eu: 3 failed checks in a row");
    assert_eq!(
        got[1].message,
        "api eu: recovered, 2 successful checks in a row"
    );
}

#[test]
fn the_default_rule_covers_monitors_without_a_failure_rule() {
    let mut ev = Evaluator::new(L);
    let anomaly = RuleCondition::Anomaly {
        above: 0.9,
        recover_below: None,
    };
    ev.set_rules(RuleSet::new(
        vec![rule("odd", anomaly)],
        HashMap::new(),
        true,
    ));
    let w = W::new("api", "eu", 0)
        .check(0, false, 1e3)
        .check(10_000, false, 1e3)
        .check(20_000, false, 1e3);
    let got = feed(&mut ev, &w);
    assert_eq!(brief(&got), [(OK, FIRING, 20_000, 3.0, 3.0)]);
    assert_eq!(got[0].rule_id, "default-down");
    assert_eq!(got[0].severity, Severity::Critical);
}

#[test]
fn latency_percentile_merges_the_span_with_hysteresis() {
    let latency = RuleCondition::LatencyPercentile {
        percentile: 99.0,
        above: Duration::from_millis(800),
        recover_below: Some(Duration::from_millis(500)),
        window: mins(5),
    };
    let mut ev = evaluator(vec![rule("slow", latency)]);
    let windows: Vec<W> = (0..9)
        .map(|i| {
            let us = if i == 2 { 1_200_000.0 } else { 100_000.0 };
            W::new("checkout-api", "eu-west", i).bulk(100, 0, us)
        })
        .collect();
    let got = feed_all(&mut ev, &windows);
    // The slow window stays in the 5m span until the window starting at 7 closes.
    assert_eq!(
        brief(&got),
        [
            (OK, FIRING, 3 * L, bucketed(1_200_000.0), 800_000.0),
            (FIRING, OK, 8 * L, bucketed(100_000.0), 500_000.0),
        ]
    );
    assert_eq!(
        got[0].message,
        "checkout-api eu-west: p99 1.2s above 800ms for 5m"
    );
    assert_eq!(
        got[1].message,
        "checkout-api eu-west: p99 100ms back below 500ms"
    );
}

#[test]
fn availability_over_the_span() {
    let availability = RuleCondition::Availability {
        below: 0.99,
        recover_above: None,
        window: mins(2),
    };
    let mut ev = evaluator(vec![rule("avail", availability)]);
    let windows = [
        W::new("api", "eu", 0).bulk(100, 0, 1e3),
        W::new("api", "eu", 1).bulk(100, 3, 1e3),
        W::new("api", "eu", 2).bulk(100, 0, 1e3),
        W::new("api", "eu", 3).bulk(100, 0, 1e3),
    ];
    let got = feed_all(&mut ev, &windows);
    assert_eq!(
        brief(&got),
        [
            (OK, FIRING, 2 * L, 197.0 / 200.0, 0.99),
            (FIRING, OK, 4 * L, 1.0, 0.99),
        ]
    );
    assert_eq!(
        got[0].message,
        "api eu: availability 98.5% below 99% for 2m"
    );
}

#[test]
fn status_pattern_share_of_a_class() {
    let pattern = |id: &str, class| {
        rule(
            id,
            RuleCondition::StatusPattern {
                class,
                above: 0.05,
                recover_below: None,
                window: mins(1),
            },
        )
    };
    let mut ev = evaluator(vec![
        pattern("5xx", StatusClass::ServerError),
        pattern("errors", StatusClass::AnyError),
    ]);
    let mut mixed = W::new("api", "eu", 0).bulk(100, 0, 1e3);
    mixed.status = [0, 94, 0, 3, 3];
    let got = feed(&mut ev, &mixed);
    // 4xx + 5xx = 6%; 5xx alone 3%.
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rule_id, "errors");
    assert_eq!(brief(&got), [(OK, FIRING, L, 0.06, 0.05)]);
    let windows = [
        W::new("api", "eu", 1).bulk(100, 10, 1e3),
        // No responses with a status: not evaluated.
        W::new("api", "eu", 2),
        W::new("api", "eu", 3).bulk(100, 0, 1e3),
    ];
    let got = feed_all(&mut ev, &windows);
    let ids: Vec<&str> = got.iter().map(|t| t.rule_id.as_str()).collect();
    assert_eq!(ids, ["5xx", "5xx", "errors"]);
    assert_eq!(
        brief(&got),
        [
            (OK, FIRING, 2 * L, 0.1, 0.05),
            (FIRING, OK, 4 * L, 0.0, 0.05),
            (FIRING, OK, 4 * L, 0.0, 0.05),
        ]
    );
    assert_eq!(got[0].message, "api eu: 5xx share 10% above 5% for 1m");
}

#[test]
fn anomaly_score_of_the_window() {
    let anomaly = RuleCondition::Anomaly {
        above: 0.8,
        recover_below: None,
    };
    let mut ev = evaluator(vec![rule("odd", anomaly)]);
    let windows = [
        W::new("api", "eu", 0).bulk(10, 0, 1e3),
        W::new("api", "eu", 1).bulk(10, 0, 1e3).anomaly(0.9),
        W::new("api", "eu", 2).bulk(10, 0, 1e3),
        W::new("api", "eu", 3).bulk(10, 0, 1e3).anomaly(0.5),
    ];
    let got = feed_all(&mut ev, &windows);
    assert_eq!(
        brief(&got),
        [(OK, FIRING, 2 * L, 0.9, 0.8), (FIRING, OK, 4 * L, 0.5, 0.8)]
    );
}

#[test]
fn certificate_expiry_from_the_latest_check_with_a_certificate() {
    let day = 86_400_000;
    let cert = RuleCondition::CertificateExpiry {
        within: Duration::from_secs(7 * 86_400),
    };
    let mut ev = evaluator(vec![rule("cert", cert)]);
    let windows = [
        W::new("api", "eu", 0).cert(0, 10 * day),
        W::new("api", "eu", 1)
            .cert(5_000, 5 * day)
            .check(6_000, false, 1e3),
        W::new("api", "eu", 2).cert(0, 90 * day),
    ];
    let got = feed_all(&mut ev, &windows);
    assert_eq!(
        brief(&got),
        [
            (OK, FIRING, L + 5_000, 5.0 * 86_400.0, 604_800.0),
            (FIRING, OK, 2 * L, 90.0 * 86_400.0, 604_800.0),
        ]
    );
    assert_eq!(
        got[0].message,
        "api eu: certificate expires in 5d, within 7d"
    );
}

fn burn_rule(windows: Vec<BurnWindow>, slo: SloKind, objective: f64) -> RuleSpec {
    rule(
        "budget",
        RuleCondition::BurnRate {
            slo,
            objective,
            period: Duration::from_secs(30 * 86_400),
            windows,
        },
    )
}

/// Windows 0..n of 100 checks, 20 failing in windows 55..=59.
fn incident(n: i64) -> Vec<W> {
    (0..n)
        .map(|i| {
            let bad = if (55..60).contains(&i) { 20 } else { 0 };
            W::new("api", "eu", i).bulk(100, bad, 1e3)
        })
        .collect()
}

#[test]
fn burn_rate_one_hour_five_minutes_at_14_4() {
    let pair = BurnWindow {
        long: mins(60),
        short: mins(5),
        burn_rate: 14.4,
        severity: Severity::Critical,
    };
    let mut ev = evaluator(vec![burn_rule(vec![pair], SloKind::Availability, 0.999)]);
    let got = feed_all(&mut ev, &incident(66));
    // At the end of window 59: 1h holds 100 bad of 6000, 5m 100 of 500. Both windows burn
    // above 14.4 (16.67 and 200). At the end of window 64 the 5m window is clean again.
    let long = 100.0 / 6000.0 / (1.0 - 0.999);
    assert_eq!(
        brief(&got),
        [
            (OK, FIRING, 60 * L, long, 14.4),
            (FIRING, OK, 65 * L, long, 14.4)
        ]
    );
    assert_eq!(got[0].severity, Severity::Critical);
    assert_eq!(
        got[0].message,
        "api eu: error budget burning at 16.67x, above 14.4x"
    );
}

#[test]
fn burn_rate_default_pairs_report_the_most_severe_pair() {
    let rule = burn_rule(
        vigil_schema::event::default_burn_windows(),
        SloKind::Availability,
        0.999,
    );
    let mut ev = evaluator(vec![rule]);
    // An hour of clean windows, then 50 failures of 100.
    let windows: Vec<W> = (0..61)
        .map(|i| W::new("api", "eu", i).bulk(100, if i == 60 { 50 } else { 0 }, 1e3))
        .collect();
    let got = feed_all(&mut ev, &windows);
    // End of window 60: 1h holds 50 bad of 6000 (8.3, under 14.4); 6h and 3d hold 50 of 6100
    // (8.2); 30m 50 of 3000 (16.7). So 6h/30m at 6 (critical) and 3d/6h at 1 (warning) hold:
    // the critical pair is reported, with its long-window rate.
    let long = 50.0 / 6100.0 / (1.0 - 0.999);
    assert_eq!(brief(&got), [(OK, FIRING, 61 * L, long, 6.0)]);
    assert_eq!(got[0].severity, Severity::Critical);
}

#[test]
fn burn_rate_latency_slo_counts_checks_over_the_threshold_as_bad() {
    let pair = BurnWindow {
        long: mins(60),
        short: mins(5),
        burn_rate: 10.0,
        severity: Severity::Warning,
    };
    let slo = SloKind::Latency {
        threshold: Duration::from_millis(500),
    };
    let mut ev = evaluator(vec![burn_rule(vec![pair], slo, 0.99)]);
    // 5 of 100 slow: a burn rate of 5; then 20 of 100: 25 of 200 in both spans, 12.5.
    let w0 = W::new("api", "eu", 0)
        .bulk(95, 0, 100_000.0)
        .bulk(5, 0, 2_000_000.0);
    let w1 = W::new("api", "eu", 1)
        .bulk(80, 0, 100_000.0)
        .bulk(20, 0, 2_000_000.0);
    assert!(feed(&mut ev, &w0).is_empty());
    let got = feed(&mut ev, &w1);
    let long = 25.0 / 200.0 / (1.0 - 0.99);
    assert_eq!(brief(&got), [(OK, FIRING, 2 * L, long, 10.0)]);
}
