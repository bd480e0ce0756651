//! `vigil rules backtest`: runs alert rules (new, edited or live) over the retained probes
//! topic with the live evaluator and prints what they would have done. Writes nothing.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use vigil_ingest::plan::{self, MonitorsFile};
use vigil_processor::backtest::{BacktestReport, BacktestRequest, backtest};
use vigil_schema::Timestamp;

use crate::config::Config;

/// Most transitions printed (the statistics count all of them).
const MAX_LISTED: usize = 10_000;

/// What to backtest, from the command line.
#[derive(Debug)]
pub(crate) struct BacktestArgs<'a> {
    /// Monitors file whose `alerts:` are run (its `monitors:` supply tags); without it, or
    /// without an `alerts:` section, the live rules are run.
    pub(crate) file: Option<&'a Path>,
    pub(crate) from_ms: i64,
    pub(crate) to_ms: Option<i64>,
    /// Only these rules (all when empty).
    pub(crate) rules: Vec<String>,
    pub(crate) json: bool,
}

/// `vigil rules backtest`.
pub(crate) async fn run(config: &Config, args: BacktestArgs<'_>) -> anyhow::Result<()> {
    if let Some(to) = args.to_ms
        && to <= args.from_ms
    {
        anyhow::bail!("--to must be after --from");
    }
    let file = match args.file {
        Some(path) => {
            let shown = path.display().to_string();
            let text =
                std::fs::read_to_string(path).with_context(|| format!("failed to read {shown}"))?;
            plan::parse_file(&shown, &text)?
        }
        None => MonitorsFile::default(),
    };
    let kafka = crate::ingest_cmd::kafka(config);
    // The live picture fills whatever the file does not say.
    let everything = MonitorsFile {
        monitors: Some(Vec::new()),
        alerts: Some(Vec::new()),
        ..MonitorsFile::default()
    };
    let (live_monitors, live_rules) = crate::ingest_cmd::current(&kafka, &everything).await?;
    let mut tags: HashMap<String, Vec<String>> = live_monitors
        .iter()
        .map(|m| (m.id.clone(), m.tags.clone()))
        .collect();
    for m in file.monitors.iter().flatten() {
        tags.insert(m.id.clone(), m.tags.clone());
    }
    let mut rules = match file.alerts {
        Some(rules) => rules,
        None => live_rules.iter().map(|r| (**r).clone()).collect(),
    };
    if !args.rules.is_empty() {
        let unknown: Vec<&String> = args
            .rules
            .iter()
            .filter(|id| !rules.iter().any(|r| &r.id == *id))
            .collect();
        if !unknown.is_empty() {
            anyhow::bail!("no such rule: {unknown:?}");
        }
        rules.retain(|r| args.rules.contains(&r.id));
    }
    let default_rule = config.processor.default_rule && args.rules.is_empty();
    let clickhouse = config
        .clickhouse
        .client()
        .with_database(&config.clickhouse.database);
    let report = backtest(
        &config.kafka.brokers,
        &config.topics().probes,
        &config.processor,
        Some(clickhouse),
        BacktestRequest {
            rules,
            tags,
            default_rule,
            from_ms: args.from_ms,
            to_ms: args.to_ms,
            max_transitions: MAX_LISTED,
        },
        crate::service::shutdown_token(),
    )
    .await
    .context("backtest failed")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report)?);
    }
    Ok(())
}

/// The report as text: transitions, then one line per rule.
fn render(report: &BacktestReport) -> Result<String, std::fmt::Error> {
    use std::fmt::Write;
    let mut out = String::new();
    writeln!(
        out,
        "Backtest {} → {}: {} probe results.",
        Timestamp::from_millis(report.from_ms),
        Timestamp::from_millis(report.to_ms),
        report.events
    )?;
    for (rule, reason) in &report.rejected {
        writeln!(out, "  rule {rule} rejected: {reason}")?;
    }
    if !report.transitions.is_empty() {
        out.push('\n');
    }
    for t in &report.transitions {
        let region = t.region.as_deref().unwrap_or("*");
        writeln!(
            out,
            "{}  {:<24} {:<24} {:<10} {:>7} → {:<7}  {}",
            t.at,
            t.rule_id,
            t.monitor_id,
            region,
            t.from.as_str(),
            t.to.as_str(),
            t.message
        )?;
    }
    if report.truncated {
        writeln!(
            out,
            "… more transitions left out (use --json for the first {MAX_LISTED})"
        )?;
    }
    writeln!(
        out,
        "\n{:<24} {:>6} {:>8} {:>14} {:>9}",
        "rule", "fired", "resolved", "time firing", "firing now"
    )?;
    for r in &report.rules {
        let firing = humantime::format_duration(std::time::Duration::from_secs(
            (r.firing_ms / 1000).max(0) as u64,
        ));
        writeln!(
            out,
            "{:<24} {:>6} {:>8} {:>14} {:>9}",
            r.rule_id,
            r.fired,
            r.resolved,
            firing.to_string(),
            r.firing_at_end
        )?;
    }
    Ok(out)
}
