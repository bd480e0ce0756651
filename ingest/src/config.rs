//! Configuration of the ingest service: the probe runner, the HTTP checker, the producer and the
//! ingestion API. The Kafka connection itself ([`KafkaConnection`]) is shared with the other
//! services and passed in by the binary.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vigil_schema::egress::is_env_name;
use vigil_schema::{AllowEntry, EgressPolicy, TopicNames};

use crate::{Error, Result};

/// The ingest service's configuration (`[ingest]` in the `vigil` config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Region this runner checks from; it runs the monitors whose `regions` list it (or is
    /// empty), and stamps every result with it.
    pub region: String,
    /// Name of this runner in results (`agent`); defaults to `vigil-{region}-{shard}`.
    pub agent: Option<String>,
    /// Environment variables monitor specs may reference as `${NAME}`. Any other `${NAME}` is
    /// never expanded (the check fails, and API and `vigil apply` writes are refused), so a
    /// spec cannot read the runner's own secrets.
    pub env_allow: Vec<String>,
    /// Where probes may connect beyond public addresses.
    pub egress: EgressConfig,
    /// The probe scheduler.
    pub runner: RunnerConfig,
    /// The HTTP checker.
    pub checker: CheckerConfig,
    /// The Kafka producer of probe results.
    pub producer: ProducerConfig,
    /// The ingestion API for external agents.
    pub api: ApiConfig,
    /// Where the secret store's key-encryption keys are; taken from the binary's `[secrets]`.
    #[serde(skip)]
    pub secrets: vigil_notify::VaultConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            region: "local".into(),
            agent: None,
            env_allow: Vec::new(),
            egress: EgressConfig::default(),
            runner: RunnerConfig::default(),
            checker: CheckerConfig::default(),
            producer: ProducerConfig::default(),
            secrets: vigil_notify::VaultConfig::default(),
            api: ApiConfig::default(),
        }
    }
}

impl Config {
    /// The agent name results are stamped with.
    pub fn agent_name(&self) -> String {
        self.agent.clone().unwrap_or_else(|| {
            format!(
                "vigil-{}-{}-of-{}",
                self.region, self.runner.shard.index, self.runner.shard.count
            )
        })
    }

    /// The egress policy of this configuration: `egress.allow` and `env-allow`.
    pub fn egress_policy(&self) -> EgressPolicy {
        EgressPolicy {
            allow: self.egress.allow.clone(),
            env_allow: self.env_allow.clone(),
        }
    }

    /// Rejects values the service cannot run with.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: &str| {
            Err(Error::Config {
                field,
                reason: reason.into(),
            })
        };
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return invalid(
                "region",
                "must be non-empty and use only a-z, 0-9, '-', '_'",
            );
        }
        if let Some(bad) = self.env_allow.iter().find(|n| !is_env_name(n)) {
            return Err(Error::Config {
                field: "env-allow",
                reason: format!("{bad:?} is not a variable name (A-Z, a-z, 0-9, '_')"),
            });
        }
        if self.runner.max_concurrent_checks == 0 {
            return invalid("runner.max-concurrent-checks", "must be at least 1");
        }
        if self.checker.body_limit == 0 {
            return invalid("checker.body-limit", "must be at least 1 byte");
        }
        if self.producer.buffer == 0 {
            return invalid("producer.buffer", "must be at least 1");
        }
        if self.api.max_batch_events == 0 {
            return invalid("api.max-batch-events", "must be at least 1");
        }
        if self.api.api_keys.iter().any(|k| k.trim().len() < 16) {
            return invalid(
                "api.api-keys",
                "every key must be at least 16 characters (`vigil keys generate` makes one)",
            );
        }
        Ok(())
    }
}

/// Where probes may connect. By default only public addresses: not loopback, private,
/// link-local (the cloud metadata address included), shared, multicast, documentation or other
/// special-purpose ranges, checked on every address a name resolves to and on every redirect hop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct EgressConfig {
    /// What probes may reach although it is not public: CIDRs (`10.1.0.0/16`), addresses
    /// (`127.0.0.1:8090`, `[::1]:8123`; with a port, only that port) and host names
    /// (`internal.example.com`, `*.corp.example.com`, optionally `:port`; whatever the name
    /// resolves to is allowed).
    pub allow: Vec<AllowEntry>,
}

/// The probe scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RunnerConfig {
    /// Whether this process runs probes at all (an API-only process sets `false`).
    pub enabled: bool,
    /// Which slice of the region's monitors this runner owns, `index/count` (`0/1` = all).
    pub shard: Shard,
    /// Upper bound on checks in flight at once.
    pub max_concurrent_checks: usize,
    /// How long start-up waits to read the monitors topic to its end.
    #[serde(with = "humantime_serde")]
    pub load_timeout: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            shard: Shard::ALL,
            max_concurrent_checks: 4096,
            load_timeout: Duration::from_secs(30),
        }
    }
}

/// The HTTP checker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CheckerConfig {
    /// Largest response body read, in bytes; a larger body fails with `body_too_large`.
    pub body_limit: u64,
    /// `User-Agent` sent with every check (a monitor's own header wins).
    pub user_agent: String,
    /// Most redirects followed when a monitor follows redirects.
    pub max_redirects: u8,
}

impl Default for CheckerConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            user_agent: concat!("vigil/", env!("CARGO_PKG_VERSION")).into(),
            max_redirects: 10,
        }
    }
}

/// The Kafka producer of probe results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ProducerConfig {
    /// Results held in memory while Kafka is slow or unreachable; beyond it the newest results
    /// are dropped (counted on `/metrics`, logged) so the scheduler never blocks.
    pub buffer: usize,
    /// How long the producer waits to fill a batch.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// How long shutdown waits for buffered results to be acknowledged.
    #[serde(with = "humantime_serde")]
    pub flush_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            buffer: 100_000,
            linger: Duration::from_millis(5),
            flush_timeout: Duration::from_secs(10),
        }
    }
}

