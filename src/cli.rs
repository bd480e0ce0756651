//! Command-line interface: global options that override the config file, and subcommands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

/// Vigil: API performance monitoring on an event log.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// Configuration file (`.toml`, `.yaml` or `.yml`).
    #[arg(long, short = 'c', env = "VIGIL_CONFIG", global = true)]
    pub(crate) config: Option<PathBuf>,
    /// Log output format.
    #[arg(long, env = "VIGIL_LOG_FORMAT", global = true, value_enum)]
    pub(crate) log_format: Option<LogFormat>,
    /// Kafka bootstrap servers (`host:port,…`).
    #[arg(long, env = "VIGIL_KAFKA_BROKERS", global = true)]
    pub(crate) kafka_brokers: Option<String>,
    /// Prefix of Vigil's topic names (`vigil` gives `vigil.probes`, …).
    #[arg(long, env = "VIGIL_TOPIC_PREFIX", global = true)]
    pub(crate) topic_prefix: Option<String>,
    /// ClickHouse HTTP endpoint.
    #[arg(long, env = "VIGIL_CLICKHOUSE_URL", global = true)]
    pub(crate) clickhouse_url: Option<String>,
    /// ClickHouse user.
    #[arg(long, env = "VIGIL_CLICKHOUSE_USER", global = true)]
    pub(crate) clickhouse_user: Option<String>,
    /// ClickHouse password.
    #[arg(
        long,
        env = "VIGIL_CLICKHOUSE_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub(crate) clickhouse_password: Option<String>,
    /// ClickHouse database.
    #[arg(long, env = "VIGIL_CLICKHOUSE_DATABASE", global = true)]
    pub(crate) clickhouse_database: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the ClickHouse database, apply pending migrations and create missing Kafka topics.
    Migrate {
        /// Only migrate ClickHouse; leave Kafka alone.
        #[arg(long)]
        skip_topics: bool,
    },
    /// Print the effective configuration (defaults < file < environment < flags) as TOML.
    Config,
    /// Anomaly detection tools.
    Anomaly {
        #[command(subcommand)]
        command: AnomalyCommand,
    },
}

/// `vigil anomaly …`
#[derive(Debug, Subcommand)]
pub(crate) enum AnomalyCommand {
    /// Score a series with the processor's detector: reads CSV `timestamp,value`, writes
    /// `timestamp,value,anomaly_score` to stdout.
    Score {
        /// Input CSV (`-` for stdin).
        #[arg(long, short = 'i')]
        input: PathBuf,
        /// Add a fourth column with the detector's reason.
        #[arg(long)]
        reasons: bool,
    },
}

/// Runs a subcommand to completion.
pub(crate) async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Migrate { skip_topics } => crate::migrate::run(&config, skip_topics).await,
        Command::Anomaly {
            command: AnomalyCommand::Score { input, reasons },
        } => crate::anomaly::score(&input, reasons),
        Command::Config => {
            print!("{}", toml::to_string_pretty(&config)?);
            Ok(())
        }
    }
}
