use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use uuid::Uuid;
use vigil_schema::{AnomalyScores, Outcome, Timestamp, Timings, WindowSummary, encode};

use super::*;

/// 2026-01-01T00:00:00Z.
pub(super) const T0: i64 = 1_767_225_600_000;
pub(super) const NOW: i64 = T0 + 365 * 24 * 3_600_000;

pub(super) fn cfg() -> Config {
    Config {
        window: Duration::from_secs(60),
        allowed_lateness: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        correction_horizon: Duration::from_secs(600),
        ..Config::default()
    }
}

pub(super) fn event(
    n: u128,
    monitor: &str,
    t_ms: i64,
    total_us: u64,
    outcome: Outcome,
) -> ProbeResult {
    ProbeResult {
        event_id: Uuid::from_u128(n),
        monitor_id: monitor.into(),
        region: "local".into(),
        agent: "test".into(),
        scheduled_at: Timestamp::from_millis(t_ms),
        event_time: Timestamp::from_millis(t_ms),
        method: "GET".into(),
        url: "http://127.0.0.1/".into(),
        status_code: match outcome {
            Outcome::Ok => Some(200),
            Outcome::HttpStatus => Some(503),
            _ => None,
        },
        outcome,
        error: None,
        timings: Timings {
            dns_us: None,
            connect_us: Some(100),
            tls_us: None,
            ttfb_us: Some(total_us / 2),
            total_us,
        },
        response_size: Some(10),
        assertions: vec![],
        tls_cert_expiry: None,
        steps: Vec::new(),
    }
}

pub(super) fn feed(p: &mut Pipeline, partition: i32, offset: i64, e: &ProbeResult) -> Disposition {
    let bytes = encode(e).unwrap();
    p.process(
        partition,
        offset,
        Some(e.monitor_id.as_bytes()),
        Some(&bytes),
        NOW,
    )
}

#[test]
fn known_answers() {
    let mut p = Pipeline::new(cfg());
    let totals = [
        10_000u64, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 90_000, 1_000_000,
    ];
    for (i, &total) in totals.iter().enumerate() {
        let outcome = match i {
            3 => Outcome::HttpStatus,
            7 => Outcome::Timeout,
            _ => Outcome::Ok,
        };
        let d = feed(
            &mut p,
            0,
            i as i64,
            &event(i as u128, "api", T0 + i as i64 * 5_000, total, outcome),
        );
        assert_eq!(d, Disposition::Windowed);
    }
    let pending = p.take_output();
    assert!(pending.windows.is_empty(), "window still open");
    assert_eq!(pending.probes.len(), 10);
    // Watermark = max event time − 10 s must pass the window end (T0 + 60 s).
    feed(
        &mut p,
        0,
        10,
        &event(100, "api", T0 + 70_000, 1, Outcome::Ok),
    );
    let out = p.take_output();
    assert_eq!(out.windows.len(), 1);
    let w = &out.windows[0].summary;
    assert_eq!(w.window_start, Timestamp::from_millis(T0));
    assert_eq!(w.window_end, Timestamp::from_millis(T0 + 60_000));
    assert_eq!((w.count, w.ok_count, w.version), (10, 8, 10));
    assert_eq!(w.availability, 0.8);
    assert_eq!(
        w.errors,
        BTreeMap::from([("http_status".into(), 1), ("timeout".into(), 1)])
    );
    assert_eq!((w.status_2xx, w.status_5xx), (8, 1));
    assert_eq!((w.total_min_us, w.total_max_us), (10_000, 1_000_000));
    assert_eq!(w.total_mean_us, 145_000.0);
    assert_eq!(w.connect_mean_us, 100.0);
    assert_eq!(w.dns_mean_us, 0.0);
    let close = |got: f64, want: f64| (got - want).abs() <= want * 0.01;
    assert!(close(w.p50_us, 50_000.0), "{}", w.p50_us);
    assert!(close(w.p90_us, 90_000.0), "{}", w.p90_us);
    assert!(
        close(w.p999_us, 90_000.0),
        "rank floor(0.999*9)=8: {}",
        w.p999_us
    );
    assert!(close(w.ttfb_p95_us, 45_000.0), "{}", w.ttfb_p95_us);
    assert!(!out.windows[0].correction);
    assert_eq!(out.windows[0].phase_counts, [0, 10, 0, 10]);
    assert!(w.anomaly.is_some());
    assert_eq!(out.probes.len(), 1);
}