/// The ingestion API for external probe agents. `Debug` shows how many keys there are, not
/// the keys.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ApiConfig {
    /// Whether to serve the API (`/v1/events`, `/healthz`, `/readyz`, `/metrics`).
    pub enabled: bool,
    /// Listen address.
    pub listen: SocketAddr,
    /// Accepted API keys (`Authorization: Bearer <key>` or `X-Api-Key: <key>`).
    pub api_keys: Vec<String>,
    /// Most events in one request.
    pub max_batch_events: usize,
    /// Largest request body in bytes, compressed or not.
    pub max_body_bytes: usize,
    /// How long a request waits for Kafka to acknowledge its events before failing with 503.
    #[serde(with = "humantime_serde")]
    pub ack_timeout: Duration,
    /// How far in the future an event's time may be.
    #[serde(with = "humantime_serde")]
    pub max_clock_skew: Duration,
    /// Requests per key and per client address.
    pub rate_limit: vigil_schema::ratelimit::RateLimitConfig,
    /// Distinct unknown monitor ids one key may send events of per period (each costs the
    /// processor window state); events of further ones are refused.
    pub max_unknown_monitors: usize,
    /// The period of `max-unknown-monitors`.
    #[serde(with = "humantime_serde")]
    pub unknown_monitors_period: Duration,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field(
                "api_keys",
                &format_args!("<{} redacted>", self.api_keys.len()),
            )
            .field("max_batch_events", &self.max_batch_events)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("ack_timeout", &self.ack_timeout)
            .field("max_clock_skew", &self.max_clock_skew)
            .field("rate_limit", &self.rate_limit)
            .field("max_unknown_monitors", &self.max_unknown_monitors)
            .field("unknown_monitors_period", &self.unknown_monitors_period)
            .finish()
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            api_keys: Vec::new(),
            max_batch_events: 10_000,
            max_body_bytes: 16 * 1024 * 1024,
            ack_timeout: Duration::from_secs(30),
            max_clock_skew: Duration::from_secs(300),
            rate_limit: vigil_schema::ratelimit::RateLimitConfig::default(),
            max_unknown_monitors: 1_000,
            unknown_monitors_period: Duration::from_secs(3600),
        }
    }
}

/// A slice of the monitors, `index/count`: a monitor belongs to shard
/// `fnv1a(id) % count`, so every runner agrees without coordination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This runner's slice, `0..count`.
    pub index: u32,
    /// Number of slices.
    pub count: u32,
}

impl Shard {
    /// One shard holding everything.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether the monitor with this id belongs to this shard.
    pub fn owns(self, monitor_id: &str) -> bool {
        crate::hash::fnv1a(monitor_id.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

impl Default for Shard {
    fn default() -> Self {
        Self::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected `index/count` with index < count, got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Serialize for Shard {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shard {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where Kafka is and what the topics are called; shared with the other services, so the binary
/// builds it from its own `[kafka]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConnection {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topic names.
    pub topics: TopicNames,
    /// Timeout of metadata and admin requests.
    pub request_timeout: Duration,
}

impl KafkaConnection {
    /// Client configuration pointing at the brokers.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parses_and_partitions_ids() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        for bad in ["3/3", "1", "a/2", "0/0", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        for i in 0..300 {
            let id = format!("monitor-{i}");
            let owners = shards.iter().filter(|s| s.owns(&id)).count();
            assert_eq!(owners, 1, "{id}");
        }
        let per_shard: Vec<usize> = shards
            .iter()
            .map(|s| (0..300).filter(|i| s.owns(&format!("monitor-{i}"))).count())
            .collect();
        assert!(per_shard.iter().all(|&n| n > 60), "{per_shard:?}");
    }

    #[test]
    fn config_round_trips_and_names_bad_fields() {
        let config = Config::default();
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), config);
        let parsed: Config =
            serde_json::from_str(r#"{"runner": {"shard": "2/4"}, "region": "eu-west"}"#).unwrap();
        assert_eq!(parsed.runner.shard, Shard { index: 2, count: 4 });
        assert_eq!(parsed.agent_name(), "vigil-eu-west-2-of-4");

        let parsed: Config = serde_json::from_str(
            r#"{"env-allow": ["TENANT_ID"], "egress": {"allow": ["10.1.0.0/16", "127.0.0.1:8090"]}}"#,
        )
        .unwrap();
        let policy = parsed.egress_policy();
        assert_eq!(policy.env_allow, ["TENANT_ID"]);
        assert_eq!(policy.allow[1].to_string(), "127.0.0.1:8090");
        let err = serde_json::from_str::<Config>(r#"{"egress": {"allow": ["10.1.0.1/16"]}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid egress allow entry \"10.1.0.1/16\""),
            "{err}"
        );
        let mut bad_env = Config::default();
        bad_env.env_allow.push("A-B".into());
        assert_eq!(
            bad_env.validate().unwrap_err().to_string(),
            "invalid ingest config: env-allow: \"A-B\" is not a variable name (A-Z, a-z, 0-9, '_')"
        );

        // No configured key: only keys created with the `ingest` scope are accepted (none
        // at all until one is created), never anonymous callers.
        let mut keyless = Config::default();
        keyless.api.enabled = true;
        assert!(keyless.validate().is_ok());
        keyless.api.api_keys = vec!["short".into()];
        assert_eq!(
            keyless.validate().unwrap_err().to_string(),
            "invalid ingest config: api.api-keys: every key must be at least 16 characters \
             (`vigil keys generate` makes one)"
        );
    }
}
