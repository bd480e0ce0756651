//! ClickHouse DDL as numbered migrations, and (feature `clickhouse`) the runner.
//!
//! Migrations are the files `schema/ddl/NNN_name.sql`, compiled in with `include_str!` and
//! applied in order. Every statement is idempotent (`CREATE … IF NOT EXISTS`,
//! `ALTER … IF [NOT] EXISTS`), so two processes migrating at once both succeed: they apply the
//! same statements and record the same rows in `schema_migrations`, a ReplacingMergeTree keyed by
//! version. A file changed after it was applied is refused (its checksum no longer matches):
//! migrations are append-only.

/// One numbered migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number; applied in increasing order.
    pub version: u32,
    /// Its name (the file name without number and extension).
    pub name: &'static str,
    /// The SQL: one or more statements separated by `;`.
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "probes",
        sql: include_str!("../ddl/001_probes.sql"),
    },
    Migration {
        version: 2,
        name: "windows",
        sql: include_str!("../ddl/002_windows.sql"),
    },
    Migration {
        version: 3,
        name: "alerts",
        sql: include_str!("../ddl/003_alerts.sql"),
    },
    Migration {
        version: 4,
        name: "monitors",
        sql: include_str!("../ddl/004_monitors.sql"),
    },
    Migration {
        version: 5,
        name: "rollup_keys",
        sql: include_str!("../ddl/005_rollup_keys.sql"),
    },
    Migration {
        version: 6,
        name: "alert_fields",
        sql: include_str!("../ddl/006_alert_fields.sql"),
    },
    Migration {
        version: 7,
        name: "deliveries",
        sql: include_str!("../ddl/007_deliveries.sql"),
    },
    Migration {
        version: 8,
        name: "audit",
        sql: include_str!("../ddl/008_audit.sql"),
    },
    Migration {
        version: 9,
        name: "probe_steps",
        sql: include_str!("../ddl/009_probe_steps.sql"),
    },
];