#[test]
fn late_events_correct_within_the_horizon_and_dead_letter_beyond() {
    let mut p = Pipeline::new(cfg());
    feed(&mut p, 0, 0, &event(1, "api", T0 + 1_000, 100, Outcome::Ok));
    feed(
        &mut p,
        0,
        1,
        &event(2, "api", T0 + 75_000, 100, Outcome::Ok),
    );
    assert_eq!(p.take_output().windows.len(), 1);
    // Late but within the horizon: a correction with a higher version at the next tick.
    assert_eq!(
        feed(&mut p, 0, 2, &event(3, "api", T0 + 2_000, 300, Outcome::Ok)),
        Disposition::Corrected
    );
    assert_eq!(
        feed(&mut p, 0, 3, &event(4, "api", T0 + 3_000, 300, Outcome::Ok)),
        Disposition::Corrected
    );
    assert!(p.take_output().windows.is_empty());
    p.tick(NOW);
    let out = p.take_output();
    assert_eq!(out.windows.len(), 1);
    assert!(out.windows[0].correction);
    assert_eq!(out.windows[0].summary.version, 3);
    assert_eq!(out.windows[0].summary.count, 3);
    // Move the watermark past end + horizon (T0 + 60 s + 600 s).
    feed(
        &mut p,
        0,
        4,
        &event(5, "api", T0 + 700_000, 100, Outcome::Ok),
    );
    let d = feed(&mut p, 0, 5, &event(6, "api", T0 + 5_000, 100, Outcome::Ok));
    assert_eq!(d, Disposition::Late);
    let out = p.take_output();
    assert_eq!(out.dead_letters.len(), 1);
    assert!(
        out.dead_letters[0].reason.starts_with("late: "),
        "{}",
        out.dead_letters[0].reason
    );
    assert_eq!(out.dead_letters[0].offset, 5);
}

#[test]
fn duplicates_count_once_and_bad_records_are_dead_lettered() {
    let mut p = Pipeline::new(cfg());
    let e = event(1, "api", T0, 100, Outcome::Ok);
    assert_eq!(feed(&mut p, 0, 0, &e), Disposition::Windowed);
    assert_eq!(feed(&mut p, 0, 1, &e), Disposition::Duplicate);
    assert_eq!(
        p.process(0, 2, None, Some(b"garbage"), NOW),
        Disposition::Invalid
    );
    assert_eq!(p.process(0, 3, None, None, NOW), Disposition::Invalid);
    let future = event(2, "api", NOW + 3_600_000, 100, Outcome::Ok);
    assert_eq!(feed(&mut p, 0, 4, &future), Disposition::Invalid);
    let mut nameless = event(3, "api", T0, 100, Outcome::Ok);
    nameless.monitor_id.clear();
    assert_eq!(feed(&mut p, 0, 5, &nameless), Disposition::Invalid);
    p.finish();
    let out = p.take_output();
    assert_eq!(out.windows.len(), 1);
    assert_eq!(out.windows[0].summary.count, 1);
    let reasons: Vec<&str> = out.dead_letters.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons.len(), 4);
    assert!(reasons[0].starts_with("undecodable: "), "{reasons:?}");
    assert_eq!(reasons[1], "undecodable: empty value");
    assert!(
        reasons[2].contains("ahead of the processor's clock"),
        "{reasons:?}"
    );
    assert_eq!(reasons[3], "invalid: monitor_id is empty");
    assert_eq!(out.dead_letters[0].payload, b"garbage");
}

