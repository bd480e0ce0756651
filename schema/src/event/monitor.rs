//! [`MonitorSpec`]: what to check, how often, from where, and what "healthy" means.
//!
//! Monitors are configured by writing specs to the compacted `vigil.monitors` topic (key =
//! monitor id, tombstone = deleted); every service builds its view of monitors from that topic.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod body_schema;
mod kind;
mod step;

pub use body_schema::{
    MAX_BODY_SCHEMA, SCHEMA_CONDITION, compile_body_schema, is_schema_condition,
};

pub use kind::{
    CheckKind, DnsQuery, IcmpTarget, MAX_GRPC_SERVICE, MAX_PINGS, RecordType, SCHEME_LIST,
    SYSTEM_RESOLVER, grpc_service,
};
pub use step::{Extract, MAX_STEPS, StepSpec, compile_regex, step_url_scheme};

/// Configuration of one monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MonitorSpec {
    /// Stable identifier, a slug (`checkout-api`); the Kafka key and ClickHouse key.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Free-form tags for grouping and filtering (`team-payments`, `public`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// What to check; the scheme picks the kind ([`CheckKind`]): `http(s)://` a request,
    /// `tcp://host:port`, `tls://host:port`, `dns://resolver/name?type=T`, `ws(s)://`,
    /// `icmp://host`, `grpc(s)://host:port?service=S`. It may hold `${secret:NAME}` references and `${NAME}` references to
    /// environment variables the operator allow-lists (`[ingest] env-allow`); both are expanded
    /// at probe time, never stored expanded.
    pub url: String,
    /// HTTP method.
    #[serde(default)]
    pub method: HttpMethod,
    /// Request headers; values may hold `${secret:NAME}` or allow-listed `${NAME}` references.
    /// A header whose value holds a reference is secret: it is not sent on to another origin.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// How the probe authenticates.
    #[serde(default)]
    pub auth: Auth,
    /// Time between checks (at least 1 s).
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Time after which a check fails with `timeout`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Regions that run this monitor; empty means every region.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Whether redirects are followed (up to 10).
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    /// Whether a redirect from `https://` to `http://` is followed; by default it fails the
    /// check with `blocked`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_insecure_redirects: bool,
    /// Whether the server certificate is verified.
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// Conditions that must hold (`[STATUS] == 200`, `[BODY].status == UP`, …); empty means
    /// any status below 400.
    #[serde(default)]
    pub assertions: Vec<String>,
    /// Disabled monitors are kept but not run.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Monitors this one depends on (ids): while an alert of one of them fires, new firings of
    /// this monitor's alerts are not notified (their resolves still are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// A multi-step check: these requests in order (see [`StepSpec`]), `url` their base and
    /// `headers` and `auth` applied to each. Empty: the monitor checks `url` alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepSpec>,
    /// The JSON Schema the response body must match where an assertion says
    /// `[BODY] matches schema` (self-contained: `$ref`s point inside it; 2020-12 unless its
    /// `$schema` names another draft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_schema: Option<serde_json::Value>,
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !b
}

/// HTTP methods a monitor may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET`
    #[default]
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl HttpMethod {
    /// The method's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a probe authenticates. Secret values may be `${secret:NAME}` references (or allow-listed
/// `${NAME}` environment variables).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No authentication.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
    /// A static API key in a header or query parameter.
    ApiKey {
        /// Header or parameter name.
        name: String,
        /// The key.
        value: String,
        /// Where the key goes.
        #[serde(default, rename = "in")]
        location: ApiKeyLocation,
    },
    /// OAuth 2 client-credentials grant; the token is cached until it expires.
    Oauth2ClientCredentials {
        /// Token endpoint.
        token_url: String,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: String,
        /// Requested scopes.
        #[serde(default)]
        scopes: Vec<String>,
    },
}

/// Where an API key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyLocation {
    /// As a request header.
    #[default]
    Header,
    /// As a query parameter.
    Query,
}

/// A validation failure: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field (`interval`, `headers.X-Api-Key`, `auth.token_url`).
    pub field: String,
    /// Why it is invalid.
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error with its field path prefixed (`monitors[3]` + `interval`).
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Most monitors one monitor may depend on.
pub const MAX_DEPENDS_ON: usize = 32;

