//! The local ClickHouse endpoint speaks what the official `clickhouse` crate expects with its
//! default settings: LZ4-compressed RowBinary inserts, RowBinaryWithNamesAndTypes selects with
//! schema validation, query parameters, per-request settings, ClickHouse-style errors.

use clickhouse::Row;
use clickhouse::error::Error;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::common::TestDb;

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Sample {
    id: u32,
    monitor: String,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    at: time::OffsetDateTime,
    #[serde(with = "clickhouse::serde::uuid")]
    event_id: Uuid,
    latency: f64,
    keys: Vec<i32>,
    counts: Vec<u64>,
    error: Option<String>,
    ok: bool,
}

fn sample(i: u32) -> Sample {
    Sample {
        id: i,
        monitor: format!("monitor-{}", i % 37),
        at: time::OffsetDateTime::from_unix_timestamp_nanos(
            1_700_000_000_000_000_000 + i128::from(i) * 1_000_000,
        )
        .unwrap(),
        event_id: Uuid::from_u128(u128::from(i) * 0x9e37_79b9_7f4a_7c15),
        latency: f64::from(i) * 1.5 + 0.25,
        keys: (0..(i % 5) as i32).map(|k| k * 7 - 3).collect(),
        counts: (0..u64::from(i % 5)).collect(),
        error: i.is_multiple_of(3).then(|| format!("timeout after {i} ms")),
        ok: !i.is_multiple_of(3),
    }
}

const DDL: &str = "CREATE TABLE samples (
    id UInt32, monitor LowCardinality(String), at DateTime64(3, 'UTC'), event_id UUID,
    latency Float64, keys Array(Int32), counts Array(UInt64), error Nullable(String), ok Bool
) ENGINE = MergeTree ORDER BY id";

#[tokio::test]
async fn round_trips_100k_rows_with_default_client_settings() {
    let db = TestDb::new("round_trip").await;
    db.client.query(DDL).execute().await.unwrap();

    const ROWS: u32 = 100_000;
    let mut insert = db.client.insert::<Sample>("samples").await.unwrap();
    for i in 0..ROWS {
        insert.write(&sample(i)).await.unwrap();
    }
    insert.end().await.unwrap();

    let rows = db
        .client
        .query("SELECT ?fields FROM samples ORDER BY id")
        .fetch_all::<Sample>()
        .await
        .unwrap();
    assert_eq!(rows.len(), ROWS as usize);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row, &sample(i as u32));
    }

    let below: u64 = db
        .client
        .query("SELECT count() FROM samples WHERE id < {p:UInt32} AND monitor = {m:String}")
        .param("p", 3_700u32)
        .param("m", "monitor-5")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(below, 100, "ids 5, 42, … below 3700 that are ≡ 5 mod 37");

    let mut cursor = db
        .client
        .query("SELECT ?fields FROM samples WHERE id >= ? ORDER BY id")
        .bind(ROWS - 3)
        .fetch::<Sample>()
        .unwrap();
    let mut streamed = Vec::new();
    while let Some(row) = cursor.next().await.unwrap() {
        streamed.push(row.id);
    }
    assert_eq!(streamed, [ROWS - 3, ROWS - 2, ROWS - 1]);
    db.drop_database().await;
}

#[tokio::test]
async fn server_errors_surface_as_bad_response() {
    let db = TestDb::new("errors").await;
    let err = db
        .client
        .query("SELECT * FROM no_such_table")
        .fetch_all::<u8>()
        .await
        .unwrap_err();
    match err {
        Error::BadResponse(message) => {
            assert!(message.contains("Code: 60"), "{message}");
            assert!(message.contains("UNKNOWN_TABLE"), "{message}");
        }
        other => panic!("expected BadResponse, got {other:?}"),
    }
    let err = db.client.query("SELEC 1").execute().await.unwrap_err();
    assert!(
        matches!(&err, Error::BadResponse(m) if m.contains("Code: 62")),
        "{err:?}"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn settings_apply_to_one_request_only() {
    let db = TestDb::new("settings").await;
    let scoped: u64 = db
        .client
        .query("SELECT toUInt64(getSetting('max_block_size'))")
        .with_setting("max_block_size", "1234")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(scoped, 1234);
    let after: u64 = db
        .client
        .query("SELECT toUInt64(getSetting('max_block_size'))")
        .fetch_one()
        .await
        .unwrap();
    assert_ne!(
        after, 1234,
        "a per-request setting leaked into the next request"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn concurrent_requests_are_safe() {
    let db = TestDb::new("concurrent").await;
    db.client.query(DDL).execute().await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8u32 {
        let client = db.client.clone();
        tasks.spawn(async move {
            let mut insert = client.insert::<Sample>("samples").await.unwrap();
            for i in 0..1_000 {
                insert.write(&sample(t * 1_000 + i)).await.unwrap();
            }
            insert.end().await.unwrap();
            let n: u64 = client
                .query("SELECT count() FROM samples")
                .fetch_one()
                .await
                .unwrap();
            assert!(n >= 1_000);
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let n: u64 = db
        .client
        .query("SELECT count() FROM samples")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(n, 8_000);
    db.drop_database().await;
}
