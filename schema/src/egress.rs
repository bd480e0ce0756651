//! The egress policy's pure core: which addresses a probe may reach, the operator's allow-list,
//! and which `${…}` references a monitor spec may hold.
//!
//! Probes reach only public addresses ([`classify`] holds the special-purpose table) unless an
//! [`AllowEntry`] of the operator's `[ingest.egress] allow` list matches: a CIDR, a single
//! address, or a host name (`*.example.com` for its subdomains), each optionally with a port.
//! A host-name entry trusts what that name resolves to.
//!
//! Two places apply the policy, and both take it as an argument so this crate stays free of
//! configuration:
//! - at probe time, the ingest crate's egress module checks every address a name resolves to,
//!   on every redirect hop, and connects only to the addresses it checked;
//! - at write time, [`validate_egress`] (called by the query API's monitor writes and by
//!   `vigil apply`) refuses a URL whose host is a literal non-public address or a `localhost`
//!   name, and `${…}` references other than `${secret:NAME}` and allow-listed variables. Names
//!   are not resolved at write time; the probe-time check is the one that cannot be bypassed.

mod host;
mod range;
mod reference;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Auth, FieldError, MonitorSpec};
use host::Host;
pub use range::{Cidr, IPV4, IPV6, NonPublic, Row, Special, Verdict, classify};
pub use reference::{Reference, expand, is_env_name, references};

/// One entry of the operator's allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AllowEntry {
    /// A network or single address (`10.1.0.0/16`, `127.0.0.1:8090`, `[::1]:8123`).
    Network {
        /// The addresses.
        net: Cidr,
        /// Only this port, when set (single addresses only).
        port: Option<u16>,
    },
    /// A host name as written in monitor URLs (`internal.example.com`, `*.corp.example.com`),
    /// optionally with a port; whatever it resolves to is allowed.
    Host {
        /// Lowercase, without a trailing dot; a leading `*.` matches any subdomain.
        name: String,
        /// Only this port, when set.
        port: Option<u16>,
    },
}

impl AllowEntry {
    /// The single address `addr`, on its port only.
    pub fn socket(addr: SocketAddr) -> Self {
        AllowEntry::Network {
            net: Cidr::host(addr.ip()),
            port: Some(addr.port()),
        }
    }

    fn port_matches(port: Option<u16>, wanted: u16) -> bool {
        port.is_none_or(|p| p == wanted)
    }

    /// Whether the entry allows connecting to `ip` on `port`.
    pub fn allows_ip(&self, ip: IpAddr, port: u16) -> bool {
        match self {
            AllowEntry::Network { net, port: p } => {
                Self::port_matches(*p, port)
                    && (net.contains(ip) || net.contains(ip.to_canonical()))
            }
            AllowEntry::Host { .. } => false,
        }
    }

    /// Whether the entry allows the host name `name` (lowercase, no trailing dot) on `port`.
    pub fn allows_name(&self, name: &str, port: u16) -> bool {
        match self {
            AllowEntry::Host { name: n, port: p } => {
                let matches = match n.strip_prefix("*.") {
                    Some(parent) => name
                        .strip_suffix(parent)
                        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                    None => name == n,
                };
                matches && Self::port_matches(*p, port)
            }
            AllowEntry::Network { .. } => false,
        }
    }
}

impl FromStr for AllowEntry {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = |why: &str| format!("invalid egress allow entry {s:?}: {why}");
        if let Some((addr, len)) = s.split_once('/') {
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| bad("expected an address before '/'"))?;
            let len: u8 = len.parse().map_err(|_| bad("invalid prefix length"))?;
            let net = Cidr::new(addr, len)
                .ok_or_else(|| bad("prefix too long, or host bits set after the prefix"))?;
            return Ok(AllowEntry::Network { net, port: None });
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(AllowEntry::Network {
                net: Cidr::host(ip),
                port: None,
            });
        }
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(AllowEntry::socket(addr));
        }
        let (name, port) = match s.rsplit_once(':') {
            Some((name, port)) => (name, Some(port.parse().map_err(|_| bad("invalid port"))?)),
            None => (s, None),
        };
        let name = name.to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        let bare = name.strip_prefix("*.").unwrap_or(name);
        let valid = !bare.is_empty()
            && bare.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            && !bare.rsplit('.').next().is_some_and(|last| {
                last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x")
            });
        if !valid {
            return Err(bad(
                "expected a CIDR (10.1.0.0/16), an address (127.0.0.1:8090, [::1]:8123) or a \
                 host name (internal.example.com, *.corp.example.com, optionally :port)",
            ));
        }
        Ok(AllowEntry::Host {
            name: name.to_owned(),
            port,
        })
    }
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowEntry::Network { net, port: Some(p) } => {
                write!(f, "{}", SocketAddr::new(net.addr, *p))
            }
            AllowEntry::Network { net, port: None } if net.is_host() => write!(f, "{}", net.addr),
            AllowEntry::Network { net, .. } => write!(f, "{net}"),
            AllowEntry::Host {
                name,
                port: Some(p),
            } => write!(f, "{name}:{p}"),
            AllowEntry::Host { name, port: None } => f.write_str(name),
        }
    }
}