#[test]
fn commit_offset_moves_as_soon_as_closed_windows_are_written() {
    let mut p = Pipeline::new(cfg());
    feed(&mut p, 3, 100, &event(1, "a", T0 + 1_000, 100, Outcome::Ok));
    feed(&mut p, 3, 101, &event(2, "b", T0 + 2_000, 100, Outcome::Ok));
    feed(
        &mut p,
        3,
        102,
        &event(3, "a", T0 + 61_000, 100, Outcome::Ok),
    );
    assert_eq!(p.commit_offsets(), vec![(3, 100)]);
    // The first windows close: once their output is taken they leave memory, and the commit
    // moves to the oldest open window.
    feed(
        &mut p,
        3,
        103,
        &event(4, "a", T0 + 130_000, 100, Outcome::Ok),
    );
    assert_eq!(p.take_output().windows.len(), 3);
    assert_eq!(p.evict(), 3);
    assert_eq!(p.commit_offsets(), vec![(3, 103)]);
    assert_eq!(p.windows_in_memory(), 1);
    // A late event for an evicted window: a partial window, holding the commit back until it
    // was written.
    assert_eq!(
        feed(&mut p, 3, 104, &event(5, "b", T0 + 3_000, 100, Outcome::Ok)),
        Disposition::Corrected
    );
    assert_eq!(p.commit_offsets(), vec![(3, 103)]);
    p.tick(NOW);
    let out = p.take_output();
    assert_eq!(out.windows.len(), 1);
    assert!(out.windows[0].partial);
    assert_eq!(out.windows[0].summary.count, 1);
    assert_eq!(p.evict(), 1);
    assert_eq!(p.commit_offsets(), vec![(3, 103)]);
    p.check_bookkeeping();
}

#[test]
fn commit_offset_waits_for_windows_kept_in_memory() {
    let mut p = Pipeline::new(Config {
        store_probes: false,
        ..cfg()
    });
    feed(&mut p, 3, 100, &event(1, "a", T0 + 1_000, 100, Outcome::Ok));
    feed(&mut p, 3, 101, &event(2, "b", T0 + 2_000, 100, Outcome::Ok));
    feed(
        &mut p,
        3,
        102,
        &event(3, "a", T0 + 61_000, 100, Outcome::Ok),
    );
    assert_eq!(p.commit_offsets(), vec![(3, 100)]);
    // Windows closed and written, but still within the correction horizon.
    feed(
        &mut p,
        3,
        103,
        &event(4, "a", T0 + 130_000, 100, Outcome::Ok),
    );
    p.take_output();
    assert_eq!(p.evict(), 0);
    assert_eq!(p.commit_offsets(), vec![(3, 100)]);
    // Past the horizon of the first windows: evicted, the commit moves to the oldest left.
    feed(
        &mut p,
        3,
        104,
        &event(5, "a", T0 + 680_000, 100, Outcome::Ok),
    );
    p.take_output();
    assert_eq!(p.evict(), 2);
    assert_eq!(p.commit_offsets(), vec![(3, 102)]);
    assert_eq!(p.windows_in_memory(), 3);
    p.revoke(3);
    assert!(p.commit_offsets().is_empty());
}

#[test]
fn idle_partitions_close_their_windows() {
    let mut p = Pipeline::new(cfg());
    let bytes = encode(&event(1, "a", T0 + 1_000, 100, Outcome::Ok)).unwrap();
    p.process(0, 0, None, Some(&bytes), T0 + 1_000);
    p.tick(T0 + 20_000);
    assert!(p.take_output().windows.is_empty(), "not idle long enough");
    // Idle since T0 + 1 s; at T0 + 71 s the watermark is 1 s + 70 s − 10 s = T0 + 61 s.
    p.tick(T0 + 71_000);
    assert_eq!(p.take_output().windows.len(), 1);
}

