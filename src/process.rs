//! `vigil process` (the live processor) and `vigil replay` (recompute windows from the topic).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use vigil_processor::{ReplayRequest, Settings};
use vigil_schema::Timestamp;

use crate::config::Config;
use crate::service::{Readiness, serve_ops, shutdown_token};

pub(crate) fn settings(config: &Config) -> Settings {
    Settings {
        config: config.processor.clone(),
        brokers: config.kafka.brokers.clone(),
        topics: config.topics(),
        clickhouse: config
            .clickhouse
            .client()
            .with_database(&config.clickhouse.database),
        health: vigil_processor::Health::default(),
    }
}

/// Runs the processor until SIGINT/SIGTERM, serving its operations endpoints on `listen`.
pub(crate) async fn process(config: &Config, listen: SocketAddr) -> anyhow::Result<()> {
    config.processor.validate()?;
    crate::service::metrics();
    let token = shutdown_token();
    let settings = settings(config);
    let readiness = Readiness::default().with_health(settings.health.clone());
    let ops = serve_ops(listen, readiness.clone(), token.clone()).await?;
    readiness.set(true);
    let result = vigil_processor::run(settings, token.clone()).await;
    token.cancel();
    let _joined = ops.await;
    result.context("processor failed")
}

/// Parses `--from`/`--to`: an RFC 3339 time, or a duration meaning that long ago (`2h`).
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(t) = Timestamp::parse_rfc3339(s) {
        return Ok(t.as_millis());
    }
    match humantime::parse_duration(s) {
        Ok(ago) => Ok(Timestamp::now().as_millis() - ago.as_millis() as i64),
        Err(_) => Err(format!(
            "expected an RFC 3339 time (2026-01-31T12:00:00Z) or a duration ago (90m), got {s:?}"
        )),
    }
}

/// Recomputes windows from the probes topic, with a progress bar on stderr.
pub(crate) async fn replay(
    config: &Config,
    from_ms: i64,
    to_ms: Option<i64>,
    monitor: Option<String>,
) -> anyhow::Result<()> {
    if let Some(to) = to_ms
        && to <= from_ms
    {
        anyhow::bail!("--to must be after --from");
    }
    let token = shutdown_token();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} events ({per_sec}, ETA {eta}) {msg}",
        )
        .context("progress template")?,
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let request = ReplayRequest {
        from_ms,
        to_ms,
        monitor,
    };
    let done = vigil_processor::replay(settings(config), request, token, |p| {
        bar.set_length(p.total);
        bar.set_position(p.read);
        bar.set_message(format!("{} matched, {} window rows", p.matched, p.windows));
    })
    .await
    .context("replay failed")?;
    bar.finish();
    println!(
        "replayed {} events ({} matched), wrote {} window rows",
        done.read, done.matched, done.windows
    );
    Ok(())
}