/// Most tags, regions or assertions of one monitor.
pub(crate) const MAX_ITEMS: usize = 32;
/// Most request headers of one monitor.
pub(crate) const MAX_HEADERS: usize = 64;
/// Longest URL (bytes).
pub(crate) const MAX_URL: usize = 2048;
/// Longest header name, and longest header value, credential or assertion (bytes).
pub(crate) const MAX_HEADER_NAME: usize = 256;
pub(crate) const MAX_VALUE: usize = 8 * 1024;
/// Longest request body (bytes).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The error for a string of `len` bytes longer than `max`.
pub(crate) fn too_long(field: impl Into<String>, len: usize, max: usize) -> FieldError {
    FieldError::new(field, format!("must be at most {max} bytes, got {len}"))
}

/// The error for a list of `len` items longer than `max`.
pub(crate) fn too_many(field: impl Into<String>, len: usize, max: usize) -> FieldError {
    FieldError::new(field, format!("must have at most {max} items, got {len}"))
}

/// Longest accepted interval or timeout.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

impl MonitorSpec {
    /// Checks every field and returns all problems found, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(reason) = check_slug(&self.id) {
            errors.push(FieldError::new("id", reason));
        }
        if self.name.trim().is_empty() {
            errors.push(FieldError::new("name", "must not be empty"));
        } else if self.name.len() > 200 {
            errors.push(FieldError::new("name", "must be at most 200 bytes"));
        }
        if self.tags.len() > MAX_ITEMS {
            errors.push(too_many("tags", self.tags.len(), MAX_ITEMS));
        }
        for (i, tag) in self.tags.iter().enumerate().take(MAX_ITEMS) {
            if let Err(reason) = check_slug(tag) {
                errors.push(FieldError::new(format!("tags[{i}]"), reason));
            }
        }
        if self.url.len() > MAX_URL {
            errors.push(too_long("url", self.url.len(), MAX_URL));
        } else if let Err(reason) = kind::check_monitor_url(&self.url) {
            errors.push(FieldError::new("url", reason));
        }
        if self.headers.len() > MAX_HEADERS {
            errors.push(too_many("headers", self.headers.len(), MAX_HEADERS));
        }
        for (name, value) in self.headers.iter().take(MAX_HEADERS) {
            if name.len() > MAX_HEADER_NAME {
                errors.push(too_long("headers", name.len(), MAX_HEADER_NAME));
            } else if name.is_empty() || !name.bytes().all(is_token_byte) {
                errors.push(FieldError::new(
                    format!("headers.{name}"),
                    "is not a valid header name",
                ));
            } else if value.len() > MAX_VALUE {
                errors.push(too_long(format!("headers.{name}"), value.len(), MAX_VALUE));
            }
        }
        if let Some(body) = &self.body
            && body.len() > MAX_BODY
        {
            errors.push(too_long("body", body.len(), MAX_BODY));
        }
        if self.interval < Duration::from_secs(1) {
            errors.push(FieldError::new(
                "interval",
                format!(
                    "must be ≥ 1s, got {}",
                    humantime::format_duration(self.interval)
                ),
            ));
        } else if self.interval > MAX_INTERVAL {
            errors.push(FieldError::new("interval", "must be ≤ 24h"));
        }
        if self.timeout.is_zero() {
            errors.push(FieldError::new("timeout", "must be > 0s"));
        } else if self.timeout > MAX_TIMEOUT {
            errors.push(FieldError::new(
                "timeout",
                format!(
                    "must be ≤ 5m, got {}",
                    humantime::format_duration(self.timeout)
                ),
            ));
        }
        if self.regions.len() > MAX_ITEMS {
            errors.push(too_many("regions", self.regions.len(), MAX_ITEMS));
        }
        for (i, region) in self.regions.iter().enumerate().take(MAX_ITEMS) {
            if let Err(reason) = check_slug(region) {
                errors.push(FieldError::new(format!("regions[{i}]"), reason));
            }
        }
        if self.assertions.len() > MAX_ITEMS {
            errors.push(too_many("assertions", self.assertions.len(), MAX_ITEMS));
        }
        for (i, condition) in self.assertions.iter().enumerate().take(MAX_ITEMS) {
            if condition.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("assertions[{i}]"),
                    "must not be empty",
                ));
            } else if condition.len() > MAX_VALUE {
                errors.push(too_long(
                    format!("assertions[{i}]"),
                    condition.len(),
                    MAX_VALUE,
                ));
            }
        }
        if let Err(e) = self.auth.validate() {
            errors.push(e);
        }
        if let Auth::ApiKey {
            location: ApiKeyLocation::Query,
            ..
        } = self.auth
            && CheckKind::of(&self.url).is_ok_and(|(kind, ..)| kind == CheckKind::Grpc)
        {
            errors.push(FieldError::new(
                "auth.in",
                "a gRPC check sends credentials as request metadata: use `in: header`",
            ));
        }
        step::validate_steps(&self.steps, &self.url, &mut errors);
        body_schema::validate(self, &mut errors);
        if !self.steps.is_empty() {
            if self.body.is_some() {
                errors.push(FieldError::new(
                    "body",
                    "a monitor with steps sends its steps' bodies; move it to a step",
                ));
            }
            if !self.assertions.is_empty() {
                errors.push(FieldError::new(
                    "assertions",
                    "a monitor with steps checks its steps' assertions; move them to a step",
                ));
            }
        }
        if self.depends_on.len() > MAX_DEPENDS_ON {
            errors.push(FieldError::new(
                "depends_on",
                format!("must name at most {MAX_DEPENDS_ON} monitors"),
            ));
        }
        for (i, parent) in self.depends_on.iter().enumerate() {
            if let Err(reason) = check_slug(parent) {
                errors.push(FieldError::new(format!("depends_on[{i}]"), reason));
            } else if *parent == self.id {
                errors.push(FieldError::new(
                    format!("depends_on[{i}]"),
                    "a monitor cannot depend on itself",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Whether a probe runner in `region` should run this monitor.
    pub fn runs_in(&self, region: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|r| r == region)
    }
}

impl Auth {
    fn validate(&self) -> Result<(), FieldError> {
        let empty = |field: &str| {
            Err(FieldError::new(
                format!("auth.{field}"),
                "must not be empty",
            ))
        };
        let fields: Vec<(&str, &str)> = match self {
            Auth::None => Vec::new(),
            Auth::Basic { username, password } => {
                vec![("username", username), ("password", password)]
            }
            Auth::Bearer { token } => vec![("token", token)],
            Auth::ApiKey { name, value, .. } => vec![("name", name), ("value", value)],
            Auth::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scopes,
            } => {
                if scopes.len() > MAX_ITEMS {
                    return Err(too_many("auth.scopes", scopes.len(), MAX_ITEMS));
                }
                let mut fields = vec![
                    ("token_url", token_url.as_str()),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.as_str()),
                ];
                fields.extend(scopes.iter().map(|s| ("scopes", s.as_str())));
                fields
            }
        };
        for (field, value) in fields {
            let max = if field == "token_url" {
                MAX_URL
            } else {
                MAX_VALUE
            };
            if value.len() > max {
                return Err(too_long(format!("auth.{field}"), value.len(), max));
            }
        }
        match self {
            Auth::None => Ok(()),
            Auth::Basic { username, .. } if username.is_empty() => empty("username"),
            Auth::Bearer { token } if token.is_empty() => empty("token"),
            Auth::ApiKey { name, .. } if name.is_empty() => empty("name"),
            Auth::Oauth2ClientCredentials { token_url, .. } => {
                check_url(token_url).map_err(|reason| FieldError::new("auth.token_url", reason))
            }
            _ => Ok(()),
        }
    }
}

pub(crate) fn check_slug(s: &str) -> Result<(), String> {
    let valid = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "must be 1–64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit, \
             got {s:?}"
        ))
    }
}

pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("must start with http:// or https://, got {url:?}"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("has no host, got {url:?}"));
    }
    if url.chars().any(char::is_whitespace) {
        return Err(format!("must not contain whitespace, got {url:?}"));
    }
    Ok(())
}

/// RFC 9110 `tchar`.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
