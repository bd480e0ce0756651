//! An oracle for the processor's minute windows that shares no code with it: counts, ok counts,
//! availability, extremes and exact percentiles are computed in SQL straight from the raw
//! `probes` table, grouped by monitor, region and window start (event-time milliseconds
//! floored to a multiple of the window length, so windows align to the epoch), and every row
//! of `windows_1m FINAL` is held against them.
//!
//! Exact percentiles use the rank the sketch guarantees its answer against (`schema::sketch`):
//! the value at 0-based rank `floor(q (n - 1))` of the sorted input, read from
//! `arraySort(groupArray(total_us))`. ClickHouse's `quantileExactLow` agrees with that rank
//! only for the median; for other levels it takes rank `floor(q n)` (the 18th of 20 values at
//! q = 0.9 where the sketch's rank is the 17th), so it serves here only as a second reading of
//! p50. Counts, ok counts, availability and extremes must be equal; a stored percentile must
//! lie within the sketch's relative accuracy `alpha` of the exact one.

use std::collections::{BTreeMap, BTreeSet};

use clickhouse::Row;
use serde::Deserialize;

use crate::common::TestDb;

/// The levels checked, in the order of [`Exact::percentiles`] and [`Stored::percentiles`].
const LEVELS: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

/// Relative slack for floating point on top of `alpha`.
const FLOAT_SLACK: f64 = 1e-9;

type Key = (String, String, i64);

/// One window computed from raw probes.
#[derive(Debug, Row, Deserialize)]
struct Exact {
    monitor_id: String,
    region: String,
    window_start: i64,
    count: u64,
    ok_count: u64,
    availability: f64,
    total_min_us: u64,
    total_max_us: u64,
    p50: u64,
    p90: u64,
    p95: u64,
    p99: u64,
    median_low: u64,
}

impl Exact {
    fn percentiles(&self) -> [u64; 4] {
        [self.p50, self.p90, self.p95, self.p99]
    }
}

/// The columns of one `windows_1m` row the oracle checks.
#[derive(Debug, Row, Deserialize)]
struct Stored {
    monitor_id: String,
    region: String,
    window_start: i64,
    window_end: i64,
    count: u64,
    ok_count: u64,
    availability: f64,
    total_min_us: u64,
    total_max_us: u64,
    p50_us: f64,
    p90_us: f64,
    p95_us: f64,
    p99_us: f64,
    sketch_alpha: f64,
}

impl Stored {
    fn percentiles(&self) -> [f64; 4] {
        [self.p50_us, self.p90_us, self.p95_us, self.p99_us]
    }
}

/// SQL for the exact `q` quantile of `total_us` in a group: rank `floor(q (n - 1))`, 0-based.
fn exact_quantile_sql(q: f64) -> String {
    format!("arraySort(groupArray(total_us))[toUInt64(floor({q} * (count() - 1))) + 1]")
}

/// Whether `got` is within relative accuracy `alpha` of the exact `want`.
fn within(got: f64, want: u64, alpha: f64) -> bool {
    let want = want as f64;
    (got - want).abs() <= alpha * want * (1.0 + FLOAT_SLACK)
}

