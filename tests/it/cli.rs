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

/// `[retention]` reaches the topics (new and existing) and the tables' TTLs, and a retention
/// that does not fit the rest of the configuration is refused before anything is touched.
#[tokio::test]
async fn migrate_applies_the_configured_retention() {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;

    let db = unique_name("it", "cli_retention");
    let prefix = unique_name("it", "ret");
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("vigil.toml");
    let run = |retention: &str| {
        std::fs::write(&config, format!("[retention]\n{retention}")).unwrap();
        let out = vigil()
            .args(["--config", config.to_str().unwrap(), "migrate"])
            .args(["--clickhouse-database", &db, "--topic-prefix", &prefix])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Created with the default, then changed.
    let (ok, stdout, stderr) = run("");
    assert!(ok, "{stdout}{stderr}");
    let (ok, stdout, stderr) =
        run("probes-topic = \"9days\"\nwindows-1m = \"100days\"\nalerts-table = \"400days\"\n");
    assert!(ok, "{stdout}{stderr}");
    // The three with a TTL by default, and alerts; deliveries and audit keep their rows.
    assert!(stdout.contains("retention set on 4 tables"), "{stdout}");

    #[derive(Debug, clickhouse::Row, serde::Deserialize)]
    struct Table {
        name: String,
        engine_full: String,
    }
    let tables: Vec<Table> = crate::common::clickhouse()
        .query("SELECT name, engine_full FROM system.tables WHERE database = ? ORDER BY name")
        .bind(&db)
        .fetch_all()
        .await
        .unwrap();
    let ttl = |name: &str| {
        let t = tables.iter().find(|t| t.name == name).unwrap();
        t.engine_full
            .split(" TTL ")
            .nth(1)
            .map(|rest| rest.split(" SETTINGS").next().unwrap_or(rest).to_owned())
    };
    assert!(
        ttl("windows_1m").unwrap().contains("8640000"),
        "{:?}",
        ttl("windows_1m")
    );
    assert!(
        ttl("alerts").unwrap().contains("34560000"),
        "{:?}",
        ttl("alerts")
    );
    assert!(
        ttl("probes").unwrap().contains("2592000"),
        "{:?}",
        ttl("probes")
    );
    assert_eq!(ttl("audit"), None);

    // The probes topic: created with 7 days, now 9 (unless the broker cannot alter, which is
    // said).
    let admin: AdminClient<DefaultClientContext> = crate::common::kafka_config().create().unwrap();
    let probes = format!("{prefix}.probes");
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(&probes)], &AdminOptions::new())
        .await
        .unwrap();
    let retention = described[0]
        .as_ref()
        .ok()
        .and_then(|r| r.get("retention.ms").and_then(|e| e.value.clone()));
    if stderr.contains("could not set the retention of existing topics") {
        assert_eq!(retention.as_deref(), Some("604800000"), "{stderr}");
    } else {
        assert_eq!(retention.as_deref(), Some("777600000"), "{stdout}");
    }

    // Refused, naming the field, before touching anything.
    let (ok, _, stderr) = run("windows-1m = \"1day\"\n");
    assert!(!ok);
    assert!(
        stderr.contains("retention.windows-1m: must be at least processor.anomaly-history"),
        "{stderr}"
    );
    let (ok, _, stderr) = run("probes-topic = \"30m\"\n");
    assert!(!ok);
    assert!(
        stderr.contains("retention.probes-topic: must be at least 1h"),
        "{stderr}"
    );
    drop_database(&db).await;
    std::fs::remove_dir_all(&dir).unwrap();
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