#[test]
fn seeded_detectors_continue_where_history_left_off() {
    // A day of steady minute windows (p95 ≈ 40 ms, no errors), as read back from ClickHouse.
    let seed = |p: &mut Pipeline| {
        for i in 0..1_440i64 {
            let jitter = (i * 7_919 % 13) as f64 * 100.0;
            p.seed_detector(
                "api",
                "local",
                T0 - (1_440 - i) * 60_000,
                40_000.0 + jitter,
                0.0,
                None,
            );
        }
    };
    let spike = |p: &mut Pipeline| {
        for i in 0..20u128 {
            feed(
                p,
                0,
                i as i64,
                &event(i, "api", T0 + i as i64 * 1_000, 400_000, Outcome::Ok),
            );
        }
        p.finish();
        p.take_output().windows[0].summary.anomaly.clone().unwrap()
    };
    let mut fresh = Pipeline::new(cfg());
    let cold = spike(&mut fresh);
    assert_eq!(
        cold.combined, 0.0,
        "a detector without history is still warming up"
    );
    let mut restarted = Pipeline::new(cfg());
    seed(&mut restarted);
    let warm = spike(&mut restarted);
    assert!(warm.latency > 0.5, "{warm:?}");
    assert_eq!(warm.combined, warm.latency);
    assert!(warm.reason.starts_with("p95 latency: "), "{}", warm.reason);
}

#[test]
fn a_window_rebuilt_after_a_restart_keeps_its_stored_score() {
    let stored = AnomalyScores {
        latency: 0.9,
        errors: 0.0,
        combined: 0.9,
        reason: "p95 latency: stored".into(),
    };
    let mut p = Pipeline::new(cfg());
    // History up to the window at T0, which was stored with a score; the one before without.
    p.seed_detector("api", "local", T0 - 60_000, 40_000.0, 0.0, None);
    p.seed_detector("api", "local", T0, 400_000.0, 0.0, Some(stored.clone()));
    // The window at T0 is rebuilt from the probes re-read after the restart.
    for i in 0..5u128 {
        feed(
            &mut p,
            0,
            i as i64,
            &event(i, "api", T0 + i as i64 * 1_000, 400_000, Outcome::Ok),
        );
    }
    p.finish();
    let out = p.take_output().windows;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].summary.anomaly.as_ref(), Some(&stored));

    // A window seeded without a score, rebuilt, scores nothing (as it was stored).
    let mut p = Pipeline::new(cfg());
    p.seed_detector("api", "local", T0, 400_000.0, 0.0, None);
    feed(
        &mut p,
        0,
        0,
        &event(1, "api", T0 + 1_000, 400_000, Outcome::Ok),
    );
    p.finish();
    let a = p.take_output().windows[0].summary.anomaly.clone().unwrap();
    assert_eq!(a.combined, 0.0);
}

/// Latest version of every window row emitted.
pub(super) fn final_rows(
    out: &[EmittedWindow],
) -> BTreeMap<(String, String, Timestamp), WindowSummary> {
    let mut rows: BTreeMap<(String, String, Timestamp), WindowSummary> = BTreeMap::new();
    for w in out {
        let s = &w.summary;
        let key = (s.monitor_id.clone(), s.region.clone(), s.window_start);
        if rows.get(&key).is_none_or(|old| old.version <= s.version) {
            rows.insert(key, s.clone());
        }
    }
    for row in rows.values_mut() {
        row.anomaly = None;
    }
    rows
}

