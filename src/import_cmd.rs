//! `vigil import openapi SOURCE`: monitors discovered from an OpenAPI document, written as a
//! monitors file, or with `--apply` planned and applied like `vigil apply`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use vigil_ingest::import::{self, Import, ImportOptions, MAX_DOCUMENT};
use vigil_ingest::plan::MonitorsFile;
use vigil_schema::MonitorSpec;

use crate::config::Config;

/// How long fetching a document may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// `vigil import …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ImportCommand {
    /// Monitors from an OpenAPI 3.0/3.1 or Swagger 2.0 document (JSON or YAML): one per GET or
    /// HEAD operation whose required parameters have values, asserting the documented status,
    /// content type and response schema. Writes a monitors file (stdout unless `-o`).
    Openapi(OpenapiArgs),
}

/// `vigil import openapi` options.
#[derive(Debug, clap::Args)]
pub(crate) struct OpenapiArgs {
    /// The document: a file, an http(s) URL, or `-` for stdin.
    source: String,
    /// The API's base URL, instead of the document's servers.
    #[arg(long)]
    base_url: Option<String>,
    /// Only operations with this tag (repeatable).
    #[arg(long = "include-tag", value_name = "TAG")]
    include_tags: Vec<String>,
    /// Not operations with this tag (repeatable).
    #[arg(long = "exclude-tag", value_name = "TAG")]
    exclude_tags: Vec<String>,
    /// Only operations whose path matches this glob (`/pets*`; repeatable).
    #[arg(long = "include-path", value_name = "GLOB")]
    include_paths: Vec<String>,
    /// Not operations whose path matches this glob (repeatable).
    #[arg(long = "exclude-path", value_name = "GLOB")]
    exclude_paths: Vec<String>,
    /// A parameter value, for every operation with a parameter of that name (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = pair)]
    params: Vec<(String, String)>,
    /// The named secret a security scheme's credential is read from (default: the scheme's
    /// name; repeatable).
    #[arg(long = "secret", value_name = "SCHEME=SECRET", value_parser = pair)]
    secrets: Vec<(String, String)>,
    /// Prefix of the monitors' ids.
    #[arg(long, default_value = "")]
    id_prefix: String,
    /// A tag added to every monitor (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Interval of every monitor.
    #[arg(long, value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// Timeout of every monitor.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// A region every monitor runs in (repeatable; default: every region).
    #[arg(long = "region", value_name = "REGION")]
    regions: Vec<String>,
    /// Write the monitors file here instead of stdout.
    #[arg(long, short = 'o', conflicts_with = "apply")]
    output: Option<PathBuf>,
    /// Show the plan and apply it (creates and updates; nothing is deleted).
    #[arg(long)]
    apply: bool,
    /// With `--apply`: show the plan only.
    #[arg(long, requires = "apply")]
    dry_run: bool,
}

fn pair(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))?;
    if name.is_empty() {
        return Err(format!("expected NAME=VALUE, got {s:?}"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

pub(crate) async fn run(config: &Config, command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Openapi(args) = command;
    let (text, source_url) = read(&args.source).await?;
    let options = ImportOptions {
        base_url: args.base_url.clone(),
        source_url,
        include_tags: args.include_tags.clone(),
        exclude_tags: args.exclude_tags.clone(),
        include_paths: args.include_paths.clone(),
        exclude_paths: args.exclude_paths.clone(),
        params: args.params.iter().cloned().collect(),
        secrets: args.secrets.iter().cloned().collect(),
        id_prefix: args.id_prefix.clone(),
        tags: args.tags.clone(),
        interval: args.interval,
        timeout: args.timeout,
        regions: args.regions.clone(),
    };
    let imported = import::import_openapi(&text, &options)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.source))?;
    eprint!("{}", summary(&args.source, &imported));
    if args.apply {
        let desired = MonitorsFile {
            monitors: Some(imported.monitors),
            ..MonitorsFile::default()
        };
        return crate::ingest_cmd::apply_file(config, &args.source, &desired, args.dry_run, false)
            .await;
    }
    let yaml = monitors_file(&args.source, &imported)?;
    match &args.output {
        Some(path) => std::fs::write(path, yaml)
            .with_context(|| format!("failed to write {}", path.display()))?,
        None => print!("{yaml}"),
    }
    Ok(())
}

/// The document's text, and its URL when it was fetched.
async fn read(source: &str) -> anyhow::Result<(String, Option<url::Url>)> {
    if source == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("failed to read stdin")?;
        return Ok((text, None));
    }
    if source.starts_with("http://") || source.starts_with("https://") {
        let url: url::Url = source
            .parse()
            .with_context(|| format!("invalid URL {source}"))?;
        return Ok((fetch(&url).await?, Some(url)));
    }
    let len = std::fs::metadata(source)
        .with_context(|| format!("failed to read {source}"))?
        .len();
    anyhow::ensure!(
        len <= MAX_DOCUMENT as u64,
        "{source} is {len} bytes; at most {MAX_DOCUMENT} are read"
    );
    let text =
        std::fs::read_to_string(source).with_context(|| format!("failed to read {source}"))?;
    Ok((text, None))
}

async fn fetch(url: &url::Url) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let response = client
        .get(url.clone())
        .header(
            "accept",
            "application/json, application/yaml;q=0.9, */*;q=0.5",
        )
        .send()
        .await
        .with_context(|| format!("failed to fetch {url}"))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("failed to read {url}"))?;
        anyhow::ensure!(
            body.len() + chunk.len() <= MAX_DOCUMENT,
            "{url} is larger than {MAX_DOCUMENT} bytes"
        );
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).with_context(|| format!("{url} is not UTF-8 text"))
}

/// What was imported and what was not, for a person.
fn summary(source: &str, import: &Import) -> String {
    let mut out = format!(
        "{source}: {} ({}): {} monitor(s)",
        import.title,
        import.format,
        import.monitors.len()
    );
    if import.excluded > 0 {
        out.push_str(&format!(", {} operation(s) excluded", import.excluded));
    }
    out.push('\n');
    if !import.skipped.is_empty() {
        out.push_str(&format!("skipped {} operation(s):\n", import.skipped.len()));
        for s in &import.skipped {
            out.push_str(&format!(
                "  {} ({} {}): {}\n",
                s.operation, s.method, s.path, s.reason
            ));
        }
    }
    for w in &import.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// The monitors as a monitors file, what was skipped as comments.
fn monitors_file(source: &str, import: &Import) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct File<'a> {
        monitors: &'a [MonitorSpec],
    }
    let mut out = format!(
        "# Monitors of {} ({}), imported from {source} by `vigil import openapi`.\n",
        import.title.replace('\n', " "),
        import.format
    );
    for s in &import.skipped {
        out.push_str(&format!(
            "# skipped {} ({} {}): {}\n",
            s.operation.replace('\n', " "),
            s.method,
            s.path.replace('\n', " "),
            s.reason.replace('\n', " ")
        ));
    }
    out.push_str(&serde_norway::to_string(&File {
        monitors: &import.monitors,
    })?);
    Ok(out)
}
