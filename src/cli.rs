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
    /// Run the processor: windows, percentiles and anomaly scores from `vigil.probes` into
    /// ClickHouse.
    Process {
        /// Address of `/metrics`, `/healthz` and `/readyz`.
        #[arg(long, env = "VIGIL_PROCESSOR_LISTEN", default_value = "127.0.0.1:9101")]
        listen: std::net::SocketAddr,
        /// Static group membership id of this instance (overrides `processor.instance-id`).
        #[arg(long, env = "VIGIL_PROCESSOR_INSTANCE_ID")]
        instance_id: Option<String>,
        /// Static shard `i/n` of the probes partitions instead of the group protocol
        /// (overrides `processor.shard`).
        #[arg(long, env = "VIGIL_PROCESSOR_SHARD")]
        shard: Option<String>,
    },
    /// Run the notification stage: route alert transitions to channels (webhook, Slack,
    /// PagerDuty, email, …) with grouping, silences and retries.
    ///
    /// Channel secrets (`${secret:NAME}` references) are read from the `VIGIL_SECRET_<NAME>`
    /// environment variables (NAME upper-cased, `-` as `_`) when a notification is sent.
    Notify {
        /// Address of `/metrics`, `/healthz` and `/readyz`.
        #[arg(long, env = "VIGIL_NOTIFY_LISTEN", default_value = "127.0.0.1:9102")]
        listen: std::net::SocketAddr,
    },
    /// Recompute windows from the probes topic into ClickHouse (safe while `process` runs).
    Replay {
        /// Start: RFC 3339 time or a duration ago (`6h`).
        #[arg(long, value_parser = crate::process::parse_time)]
        from: i64,
        /// End (exclusive): RFC 3339 time or a duration ago; default: now.
        #[arg(long, value_parser = crate::process::parse_time)]
        to: Option<i64>,
        /// Only this monitor.
        #[arg(long)]
        monitor: Option<String>,
    },
    /// Print the effective configuration (defaults < file < environment < flags) as TOML.
    Config,
    /// Validate a monitors file and write the difference to the monitors, rules, channels,
    /// routes, silences and status pages topics (prints the plan first).
    Apply {
        /// The monitors file (`monitors:`, `alerts:`, `channels:`, `routes:`, `silences:`,
        /// `maintenance:`, `status_pages:`; any of them).
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// Print the plan without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Delete monitors (alert rules, channels, …) that are not in the file; only for the
        /// sections the file has.
        #[arg(long)]
        prune: bool,
    },
    /// Write the current monitors, alert rules and notification configuration as a monitors
    /// file (stdout unless `-o`).
    Export {
        /// Output file.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Run the probe runner and, with `--listen`, the ingestion API.
    Ingest(crate::ingest_cmd::IngestArgs),
    /// Serve the query API: REST (`/api/v1`, OpenAPI at `/api/v1/openapi.json`, `/docs`) and
    /// GraphQL (`/graphql`, subscriptions on `/graphql/ws`).
    Serve(crate::serve_cmd::ServeArgs),
    /// Run everything in one process: probe runner, ingestion API, processor and query API
    /// (after `migrate`; starts the local stack when it is the target and down).
    Up(crate::up::UpArgs),
    /// Named secrets (`${secret:NAME}`), encrypted at rest.
    Secrets {
        #[command(subcommand)]
        command: crate::secrets_cmd::SecretsCommand,
    },
    /// API keys of the query and ingestion APIs.
    Keys {
        #[command(subcommand)]
        command: crate::keys_cmd::KeysCommand,
    },
    /// Silences: new firings of the matching alerts are not notified for a while.
    Silence {
        #[command(subcommand)]
        command: crate::silence_cmd::SilenceCommand,
    },
    /// Alert rule tools.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Monitors discovered from an API description (`vigil import openapi FILE|URL`).
    Import {
        #[command(subcommand)]
        command: crate::import_cmd::ImportCommand,
    },
    /// Anomaly detection tools.
    Anomaly {
        #[command(subcommand)]
        command: AnomalyCommand,
    },
}

/// `vigil rules …`
#[derive(Debug, Subcommand)]
pub(crate) enum RulesCommand {
    /// Run alert rules over the retained probes with the live evaluator and print the
    /// transitions they would have produced, how often each fired and how long; writes nothing.
    Backtest {
        /// Monitors file whose `alerts:` are run (new or edited rules; its `monitors:` give
        /// tags). Without it, the live rules are run.
        #[arg(long, short = 'f')]
        file: Option<PathBuf>,
        /// Start: RFC 3339 time or a duration ago (`7d`).
        #[arg(long, value_parser = crate::process::parse_time)]
        from: i64,
        /// End (exclusive): RFC 3339 time or a duration ago; default: the newest probe.
        #[arg(long, value_parser = crate::process::parse_time)]
        to: Option<i64>,
        /// Only this rule (repeatable).
        #[arg(long)]
        rule: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
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
        /// Add a column with the detector's reason.
        #[arg(long)]
        reasons: bool,
        /// Add columns saying why: the view that found the point most unusual (`feature`),
        /// what it expected (`expected`), `value - expected` (`error`), and the probability of a
        /// point at least this unusual under the series' history (`probability`; the score is
        /// `-log10(probability) / 4`, clamped to [0, 1]). Empty during the warm-up and the rest
        /// after an alert.
        #[arg(long)]
        explain: bool,
    },
}

/// Runs a subcommand to completion.
pub(crate) async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Migrate { skip_topics } => crate::migrate::run(&config, skip_topics).await,
        Command::Process {
            listen,
            instance_id,
            shard,
        } => {
            let mut config = config;
            if let Some(id) = instance_id {
                config.processor.instance_id = id;
            }
            if let Some(shard) = shard {
                config.processor.shard = shard;
            }
            crate::process::process(&config, listen).await
        }
        Command::Notify { listen } => crate::notify_cmd::notify(&config, listen).await,
        Command::Replay { from, to, monitor } => {
            crate::process::replay(&config, from, to, monitor).await
        }
        Command::Rules {
            command:
                RulesCommand::Backtest {
                    file,
                    from,
                    to,
                    rule,
                    json,
                },
        } => {
            let args = crate::rules_cmd::BacktestArgs {
                file: file.as_deref(),
                from_ms: from,
                to_ms: to,
                rules: rule,
                json,
            };
            crate::rules_cmd::run(&config, args).await
        }
        Command::Anomaly {
            command:
                AnomalyCommand::Score {
                    input,
                    reasons,
                    explain,
                },
        } => crate::anomaly::score(&input, reasons, explain),
        Command::Silence { command } => crate::silence_cmd::run(&config, command).await,
        Command::Keys { command } => crate::keys_cmd::run(&config, command).await,
        Command::Secrets { command } => crate::secrets_cmd::run(&config, command).await,
        Command::Apply {
            file,
            dry_run,
            prune,
        } => crate::ingest_cmd::apply(&config, &file, dry_run, prune).await,
        Command::Import { command } => crate::import_cmd::run(&config, command).await,
        Command::Export { output } => crate::ingest_cmd::export(&config, output.as_ref()).await,
        Command::Ingest(args) => crate::ingest_cmd::ingest(&config, args).await,
        Command::Serve(args) => crate::serve_cmd::serve(&config, args).await,
        Command::Up(args) => crate::up::up(&config, args).await,
        Command::Config => {
            print!("{}", toml::to_string_pretty(&config.redacted())?);
            Ok(())
        }
    }
}
