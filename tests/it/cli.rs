//! The `vigil` binary itself: `--version`, and `migrate` against the local stack.

use std::process::Command;

use crate::common::{clickhouse_url, drop_database, kafka_brokers, unique_name};

fn vigil() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.env("VIGIL_KAFKA_BROKERS", kafka_brokers())
        .env("VIGIL_CLICKHOUSE_URL", clickhouse_url());
    cmd
}

#[test]
fn prints_its_version() {
    let out = vigil().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("vigil {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn migrate_prepares_both_stores_and_is_idempotent() {
    let db = unique_name("it", "cli_migrate");
    let prefix = unique_name("it", "cli");
    let run = || {
        vigil()
            .args([
                "migrate",
                "--clickhouse-database",
                &db,
                "--topic-prefix",
                &prefix,
            ])
            .output()
            .unwrap()
    };

    let versions: Vec<u32> = vigil_schema::migration::MIGRATIONS
        .iter()
        .map(|m| m.version)
        .collect();
    let first = run();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains(&format!("applied {versions:?}, already applied []")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{prefix}.probes")), "{stdout}");

    let second = run();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("applied [], already applied {versions:?}")),
        "{stdout}"
    );
    assert!(stdout.contains("created []"), "{stdout}");
    drop_database(&db).await;
}

#[test]
fn unreachable_clickhouse_is_a_clear_error() {
    let out = vigil()
        .args([
            "migrate",
            "--clickhouse-url",
            "http://127.0.0.1:1",
            "--skip-topics",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed to migrate ClickHouse at http://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains("scripts/stack up"), "{stderr}");
}
