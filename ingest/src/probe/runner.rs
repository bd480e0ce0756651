//! The scheduler: runs every monitor this runner owns on its interval.
//!
//! - **Owned monitors**: enabled, listing this runner's region (or none), and in its shard
//!   (`fnv1a(id) % n == i`). The set follows the [`MonitorView`]: a changed spec restarts its
//!   monitor's loop, a removed one stops it.
//! - **Spread**: each monitor's ticks sit on a fixed grid, `k · interval + phase`, in unix
//!   milliseconds, where `phase = fnv1a(id) % interval`. So 1,000 monitors at 60 s spread over
//!   the minute, and every runner (any region, any restart) picks the same instants.
//! - **No overlap**: one loop per monitor awaits its check before scheduling the next tick.
//! - **Catch-up without bursts**: when a check or a pause ran past later ticks, those ticks are
//!   skipped (counted in `vigil_ingest_skipped_ticks_total`) and the loop runs once for the most
//!   recent missed tick, then continues on the grid.
//! - **Lag**: start time minus scheduled time, in `vigil_ingest_schedule_lag_seconds`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_schema::{MonitorSpec, ProbeResult, Timestamp};

use super::http::{Assertions, Checker};
use crate::config::{RunnerConfig, Shard};
use crate::producer::Sink;
use crate::{MonitorView, hash, metric};

/// Something that runs a check (the [`Checker`]; tests substitute their own).
pub trait Check: Send + Sync + 'static {
    /// Checks `spec` for the tick scheduled at `scheduled_at`.
    fn check(
        &self,
        spec: &MonitorSpec,
        assertions: &Assertions,
        scheduled_at: Timestamp,
    ) -> impl Future<Output = ProbeResult> + Send;
}

impl Check for Checker {
    fn check(
        &self,
        spec: &MonitorSpec,
        assertions: &Assertions,
        scheduled_at: Timestamp,
    ) -> impl Future<Output = ProbeResult> + Send {
        Checker::check(self, spec, assertions, scheduled_at)
    }
}

/// Maps the scheduler's monotonic clock to unix milliseconds: fixed at start, so wall-clock
/// jumps do not disturb the schedule.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_ms: i64,
    instant: Instant,
}

impl Clock {
    /// Anchors unix time `wall` at the monotonic instant `instant`.
    pub fn new(wall: Timestamp, instant: Instant) -> Self {
        Self {
            wall_ms: wall.as_millis(),
            instant,
        }
    }

    /// Anchored at the current time.
    pub fn now() -> Self {
        Self::new(Timestamp::now(), Instant::now())
    }

    /// The current time in unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.wall_ms
            .saturating_add(i64::try_from(self.instant.elapsed().as_millis()).unwrap_or(i64::MAX))
    }

    /// The monotonic instant of a unix-millisecond time.
    pub fn instant_of(&self, ms: i64) -> Instant {
        let offset = ms.saturating_sub(self.wall_ms);
        if offset >= 0 {
            self.instant + Duration::from_millis(offset.unsigned_abs())
        } else {
            self.instant
                .checked_sub(Duration::from_millis(offset.unsigned_abs()))
                .unwrap_or(self.instant)
        }
    }
}

/// A monitor's phase within its interval, in milliseconds.
pub fn phase_ms(id: &str, interval: Duration) -> i64 {
    let interval = interval_ms(interval);
    i64::try_from(hash::fnv1a(id.as_bytes()) % interval.unsigned_abs()).unwrap_or(0)
}

