//! `vigil up`: the whole pipeline in one process, for a first run and for small installations.
//!
//! Start-up, in order, each step failing with a message that says what to do:
//! 1. configuration: the shared sections plus the `[ingest]` and `[query]` sections, with the
//!    ingestion API switched on and one API key for both APIs;
//! 2. listen addresses: every port `up` will serve is free;
//! 3. the stores: Kafka answers on at least one broker and ClickHouse on its HTTP endpoint (and
//!    is recent enough); with the default loopback addresses and neither `--no-stack` nor an
//!    answer, `scripts/stack up` is run first;
//! 4. `vigil migrate` (database, tables, topics);
//! 5. with `--demo`, the demo target and its monitors (applied like `vigil apply -f`); the
//!    egress allow-list gains the target's two addresses, and only those.
//!
//! Then the probe runner with the ingestion API, the processor (owning every probes partition,
//! `processor.shard = "0/1"`, unless the config names a shard), the notification stage and the
//! query API run as tasks
//! under one shutdown token. They still talk only through Kafka and ClickHouse, exactly as the
//! separate `vigil ingest`, `vigil process`, `vigil notify` and `vigil serve` processes do. Once the APIs answer,
//! a short block with the URLs, the API key and a `curl` example goes to stdout (logs go to
//! stderr). SIGINT/SIGTERM cancels the token: the APIs stop accepting, the producer flushes, the
//! processor writes its windows and commits; a task still running after `--shutdown-grace` is
//! aborted and the exit status is non-zero.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use vigil_ingest::plan::{self, FilePlan};

use crate::config::Config;
use crate::demo::{Demo, DemoTarget};

mod stack;
use stack::{ensure_stack, find_stack_script, port_is_free};

/// Processor window under `--demo` (unless the config sets another), so windows appear within
/// seconds rather than after the first minute.
const DEMO_WINDOW: Duration = Duration::from_secs(10);

/// Last line of the start-up block.
pub(crate) const BANNER_END: &str = "Press Ctrl-C to stop.";

/// `vigil up` options.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Also run a demo target API on loopback and monitors that probe it every few seconds
    /// (with 10 s windows unless `processor.window` is set).
    #[arg(long)]
    demo: bool,
    /// Address of the query API: REST, GraphQL, `/docs`, `/metrics` (default:
    /// `query.http.listen`, 127.0.0.1:8080).
    #[arg(long, env = "VIGIL_QUERY_LISTEN")]
    listen: Option<SocketAddr>,
    /// Address of the ingestion API (default: `ingest.api.listen`, 127.0.0.1:8081).
    #[arg(long, env = "VIGIL_INGEST_LISTEN")]
    ingest_listen: Option<SocketAddr>,
    /// API key for both APIs (at least 16 characters). Default: the first of `query.auth.keys`,
    /// else a random key made at start.
    #[arg(long, env = "VIGIL_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Address of the demo target over plain HTTP (`--demo`).
    #[arg(long, default_value = "127.0.0.1:8090")]
    demo_listen: SocketAddr,
    /// Address of the demo target over HTTPS (`--demo`).
    #[arg(long, default_value = "127.0.0.1:8443")]
    demo_tls_listen: SocketAddr,
    /// Address of the demo target's DNS server, UDP (`--demo`).
    #[arg(long, default_value = "127.0.0.1:8053")]
    demo_dns_listen: SocketAddr,
    /// Never start the local stack; fail when Kafka or ClickHouse does not answer.
    #[arg(long)]
    no_stack: bool,
    /// Longest a shutdown may take; work still running then is abandoned (exit status 1).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
}

/// What the start-up block shows.
#[derive(Debug, Clone, PartialEq)]
struct Banner {
    query: SocketAddr,
    ingest: SocketAddr,
    clickhouse_url: String,
    clickhouse_user: String,
    database: String,
    api_key: String,
    window: Duration,
    demo: Option<DemoTarget>,
}