/// Holds every row of `windows_1m FINAL` against the windows of length `window_ms` computed
/// from `probes FINAL`, and returns how many windows were checked (at least one).
///
/// Windows starting at or after `open_from_ms` hold the events a test sends to close the
/// others, and stay open: they are left out of the probe side, and `windows_1m` must have no
/// row there. Below it, both sides must hold the same (monitor, region, window start) keys.
pub(crate) async fn check_windows_against_probes(
    db: &TestDb,
    window_ms: i64,
    alpha: f64,
    open_from_ms: i64,
) -> usize {
    assert!(window_ms > 0 && alpha > 0.0 && alpha < 1.0);
    let exact_sql = format!(
        "SELECT monitor_id, region, \
         toInt64(intDiv(toUnixTimestamp64Milli(event_time), {window_ms}) * {window_ms}) \
         AS window_start, \
         count() AS count, countIf(outcome = 'ok') AS ok_count, \
         countIf(outcome = 'ok') / count() AS availability, \
         min(total_us) AS total_min_us, max(total_us) AS total_max_us, \
         {} AS p50, {} AS p90, {} AS p95, {} AS p99, \
         toUInt64(quantileExactLow(0.5)(total_us)) AS median_low \
         FROM probes FINAL \
         GROUP BY monitor_id, region, window_start \
         HAVING window_start < {open_from_ms} \
         ORDER BY monitor_id, region, window_start",
        exact_quantile_sql(LEVELS[0]),
        exact_quantile_sql(LEVELS[1]),
        exact_quantile_sql(LEVELS[2]),
        exact_quantile_sql(LEVELS[3]),
    );
    let exact: BTreeMap<Key, Exact> = db
        .client
        .query(&exact_sql)
        .fetch_all::<Exact>()
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- query ---\n{exact_sql}"))
        .into_iter()
        .map(|w| ((w.monitor_id.clone(), w.region.clone(), w.window_start), w))
        .collect();
    let stored: BTreeMap<Key, Stored> = db
        .client
        .query(
            "SELECT monitor_id, region, \
             toUnixTimestamp64Milli(window_start) AS window_start, \
             toUnixTimestamp64Milli(window_end) AS window_end, \
             count, ok_count, availability, total_min_us, total_max_us, \
             p50_us, p90_us, p95_us, p99_us, sketch_alpha \
             FROM windows_1m FINAL ORDER BY monitor_id, region, window_start",
        )
        .fetch_all::<Stored>()
        .await
        .unwrap()
        .into_iter()
        .map(|w| ((w.monitor_id.clone(), w.region.clone(), w.window_start), w))
        .collect();

    assert!(
        !exact.is_empty(),
        "no windows in probes before {open_from_ms}"
    );
    assert!(!stored.is_empty(), "windows_1m is empty");
    let open: Vec<&Key> = stored.keys().filter(|k| k.2 >= open_from_ms).collect();
    assert!(
        open.is_empty(),
        "windows_1m has rows for windows still open: {open:?}"
    );
    let want: BTreeSet<&Key> = exact.keys().collect();
    let got: BTreeSet<&Key> = stored.keys().collect();
    assert_eq!(
        got,
        want,
        "window keys: missing from windows_1m {:?}, not in probes {:?}",
        want.difference(&got).collect::<Vec<_>>(),
        got.difference(&want).collect::<Vec<_>>()
    );

    for (key, e) in &exact {
        let s = &stored[key];
        let context = format!("{key:?}: windows_1m {s:?}\nprobes {e:?}");
        assert!(e.count > 0, "{context}");
        assert_eq!(s.window_end, s.window_start + window_ms, "{context}");
        assert_eq!(s.count, e.count, "count of {context}");
        assert_eq!(s.ok_count, e.ok_count, "ok_count of {context}");
        assert_eq!(
            s.availability.to_bits(),
            e.availability.to_bits(),
            "availability of {context}"
        );
        assert_eq!(s.total_min_us, e.total_min_us, "minimum of {context}");
        assert_eq!(s.total_max_us, e.total_max_us, "maximum of {context}");
        assert_eq!(s.sketch_alpha, alpha, "{context}");
        assert_eq!(e.median_low, e.p50, "two exact medians of {context}");
        for ((q, got), want) in LEVELS.iter().zip(s.percentiles()).zip(e.percentiles()) {
            assert!(
                within(got, want, alpha),
                "p{} {got} is not within {alpha} of exact {want} in {context}",
                q * 100.0
            );
        }
    }
    exact.len()
}

/// The SQL rank is the sketch's: for many sizes and levels, the exact quantile in SQL equals
/// the value at `floor(q (n - 1))` of the sorted input, and the relative check accepts the
/// bound's edge and refuses beyond it.
#[tokio::test]
async fn exact_quantile_is_the_sketch_rank() {
    let db = TestDb::new("oracle_rank").await;
    #[derive(Debug, Row, Deserialize)]
    struct Q {
        n: u64,
        p50: u64,
        p90: u64,
        p95: u64,
        p99: u64,
    }
    // Groups of 1 to 120 values, given out of order: n * 7 + i * 37 mod 1000 for i < n.
    let sql = format!(
        "SELECT n, {} AS p50, {} AS p90, {} AS p95, {} AS p99 \
         FROM (SELECT n, toUInt64((n * 7 + i * 37) % 1000) AS total_us \
               FROM (SELECT number + 1 AS n FROM numbers(120)) ARRAY JOIN range(n) AS i) \
         GROUP BY n ORDER BY n",
        exact_quantile_sql(LEVELS[0]),
        exact_quantile_sql(LEVELS[1]),
        exact_quantile_sql(LEVELS[2]),
        exact_quantile_sql(LEVELS[3]),
    );
    let rows = db.client.query(&sql).fetch_all::<Q>().await.unwrap();
    assert_eq!(rows.len(), 120);
    for row in rows {
        let mut values: Vec<u64> = (0..row.n).map(|i| (row.n * 7 + i * 37) % 1000).collect();
        values.sort_unstable();
        let rank = |q: f64| values[(q * (row.n - 1) as f64).floor() as usize];
        assert_eq!(
            [row.p50, row.p90, row.p95, row.p99],
            LEVELS.map(rank),
            "n = {}",
            row.n
        );
    }
    assert!(within(101.0, 100, 0.01));
    assert!(within(99.0, 100, 0.01));
    assert!(!within(101.01, 100, 0.01));
    assert!(within(0.0, 0, 0.01));
    assert!(!within(0.5, 0, 0.01));
    db.drop_database().await;
}