fn interval_ms(interval: Duration) -> i64 {
    i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// The first grid tick at or after `now_ms`.
pub fn next_tick(now_ms: i64, interval_ms: i64, phase_ms: i64) -> i64 {
    let since = now_ms - phase_ms;
    let k = since.div_euclid(interval_ms) + i64::from(since.rem_euclid(interval_ms) != 0);
    k * interval_ms + phase_ms
}

/// The last grid tick at or before `now_ms`.
pub fn last_tick(now_ms: i64, interval_ms: i64, phase_ms: i64) -> i64 {
    let since = now_ms - phase_ms;
    since.div_euclid(interval_ms) * interval_ms + phase_ms
}

/// Runs the owned monitors until cancelled.
#[derive(Debug)]
pub struct Runner<C, S> {
    view: MonitorView,
    checker: Arc<C>,
    sink: Arc<S>,
    region: String,
    shard: Shard,
    limit: Arc<Semaphore>,
    clock: Clock,
}

impl<C: Check, S: Sink> Runner<C, S> {
    /// A runner for `region`'s monitors in `shard`.
    pub fn new(
        view: MonitorView,
        checker: Arc<C>,
        sink: Arc<S>,
        region: String,
        config: &RunnerConfig,
        clock: Clock,
    ) -> Self {
        Self {
            view,
            checker,
            sink,
            region,
            shard: config.shard,
            limit: Arc::new(Semaphore::new(config.max_concurrent_checks.max(1))),
            clock,
        }
    }

    /// Whether this runner runs `spec`.
    pub fn owns(&self, spec: &MonitorSpec) -> bool {
        spec.enabled && spec.runs_in(&self.region) && self.shard.owns(&spec.id)
    }

    /// Schedules monitors until `token` is cancelled; in-flight checks are dropped then.
    pub async fn run(self, token: CancellationToken) {
        let tracker = TaskTracker::new();
        let mut running: HashMap<String, (Arc<MonitorSpec>, CancellationToken)> = HashMap::new();
        let mut changes = self.view.subscribe();
        loop {
            changes.mark_unchanged();
            let owned: HashMap<String, Arc<MonitorSpec>> = self
                .view
                .snapshot()
                .into_iter()
                .filter(|spec| self.owns(spec))
                .map(|spec| (spec.id.clone(), spec))
                .collect();
            running.retain(|id, (spec, stop)| {
                let keep = owned.get(id).is_some_and(|new| new == spec);
                if !keep {
                    stop.cancel();
                }
                keep
            });
            for (id, spec) in owned {
                if running.contains_key(&id) {
                    continue;
                }
                let stop = token.child_token();
                tracker.spawn(monitor_loop(
                    Arc::clone(&spec),
                    Arc::clone(&self.checker),
                    Arc::clone(&self.sink),
                    Arc::clone(&self.limit),
                    self.clock,
                    stop.clone(),
                ));
                running.insert(id, (spec, stop));
            }
            metrics::gauge!(metric::MONITORS_SCHEDULED).set(running.len() as f64);
            tracing::debug!(monitors = running.len(), "Reconciled the schedule.");
            // Cancel-safe: `changed` only observes the version counter.
            tokio::select! {
                () = token.cancelled() => break,
                changed = changes.changed() => if changed.is_err() { break },
            }
        }
        for (_, (_, stop)) in running {
            stop.cancel();
        }
        tracker.close();
        tracker.wait().await;
    }
}

async fn monitor_loop<C: Check, S: Sink>(
    spec: Arc<MonitorSpec>,
    checker: Arc<C>,
    sink: Arc<S>,
    limit: Arc<Semaphore>,
    clock: Clock,
    stop: CancellationToken,
) {
    let assertions = Assertions::of(&spec);
    let interval = interval_ms(spec.interval);
    let phase = phase_ms(&spec.id, spec.interval);
    let mut tick = next_tick(clock.now_ms(), interval, phase);
    loop {
        // Cancel-safe: sleeping holds nothing.
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(clock.instant_of(tick)) => {}
        }
        let permit = tokio::select! {
            () = stop.cancelled() => return,
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let lag_ms = (clock.now_ms() - tick).max(0);
        metrics::histogram!(metric::SCHEDULE_LAG).record(lag_ms as f64 / 1000.0);
        // Cancel-safe: dropping a check abandons its connection; nothing else is shared.
        let result = tokio::select! {
            () = stop.cancelled() => return,
            result = checker.check(&spec, &assertions, Timestamp::from_millis(tick)) => result,
        };
        drop(permit);
        sink.offer(result);

        tick += interval;
        let now = clock.now_ms();
        if tick < now {
            let latest = last_tick(now, interval, phase);
            let skipped = (latest - tick) / interval;
            if skipped > 0 {
                metrics::counter!(metric::SKIPPED_TICKS).increment(skipped.unsigned_abs());
                tracing::debug!(
                    monitor = spec.id,
                    skipped,
                    "Runner was behind; skipped ticks."
                );
            }
            tick = latest;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::config::RunnerConfig;

    #[test]
    fn grid_arithmetic() {
        assert_eq!(next_tick(1000, 1000, 0), 1000);
        assert_eq!(next_tick(1001, 1000, 0), 2000);
        assert_eq!(next_tick(1001, 1000, 250), 1250);
        assert_eq!(next_tick(1250, 1000, 250), 1250);
        assert_eq!(next_tick(-5, 1000, 250), 250);
        assert_eq!(last_tick(1249, 1000, 250), 250);
        assert_eq!(last_tick(1250, 1000, 250), 1250);
        assert_eq!(
            phase_ms("a", Duration::from_secs(60)),
            phase_ms("a", Duration::from_secs(60))
        );
    }

    #[test]
    fn phases_spread_over_the_interval() {
        let interval = Duration::from_secs(60);
        let mut per_second = [0usize; 60];
        for i in 0..1000 {
            let phase = phase_ms(&format!("monitor-{i}"), interval);
            assert!((0..60_000).contains(&phase));
            per_second[usize::try_from(phase / 1000).unwrap()] += 1;
        }
        // 1,000 monitors over 60 one-second buckets: about 17 each, none crowded.
        assert!(per_second.iter().all(|&n| n <= 40), "{per_second:?}");
        let mut distinct: Vec<i64> = (0..1000)
            .map(|i| phase_ms(&format!("monitor-{i}"), interval))
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 950, "{}", distinct.len());
    }

    /// Records scheduled times and concurrency; each check takes `delays[n]` (or 10 ms).
    #[derive(Default)]
    struct FakeChecker {
        scheduled: Mutex<Vec<(String, i64, i64)>>,
        active: AtomicUsize,
        max_active: AtomicUsize,
        delays: Mutex<Vec<Duration>>,
        clock: Mutex<Option<Clock>>,
    }

    impl Check for FakeChecker {
        async fn check(
            &self,
            spec: &MonitorSpec,
            _assertions: &Assertions,
            scheduled_at: Timestamp,
        ) -> ProbeResult {
            let now = self.clock.lock().unwrap().unwrap().now_ms();
            self.scheduled
                .lock()
                .unwrap()
                .push((spec.id.clone(), scheduled_at.as_millis(), now));
            let active = self.active.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_active.fetch_max(active, Ordering::SeqCst);
            let delay = {
                let mut delays = self.delays.lock().unwrap();
                if delays.is_empty() {
                    Duration::from_millis(10)
                } else {
                    delays.remove(0)
                }
            };
            tokio::time::sleep(delay).await;
            self.active.fetch_sub(1, Ordering::SeqCst);
            serde_json::from_value(serde_json::json!({
                "event_id": uuid::Uuid::nil(), "monitor_id": spec.id, "region": "r", "agent": "a",
                "scheduled_at": scheduled_at.as_millis(), "event_time": now, "method": "GET",
                "url": spec.url, "status_code": 200, "outcome": "ok", "error": null,
                "timings": {"dns_us": null, "connect_us": null, "tls_us": null, "ttfb_us": null,
                            "total_us": 1},
                "response_size": 0, "assertions": [], "tls_cert_expiry": null,
            }))
            .unwrap()
        }
    }

    #[derive(Default)]
    struct CountingSink(AtomicUsize);

    impl Sink for CountingSink {
        fn offer(&self, _result: ProbeResult) -> bool {
            self.0.fetch_add(1, Ordering::SeqCst);
            true
        }
    }

    fn spec(id: &str, interval_s: u64, regions: &[&str], enabled: bool) -> MonitorSpec {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "url": "http://127.0.0.1/", "interval": format!("{interval_s}s"),
            "regions": regions, "enabled": enabled,
        }))
        .unwrap()
    }

    fn runner(
        view: &MonitorView,
        checker: &Arc<FakeChecker>,
        sink: &Arc<CountingSink>,
        shard: Shard,
    ) -> Runner<FakeChecker, CountingSink> {
        let clock = Clock::new(Timestamp::from_millis(1_000_000), Instant::now());
        *checker.clock.lock().unwrap() = Some(clock);
        let config = RunnerConfig {
            shard,
            ..RunnerConfig::default()
        };
        Runner::new(
            view.clone(),
            Arc::clone(checker),
            Arc::clone(sink),
            "eu".into(),
            &config,
            clock,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn runs_on_the_grid_without_overlap_and_catches_up_without_bursts() {
        let view = MonitorView::from_specs([spec("a", 10, &[], true)]);
        let checker = Arc::new(FakeChecker::default());
        // Third check hangs for 35 s: ticks 4, 5 and 6 fall inside it.
        *checker.delays.lock().unwrap() = vec![
            Duration::from_millis(10),
            Duration::from_millis(10),
            Duration::from_secs(35),
        ];
        let sink = Arc::new(CountingSink::default());
        let token = CancellationToken::new();
        let task = tokio::spawn(runner(&view, &checker, &sink, Shard::ALL).run(token.clone()));
        tokio::time::sleep(Duration::from_secs(80)).await;
        token.cancel();
        task.await.unwrap();

        let phase = phase_ms("a", Duration::from_secs(10));
        let first = next_tick(1_000_000, 10_000, phase);
        let runs = checker.scheduled.lock().unwrap().clone();
        let scheduled: Vec<i64> = runs.iter().map(|r| r.1 - first).collect();
        // Ticks 0, 10, 20 s; the 20 s check ends at 55 s, so 30 s and 40 s are skipped and
        // 50 s runs at once (late, once), then the grid resumes at 60 s and 70 s.
        assert_eq!(scheduled, [0, 10_000, 20_000, 50_000, 60_000, 70_000]);
        let starts: Vec<i64> = runs.iter().map(|r| r.2 - first).collect();
        assert_eq!(
            starts[3], 55_000,
            "the catch-up check starts when the slow one ends"
        );
        assert_eq!(starts[4], 60_000);
        assert_eq!(checker.max_active.load(Ordering::SeqCst), 1);
        assert_eq!(sink.0.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn follows_the_view_region_enabled_and_shard() {
        let view = MonitorView::from_specs([
            spec("eu-only", 1, &["eu"], true),
            spec("us-only", 1, &["us"], true),
            spec("anywhere", 1, &[], true),
            spec("disabled", 1, &[], false),
        ]);
        let checker = Arc::new(FakeChecker::default());
        let sink = Arc::new(CountingSink::default());
        let token = CancellationToken::new();
        let task = tokio::spawn(runner(&view, &checker, &sink, Shard::ALL).run(token.clone()));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        view.remove("anywhere");
        view.upsert(spec("late", 1, &[], true));
        tokio::time::sleep(Duration::from_millis(3000)).await;
        token.cancel();
        task.await.unwrap();
        let runs = checker.scheduled.lock().unwrap().clone();
        let count = |id: &str| runs.iter().filter(|r| r.0 == id).count();
        assert!((5..=6).contains(&count("eu-only")), "{runs:?}");
        assert!((2..=3).contains(&count("anywhere")), "{runs:?}");
        assert!((2..=3).contains(&count("late")), "{runs:?}");
        assert_eq!(count("us-only") + count("disabled"), 0);

        let shard0 = runner(&view, &checker, &sink, Shard { index: 0, count: 2 });
        let shard1 = runner(&view, &checker, &sink, Shard { index: 1, count: 2 });
        let late = spec("late", 1, &[], true);
        assert_ne!(shard0.owns(&late), shard1.owns(&late));
    }
}
