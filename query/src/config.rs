//! The query service's configuration: HTTP listener, CORS, API keys, GraphQL limits, the
//! subscription fan-out, query limits and backtests. Kafka and ClickHouse connections and the
//! processor settings backtests run with come from the binary's shared sections and are filled
//! in by the caller.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::{Error, Result};

/// Configuration of the query service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Kafka connection; taken from the binary's `[kafka]` section, not from `[query]`.
    #[serde(skip)]
    pub kafka: KafkaConfig,
    /// ClickHouse connection; taken from the binary's `[clickhouse]` section.
    #[serde(skip)]
    pub clickhouse: ClickHouseConfig,
    /// HTTP listener and cross-cutting HTTP behaviour.
    pub http: HttpConfig,
    /// API keys and their roles. No keys means no authentication (every caller is admin).
    pub auth: AuthConfig,
    /// GraphQL limits.
    pub graphql: GraphQlConfig,
    /// Live subscriptions.
    pub subscriptions: SubscriptionConfig,
    /// Limits on what one query may ask for.
    pub limits: LimitsConfig,
    /// Backtests of alert rules (`POST /api/v1/rules/backtest`).
    pub backtest: BacktestConfig,
    /// Webhooks other systems send to Vigil.
    pub integrations: IntegrationsConfig,
    /// Requests per API key and per client address.
    pub rate_limit: vigil_schema::ratelimit::RateLimitConfig,
    /// The processor's settings (window length, lateness, sketch accuracy, …) a backtest runs
    /// with, so it reproduces the deployment's transitions; taken from the binary's
    /// `[processor]` section (defaults otherwise).
    #[serde(skip)]
    pub processor: vigil_processor::Config,
    /// The probes' egress policy monitor writes are checked against (literal hosts and `${…}`
    /// references); taken from the binary's `[ingest.egress]` and `[ingest] env-allow`.
    #[serde(skip)]
    pub egress: vigil_schema::EgressPolicy,
    /// Where the secret store's key-encryption keys are; taken from the binary's `[secrets]`.
    #[serde(skip)]
    pub secrets: vigil_notify::VaultConfig,
}

/// Kafka connection used by the monitors and rules views, their writes and subscriptions.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port` separated by commas.
    pub brokers: String,
    /// Topic names are `{topic_prefix}.monitors`, `{topic_prefix}.windows`, ….
    pub topic_prefix: String,
    /// Timeout of metadata and produce requests.
    pub request_timeout: Duration,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "vigil".into(),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// ClickHouse connection (HTTP interface). `Debug` leaves the password out.
#[derive(Clone, PartialEq)]
pub struct ClickHouseConfig {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Database holding Vigil's tables.
    pub database: String,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &REDACTED)
            .field("database", &self.database)
            .finish()
    }
}

/// What `Debug` shows for a secret.
pub const REDACTED: &str = "<redacted>";

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            user: "default".into(),
            password: String::new(),
            database: "vigil".into(),
        }
    }
}

impl ClickHouseConfig {
    /// A client for the configured database.
    pub fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_password(&self.password)
            .with_database(&self.database)
    }
}

/// HTTP listener and cross-cutting behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct HttpConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Origins allowed by CORS; empty sends no CORS headers, `["*"]` allows any origin.
    pub cors_origins: Vec<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// How long a monitor or rule write waits for the service's own view to show it before
    /// failing.
    #[serde(with = "humantime_serde")]
    pub write_visibility_timeout: Duration,
    /// How long in-flight requests get to finish on shutdown.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Longest a request may take to answer (503 after); longer than `backtest.timeout`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Most requests handled at once; more are refused with 503.
    pub max_in_flight: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cors_origins: Vec::new(),
            max_body_bytes: 1 << 20,
            write_visibility_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            request_timeout: Duration::from_secs(90),
            max_in_flight: 1024,
        }
    }
}

/// API keys.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AuthConfig {
    /// Accepted keys. Empty disables authentication, which is only allowed on a loopback
    /// address unless `insecure-no-auth` is set.
    pub keys: Vec<ApiKeyConfig>,
    /// Serve without keys on a non-loopback address too: anyone who reaches the port is an
    /// admin. Also `vigil serve --insecure-no-auth`.
    pub insecure_no_auth: bool,
}

