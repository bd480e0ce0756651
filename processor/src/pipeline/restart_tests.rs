//! Restarts: a processor that crashes after a commit and resumes from it (watermark and read
//! position in the commit's metadata) re-reads records it had already windowed. It must never
//! emit a partial rebuild of a window, never dead-letter a record twice, and end with exactly
//! the rows of a run that never stopped.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vigil_schema::{Outcome, ProbeResult, Timestamp, WindowSummary};

use super::tests::{NOW, T0, cfg, event, feed, final_rows};
use super::*;

/// What one run emitted, and the commit point after every flush.
struct Run {
    windows: Vec<EmittedWindow>,
    dead: Vec<i64>,
    commits: Vec<(i64, CommitPoint)>,
}

/// What the writer leaves in ClickHouse, shared by the runs before and after a crash: the raw
/// probes (duplicates allowed, as `probes` before a merge) and the latest row of each window.
#[derive(Default)]
struct Store {
    probes: Vec<ProbeResult>,
    rows: BTreeMap<(String, String, Timestamp), WindowSummary>,
}

impl Store {
    /// Writes one output as the writer does: probes first, partial windows completed from
    /// them (keeping a stored row's scores), rows replaced by higher or equal versions.
    /// Returns the windows written (the completed ones in place of the partial).
    fn write(&mut self, output: Output) -> Vec<EmittedWindow> {
        self.probes.extend(output.probes);
        let mut written = Vec::new();
        for w in output.windows {
            let s = &w.summary;
            let key = (s.monitor_id.clone(), s.region.clone(), s.window_start);
            let w = if w.partial {
                let probes = self.probes.iter().filter(|p| {
                    p.monitor_id == s.monitor_id
                        && p.region == s.region
                        && window_start(p.event_time.as_millis(), 60_000)
                            == s.window_start.as_millis()
                });
                let stored = self.rows.get(&key).and_then(|r| r.anomaly.clone());
                w.completed(probes, stored).unwrap()
            } else {
                w
            };
            if self
                .rows
                .get(&key)
                .is_none_or(|old| old.version <= w.summary.version)
            {
                self.rows.insert(key, w.summary.clone());
            }
            written.push(w);
        }
        written
    }
}

/// Feeds `events[from..]` at their offsets, flushing (tick, take, write, evict, commit) every
/// `batch` records as the consumer does; `resume` starts from a commit.
fn run(
    cfg: &Config,
    store: &mut Store,
    events: &[ProbeResult],
    from: usize,
    batch: usize,
    resume: Option<CommitPoint>,
) -> Run {
    let mut p = Pipeline::new(cfg.clone());
    if let Some(point) = resume {
        p.resume(0, point);
    }
    let mut out = Run {
        windows: Vec::new(),
        dead: Vec::new(),
        commits: Vec::new(),
    };
    let mut flush = |p: &mut Pipeline, out: &mut Run| {
        p.check_bookkeeping();
        p.tick(NOW);
        p.check_bookkeeping();
        let o = p.take_output();
        out.dead.extend(o.dead_letters.iter().map(|d| d.offset));
        out.windows.extend(store.write(o));
        p.evict();
        p.check_bookkeeping();
        if let Some((_, offset, point)) = p.commit_points().into_iter().next() {
            out.commits.push((offset, point));
        }
    };
    for (i, e) in events.iter().enumerate().skip(from) {
        feed(&mut p, 0, i as i64, e);
        if (i + 1) % batch == 0 {
            flush(&mut p, &mut out);
        }
    }
    flush(&mut p, &mut out);
    out
}

/// Windows kept in memory for the correction horizon (raw probes not stored).
fn keeping() -> Config {
    Config {
        store_probes: false,
        ..cfg()
    }
}

