//! A flush that touches 60,000 series: every statement the sink sends must stay far below
//! ClickHouse's `max_query_size` (256 KiB), and every hourly rollup must be right. Before keys
//! travelled as data, a rollup inlined one key per series and failed with code 62 past about
//! 8,000 series, wedging the processor.

use std::time::Duration;

use uuid::Uuid;
use vigil_processor::row::WindowRow;
use vigil_processor::sink::Sink;
use vigil_processor::{Config, Pipeline};
use vigil_schema::{Outcome, ProbeResult, Timestamp, Timings, encode};

use crate::common::TestDb;

const SERIES: u64 = 60_000;
const HOUR: i64 = 3_600_000;
/// Two minutes before a recent hour boundary (recent: older rows expire by TTL on insert), so
/// every series has windows in two hours.
pub(crate) fn t0() -> i64 {
    let now = vigil_schema::Timestamp::now().as_millis();
    now.div_euclid(HOUR) * HOUR - HOUR - 120_000
}

pub(crate) fn event(n: u64, series: u64, t_ms: i64, total_us: u64, ok: bool) -> ProbeResult {
    ProbeResult {
        event_id: Uuid::from_u128(u128::from(n) + 1),
        monitor_id: format!("m{series:06}"),
        region: if series.is_multiple_of(2) { "eu" } else { "us" }.into(),
        agent: "it".into(),
        scheduled_at: Timestamp::from_millis(t_ms),
        event_time: Timestamp::from_millis(t_ms),
        method: "GET".into(),
        url: "http://127.0.0.1:1/".into(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flush_of_60000_series_rolls_up_every_hour() {
    crate::common::init_logs();
    let db = TestDb::new("rollup_scale").await;
    vigil_schema::migration::migrate(&crate::common::clickhouse(), &db.name)
        .await
        .unwrap();
    let t0 = t0();
    let mut pipeline = Pipeline::new(Config {
        window: Duration::from_secs(60),
        allowed_lateness: Duration::from_secs(10),
        ..Config::default()
    });
    // Per series: two checks in the last minute of one hour, one in the first of the next.
    let mut n = 0;
    for series in 0..SERIES {
        let base = 1_000 + series;
        for (dt, total, ok) in [
            (60_000, base, true),
            (90_000, base * 3, !series.is_multiple_of(7)),
            (130_000, base * 2, true),
        ] {
            let e = event(n, series, t0 + dt, total, ok);
            pipeline.process(
                0,
                n as i64,
                Some(e.monitor_id.as_bytes()),
                Some(&encode(&e).unwrap()),
                t0 + HOUR,
            );
            n += 1;
        }
    }
    pipeline.finish();
    let output = pipeline.take_output();
    assert_eq!(output.windows.len() as u64, 2 * SERIES);

    let sink = Sink::new(db.client.clone());
    sink.write_windows(&output.windows).await.unwrap();

    // Independent of the sink's SQL: what each hourly row must be, from the inputs above.
    let rows: Vec<WindowRow> = db
        .client
        .query(&format!(
            "SELECT {} FROM windows_1h FINAL ORDER BY monitor_id, window_start",
            vigil_processor::row::WINDOW_COLUMNS
        ))
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows.len() as u64, 2 * SERIES);
    let first_hour = t0.div_euclid(HOUR) * HOUR;
    for (i, row) in rows.iter().enumerate() {
        let series = i as u64 / 2;
        let base = 1_000 + series;
        assert_eq!(row.monitor_id, format!("m{series:06}"));
        assert_eq!(
            row.region,
            if series.is_multiple_of(2) { "eu" } else { "us" }
        );
        if i % 2 == 0 {
            assert_eq!(row.window_start, first_hour, "{row:?}");
            assert_eq!(row.window_end, first_hour + HOUR);
            assert_eq!(row.count, 2);
            assert_eq!(row.ok_count, if series.is_multiple_of(7) { 1 } else { 2 });
            assert_eq!(row.status_5xx, u64::from(series.is_multiple_of(7)));
            assert_eq!(row.total_min_us, base);
            assert_eq!(row.total_max_us, base * 3);
            assert_eq!(row.total_mean_us, (base * 4) as f64 / 2.0);
        } else {
            assert_eq!(row.window_start, first_hour + HOUR, "{row:?}");
            assert_eq!(row.count, 1);
            assert_eq!(row.ok_count, 1);
            assert_eq!(row.total_min_us, base * 2);
            assert_eq!(row.total_max_us, base * 2);
        }
    }
    db.drop_database().await;
}