/// One API key. `Debug` leaves the key out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ApiKeyConfig {
    /// Who holds the key (shown in logs, never the key itself).
    pub name: String,
    /// The secret sent as `Authorization: Bearer <key>` (at least 16 characters), or better
    /// its SHA-256 as `sha256:<64 hex digits>` (`vigil keys generate` prints both), so the
    /// configuration holds no usable key.
    pub key: String,
    /// What the key may do.
    pub role: Role,
    /// When the key stops working (RFC 3339); none: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<vigil_schema::Timestamp>,
}

impl std::fmt::Debug for ApiKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyConfig")
            .field("name", &self.name)
            .field("key", &REDACTED)
            .field("role", &self.role)
            .field("expires", &self.expires)
            .finish()
    }
}

/// GraphQL limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct GraphQlConfig {
    /// Deepest allowed selection nesting.
    pub max_depth: usize,
    /// Largest allowed query complexity (each selected field counts 1).
    pub max_complexity: usize,
    /// Longest accepted query document, in bytes.
    pub max_query_bytes: usize,
    /// Serve GraphiQL on `GET /graphql`.
    pub graphiql: bool,
}

impl Default for GraphQlConfig {
    fn default() -> Self {
        Self {
            max_depth: 10,
            max_complexity: 2_000,
            max_query_bytes: 16 * 1024,
            graphiql: true,
        }
    }
}

/// Live subscriptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct SubscriptionConfig {
    /// Events buffered per topic for slow subscribers; one that falls further behind skips
    /// ahead and is told how many events it missed.
    pub buffer: usize,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        Self { buffer: 1024 }
    }
}

/// Limits on one query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LimitsConfig {
    /// Longest range served at 1-minute resolution.
    #[serde(with = "humantime_serde")]
    pub max_range_1m: Duration,
    /// Longest range served at 1-hour resolution.
    #[serde(with = "humantime_serde")]
    pub max_range_1h: Duration,
    /// Largest page size.
    pub max_page_size: u32,
    /// Most points in one page of history (and the default page).
    pub max_history_points: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_range_1m: Duration::from_secs(7 * 86_400),
            // Two years (humantime's year is 365.25 days), the TTL of `windows_1h`.
            max_range_1h: Duration::from_secs(63_115_200),
            max_page_size: 1_000,
            max_history_points: 10_000,
        }
    }
}

/// Backtests run by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct BacktestConfig {
    /// Longest a backtest may run before it is abandoned (the request then fails with 503).
    /// One backtest runs at a time per service; others are answered 429 meanwhile.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
        }
    }
}

/// Webhooks other systems send to Vigil.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct IntegrationsConfig {
    /// The signing secret of a PagerDuty webhook subscription (v3) pointed at
    /// `POST /api/v1/integrations/pagerduty`, as a reference `${secret:NAME}` (read from
    /// `VIGIL_SECRET_<NAME>`). Unset: that endpoint answers 404.
    pub pagerduty_webhook_secret: Option<vigil_schema::event::SecretRef>,
}

fn invalid(field: &'static str, reason: &str) -> Result<()> {
    Err(Error::Config {
        field,
        reason: reason.into(),
    })
}

impl Config {
    /// Rejects values the service cannot run with.
    pub fn validate(&self) -> Result<()> {
        if self.subscriptions.buffer == 0 {
            return invalid("query.subscriptions.buffer", "must be at least 1");
        }
        if self.graphql.max_depth == 0 || self.graphql.max_complexity == 0 {
            return invalid(
                "query.graphql",
                "max-depth and max-complexity must be at least 1",
            );
        }
        if self.graphql.max_query_bytes == 0 {
            return invalid("query.graphql.max-query-bytes", "must be at least 1");
        }
        if self.http.max_in_flight == 0 {
            return invalid("query.http.max-in-flight", "must be at least 1");
        }
        if self.http.request_timeout <= self.backtest.timeout {
            return invalid(
                "query.http.request-timeout",
                "must be longer than query.backtest.timeout (a backtest answers within it)",
            );
        }
        if self.limits.max_history_points == 0 {
            return invalid("query.limits.max-history-points", "must be at least 1");
        }
        if self.limits.max_page_size == 0 {
            return invalid("query.limits.max-page-size", "must be at least 1");
        }
        if self.limits.max_range_1m.is_zero() || self.limits.max_range_1h < self.limits.max_range_1m
        {
            return invalid(
                "query.limits",
                "max-range-1m must be positive and at most max-range-1h",
            );
        }
        if self.backtest.timeout.is_zero() {
            return invalid("query.backtest.timeout", "must be positive");
        }
        if let Some(secret) = &self.integrations.pagerduty_webhook_secret
            && secret.name().is_none()
        {
            return invalid(
                "query.integrations.pagerduty-webhook-secret",
                "must be a secret reference ${secret:NAME}",
            );
        }
        if let Err(e) = self.processor.validate() {
            return invalid("processor", &e.to_string());
        }
        self.check_exposure(false)?;
        self.validate_keys()
    }