/// DDL of the table that records applied migrations (created before any migration runs).
pub const SCHEMA_MIGRATIONS_DDL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations
(
    version     UInt32,
    name        String,
    checksum    String,
    applied_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version";

impl Migration {
    /// The statements of this migration, without `--` comment lines (which may hold `;`).
    pub fn statements(&self) -> Vec<String> {
        let code: String = self
            .sql
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .flat_map(|line| [line, "\n"])
            .collect();
        code.split(';')
            .map(str::trim)
            .filter(|stmt| !stmt.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// A stable fingerprint of the SQL (FNV-1a, 64 bit, hex), to detect edited migrations.
    pub fn checksum(&self) -> String {
        let hash = self.sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| {
            (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{hash:016x}")
    }
}

/// The newest migration this build knows.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

#[cfg(feature = "clickhouse")]
pub use runner::{MigrationReport, apply_retention, migrate};

#[cfg(feature = "clickhouse")]
mod runner {
    use clickhouse::Client;
    use clickhouse::sql::Identifier;
    use serde::{Deserialize, Serialize};

    use super::{MIGRATIONS, SCHEMA_MIGRATIONS_DDL, latest_version};
    use crate::{Error, Result, table};

    #[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
    struct AppliedMigration {
        version: u32,
        name: String,
        checksum: String,
    }

    /// What [`migrate`] did.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct MigrationReport {
        /// Migrations applied by this run, in order.
        pub applied: Vec<u32>,
        /// Migrations that were already applied.
        pub already_applied: Vec<u32>,
    }

    /// Creates `database` if needed and applies every migration not yet recorded in it.
    /// Safe to run repeatedly and concurrently.
    pub async fn migrate(client: &Client, database: &str) -> Result<MigrationReport> {
        client
            .query("CREATE DATABASE IF NOT EXISTS ?")
            .bind(Identifier(database))
            .execute()
            .await?;
        let client = client.clone().with_database(database);
        client.query(SCHEMA_MIGRATIONS_DDL).execute().await?;

        let recorded = client
            .query("SELECT ?fields FROM ? FINAL ORDER BY version")
            .bind(Identifier(table::SCHEMA_MIGRATIONS))
            .fetch_all::<AppliedMigration>()
            .await?;
        let latest = latest_version();
        if let Some(newer) = recorded.iter().find(|r| r.version > latest) {
            return Err(Error::MigrationFromTheFuture {
                version: newer.version,
                latest,
            });
        }

        let mut report = MigrationReport::default();
        for migration in MIGRATIONS {
            let checksum = migration.checksum();
            if let Some(done) = recorded.iter().find(|r| r.version == migration.version) {
                if done.checksum != checksum {
                    return Err(Error::MigrationChanged {
                        version: migration.version,
                        name: migration.name.to_owned(),
                        applied: done.checksum.clone(),
                        current: checksum,
                    });
                }
                report.already_applied.push(migration.version);
                continue;
            }
            for statement in migration.statements() {
                // `query_raw`: DDL is sent as written, `?` is not a bind placeholder here.
                client.query_raw(&statement).execute().await?;
            }
            let mut insert = client
                .insert::<AppliedMigration>(table::SCHEMA_MIGRATIONS)
                .await?;
            insert
                .write(&AppliedMigration {
                    version: migration.version,
                    name: migration.name.to_owned(),
                    checksum,
                })
                .await?;
            insert.end().await?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "Applied migration."
            );
            report.applied.push(migration.version);
        }
        Ok(report)
    }

    /// Sets every table's TTL to `retention` (after [`migrate`]): a changed TTL applies at the
    /// next merges, without rewriting the table now. A table without a retention keeps its
    /// rows. Returns the statements sent.
    pub async fn apply_retention(
        client: &Client,
        database: &str,
        retention: &crate::Retention,
    ) -> Result<Vec<String>> {
        #[derive(Debug, clickhouse::Row, Deserialize)]
        struct Table {
            name: String,
            engine_full: String,
        }
        let client = client.clone().with_database(database);
        let tables = client
            .query("SELECT name, engine_full FROM system.tables WHERE database = ?")
            .bind(database)
            .fetch_all::<Table>()
            .await?;
        let mut sent = Vec::new();
        for (table, column, keep) in retention.tables() {
            let Some(current) = tables.iter().find(|t| t.name == table) else {
                continue;
            };
            let statement = match keep {
                Some(d) => format!(
                    "ALTER TABLE {table} MODIFY TTL {column} + INTERVAL {} SECOND DELETE \
                     SETTINGS materialize_ttl_after_modify = 0",
                    d.as_secs()
                ),
                None if current.engine_full.contains(" TTL ") => {
                    format!("ALTER TABLE {table} REMOVE TTL")
                }
                None => continue,
            };
            client.query_raw(&statement).execute().await?;
            sent.push(statement);
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_contiguous_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
    }

    /// Concurrent and repeated runs are only safe if every statement is idempotent.
    #[test]
    fn every_statement_is_idempotent() {
        for m in MIGRATIONS {
            for code in m.statements() {
                let upper = code
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_uppercase();
                let idempotent = (upper.starts_with("CREATE ")
                    && upper.contains(" IF NOT EXISTS "))
                    || (upper.starts_with("ALTER TABLE ")
                        && (upper.contains(" IF NOT EXISTS ") || upper.contains(" IF EXISTS ")));
                assert!(
                    idempotent,
                    "migration {} has a non-idempotent statement: {code}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn statements_split_and_skip_comments() {
        let windows = MIGRATIONS[1];
        let stmts = windows.statements();
        assert_eq!(stmts.len(), 2);
        assert!(
            stmts[0].starts_with("CREATE TABLE IF NOT EXISTS windows_1m"),
            "{}",
            stmts[0]
        );
        assert!(
            stmts[1].starts_with("CREATE TABLE IF NOT EXISTS windows_1h"),
            "{}",
            stmts[1]
        );
    }

    #[test]
    fn checksum_is_stable_and_sensitive() {
        let m = MIGRATIONS[0];
        assert_eq!(m.checksum(), m.checksum());
        let edited = Migration {
            sql: "CREATE TABLE IF NOT EXISTS x (a UInt8) ENGINE = Log",
            ..m
        };
        assert_ne!(edited.checksum(), m.checksum());
    }
}