/// Runs every service until SIGINT/SIGTERM.
pub(crate) async fn up(config: &Config, args: UpArgs) -> anyhow::Result<()> {
    let mut config = config.clone();
    if args.demo && config.processor.window == vigil_processor::Config::default().window {
        config.processor.window = DEMO_WINDOW;
        config.processor.allowed_lateness = Duration::from_secs(2);
        config.processor.idle_timeout = Duration::from_secs(5);
    }
    // The one processor of this process owns every partition outright (offsets are still
    // committed under the group id): a restart after a crash resumes at once, instead of
    // waiting for the group coordinator to drop the dead member. Scale out with `vigil process`.
    if config.processor.shard.is_empty() {
        config.processor.shard = "0/1".into();
    }
    let api_key = api_key(&mut config, args.api_key)?;
    secrets_key(&mut config)?;
    config.ingest.api.enabled = true;
    if let Some(listen) = args.ingest_listen {
        config.ingest.api.listen = listen;
    }
    let mut query = crate::serve_cmd::query_config(&config, args.listen);
    config.validate()?;
    config.ingest.validate().context("invalid config")?;
    query.validate().context("invalid config")?;

    // Every port, before anything slow happens.
    let ingest_addr = config.ingest.api.listen;
    let query_addr = query.http.listen;
    if ingest_addr == query_addr {
        bail!(
            "the query API and the ingestion API both want {query_addr}; move one with --listen or --ingest-listen"
        );
    }
    port_is_free("query API (--listen)", query_addr).await?;
    port_is_free("ingestion API (--ingest-listen)", ingest_addr).await?;
    let demo = if args.demo {
        Some(Demo::bind(args.demo_listen, args.demo_tls_listen, args.demo_dns_listen).await?)
    } else {
        None
    };
    if let Some(demo) = &demo {
        // The probes (and monitor writes) may reach the demo target's listeners, nothing more.
        let allow = demo.egress_allow()?;
        config.ingest.egress.allow.extend(allow.iter().cloned());
        query.egress.allow.extend(allow);
    }

    ensure_stack(&config, args.no_stack).await?;
    crate::migrate::run(&config, false).await?;
    let target = demo.as_ref().map(|d| d.target.clone());
    if let Some(target) = &target {
        apply_demo_monitors(&config, target).await?;
    }

    let handle = crate::service::metrics();
    let token = crate::service::shutdown_token();
    let mut tasks: JoinSet<(&'static str, anyhow::Result<()>)> = JoinSet::new();
    let kafka = crate::ingest_cmd::kafka(&config);
    let render = Arc::new({
        let handle = handle.clone();
        move || handle.render()
    });
    let child = token.child_token();
    let mut ingest = config.ingest.clone();
    ingest.secrets = config.secrets.clone();
    tasks.spawn(async move {
        let run = vigil_ingest::run(ingest, kafka, Some(render), child).await;
        ("probe runner and ingestion API", run.map_err(Into::into))
    });
    let settings = crate::process::settings(&config);
    let child = token.child_token();
    tasks.spawn(async move {
        let run = vigil_processor::run(settings, child).await;
        ("processor", run.map_err(Into::into))
    });
    // The demo's webhook channel is signed with the secret its receiver verifies with.
    let store = crate::secrets_cmd::resolver(&config, &token).await?;
    let notify = crate::notify_cmd::settings_with(
        &config,
        vigil_notify::vault::Layered {
            first: Arc::new(match &target {
                Some(t) => {
                    vigil_notify::MemorySecrets::new().with(DEMO_WEBHOOK_SECRET, &t.webhook_secret)
                }
                None => vigil_notify::MemorySecrets::new(),
            }),
            then: store,
        },
    )?;
    let child = token.child_token();
    tasks.spawn(async move {
        let (ready, _started) = tokio::sync::watch::channel(false);
        let run = vigil_notify::stage::run(notify, child, ready).await;
        ("notification stage", run.map_err(Into::into))
    });
    let child = token.child_token();
    tasks.spawn(async move {
        let run = vigil_query::run_with_metrics(query, Some(handle), child).await;
        ("query API", run.map_err(Into::into))
    });
    // The demo target stops last, so the probe runner never sees it gone.
    let demo = demo.map(|demo| {
        let stop = CancellationToken::new();
        let (root, until) = (token.clone(), stop.clone());
        let served = tokio::spawn(async move {
            let served = demo.serve(until).await;
            if served.is_err() {
                root.cancel();
            }
            served
        });
        (stop, served)
    });

    let banner = Banner {
        query: query_addr,
        ingest: ingest_addr,
        clickhouse_url: config.clickhouse.url.clone(),
        clickhouse_user: config.clickhouse.user.clone(),
        database: config.clickhouse.database.clone(),
        api_key,
        window: config.processor.window,
        demo: target,
    };
    supervise(tasks, demo, token, &banner, args.shutdown_grace).await
}

/// The demo target's own stop token and task.
type DemoTask = (CancellationToken, JoinHandle<anyhow::Result<()>>);

/// Prints the banner once both APIs answer, then waits for a signal or a failing task, and
/// drains every task (the demo target last) within `grace`.
async fn supervise(
    mut tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
    demo: Option<DemoTask>,
    token: CancellationToken,
    banner: &Banner,
    grace: Duration,
) -> anyhow::Result<()> {
    let mut failure: Option<anyhow::Error> = None;
    let ready = wait_ready(banner.query, banner.ingest);
    tokio::pin!(ready);
    let mut announced = false;
    loop {
        // Cancel-safe: `ready` is pinned and resumed on the next turn; `join_next` and
        // `cancelled` lose nothing when another branch wins.
        tokio::select! {
            () = &mut ready, if !announced => {
                announced = true;
                print!("{}", render_banner(banner));
            }
            () = token.cancelled() => break,
            Some(joined) = tasks.join_next() => {
                failure = Some(match joined {
                    // Shutdown was requested and this task was first to finish (the select
                    // saw it before the cancellation): a clean stop, not a failure.
                    Ok((_, Ok(()))) if token.is_cancelled() => break,
                    Ok((name, Ok(()))) => anyhow!("{name} stopped unexpectedly"),
                    Ok((name, Err(e))) => e.context(format!("{name} failed")),
                    Err(e) => anyhow!("a service task panicked: {e}"),
                });
                token.cancel();
                break;
            }
        }
    }

    info!(
        ?grace,
        "Stopping: APIs stop accepting, producer flushes, processor commits."
    );
    let deadline = tokio::time::Instant::now() + grace;
    while !tasks.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok((name, Ok(()))))) => info!(service = name, "Stopped."),
            Ok(Some(Ok((name, Err(e))))) => {
                warn!(
                    service = name,
                    error = format!("{e:#}"),
                    "Failed while stopping."
                );
                failure.get_or_insert(e.context(format!("{name} failed while stopping")));
            }
            Ok(Some(Err(e))) => {
                failure.get_or_insert(anyhow!("a service task panicked: {e}"));
            }
            Ok(None) => break,
            Err(_) => {
                tasks.abort_all();
                failure.get_or_insert(anyhow!(
                    "services were still stopping after the {} shutdown grace",
                    humantime::format_duration(grace)
                ));
                break;
            }
        }
    }
    if let Some((stop, served)) = demo {
        stop.cancel();
        match tokio::time::timeout_at(deadline, served).await {
            Ok(Ok(Ok(()))) => info!(service = "demo target", "Stopped."),
            Ok(Ok(Err(e))) => {
                failure.get_or_insert(e.context("demo target failed"));
            }
            Ok(Err(e)) => {
                failure.get_or_insert(anyhow!("the demo target task panicked: {e}"));
            }
            Err(_) => {
                failure.get_or_insert(anyhow!(
                    "the demo target was still stopping after the shutdown grace"
                ));
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => {
            info!("Stopped cleanly.");
            Ok(())
        }
    }
}

/// Picks the API key and makes both APIs accept it: `--api-key`, else the first configured
/// query key, else a random one.
/// Without a configured key-encryption key, the secret store uses one kept in the local
/// stack's home (`$VIGIL_HOME`, default `.vigil` of the checkout), created once (mode 0600), so
/// secrets set in one run still open in the next.
fn secrets_key(config: &mut Config) -> anyhow::Result<()> {
    let env_set = std::env::var(&config.secrets.key_env).is_ok_and(|v| !v.trim().is_empty());
    if config.secrets.key_file.is_some() || env_set {
        return Ok(());
    }
    let home = match std::env::var_os("VIGIL_HOME") {
        Some(home) => std::path::PathBuf::from(home),
        None => find_stack_script()
            .and_then(|s| s.parent()?.parent().map(|root| root.join(".vigil")))
            .unwrap_or_else(|| std::path::PathBuf::from(".vigil")),
    };
    let path = home.join("secrets.key");
    if !path.exists() {
        std::fs::create_dir_all(&home)
            .with_context(|| format!("failed to create {}", home.display()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        std::io::Write::write_all(&mut file, vigil_schema::vault::Kek::generate()?.as_bytes())?;
    }
    config.secrets.key_file = Some(path);
    Ok(())
}

fn api_key(config: &mut Config, flag: Option<String>) -> anyhow::Result<String> {
    let configured = config.query.auth.keys.first().map(|k| k.key.clone());
    let key = match (flag, configured) {
        (Some(key), _) => {
            if key.trim().len() < 16 {
                bail!("invalid config: --api-key / VIGIL_API_KEY: must be at least 16 characters");
            }
            key
        }
        // A key configured by its hash cannot be shown: make one for the banner.
        (None, Some(key)) if !key.starts_with(vigil_query::auth::HASH_PREFIX) => key,
        (None, _) => format!("vigil-{}", uuid::Uuid::new_v4().simple()),
    };
    if !config.query.auth.keys.iter().any(|k| k.key == key) {
        config
            .query
            .auth
            .keys
            .push(vigil_query::config::ApiKeyConfig {
                name: "vigil-up".into(),
                key: key.clone(),
                role: vigil_query::auth::Role::Admin,
                expires: None,
            });
    }
    if !config.ingest.api.api_keys.contains(&key) {
        config.ingest.api.api_keys.push(key.clone());
    }
    Ok(key)
}

/// The secret name the demo's webhook channel references (`${secret:DEMO_WEBHOOK}`).
const DEMO_WEBHOOK_SECRET: &str = "DEMO_WEBHOOK";

/// Applies the demo monitors and alert rules the way `vigil apply -f` does (validate, plan,
/// write the changes).
async fn apply_demo_monitors(config: &Config, target: &DemoTarget) -> anyhow::Result<()> {
    const TIMEOUT: Duration = Duration::from_secs(30);
    let desired = plan::parse_file("demo monitors", &crate::demo::monitors_yaml(target))?;
    plan::check_egress("demo monitors", &desired, &config.ingest.egress_policy())?;
    let kafka = crate::ingest_cmd::kafka(config);
    let (monitors, rules) = crate::ingest_cmd::current(&kafka, &desired)
        .await
        .with_context(|| format!("failed to read {}", kafka.topics.monitors))?;
    let notify = crate::ingest_cmd::current_notify(&kafka, &desired).await?;
    let plan = FilePlan::new(&desired, &monitors, &rules, false).with_notify(
        "demo monitors",
        &desired,
        &notify,
        false,
    )?;
    if plan.is_empty() {
        info!("Demo monitors, alert rules and notification routes are up to date.");
        return Ok(());
    }
    plan.apply(&kafka, TIMEOUT)
        .await
        .context("failed to apply the demo monitors")?;
    info!(
        changes = plan.len(),
        "Applied the demo monitors, alert rules and notification routes."
    );
    Ok(())
}

/// Waits until the query API is ready and the ingestion API answers.
async fn wait_ready(query: SocketAddr, ingest: SocketAddr) {
    let (query, ingest) = (loopback(query), loopback(ingest));
    loop {
        if http_status(query, "/readyz").await == Some(200)
            && http_status(ingest, "/healthz").await == Some(200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A listen address as a client reaches it: unspecified addresses become loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// Status code of `GET path` on a local listener, or `None` when it does not answer.
async fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

/// Single-quotes `s` for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn render_banner(b: &Banner) -> String {
    let http = format!("http://{}", loopback(b.query));
    let ws = format!("ws://{}", loopback(b.query));
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(String::new());
    line(format!("Vigil {} is up.", env!("CARGO_PKG_VERSION")));
    line(format!(
        "  Dashboard       {http}/ui/  (sign in with the API key below)"
    ));
    if b.demo.is_some() {
        line(format!(
            "  Status page     {http}/status/demo  (public, no key)"
        ));
    }
    line(format!(
        "  REST API docs   {http}/docs  (OpenAPI: {http}/api/v1/openapi.json)"
    ));
    line(format!(
        "  GraphQL         {http}/graphql  (subscriptions: {ws}/graphql/ws)"
    ));
    line(format!(
        "  Ingestion API   http://{}/v1/events",
        loopback(b.ingest)
    ));
    line(format!(
        "  ClickHouse      {}  (Grafana: ClickHouse data source, HTTP, database {}, user {})",
        b.clickhouse_url, b.database, b.clickhouse_user
    ));
    line(format!("  API key         {}", b.api_key));
    let auth = sh_quote(&format!("Authorization: Bearer {}", b.api_key));
    match &b.demo {
        Some(demo) => {
            line(format!(
                "  Demo target     {} and {} (certificate expires {})",
                demo.http, demo.https, demo.cert_expires
            ));
            line(format!(
                "  Windows         {} (demo setting; the default is 1m): the first ones land within about {}s",
                humantime::format_duration(b.window),
                (b.window.as_secs() * 3).max(30)
            ));
            line(format!(
                "  Alerts          the demo's rules fire within about two minutes; notifications go to \
                 this console and to {}/hooks/vigil (signature verified)",
                demo.http
            ));
            line("  Try:".into());
            line(format!(
                "    curl -fsS -H {auth} '{http}/api/v1/monitors/demo-slow/summary?from=now-15m'"
            ));
            line(format!(
                "    curl -fsS -H {auth} '{http}/api/v1/alerts/active'"
            ));
            line(format!(
                "    vigil import openapi {}/openapi.json",
                demo.http
            ));
        }
        None => {
            line(format!(
                "  Windows         {}",
                humantime::format_duration(b.window)
            ));
            line("  Try:".into());
            line(format!("    curl -fsS -H {auth} '{http}/api/v1/monitors'"));
        }
    }
    line(BANNER_END.into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banner(demo: bool) -> Banner {
        Banner {
            query: "0.0.0.0:8080".parse().unwrap(),
            ingest: "127.0.0.1:8081".parse().unwrap(),
            clickhouse_url: "http://127.0.0.1:8123".into(),
            clickhouse_user: "default".into(),
            database: "vigil".into(),
            api_key: "vigil-0123456789abcdef".into(),
            window: Duration::from_secs(if demo { 10 } else { 60 }),
            demo: demo.then(|| DemoTarget {
                http: "http://127.0.0.1:8090".into(),
                https: "https://127.0.0.1:8443".into(),
                dns: "127.0.0.1:8053".into(),
                cert_expires: "2030-01-06".into(),
                webhook_secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            }),
        }
    }

    #[test]
    fn banner_shows_urls_key_and_a_pasteable_curl() {
        let text = render_banner(&banner(true));
        let expected = format!(
            "
Vigil {} is up.
  Dashboard       http://127.0.0.1:8080/ui/  (sign in with the API key below)
  Status page     http://127.0.0.1:8080/status/demo  (public, no key)
  REST API docs   http://127.0.0.1:8080/docs  (OpenAPI: http://127.0.0.1:8080/api/v1/openapi.json)
  GraphQL         http://127.0.0.1:8080/graphql  (subscriptions: ws://127.0.0.1:8080/graphql/ws)
  Ingestion API   http://127.0.0.1:8081/v1/events
  ClickHouse      http://127.0.0.1:8123  (Grafana: ClickHouse data source, HTTP, database vigil, user default)
  API key         vigil-0123456789abcdef
  Demo target     http://127.0.0.1:8090 and https://127.0.0.1:8443 (certificate expires 2030-01-06)
  Windows         10s (demo setting; the default is 1m): the first ones land within about 30s
  Alerts          the demo's rules fire within about two minutes; notifications go to this console and to http://127.0.0.1:8090/hooks/vigil (signature verified)
  Try:
    curl -fsS -H 'Authorization: Bearer vigil-0123456789abcdef' 'http://127.0.0.1:8080/api/v1/monitors/demo-slow/summary?from=now-15m'
    curl -fsS -H 'Authorization: Bearer vigil-0123456789abcdef' 'http://127.0.0.1:8080/api/v1/alerts/active'
    vigil import openapi http://127.0.0.1:8090/openapi.json
Press Ctrl-C to stop.
",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(text, expected);
        let plain = render_banner(&banner(false));
        assert!(plain.contains("  Windows         1m\n"), "{plain}");
        assert!(
            plain.contains(
                "curl -fsS -H 'Authorization: Bearer vigil-0123456789abcdef' 'http://127.0.0.1:8080/api/v1/monitors'"
            ),
            "{plain}"
        );
        assert!(!plain.contains("Demo"), "{plain}");
    }

    #[test]
    fn readme_shows_the_real_banner() {
        let mut b = banner(true);
        b.query = "127.0.0.1:8080".parse().unwrap();
        b.api_key = "vigil-3f0c9a…".into();
        b.demo = Some(DemoTarget {
            http: "http://127.0.0.1:8090".into(),
            https: "https://127.0.0.1:8443".into(),
            dns: "127.0.0.1:8053".into(),
            cert_expires: "2026-11-28".into(),
            webhook_secret: String::new(),
        });
        let shown = render_banner(&b);
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&format!("```text{shown}```")),
            "README's banner differs from:\n{shown}"
        );
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(sh_quote("plain"), "'plain'");
    }

    #[test]
    fn one_key_opens_both_apis() {
        let mut config = Config::default();
        let key = api_key(&mut config, None).unwrap();
        assert!(key.starts_with("vigil-") && key.len() == 38, "{key}");
        assert_eq!(config.query.auth.keys.len(), 1);
        assert_eq!(config.query.auth.keys[0].key, key);
        assert_eq!(
            config.ingest.api.api_keys.as_slice(),
            std::slice::from_ref(&key)
        );
        // A second call with the key now configured keeps it and adds nothing.
        assert_eq!(api_key(&mut config, None).unwrap(), key);
        assert_eq!(config.query.auth.keys.len(), 1);
        assert_eq!(config.ingest.api.api_keys.len(), 1);

        let mut config = Config::default();
        let given = "0123456789abcdefXYZ".to_owned();
        assert_eq!(api_key(&mut config, Some(given.clone())).unwrap(), given);
        assert_eq!(config.ingest.api.api_keys, [given]);
        let err = api_key(&mut Config::default(), Some("short".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid config: --api-key / VIGIL_API_KEY: must be at least 16 characters"
        );
    }

    #[tokio::test]
    async fn probes_local_http_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/readyz", axum::routing::get(|| async { "ready" }));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        assert_eq!(http_status(addr, "/readyz").await, Some(200));
        assert_eq!(http_status(addr, "/nope").await, Some(404));
        server.abort();
        assert_eq!(
            loopback("0.0.0.0:80".parse().unwrap()),
            "127.0.0.1:80".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            loopback("[::]:80".parse().unwrap()),
            "[::1]:80".parse::<SocketAddr>().unwrap()
        );
    }
}