    /// Refuses to serve without keys on a non-loopback address (unless `insecure-no-auth`);
    /// `stored_keys`: keys created through the API or CLI exist, which turns authentication on.
    pub fn check_exposure(&self, stored_keys: bool) -> Result<()> {
        if self.auth.keys.is_empty()
            && !stored_keys
            && !self.http.listen.ip().is_loopback()
            && !self.auth.insecure_no_auth
        {
            return invalid(
                "query.auth.keys",
                &format!(
                    "refusing to serve without API keys on {}, a non-loopback address (anyone \
                     reaching it would be an admin): configure keys, listen on 127.0.0.1, or \
                     pass --insecure-no-auth",
                    self.http.listen
                ),
            );
        }
        Ok(())
    }

    /// Every check of [`Config::validate`] but the exposure one, which needs the key store.
    pub fn validate_settings(&self) -> Result<()> {
        let exposed = Self {
            auth: AuthConfig {
                insecure_no_auth: true,
                ..self.auth.clone()
            },
            ..self.clone()
        };
        exposed.validate()
    }

    fn validate_keys(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for key in &self.auth.keys {
            let digest = match crate::auth::stored_digest(&key.key) {
                Some(digest) => digest,
                None if key.key.starts_with(crate::auth::HASH_PREFIX) => {
                    return invalid(
                        "query.auth.keys",
                        "a hashed key must be sha256: and 64 hex digits",
                    );
                }
                None if key.key.len() < 16 => {
                    return invalid(
                        "query.auth.keys",
                        "every key must be at least 16 characters",
                    );
                }
                None => crate::auth::digest(&key.key),
            };
            if !seen.insert(digest) {
                return invalid("query.auth.keys", "keys must be unique");
            }
        }
        for origin in &self.http.cors_origins {
            if origin != "*" && axum::http::HeaderValue::from_str(origin).is_err() {
                return invalid(
                    "query.http.cors-origins",
                    "every origin must be a header value",
                );
            }
        }
        Ok(())
    }

    /// Topic names derived from the prefix.
    pub fn topics(&self) -> vigil_schema::TopicNames {
        vigil_schema::TopicNames::with_prefix(&self.kafka.topic_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(Config::default().validate().is_ok());
        let mut config = Config::default();
        config.auth.keys.push(ApiKeyConfig {
            name: "ci".into(),
            key: "short".into(),
            role: Role::Viewer,
            expires: None,
        });
        let err = config.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid config: query.auth.keys: every key must be at least 16 characters"
        );
        let mut config = Config::default();
        config.backtest.timeout = Duration::ZERO;
        let err = config.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid config: query.backtest.timeout: must be positive"
        );
        let mut config = Config::default();
        config.backtest.timeout = Duration::from_secs(120);
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("invalid config: query.http.request-timeout: must be longer"),
            "{err}"
        );
        let mut config = Config::default();
        config.processor.window = Duration::from_secs(7 * 60);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.starts_with("invalid config: processor: "), "{err}");
    }

    #[test]
    fn parses_kebab_case_with_durations() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "http": {"listen": "0.0.0.0:9000", "cors-origins": ["*"], "request-timeout": "6m"},
            "auth": {"keys": [{"name": "ops", "key": "0123456789abcdef", "role": "admin"}]},
            "limits": {"max-range-1m": "2d"},
            "backtest": {"timeout": "5m"},
        }))
        .unwrap();
        assert_eq!(config.backtest.timeout, Duration::from_secs(300));
        assert_eq!(config.http.listen.port(), 9000);
        assert_eq!(config.auth.keys[0].role, Role::Admin);
        assert_eq!(config.limits.max_range_1m, Duration::from_secs(2 * 86_400));
        assert!(config.validate().is_ok());
    }
}
