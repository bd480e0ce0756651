//! Alert rules through the whole pipeline (decode → windows → evaluation), without I/O:
//! arrival order within the allowed lateness does not change the transitions, and a restart
//! from the changelog and the committed offsets neither repeats nor loses one.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use proptest::prelude::*;
use uuid::Uuid;
use vigil_processor::alert::RuleSet;
use vigil_processor::{Config, Pipeline};
use vigil_schema::{
    AlertState, AlertTransition, Outcome, ProbeResult, RuleSpec, Timestamp, Timings, encode,
};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const NOW: i64 = T0 + 365 * 24 * 3_600_000;

fn cfg() -> Config {
    Config {
        window: Duration::from_secs(60),
        allowed_lateness: Duration::from_secs(10),
        // Event time only: the wall clock never closes a window here.
        idle_timeout: Duration::from_secs(100 * 365 * 24 * 3600),
        correction_horizon: Duration::from_secs(600),
        ..Config::default()
    }
}

fn event(n: u64, monitor: &str, region: &str, t_ms: i64, total_us: u64, ok: bool) -> ProbeResult {
    ProbeResult {
        event_id: Uuid::from_u128(u128::from(n) + 1),
        monitor_id: monitor.into(),
        region: region.into(),
        agent: "test".into(),
        scheduled_at: Timestamp::from_millis(t_ms),
        event_time: Timestamp::from_millis(t_ms),
        method: "GET".into(),
        url: "http://127.0.0.1/".into(),
        status_code: Some(if ok { 200 } else { 503 }),
        outcome: if ok { Outcome::Ok } else { Outcome::HttpStatus },
        error: None,
        timings: Timings {
            total_us,
            ..Timings::default()
        },
        response_size: None,
        assertions: vec![],
        tls_cert_expiry: None,
        steps: Vec::new(),
    }
}

fn rules() -> RuleSet {
    let specs: Vec<RuleSpec> = serde_json::from_value(serde_json::json!([
        {"id": "down", "monitors": ["a"], "condition": {"consecutive_failures": {}}},
        {"id": "avail", "condition": {"availability": {"below": 0.8, "window": "2m"}},
         "for": "1m"},
        {"id": "slow", "condition": {"latency_percentile":
            {"percentile": 99, "above": "300ms", "recover_below": "200ms", "window": "2m"}}},
        {"id": "errors", "condition": {"status_pattern": {"class": "5xx", "above": 0.3}}},
        {"id": "quiet", "condition": {"no_data": {"intervals": 3}}},
        {"id": "quorum", "monitors": ["a"], "condition": {"consecutive_failures": {"failures": 2}},
         "quorum": 2},
    ]))
    .unwrap();
    let tags = HashMap::from([("a".to_owned(), vec![]), ("b".to_owned(), vec![])]);
    let set = RuleSet::new(specs, tags, true);
    assert!(set.rejected().is_empty(), "{:?}", set.rejected());
    set
}

/// Checks of monitors `a` and `b` in regions `eu` and `us` every 10 s for 20 minutes, with
/// outages, slow spells and a silence chosen by `pattern`.
fn scenario(pattern: &[u8]) -> Vec<ProbeResult> {
    let mut events = Vec::new();
    let mut n = 0;
    for step in 0..120i64 {
        let t = T0 + step * 10_000;
        let phase = pattern[(step / 6) as usize % pattern.len()];
        for (monitor, region) in [("a", "eu"), ("a", "us"), ("b", "eu")] {
            // `b` goes quiet for a while in some patterns.
            if monitor == "b" && phase % 5 == 4 {
                continue;
            }
            let ok = !(phase.is_multiple_of(3) && (region == "eu" || phase.is_multiple_of(2)));
            let total = if phase % 4 == 1 {
                450_000
            } else {
                40_000 + (n % 7) * 1000
            };
            events.push(event(n, monitor, region, t + (n as i64 % 3) * 7, total, ok));
            n += 1;
        }
    }
    events
}

fn feed(p: &mut Pipeline, offset: i64, e: &ProbeResult) {
    let payload = encode(e).unwrap();
    p.process(
        0,
        offset,
        Some(e.monitor_id.as_bytes()),
        Some(&payload),
        NOW,
    );
}

fn transitions_in(order: &[usize], events: &[ProbeResult]) -> Vec<AlertTransition> {
    let mut p = Pipeline::new(cfg());
    p.set_rules(rules());
    let mut out = Vec::new();
    for (offset, &i) in order.iter().enumerate() {
        feed(&mut p, offset as i64, &events[i]);
        if offset.is_multiple_of(17) {
            p.tick(0);
            out.extend(p.take_output().transitions);
        }
    }
    p.finish();
    out.extend(p.take_output().transitions);
    out
}

#[test]
fn scenario_fires_and_resolves_every_kind_it_exercises() {
    let events = scenario(&[2, 0, 0, 3, 1, 1, 2, 4, 4, 4, 2, 2, 6, 6]);
    let order: Vec<usize> = (0..events.len()).collect();
    let transitions = transitions_in(&order, &events);
    let fired: BTreeMap<&str, usize> = transitions
        .iter()
        .filter(|t| t.to == AlertState::Firing)
        .fold(BTreeMap::new(), |mut m, t| {
            *m.entry(t.rule_id.as_str()).or_default() += 1;
            m
        });
    for rule in [
        "down",
        "avail",
        "slow",
        "errors",
        "quiet",
        "quorum",
        "default-down",
    ] {
        assert!(fired.contains_key(rule), "{rule} never fired: {fired:?}");
    }
    // `a` has its own consecutive-failures rule, so the default one covers only `b`.
    assert!(
        transitions
            .iter()
            .filter(|t| t.rule_id == "default-down")
            .all(|t| t.monitor_id == "b")
    );
    // Quorum alerts carry no region; every firing resolves by the end or stays firing.
    assert!(
        transitions
            .iter()
            .filter(|t| t.rule_id == "quorum")
            .all(|t| t.region.is_none())
    );
    let ids: std::collections::BTreeSet<Uuid> =
        transitions.iter().map(|t| t.transition_id).collect();
    assert_eq!(ids.len(), transitions.len(), "transition ids are unique");
}