proptest! {
    /// Reordering events by less than the allowed lateness gives identical closed windows.
    #[test]
    fn shuffling_within_lateness_gives_identical_windows(
        gaps in prop::collection::vec(0i64..4_000, 1..300),
        jitter in prop::collection::vec(0i64..10_000, 300),
        totals in prop::collection::vec(1u64..5_000_000, 300),
    ) {
        let mut t = T0;
        let events: Vec<ProbeResult> = gaps.iter().enumerate().map(|(i, g)| {
            t += g;
            let monitor = if i % 3 == 0 { "a" } else { "b" };
            let outcome = if totals[i] % 7 == 0 { Outcome::Timeout } else { Outcome::Ok };
            event(i as u128, monitor, t, totals[i], outcome)
        }).collect();
        let run = |order: &[usize]| {
            let mut p = Pipeline::new(cfg());
            let mut out = Vec::new();
            for (offset, &i) in order.iter().enumerate() {
                feed(&mut p, 0, offset as i64, &events[i]);
                out.extend(p.take_output().windows);
            }
            p.finish();
            out.extend(p.take_output().windows);
            final_rows(&out)
        };
        let in_order: Vec<usize> = (0..events.len()).collect();
        // Sort by event time plus a jitter smaller than the lateness.
        let mut shuffled = in_order.clone();
        shuffled.sort_by_key(|&i| (events[i].event_time.as_millis() + jitter[i], i));
        prop_assert_eq!(run(&in_order), run(&shuffled));
    }
}

#[test]
fn detector_memory_is_accounted_as_it_grows() {
    let mut p = Pipeline::new(cfg());
    assert_eq!(p.detector_heap_bytes(), 0);
    // 30 series, each closing a window a minute for three hours, with seeded history too.
    for i in 0..200i64 {
        p.seed_detector(
            "seeded",
            "local",
            T0 - (200 - i) * 60_000,
            1_000.0,
            0.0,
            None,
        );
    }
    let mut n = 0u128;
    for minute in 0..180i64 {
        for s in 0..30 {
            let monitor = format!("m{s}");
            let latency = 20_000 + (minute * 7_919 + s * 31) % 5_000;
            feed(
                &mut p,
                0,
                n as i64,
                &event(
                    n,
                    &monitor,
                    T0 + minute * 60_000,
                    latency as u64,
                    Outcome::Ok,
                ),
            );
            n += 1;
        }
        if minute % 20 == 0 {
            assert_eq!(p.detector_heap_bytes(), p.detectors.recount());
        }
    }
    p.finish();
    assert_eq!(p.detector_heap_bytes(), p.detectors.recount());
    assert!(p.detector_heap_bytes() > 31 * 2 * 1_000);
    assert!(p.heap_bytes() >= p.window_heap_bytes() + p.detector_heap_bytes());
}

#[test]
fn detectors_of_series_silent_beyond_the_anomaly_history_are_dropped() {
    let mut p = Pipeline::new(Config {
        anomaly_history: Duration::from_secs(2 * 3600),
        ..cfg()
    });
    let mut n = 0;
    let mut at = |p: &mut Pipeline, monitor: &str, t: i64| {
        n += 1;
        feed(p, 0, n as i64, &event(n, monitor, t, 1_000, Outcome::Ok));
        p.tick(NOW);
    };
    at(&mut p, "a", T0);
    at(&mut p, "b", T0 + 1_000);
    at(&mut p, "a", T0 + 120_000);
    let pair = |m: &str| (m.to_owned(), "local".to_owned());
    assert_eq!(p.detectors.series(), [pair("a"), pair("b")]);
    // `a` keeps reporting every ten minutes; `b` stays silent.
    for k in 1..=12 {
        at(&mut p, "a", T0 + k * 600_000);
    }
    // Swept once an hour of event time: two hours on, `b` is just within the history.
    assert_eq!(p.detectors.series(), [pair("a"), pair("b")]);
    for k in 13..=18 {
        at(&mut p, "a", T0 + k * 600_000);
    }
    // Three hours on: `b` (silent since T0) is dropped, `a` kept.
    assert_eq!(p.detectors.series(), [pair("a")]);
    assert_eq!(p.detector_heap_bytes(), p.detectors.recount());
}
