//! `vigil silence add | list | expire`: silences from the command line, written to the
//! compacted silences topic like `vigil apply` writes (checked with the notification stage's
//! own checks first), and read back from it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use vigil_ingest::plan::{Change, Plan};
use vigil_schema::{MaintenanceSpec, Matcher, SilenceSpec, SilenceState, Timestamp};

use crate::config::Config;

/// How long the command waits to read the topic and for the write's acknowledgement.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `vigil silence …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SilenceCommand {
    /// Silence new firings of the alerts matching every `--match` for a while.
    Add {
        /// A label matcher: `label=value`, `label!=value`, `label=~regex`, `label!~regex`
        /// (repeatable; labels: monitor, region, rule, kind, severity and the rule's labels).
        #[arg(long = "match", short = 'm', required = true)]
        matchers: Vec<String>,
        /// How long the silence lasts (`2h`, `90m`).
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// When it starts: RFC 3339 time; default: now.
        #[arg(long, value_parser = crate::process::parse_time)]
        start: Option<i64>,
        /// Why (shown with the silence).
        #[arg(long, default_value = "")]
        comment: String,
        /// Who creates it; default: the `USER` environment variable.
        #[arg(long)]
        author: Option<String>,
    },
    /// List silences in force or pending (`--all`: expired ones too).
    List {
        /// Include expired silences.
        #[arg(long)]
        all: bool,
    },
    /// End a silence now.
    Expire {
        /// The silence's id.
        id: String,
    },
}

/// Runs a `vigil silence` subcommand.
pub(crate) async fn run(config: &Config, command: SilenceCommand) -> anyhow::Result<()> {
    let kafka = crate::ingest_cmd::kafka(config);
    let token = CancellationToken::new();
    let silences = || crate::ingest_cmd::load_view::<SilenceSpec>(&kafka, &token);
    let now = Timestamp::now();
    let result = match command {
        SilenceCommand::List { all } => {
            print!("{}", table(&silences().await?.snapshot(), now, all));
            Ok(())
        }
        SilenceCommand::Add {
            matchers,
            duration,
            start,
            comment,
            author,
        } => {
            let author = author
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "vigil-cli".to_owned());
            let spec = new_silence(&matchers, start.map_or(now, Timestamp), duration, author)?;
            let spec = SilenceSpec { comment, ..spec };
            if let Err(errors) = vigil_notify::check::silence(&spec) {
                let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
                bail!("invalid silence:\n{}", shown.join("\n"));
            }
            write(config, Change::Create(spec.clone())).await?;
            println!(
                "Created silence {} ({}, until {}).",
                spec.id,
                spec.state(now).as_str(),
                spec.ends_at
            );
            Ok(())
        }
        SilenceCommand::Expire { id } => {
            let silences = silences().await?;
            let Some(spec) = silences.get(&id) else {
                let windows = crate::ingest_cmd::load_view::<MaintenanceSpec>(&kafka, &token);
                if windows.await.is_ok_and(|w| w.contains(&id)) {
                    bail!("{id:?} is a maintenance window, not a silence");
                }
                bail!("no silence has the id {id:?}");
            };
            match spec.expired_at(now) {
                None => println!("Silence {id} already ended at {}.", spec.ends_at),
                Some(ended) => {
                    write(
                        config,
                        Change::Update {
                            spec: ended,
                            fields: Vec::new(),
                        },
                    )
                    .await?;
                    println!("Expired silence {id}.");
                }
            }
            Ok(())
        }
    };
    token.cancel();
    result
}

/// A silence of `matchers` from `start` for `duration`, under a new id.
fn new_silence(
    matchers: &[String],
    start: Timestamp,
    duration: Duration,
    author: String,
) -> anyhow::Result<SilenceSpec> {
    let matchers = matchers
        .iter()
        .map(|m| m.parse::<Matcher>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let millis = i64::try_from(duration.as_millis()).context("--for is too long")?;
    Ok(SilenceSpec {
        id: uuid::Uuid::now_v7().to_string(),
        matchers,
        starts_at: start,
        ends_at: start.saturating_add_millis(millis),
        author,
        comment: String::new(),
    })
}

/// Writes one change to the silences topic and waits for its acknowledgement.
async fn write(config: &Config, change: Change<SilenceSpec>) -> anyhow::Result<()> {
    let kafka = crate::ingest_cmd::kafka(config);
    vigil_ingest::ensure_topics(&kafka, config.kafka.replication_factor)
        .await
        .with_context(|| format!("failed to create topics on {}", kafka.brokers))?;
    let plan = Plan {
        changes: vec![change],
        unchanged: 0,
    };
    plan.apply(&kafka, TIMEOUT).await?;
    Ok(())
}

/// The silences as a table, newest end first; expired ones only with `all`.
fn table(silences: &[Arc<SilenceSpec>], now: Timestamp, all: bool) -> String {
    let mut shown: Vec<&SilenceSpec> = silences
        .iter()
        .map(|s| &**s)
        .filter(|s| all || s.state(now) != SilenceState::Expired)
        .collect();
    shown.sort_by(|a, b| b.ends_at.cmp(&a.ends_at).then_with(|| a.id.cmp(&b.id)));
    if shown.is_empty() {
        return "No silences.\n".to_owned();
    }
    let mut out = String::new();
    for s in shown {
        let matchers: Vec<String> = s.matchers.iter().map(ToString::to_string).collect();
        out.push_str(&format!(
            "{}  {:<8} {} → {}  by {}  {}{}\n",
            s.id,
            s.state(now).as_str(),
            s.starts_at,
            s.ends_at,
            s.author,
            matchers.join(", "),
            if s.comment.is_empty() {
                String::new()
            } else {
                format!("  # {}", s.comment)
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_silences_are_valid_and_bad_matchers_say_why() {
        let start = Timestamp::parse_rfc3339("2026-03-01T10:00:00Z").unwrap();
        let spec = new_silence(
            &["monitor=checkout".into(), "severity!=info".into()],
            start,
            Duration::from_secs(7200),
            "ana".into(),
        )
        .unwrap();
        assert_eq!(vigil_notify::check::silence(&spec), Ok(()));
        assert_eq!(spec.ends_at.to_string(), "2026-03-01T12:00:00Z");
        assert_eq!(spec.matchers[1].to_string(), "severity!=info");
        assert_eq!(spec.id.len(), 36);
        let err = new_silence(&["monitor".into()], start, Duration::ZERO, "a".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no operator"), "{err}");
    }

    #[test]
    fn the_table_hides_expired_silences_unless_asked() {
        let start = Timestamp::parse_rfc3339("2026-03-01T10:00:00Z").unwrap();
        let silence = |id: &str, hours: u64| {
            let mut s = new_silence(
                &["monitor=a".into()],
                start,
                Duration::from_secs(hours * 3600),
                "ana".into(),
            )
            .unwrap();
            s.id = id.into();
            Arc::new(s)
        };
        let all = [silence("old", 1), silence("long", 5)];
        let now = start.saturating_add_millis(2 * 3_600_000);
        assert_eq!(
            table(&all, now, false),
            "long  active   2026-03-01T10:00:00Z → 2026-03-01T15:00:00Z  by ana  monitor=a\n"
        );
        let both = table(&all, now, true);
        assert!(
            both.lines().nth(1).unwrap().starts_with("old  expired "),
            "{both}"
        );
        assert_eq!(table(&[], now, true), "No silences.\n");
    }
}