#[test]
fn fresh_transitions_are_returned_once_and_stay_in_the_output() {
    let events = scenario(&[2, 0, 0, 3, 1, 1, 2, 4, 4, 4, 2, 2, 6, 6]);
    let order: Vec<usize> = (0..events.len()).collect();
    let expected = transitions_in(&order, &events);
    let mut p = Pipeline::new(cfg());
    p.set_rules(rules());
    let (mut fresh, mut taken) = (Vec::new(), Vec::new());
    for (offset, e) in events.iter().enumerate() {
        feed(&mut p, offset as i64, e);
        fresh.extend(p.fresh_transitions().to_vec());
        assert!(p.fresh_transitions().is_empty());
        if offset % 17 == 16 {
            let out = p.take_output();
            // Everything handed out early is the output's prefix, in order.
            assert_eq!(out.transitions[..fresh.len()], fresh[..]);
            taken.extend(out.transitions);
            fresh.clear();
        }
    }
    p.finish();
    taken.extend(p.take_output().transitions);
    assert!(!taken.is_empty());
    assert_eq!(taken, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Reordering events by less than the allowed lateness gives byte-identical transitions.
    #[test]
    fn shuffling_within_lateness_gives_identical_transitions(
        pattern in prop::collection::vec(0u8..12, 4..16),
        jitter in prop::collection::vec(0i64..9_000, 360),
    ) {
        let events = scenario(&pattern);
        let in_order: Vec<usize> = (0..events.len()).collect();
        let mut shuffled = in_order.clone();
        shuffled.sort_by_key(|&i| (events[i].event_time.as_millis() + jitter[i], i));
        let a = serde_json::to_vec(&transitions_in(&in_order, &events)).unwrap();
        let b = serde_json::to_vec(&transitions_in(&shuffled, &events)).unwrap();
        prop_assert_eq!(a, b);
    }

    /// A crash after any flush, restarted from the committed offsets and the changelog, gives
    /// exactly the uninterrupted run's transitions: none lost, none new (a repeat has the
    /// same id and bytes).
    #[test]
    fn restart_from_changelog_neither_repeats_nor_loses(
        pattern in prop::collection::vec(0u8..12, 4..16),
        crash_after in 1usize..20,
        commit_lag in 0usize..3,
        wait in any::<bool>(),
    ) {
        let events = scenario(&pattern);
        let order: Vec<usize> = (0..events.len()).collect();
        let expected = transitions_in(&order, &events);

        // Flush every 17 records as the processor does (evicting after each, and with `wait`
        // false taking the alert evaluation only as far as it has got); the changelog is
        // written at every flush, the offsets are committed `commit_lag` flushes later (the
        // crash may fall in between).
        let mut changelog: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut got = Vec::new();
        let mut commits: Vec<i64> = vec![0];
        let mut p = Pipeline::new(cfg());
        p.set_rules(rules());
        let mut flushes = 0;
        let mut offset = 0usize;
        while offset < events.len() && flushes < crash_after {
            feed(&mut p, offset as i64, &events[offset]);
            offset += 1;
            if offset.is_multiple_of(17) {
                p.tick(0);
                let out = if wait { p.take_output() } else { p.take_ready_output() };
                got.extend(out.transitions);
                for r in out.alert_state {
                    match r.value.clone() {
                        Some(v) => changelog.insert(r.changelog_key(), v.to_vec()),
                        None => changelog.remove(&r.changelog_key()),
                    };
                }
                p.evict();
                commits.push(p.commit_offsets().first().map_or(0, |c| c.1));
                flushes += 1;
            }
        }
        // Crash: restart from an older commit with the newer changelog.
        let resume = commits[commits.len().saturating_sub(1 + commit_lag)] as usize;
        let mut p = Pipeline::new(cfg());
        p.set_rules(rules());
        p.restore_alert_partition(0, changelog.clone());
        for (i, e) in events.iter().enumerate().skip(resume) {
            feed(&mut p, i as i64, e);
        }
        p.finish();
        got.extend(p.take_output().transitions);
        // The restore evaluates again the windows logged since the last snapshots: a repeat
        // is the same transition under the same id, never a new one.
        let mut first: BTreeMap<Uuid, &AlertTransition> = BTreeMap::new();
        let mut once = Vec::new();
        for t in &got {
            match first.get(&t.transition_id) {
                Some(earlier) => prop_assert_eq!(*earlier, t),
                None => {
                    first.insert(t.transition_id, t);
                    once.push(t.clone());
                }
            }
        }
        let ids = |ts: &[AlertTransition]| ts.iter().map(|t| t.transition_id).collect::<Vec<_>>();
        prop_assert_eq!(ids(&once), ids(&expected));
        prop_assert_eq!(once, expected);
    }
}