/// Events of two monitors a few seconds apart; every `late_every`-th one arrives `late_by`
/// behind (some within the correction horizon, some beyond it).
fn events(gaps: &[i64], late: &[(usize, i64)]) -> Vec<ProbeResult> {
    let mut t = T0;
    let mut out = Vec::new();
    for (i, gap) in gaps.iter().enumerate() {
        t += gap;
        let monitor = if i % 2 == 0 { "a" } else { "b" };
        let outcome = if i % 5 == 0 {
            Outcome::Timeout
        } else {
            Outcome::Ok
        };
        out.push(event(i as u128, monitor, t, 1_000 + i as u64 * 37, outcome));
    }
    for &(at, by) in late {
        if at < out.len() {
            let n = out.len() as u128 + 1_000;
            let mut e = event(n, "a", (t - by).max(T0), 5_000, Outcome::Ok);
            e.event_id = uuid::Uuid::from_u128(n);
            out.insert(at, e);
        }
    }
    out
}

type Rows = BTreeMap<(String, String, Timestamp), WindowSummary>;

fn rows_emitted_by(run: &Run) -> Vec<WindowSummary> {
    run.windows
        .iter()
        .map(|w| {
            let mut s = w.summary.clone();
            s.anomaly = None;
            s
        })
        .collect()
}

#[test]
fn commit_metadata_round_trips_and_ignores_other_formats() {
    let point = CommitPoint {
        watermark: -5,
        read_until: 42,
        settled: 40,
    };
    assert_eq!(point.metadata(), "vigil1 wm=-5 read=42 settled=40");
    assert_eq!(CommitPoint::parse(&point.metadata()), Some(point));
    // Written before `settled` existed: nothing counts as settled.
    assert_eq!(
        CommitPoint::parse("vigil1 wm=-5 read=42"),
        Some(CommitPoint {
            settled: 0,
            ..point
        })
    );
    assert_eq!(CommitPoint::parse("vigil1 wm=1 read=2 settled=x"), None);
    assert_eq!(CommitPoint::parse(""), None);
    assert_eq!(CommitPoint::parse("vigil1 wm=x read=1"), None);
    let fresh = CommitPoint {
        watermark: i64::MIN,
        read_until: 0,
        settled: 0,
    };
    assert_eq!(CommitPoint::parse(&fresh.metadata()), Some(fresh));
}

/// Window [T0, T0+60 s) of `a` gets events at offsets 0..6, the watermark closes it at offset
/// 6 (offsets 6 and 7 open the next window) and a late correction arrives at offset 8.
fn closed_then_corrected() -> Vec<ProbeResult> {
    let mut evs: Vec<ProbeResult> = (0..6u128)
        .map(|i| event(i, "a", T0 + i as i64 * 5_000, 1_000, Outcome::Ok))
        .collect();
    evs.push(event(6, "a", T0 + 75_000, 1_000, Outcome::Ok));
    evs.push(event(7, "a", T0 + 80_000, 1_000, Outcome::Ok));
    evs.push(event(8, "a", T0 + 30_000, 9_000, Outcome::Ok));
    evs
}

#[test]
fn a_window_kept_in_memory_and_rebuilt_after_a_restart_is_emitted_only_once_complete() {
    // Window [T0, T0+60 s) of `a` gets events at offsets 0..6; the watermark closes it at
    // offset 6; a late correction arrives at offset 8. The run commits after offset 7 with the
    // window still in memory (commit offset 0, read up to 8), then crashes.
    let evs = closed_then_corrected();
    let cfg = keeping();
    let mut store = Store::default();
    let first = run(&cfg, &mut store, &evs[..8], 0, 8, None);
    let (offset, point) = *first.commits.last().unwrap();
    assert_eq!(offset, 0, "the window at T0 holds the commit back");
    assert_eq!(point.read_until, 8);
    // Resumed: re-reading offsets 0..8 must not publish a window of 1, 2, … events, even one
    // record per flush.
    let second = run(&cfg, &mut store, &evs, offset as usize, 1, Some(point));
    let t0_rows: Vec<u64> = second
        .windows
        .iter()
        .filter(|w| w.summary.window_start == Timestamp::from_millis(T0))
        .map(|w| w.summary.count)
        .collect();
    // The window as the first run emitted it (6 events, re-read complete), then its
    // correction.
    assert_eq!(t0_rows, [6, 7], "never 1, 2, … events");
    // Without the commit's metadata the same restart publishes partial rebuilds (the defect).
    let blind = run(&cfg, &mut Store::default(), &evs, offset as usize, 1, None);
    let partial = blind
        .windows
        .iter()
        .filter(|w| w.summary.window_start == Timestamp::from_millis(T0))
        .count();
    assert!(partial > 1, "{partial}");
}

