//! `vigil up --demo` killed with `kill -9` while probes flow, then started again on the same
//! topics and database: every window closed before the final, graceful stop equals a batch
//! recomputation from the probes topic (none lost, none counted twice).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vigil_processor::Config;
use vigil_processor::row::{WINDOW_COLUMNS, WindowRow};
use vigil_schema::{Timestamp, TopicNames};

use crate::common::{TestDb, clickhouse, unique_name};
use crate::e2e::Up;

/// What must agree between the live table and the recomputation (versions and anomaly scores
/// depend on when windows were emitted, not on their events).
type Numbers = (u64, u64, u64, u64, Vec<i32>, Vec<u64>, u64, u64);

fn numbers(r: &WindowRow) -> Numbers {
    (
        r.count,
        r.ok_count,
        r.status_2xx,
        r.status_5xx,
        r.sketch_keys.clone(),
        r.sketch_counts.clone(),
        r.total_min_us,
        r.total_max_us,
    )
}

type Key = (String, String, i64);

async fn live_windows(db: &str, cutoff: i64) -> BTreeMap<Key, Numbers> {
    clickhouse()
        .with_database(db)
        .query(&format!(
            "SELECT {WINDOW_COLUMNS} FROM windows_1m FINAL ORDER BY monitor_id, region, window_start"
        ))
        .fetch_all::<WindowRow>()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.window_end <= cutoff)
        .map(|r| ((r.monitor_id.clone(), r.region.clone(), r.window_start), numbers(&r)))
        .collect()
}

/// Recomputes the windows from the probes topic with the demo's processor settings.
async fn recompute(topics: &TopicNames, cutoff: i64) -> BTreeMap<Key, Numbers> {
    let config = Config {
        window: Duration::from_secs(10),
        allowed_lateness: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    crate::processor::recompute(topics, config)
        .await
        .into_iter()
        .filter(|(_, row)| row.window_end <= cutoff)
        .map(|(key, row)| (key, numbers(&row)))
        .collect()
}

async fn windows_after(db: &str, monitor: &str, start_ms: i64) -> u64 {
    clickhouse()
        .with_database(db)
        .query(
            "SELECT count() FROM windows_1m FINAL WHERE monitor_id = ? \
             AND window_start >= fromUnixTimestamp64Milli(?)",
        )
        .bind(monitor)
        .bind(start_ms)
        .fetch_one::<u64>()
        .await
        .unwrap_or(0)
}

async fn wait_for_windows(up: &Up, db: &str, after_ms: i64, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(150);
    while windows_after(db, "demo-fast", after_ms).await < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} windows after {after_ms}\n{}",
            up.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_lose_and_double_no_window() {
    let prefix = unique_name("it", "e2e_crash");
    let database = TestDb::fresh_name("e2e_crash");
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).unwrap();

    let started = Timestamp::now().as_millis();
    let mut first = Up::start(&dir, &prefix, &database).await;
    first.banner(Duration::from_secs(180)).await;
    wait_for_windows(&first, &database, started, 2).await;
    first.child.start_kill().unwrap();
    let killed = first.child.wait().await.unwrap();
    assert!(!killed.success(), "{killed}");

    let restarted = Timestamp::now().as_millis();
    let mut second = Up::start(&dir, &prefix, &database).await;
    second.banner(Duration::from_secs(180)).await;
    wait_for_windows(&second, &database, restarted + 10_000, 3).await;
    let pid = second.child.id().unwrap().to_string();
    let stopping = Timestamp::now().as_millis();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(45), second.child.wait())
        .await
        .unwrap_or_else(|_| panic!("still running 45 s after SIGTERM\n{}", second.logs()))
        .unwrap();
    assert!(status.success(), "{status}\n{}", second.logs());

    // Windows that ended well before the graceful stop were closed by the live processor.
    let cutoff = (stopping - 15_000) / 10_000 * 10_000;
    let expected = recompute(&TopicNames::with_prefix(&prefix), cutoff).await;
    let live = live_windows(&database, cutoff).await;
    assert!(
        expected.len() >= 5 * 4,
        "too few windows to compare: {}",
        expected.len()
    );
    let lost: Vec<&Key> = expected.keys().filter(|k| !live.contains_key(*k)).collect();
    let extra: Vec<&Key> = live.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "lost {lost:?}, not in the topic {extra:?}"
    );
    for (key, want) in &expected {
        assert_eq!(&live[key], want, "window {key:?}");
    }
    eprintln!(
        "{} windows across a kill -9 and a restart equal the recomputation",
        expected.len()
    );
    crate::common::drop_database(&database).await;
    std::fs::remove_dir_all(&dir).unwrap();
}
