//! The window history that seeds the anomaly detectors, read back from the real engine: the
//! statement selects exactly the windows of its range (its aliases must not shadow the columns
//! it filters on), with the scores they were stored with, and a window rebuilt after a restart
//! keeps its stored score.

use std::time::Duration;

use vigil_processor::sink::Sink;
use vigil_processor::{Config, Pipeline};
use vigil_schema::{AnomalyScores, encode};

use crate::common::TestDb;
use crate::rollup_scale::{event, t0};

const MINUTE: i64 = 60_000;

fn config() -> Config {
    Config {
        window: Duration::from_secs(60),
        allowed_lateness: Duration::from_secs(10),
        ..Config::default()
    }
}

fn known_score(series: u64, minute: i64) -> AnomalyScores {
    let combined = (series as f64 + 1.0) / 10.0 + minute as f64 / 100.0;
    AnomalyScores {
        latency: combined,
        errors: 0.0,
        combined,
        reason: format!("p95 latency: s{series} m{minute}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_reads_its_range_with_stored_scores_and_rebuilt_windows_keep_them() {
    crate::common::init_logs();
    let db = TestDb::new("seeding").await;
    vigil_schema::migration::migrate(&crate::common::clickhouse(), &db.name)
        .await
        .unwrap();
    let t0 = t0();
    // Three series, one window a minute for five minutes, produced by the real pipeline.
    let mut pipeline = Pipeline::new(config());
    let mut n = 0;
    for minute in 0..5 {
        for series in 0..3 {
            let e = event(
                n,
                series,
                t0 + minute * MINUTE + 1_000,
                1_000 * (n + 1),
                true,
            );
            pipeline.process(0, n as i64, None, Some(&encode(&e).unwrap()), t0);
            n += 1;
        }
    }
    pipeline.finish();
    let mut windows = pipeline.take_output().windows;
    assert_eq!(windows.len(), 15);
    // Known scores to read back.
    for w in &mut windows {
        let s = &w.summary;
        let series: u64 = s.monitor_id[1..].parse().unwrap();
        let minute = (s.window_start.as_millis() - t0) / MINUTE;
        w.summary.anomaly = Some(known_score(series, minute));
    }
    let sink = Sink::new(db.client.clone());
    sink.write_windows(&windows).await.unwrap();

    // Minutes 1 to 3 (the end is exclusive).
    let points = sink.history(t0 + MINUTE, t0 + 4 * MINUTE).await.unwrap();
    let got: Vec<(String, i64, f64, String)> = points
        .iter()
        .map(|p| {
            (
                p.monitor_id.clone(),
                (p.start_ms - t0) / MINUTE,
                p.anomaly_score,
                p.anomaly_reason.clone(),
            )
        })
        .collect();
    let mut want = Vec::new();
    for series in 0..3u64 {
        for minute in 1..4 {
            let s = known_score(series, minute);
            want.push((format!("m{series:06}"), minute, s.combined, s.reason));
        }
    }
    assert_eq!(got, want);
    for p in &points {
        let w = windows
            .iter()
            .find(|w| {
                w.summary.monitor_id == p.monitor_id
                    && w.summary.window_start.as_millis() == p.start_ms
            })
            .unwrap();
        assert_eq!(p.availability, w.summary.availability);
        assert_eq!(p.p95_us, w.summary.p95_us);
        assert_eq!(p.region, w.summary.region);
        assert_eq!(
            p.scores(),
            known_score(
                p.monitor_id[1..].parse().unwrap(),
                (p.start_ms - t0) / MINUTE
            )
        );
    }

    // A restart: detectors seeded from that history; the minute-3 window of m000001 is rebuilt
    // from its probes and keeps the score it was stored with.
    let mut restarted = Pipeline::new(config());
    for p in &points {
        restarted.seed_detector(
            &p.monitor_id,
            &p.region,
            p.start_ms,
            p.p95_us,
            1.0 - p.availability,
            Some(p.scores()),
        );
    }
    let e = event(100, 1, t0 + 3 * MINUTE + 1_000, 4_000, true);
    restarted.process(0, 0, None, Some(&encode(&e).unwrap()), t0);
    restarted.finish();
    let rebuilt = restarted.take_output().windows;
    assert_eq!(rebuilt.len(), 1);
    assert_eq!(rebuilt[0].summary.anomaly, Some(known_score(1, 3)));
    db.drop_database().await;
}