impl Serialize for AllowEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AllowEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What probes may reach beyond public addresses, and which environment variables monitor
/// specs may reference. The default allows nothing beyond public addresses and no variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Networks, addresses and host names probes may reach although they are not public.
    pub allow: Vec<AllowEntry>,
    /// Environment variables a spec may reference as `${NAME}`.
    pub env_allow: Vec<String>,
}

/// Where probes are told to look when something is blocked.
pub const ALLOW_HINT: &str =
    "probes reach only public addresses unless `[ingest.egress] allow` lists the target";

impl EgressPolicy {
    /// Whether the allow-list names `name` (lowercase, no trailing dot) on `port`.
    pub fn allows_name(&self, name: &str, port: u16) -> bool {
        self.allow.iter().any(|e| e.allows_name(name, port))
    }

    /// Checks one destination: `ip` on `port`, reached through the host name `name` when the
    /// URL names one. `Ok` when the allow-list covers it or the address is public.
    pub fn check(&self, name: Option<&str>, ip: IpAddr, port: u16) -> Result<(), NonPublic> {
        if name.is_some_and(|n| self.allows_name(n, port))
            || self.allow.iter().any(|e| e.allows_ip(ip, port))
        {
            return Ok(());
        }
        classify(ip).map_or(Ok(()), Err)
    }

    /// Whether `${name}` may be expanded from the probe runner's environment.
    pub fn env_allowed(&self, name: &str) -> bool {
        self.env_allow.iter().any(|n| n == name)
    }
}

/// Whether `name` is a `localhost` name (RFC 6761: `localhost` and `*.localhost`).
pub fn is_localhost(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Why a URL's literal host is refused, if it is.
fn check_url_host(url: &str, policy: &EgressPolicy) -> Result<(), String> {
    let target = host::target(url)?;
    match target.host {
        Host::Deferred => Ok(()),
        Host::Ip(ip) => policy
            .check(None, ip, target.port)
            .map_err(|np| format!("{ip} is {np}; {ALLOW_HINT}")),
        Host::Name(name) if is_localhost(&name) && !policy.allows_name(&name, target.port) => {
            Err(format!(
                "{name} is {} (loopback); {ALLOW_HINT}",
                Special::Loopback.describe()
            ))
        }
        Host::Name(_) => Ok(()),
    }
}

/// Why the references in `text` are refused, if they are; `${steps.…}` only `in_step`.
fn check_references(text: &str, policy: &EgressPolicy, in_step: bool) -> Result<(), String> {
    for reference in references(text)? {
        match reference {
            Reference::Env(name) if !policy.env_allowed(name) => {
                return Err(format!(
                    "${{{name}}} is not allowed: environment variables are expanded only when \
                     listed in `[ingest] env-allow`; reference a stored secret as \
                     ${{secret:NAME}}"
                ));
            }
            Reference::Step { step, value } if !in_step => {
                return Err(format!(
                    "${{steps.{step}.{value}}} is only expanded in a step's url, headers or body"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks `spec` against the egress policy: the URL (and OAuth 2 token URL) must not name a
/// literal non-public address or a `localhost` name the allow-list does not cover, and every
/// `${…}` reference must be `${secret:NAME}` or an allow-listed environment variable. Every
/// problem names its field (`url`, `headers.X-Key`, `auth.token`).
pub fn validate_egress(spec: &MonitorSpec, policy: &EgressPolicy) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut check = |field: String, result: Result<(), String>| {
        if let Err(reason) = result {
            errors.push(FieldError::new(field, reason));
        }
    };
    check("url".into(), check_url_host(&spec.url, policy));
    if let Auth::Oauth2ClientCredentials { token_url, .. } = &spec.auth {
        check("auth.token_url".into(), check_url_host(token_url, policy));
    }
    let mut texts: Vec<(String, &str)> = vec![("url".into(), &spec.url)];
    texts.extend(
        spec.headers
            .iter()
            .map(|(name, value)| (format!("headers.{name}"), value.as_str())),
    );
    if let Some(body) = &spec.body {
        texts.push(("body".into(), body));
    }
    let auth: Vec<(&str, &String)> = match &spec.auth {
        Auth::None => vec![],
        Auth::Basic { username, password } => vec![("username", username), ("password", password)],
        Auth::Bearer { token } => vec![("token", token)],
        Auth::ApiKey { value, .. } => vec![("value", value)],
        Auth::Oauth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            ..
        } => vec![
            ("token_url", token_url),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ],
    };
    texts.extend(
        auth.into_iter()
            .map(|(f, v)| (format!("auth.{f}"), v.as_str())),
    );
    for (field, text) in texts {
        check(field, check_references(text, policy, false));
    }
    for (i, step) in spec.steps.iter().enumerate() {
        if crate::event::step_url_scheme(&step.url).is_some() {
            check(format!("steps[{i}].url"), check_url_host(&step.url, policy));
        }
        let mut texts = vec![(format!("steps[{i}].url"), step.url.as_str())];
        texts.extend(
            step.headers
                .iter()
                .map(|(n, v)| (format!("steps[{i}].headers.{n}"), v.as_str())),
        );
        if let Some(body) = &step.body {
            texts.push((format!("steps[{i}].body"), body));
        }
        for (field, text) in texts {
            check(field, check_references(text, policy, true));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
