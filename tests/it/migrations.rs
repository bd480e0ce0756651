//! Migrations apply on the real engine, a second run is a no-op, concurrent runs are safe, and an
//! edited migration is refused.

use clickhouse::Row;
use serde::Serialize;
use vigil_schema::migration::{MIGRATIONS, migrate};

use crate::common::{TestDb, clickhouse, drop_database};

fn all_versions() -> Vec<u32> {
    MIGRATIONS.iter().map(|m| m.version).collect()
}

async fn tables(db: &str) -> Vec<String> {
    clickhouse()
        .query("SELECT name FROM system.tables WHERE database = ? ORDER BY name")
        .bind(db)
        .fetch_all::<String>()
        .await
        .unwrap()
}

#[tokio::test]
async fn applies_in_order_then_is_a_no_op() {
    let db = TestDb::fresh_name("migrate_twice");
    let first = migrate(&clickhouse(), &db).await.unwrap();
    assert_eq!(first.applied, all_versions());
    assert!(first.already_applied.is_empty());
    assert_eq!(
        tables(&db).await,
        [
            "alerts",
            "audit",
            "deliveries",
            "monitors",
            "probes",
            "rollup_keys",
            "schema_migrations",
            "windows_1h",
            "windows_1m"
        ]
    );

    let second = migrate(&clickhouse(), &db).await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.already_applied, all_versions());
    let recorded: u64 = clickhouse()
        .with_database(&db)
        .query("SELECT count() FROM schema_migrations FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(recorded, MIGRATIONS.len() as u64);
    drop_database(&db).await;
}

#[tokio::test]
async fn concurrent_runs_both_succeed() {
    let db = TestDb::fresh_name("migrate_concurrently");
    let (first, second) = (clickhouse(), clickhouse());
    let (a, b) = tokio::join!(migrate(&first, &db), migrate(&second, &db));
    let (a, b) = (a.unwrap(), b.unwrap());
    for version in all_versions() {
        assert!(
            a.applied.contains(&version)
                || b.applied.contains(&version)
                || a.already_applied.contains(&version)
        );
    }
    let third = migrate(&clickhouse(), &db).await.unwrap();
    assert!(third.applied.is_empty());
    assert_eq!(tables(&db).await.len(), 9);
    drop_database(&db).await;
}

#[derive(Row, Serialize)]
struct Recorded {
    version: u32,
    name: String,
    checksum: String,
}

#[tokio::test]
async fn edited_migration_is_refused() {
    let db = TestDb::fresh_name("migrate_edited");
    migrate(&clickhouse(), &db).await.unwrap();
    let client = clickhouse().with_database(&db);
    let mut insert = client
        .insert::<Recorded>("schema_migrations")
        .await
        .unwrap();
    insert
        .write(&Recorded {
            version: 2,
            name: "windows".into(),
            checksum: "0000000000000000".into(),
        })
        .await
        .unwrap();
    insert.end().await.unwrap();
    let err = migrate(&clickhouse(), &db).await.unwrap_err();
    assert!(
        matches!(
            err,
            vigil_schema::Error::MigrationChanged { version: 2, .. }
        ),
        "{err}"
    );
    drop_database(&db).await;
}

#[tokio::test]
async fn window_tables_replace_by_version() {
    let db = TestDb::fresh_name("migrate_replacing");
    migrate(&clickhouse(), &db).await.unwrap();
    let client = clickhouse().with_database(&db);
    for (version, count) in [(1u64, 10u64), (3, 30), (2, 20)] {
        client
            .query(
                "INSERT INTO windows_1m (monitor_id, region, window_start, window_end, version, count)
                 VALUES ('m', 'r', '2026-11-22 07:00:00', '2026-11-22 07:01:00', ?, ?)",
            )
            .bind(version)
            .bind(count)
            .execute()
            .await
            .unwrap();
    }
    let count: u64 = client
        .query("SELECT count FROM windows_1m FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(count, 30, "the highest version wins");
    drop_database(&db).await;
}
