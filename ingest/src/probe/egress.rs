//! The egress policy at probe time: every check kind connects through [`Egress::connect`], and
//! follows redirects through [`Egress::follow`].
//!
//! 1. **Resolve once.** A host name is resolved here, through the [`Resolver`] (the system's,
//!    or one a test controls); an IP literal is not resolved.
//! 2. **Vet every address** against the [`EgressPolicy`]: the operator's allow-list, else the
//!    special-purpose table of [`vigil_schema::egress`]. One non-public address blocks the whole
//!    name, since a name answering with a public and a private address is how DNS rebinding
//!    starts.
//! 3. **Connect to what was vetted**: the vetted addresses, in order, with no second lookup, so
//!    the name cannot change its answer between the check and the connection.
//! 4. **Redirects** are vetted the same way hop by hop (each hop comes back through
//!    [`Egress::connect`]); [`Egress::follow`] also refuses https→http unless the monitor sets
//!    `allow_insecure_redirects`, and says whether credentials may travel (same origin only).
//!
//! Every refusal fails the check with [`Outcome::Blocked`], the reason in its `error`, and
//! counts in `vigil_probe_blocked_total{reason}` (the range's label, or `insecure_redirect`).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::net::TcpStream;
use url::Url;
use vigil_schema::egress::ALLOW_HINT;
use vigil_schema::{EgressPolicy, Outcome};

use crate::metric;

/// Resolves host names to addresses.
pub trait Resolver: Send + Sync + fmt::Debug {
    /// The addresses of `host`, for a connection to `port`.
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), port)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// Why a connection or a redirect was refused: the outcome of the check and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// [`Outcome::Blocked`], or the phase that failed (`dns`, `connect`, `invalid_url`).
    pub outcome: Outcome,
    /// What happened, for the result's `error`.
    pub message: String,
    /// For [`Outcome::Blocked`]: the metric's `reason` label.
    pub reason: Option<&'static str>,
}

impl Refused {
    pub(crate) fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            message: message.into(),
            reason: None,
        }
    }

    /// A policy refusal, counted under `reason`.
    fn blocked(reason: &'static str, message: String) -> Self {
        metrics::counter!(metric::PROBE_BLOCKED, "reason" => reason).increment(1);
        tracing::debug!(reason, message, "Probe blocked by the egress policy.");
        Self {
            outcome: Outcome::Blocked,
            message,
            reason: Some(reason),
        }
    }
}

/// Durations of the phases [`Egress::connect`] runs, written as each one completes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// Name resolution (`None` for an IP literal).
    pub dns_us: Option<u64>,
    /// TCP connect.
    pub connect_us: Option<u64>,
}

/// What a redirect hop may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// Whether the next URL has the same origin (scheme, host, port): only then do
    /// credentials, cookies and secret headers go along.
    pub same_origin: bool,
}

/// The policy and the resolver every check connects through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Egress {
    policy: Arc<EgressPolicy>,
    resolver: Arc<dyn Resolver>,
}

impl Default for Egress {
    fn default() -> Self {
        Self::new(EgressPolicy::default())
    }
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Egress {
    /// `policy`, with the system resolver.
    pub fn new(policy: EgressPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
            resolver: Arc::new(SystemResolver),
        }
    }

    /// The same policy, resolving through `resolver`.
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// The addresses `url` may be reached at, vetted: resolved once (unless a literal), every
    /// one checked against the policy.
    pub async fn vet(&self, url: &Url, timing: &mut Timing) -> Result<Vec<SocketAddr>, Refused> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Refused::new(Outcome::InvalidUrl, "url has no port"))?;
        let (name, mut ips) = match url.host() {
            Some(url::Host::Ipv4(ip)) => (None, vec![IpAddr::V4(ip)]),
            Some(url::Host::Ipv6(ip)) => (None, vec![IpAddr::V6(ip)]),
            Some(url::Host::Domain(name)) => {
                let t = Instant::now();
                let resolved = self.resolver.resolve(name, port).await;
                timing.dns_us = Some(micros(t.elapsed()));
                let ips = resolved.map_err(|e| {
                    Refused::new(Outcome::Dns, format!("cannot resolve {name}: {e}"))
                })?;
                if ips.is_empty() {
                    return Err(Refused::new(
                        Outcome::Dns,
                        format!("{name} has no addresses"),
                    ));
                }
                (Some(name.trim_end_matches('.').to_ascii_lowercase()), ips)
            }
            None => return Err(Refused::new(Outcome::InvalidUrl, "url has no host")),
        };
        let mut seen = Vec::with_capacity(ips.len());
        ips.retain(|ip| {
            let new = !seen.contains(ip);
            seen.push(*ip);
            new
        });
        for &ip in &ips {
            if let Err(why) = self.policy.check(name.as_deref(), ip, port) {
                let message = match &name {
                    Some(name) => format!("blocked: {name} resolves to {ip}, {why}; {ALLOW_HINT}"),
                    None => format!("blocked: {ip} is {why}; {ALLOW_HINT}"),
                };
                return Err(Refused::blocked(why.kind.label(), message));
            }
        }
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }

    /// Opens a TCP connection to `url`'s host: [`vet`](Self::vet), then the vetted addresses in
    /// order until one accepts.
    pub async fn connect(&self, url: &Url, timing: &mut Timing) -> Result<TcpStream, Refused> {
        let addrs = self.vet(url, timing).await?;
        let t = Instant::now();
        let mut last_error = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    timing.connect_us = Some(micros(t.elapsed()));
                    return Ok(stream);
                }
                Err(e) => last_error = Some(format!("cannot connect to {addr}: {e}")),
            }
        }
        Err(Refused::new(
            Outcome::Connect,
            last_error.unwrap_or_else(|| "no address to connect to".into()),
        ))
    }

    /// The redirect rule for a hop from `from` to `to`: only `http` and `https`, and no
    /// downgrade from https to http unless `allow_insecure`. The next hop's addresses are vetted
    /// when it connects.
    pub fn follow(&self, from: &Url, to: &Url, allow_insecure: bool) -> Result<Hop, Refused> {
        if !matches!(to.scheme(), "http" | "https") || to.host().is_none() {
            return Err(Refused::new(
                Outcome::InvalidUrl,
                format!(
                    "redirect to an unsupported url {:?} (only http:// and https:// with a host)",
                    to.origin().ascii_serialization()
                ),
            ));
        }
        if from.scheme() == "https" && to.scheme() == "http" && !allow_insecure {
            return Err(Refused::blocked(
                "insecure_redirect",
                format!(
                    "blocked: redirect from https to {} downgrades to plain http; set \
                     allow_insecure_redirects on the monitor to follow it",
                    to.origin().ascii_serialization()
                ),
            ));
        }
        Ok(Hop {
            same_origin: from.origin() == to.origin(),
        })
    }
}

#[cfg(test)]
mod tests;