#[test]
fn a_correction_after_a_restart_is_completed_from_the_stored_probes() {
    // The same records with closed windows evicted once written: the run commits after
    // offset 7 with only the open window [T0+60 s, T0+120 s) in memory, then crashes. The late
    // record at offset 8 finds its window gone and completes it from the stored probes.
    let mut evs = closed_then_corrected();
    // A duplicate of the late record (a retried delivery), after the crash.
    evs.push(evs[8].clone());
    let cfg = cfg();
    let mut store = Store::default();
    let first = run(&cfg, &mut store, &evs[..8], 0, 8, None);
    let (offset, point) = *first.commits.last().unwrap();
    assert_eq!(offset, 6, "only the open window holds the commit back");
    assert_eq!((point.read_until, point.settled), (8, 8));
    let second = run(&cfg, &mut store, &evs, offset as usize, 1, Some(point));
    let t0: Vec<(u64, bool, u64)> = second
        .windows
        .iter()
        .filter(|w| w.summary.window_start == Timestamp::from_millis(T0))
        .map(|w| (w.summary.count, w.correction, w.summary.total_max_us))
        .collect();
    // One correction with all seven events (the duplicate changes nothing), never a window of
    // just the late one.
    assert_eq!(t0, [(7, true, 9_000), (7, true, 9_000)]);
    assert!(second.windows.iter().all(|w| !w.partial));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Crash after any flush and resume from its commit: the rows equal an uninterrupted run's,
    /// the resumed run emits no row the uninterrupted run did not (no partial rebuild), and
    /// no record is dead-lettered twice. In both modes, and the two modes end with the same
    /// rows: a correction recomputed from the stored probes equals one merged in memory.
    #[test]
    fn resuming_from_any_commit_matches_an_uninterrupted_run(
        gaps in prop::collection::vec(0i64..20_000, 10..160),
        late in prop::collection::vec((0usize..160, 1_000i64..900_000), 0..12),
        batch in 1usize..25,
        crash in any::<prop::sample::Index>(),
    ) {
        let evs = events(&gaps, &late);
        let mut rows = Vec::new();
        for cfg in [cfg(), keeping()] {
            let whole = run(&cfg, &mut Store::default(), &evs, 0, batch, None);
            let reference: Rows = final_rows(&whole.windows);
            let emitted_whole = rows_emitted_by(&whole);

            // The crash: after flush `k`, whose commit is the last one made.
            let k = crash.index(whole.commits.len());
            let upto = ((k + 1) * batch).min(evs.len());
            let mut store = Store::default();
            let before = run(&cfg, &mut store, &evs[..upto], 0, batch, None);
            let (offset, point) = *before.commits.last().unwrap();
            let after = run(&cfg, &mut store, &evs, offset as usize, batch, Some(point));

            let mut all = before.windows.clone();
            all.extend(after.windows.iter().cloned());
            prop_assert_eq!(&final_rows(&all), &reference);
            for row in rows_emitted_by(&after) {
                prop_assert!(
                    emitted_whole.contains(&row),
                    "the resumed run emitted a row the uninterrupted run never did: {:?}",
                    row
                );
            }
            let mut dead = before.dead.clone();
            dead.extend(after.dead.iter().copied());
            let mut unique = dead.clone();
            unique.sort_unstable();
            unique.dedup();
            prop_assert_eq!(dead.len(), unique.len(), "a record was dead-lettered twice");
            let mut expected = whole.dead.clone();
            expected.sort_unstable();
            prop_assert_eq!(unique, expected);
            rows.push(reference);
        }
        prop_assert_eq!(&rows[0], &rows[1], "evicting closed windows changed the rows");
    }
}
