//! The stores `vigil up` runs on: its ports free, Kafka and ClickHouse answering (ClickHouse
//! recent enough), and the local stack started through `scripts/stack` when it is the target
//! and down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpStream;
use tracing::{info, warn};

use crate::config::{ClickHouseConfig, Config, KafkaConfig};

/// Oldest ClickHouse release Vigil's tables and queries are written for.
const MIN_CLICKHOUSE: (u32, u32) = (23, 8);

/// Fails with the address and the flag to change when something already listens there.
pub(super) async fn port_is_free(what: &str, addr: SocketAddr) -> anyhow::Result<()> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            drop(listener);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!(
                "port already in use: {what} cannot listen on {addr}; stop whatever uses it or choose another address"
            )
        }
        Err(e) => Err(e).with_context(|| format!("{what} cannot listen on {addr}")),
    }
}

/// Checks Kafka and ClickHouse, starting the local stack when it is the target and down.
pub(super) async fn ensure_stack(config: &Config, no_stack: bool) -> anyhow::Result<()> {
    let kafka = kafka_reachable(&config.kafka).await;
    let clickhouse = clickhouse_version(&config.clickhouse).await;
    let local = config.kafka.brokers == KafkaConfig::default().brokers
        && config.clickhouse.url == ClickHouseConfig::default().url;
    let (kafka, clickhouse) = if (kafka.is_err() || clickhouse.is_err()) && local && !no_stack {
        let Some(script) = find_stack_script() else {
            let what = if kafka.is_err() {
                "Kafka"
            } else {
                "ClickHouse"
            };
            bail!(
                "{what} is not running on the default loopback address and scripts/stack was not \
                 found next to the executable, in CARGO_MANIFEST_DIR or in the current directory; \
                 from a Vigil checkout run `scripts/stack up`, or point VIGIL_KAFKA_BROKERS and \
                 VIGIL_CLICKHOUSE_URL at running servers"
            );
        };
        eprintln!(
            "The local stack is not running; starting it with `{} up`.",
            script.display()
        );
        run_stack_up(script).await?;
        (
            kafka_reachable(&config.kafka).await,
            clickhouse_version(&config.clickhouse).await,
        )
    } else {
        (kafka, clickhouse)
    };
    kafka?;
    let version = clickhouse?;
    match parse_version(&version) {
        Some(v) if v < MIN_CLICKHOUSE => bail!(
            "ClickHouse {version} at {} is too old: Vigil needs {}.{} or newer",
            config.clickhouse.url,
            MIN_CLICKHOUSE.0,
            MIN_CLICKHOUSE.1
        ),
        Some(_) => {}
        None => warn!(
            version,
            "Could not parse the ClickHouse version; continuing."
        ),
    }
    info!(brokers = %config.kafka.brokers, clickhouse = %config.clickhouse.url, version, "Kafka and ClickHouse answer.");
    Ok(())
}

/// Connects to each bootstrap broker until one accepts.
async fn kafka_reachable(kafka: &KafkaConfig) -> anyhow::Result<()> {
    let mut last = String::from("no broker listed");
    for broker in kafka
        .brokers
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        match tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(broker)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => last = format!("{broker}: {e}"),
            Err(_) => last = format!("{broker}: no answer within 3s"),
        }
    }
    bail!(
        "Kafka is unreachable at {} ({last}); start the local stack with `scripts/stack up`, or \
         point VIGIL_KAFKA_BROKERS / --kafka-brokers at running brokers",
        kafka.brokers
    )
}

/// `SELECT version()`.
async fn clickhouse_version(ch: &ClickHouseConfig) -> anyhow::Result<String> {
    let query = ch.client().query("SELECT version()").fetch_one::<String>();
    let reason = match tokio::time::timeout(Duration::from_secs(10), query).await {
        Ok(Ok(version)) => return Ok(version),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 10s".to_owned(),
    };
    bail!(
        "ClickHouse is unreachable at {} ({reason}); start the local stack with \
         `scripts/stack up`, or point VIGIL_CLICKHOUSE_URL / --clickhouse-url (and user, \
         password) at a running server",
        ch.url
    )
}

/// `26.9.1.1` → `(26, 9)`.
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// `scripts/stack` of the checkout this binary was built from or runs in.
pub(super) fn find_stack_script() -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        roots.push(dir.into());
    }
    roots.push(env!("CARGO_MANIFEST_DIR").into());
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(PathBuf::from));
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    roots
        .into_iter()
        .map(|root| root.join("scripts").join("stack"))
        .find(|script| script.is_file())
}

/// Runs `scripts/stack up` with its output on our stderr (stdout stays for the banner).
async fn run_stack_up(script: PathBuf) -> anyhow::Result<()> {
    let shown = script.display().to_string();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&script)
            .arg("up")
            .stdin(std::process::Stdio::null())
            .stdout(std::io::stderr())
            .status()
    })
    .await
    .context("scripts/stack panicked")?
    .with_context(|| format!("failed to run {shown}"))?;
    if !status.success() {
        bail!("`{shown} up` failed ({status}); its output is above");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(parse_version("26.9.1.1"), Some((26, 9)));
        assert_eq!(parse_version("23.8"), Some((23, 8)));
        assert_eq!(parse_version("18.16.1"), Some((18, 16)));
        assert_eq!(parse_version("nightly"), None);
        assert!(Some((18, 16)) < Some(MIN_CLICKHOUSE));
        assert!(Some((24, 1)) > Some(MIN_CLICKHOUSE));
    }

    #[tokio::test]
    async fn a_taken_port_is_named() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = port_is_free("query API (--listen)", addr)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "port already in use: query API (--listen) cannot listen on {addr}; stop whatever uses it or choose another address"
            )
        );
        drop(taken);
        port_is_free("query API (--listen)", addr).await.unwrap();
    }

    #[tokio::test]
    async fn unreachable_stores_name_the_address_and_the_fix() {
        let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let kafka = KafkaConfig {
            brokers: addr.to_string(),
            ..KafkaConfig::default()
        };
        let err = kafka_reachable(&kafka).await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("Kafka is unreachable at {addr} ({addr}: ")),
            "{err}"
        );
        assert!(err.contains("`scripts/stack up`"), "{err}");
        let ch = ClickHouseConfig {
            url: format!("http://{addr}"),
            ..ClickHouseConfig::default()
        };
        let err = clickhouse_version(&ch).await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("ClickHouse is unreachable at http://{addr} (")),
            "{err}"
        );
        assert!(err.contains("`scripts/stack up`"), "{err}");
    }

    #[test]
    fn the_stack_script_of_this_checkout_is_found() {
        let found = find_stack_script().unwrap();
        assert!(found.ends_with("scripts/stack"), "{}", found.display());
    }
}
