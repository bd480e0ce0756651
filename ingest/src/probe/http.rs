//! The HTTP checker: one check = one fresh connection, measured phase by phase.
//!
//! DNS (skipped for IP literals) → TCP connect, both through the egress policy
//! ([`super::egress`]: every address vetted, and only vetted addresses connected to) → TLS
//! handshake (HTTPS; rustls with the webpki roots, or no verification when the monitor says
//! `tls_verify: false`) → request → first response byte → body (read up to the configured cap).
//! Every phase is timed in µs from a monotonic clock; a phase that did not happen stays `None`.
//! The whole check runs under the monitor's timeout, and the phases completed before a timeout
//! are still reported. Redirects (when followed) open a fresh connection per hop, vetted like the
//! first; the phases reported are those of the last hop and `total_us` covers all of them.
//! Credentials, cookies and secret headers are dropped when a redirect leaves the origin.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderMap, HeaderName};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use url::Url;
use uuid::Uuid;
use vigil_schema::Timestamp;
use vigil_schema::{CheckKind, EgressPolicy, MonitorSpec, Outcome, ProbeResult, Timings};

use super::auth::{References, TokenCache};
use super::condition::{Condition, ParseError, Response};
use super::egress::{self, Egress, Refused, Resolver, micros};
use crate::config::CheckerConfig;

mod prepare;
mod tls;
pub(super) mod verdict;

pub(super) use self::prepare::Prepared;
use self::tls::{leaf_expiry, tls_config};

/// A monitor's assertions, parsed once per spec.
#[derive(Debug, Clone)]
pub struct Assertions(pub(crate) Vec<Result<Condition, ParseError>>);

impl Assertions {
    /// Parses every assertion; unparsable ones fail at each check with their reason.
    pub fn compile(conditions: &[String]) -> Self {
        Self(conditions.iter().map(|c| Condition::parse(c)).collect())
    }

    /// A monitor's assertions, `[BODY] matches schema` bound to its compiled `body_schema`
    /// (compiled once here; without a valid schema that condition fails with the reason).
    pub fn of(spec: &MonitorSpec) -> Self {
        let mut assertions = Self::compile(&spec.assertions);
        if !assertions.0.iter().flatten().any(Condition::needs_schema) {
            return assertions;
        }
        let validator = match &spec.body_schema {
            Some(schema) => vigil_schema::compile_body_schema(schema).map(Arc::new),
            None => Err("needs the monitor's `body_schema`".to_owned()),
        };
        for condition in &mut assertions.0 {
            let Ok(c) = condition else { continue };
            if !c.needs_schema() {
                continue;
            }
            match &validator {
                Ok(v) => c.bind_schema(Arc::clone(v)),
                Err(reason) => {
                    *condition = Err(ParseError::new(format!("{}: {reason}", c.text())));
                }
            }
        }
        assertions
    }
}

/// Runs checks. Cheap to share (`Arc`); holds the TLS configurations, the egress policy, the
/// reference expansion and the OAuth 2 token cache.
pub struct Checker {
    pub(super) config: CheckerConfig,
    region: String,
    agent: String,
    verifying: TlsConnector,
    insecure: TlsConnector,
    /// The same two offering only HTTP/2 (ALPN `h2`), for gRPC.
    verifying_h2: TlsConnector,
    insecure_h2: TlsConnector,
    tokens: TokenCache,
    pub(super) egress: Egress,
    pub(super) references: References,
    pub(super) pingers: Arc<super::icmp::Pingers>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("config", &self.config)
            .field("region", &self.region)
            .field("agent", &self.agent)
            .field("egress", self.egress.policy())
            .finish_non_exhaustive()
    }
}

/// The one application protocol a TLS handshake offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Alpn {
    /// `http/1.1`: HTTP checks, WebSocket upgrades, TLS checks.
    Http1,
    /// `h2`: gRPC.
    H2,
}

/// A failed phase: the outcome kind and a message.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) outcome: Outcome,
    pub(super) message: String,
}

impl Failure {
    pub(super) fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            message: message.into(),
        }
    }
}

impl From<Refused> for Failure {
    fn from(r: Refused) -> Self {
        Self::new(r.outcome, r.message)
    }
}

/// What one hop measured; filled in as phases complete so a timeout keeps what was done.
#[derive(Debug, Default)]
pub(super) struct Phases {
    pub(super) net: egress::Timing,
    pub(super) tls_us: Option<u64>,
    pub(super) ttfb_us: Option<u64>,
    pub(super) cert_expiry: Option<Timestamp>,
    pub(super) status: Option<u16>,
    pub(super) size: Option<u64>,
}

impl Phases {
    /// The phases as a result's timings, `total_us` the whole of what they measured.
    pub(super) fn timings(&self, total_us: u64) -> Timings {
        Timings {
            dns_us: self.net.dns_us,
            connect_us: self.net.connect_us,
            tls_us: self.tls_us,
            ttfb_us: self.ttfb_us,
            total_us,
        }
    }

    /// Time until the peer certificate expires, from now (negative: expired).
    pub(super) fn expires_in_ms(&self) -> Option<i64> {
        self.cert_expiry
            .map(|e| e.as_millis() - Timestamp::now().as_millis())
    }
}

/// A completed exchange.
#[derive(Debug)]
pub(super) struct Exchange {
    pub(super) status: u16,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
    pub(super) too_large: bool,
}

/// Always dropped when a redirect leaves the origin.
const CREDENTIAL_HEADERS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

impl Checker {
    /// A checker stamping results with `region` and `agent`, under the default egress policy
    /// (public addresses only, no environment variable expanded).
    pub fn new(config: CheckerConfig, region: String, agent: String) -> Self {
        Self {
            config,
            region,
            agent,
            verifying: TlsConnector::from(Arc::new(tls_config(true, b"http/1.1"))),
            insecure: TlsConnector::from(Arc::new(tls_config(false, b"http/1.1"))),
            verifying_h2: TlsConnector::from(Arc::new(tls_config(true, b"h2"))),
            insecure_h2: TlsConnector::from(Arc::new(tls_config(false, b"h2"))),
            tokens: TokenCache::default(),
            egress: Egress::default(),
            references: References::default(),
            pingers: Arc::default(),
        }
    }

    /// The same checker under `policy`: its allow-list and its `env-allow` variables.
    pub fn with_policy(mut self, policy: EgressPolicy) -> Self {
        self.references = References::new(policy.env_allow.iter().cloned());
        self.egress = Egress::new(policy);
        self
    }

    /// The same checker resolving `${secret:NAME}` from `secrets`.
    pub fn with_secrets(mut self, secrets: Arc<dyn vigil_notify::SecretResolver>) -> Self {
        self.references = self.references.with_secrets(secrets);
        self
    }

    /// The same checker resolving host names through `resolver`.
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.egress = self.egress.with_resolver(resolver);
        self
    }

    /// The region results are stamped with.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The agent results are stamped with.
    pub(super) fn agent(&self) -> &str {
        &self.agent
    }

    /// Runs one check of `spec`, meant to start at `scheduled_at`.
    pub async fn check(
        &self,
        spec: &MonitorSpec,
        assertions: &Assertions,
        scheduled_at: Timestamp,
    ) -> ProbeResult {
        if !spec.steps.is_empty() {
            return self.check_steps(spec, scheduled_at).await;
        }
        let event_time = Timestamp::now();
        let start = Instant::now();
        let mut phases = Phases::default();
        let kind = CheckKind::of(&spec.url).map_or(CheckKind::Http, |(kind, ..)| kind);
        let run = async {
            match kind {
                CheckKind::Http => self.run(spec, assertions, start, &mut phases).await,
                other => {
                    self.run_kind(other, spec, assertions, start, &mut phases)
                        .await
                }
            }
        };
        let failure = match tokio::time::timeout(spec.timeout, run).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(Failure::new(
                Outcome::Timeout,
                format!(
                    "no complete response within {}",
                    humantime::format_duration(spec.timeout)
                ),
            )),
        };
        let (outcome, error, results) = match failure {
            Ok(done) => done,
            Err(failure) if phases.status.is_none() => {
                verdict::without_response(spec, assertions, start.elapsed(), failure)
            }
            Err(failure) => (failure.outcome, Some(failure.message), Vec::new()),
        };
        let total_us = micros(start.elapsed());
        metrics::counter!(crate::metric::CHECKS, "outcome" => outcome.as_str()).increment(1);
        metrics::histogram!(crate::metric::CHECK_DURATION).record(total_us as f64 / 1e6);
        ProbeResult {
            event_id: Uuid::now_v7(),
            monitor_id: spec.id.clone(),
            region: self.region.clone(),
            agent: self.agent.clone(),
            scheduled_at,
            event_time,
            method: match kind {
                CheckKind::Http => spec.method.as_str().to_owned(),
                other => other.as_str().to_ascii_uppercase(),
            },
            url: spec.url.clone(),
            status_code: phases.status,
            outcome,
            error,
            timings: phases.timings(total_us),
            response_size: phases.size,
            assertions: results,
            tls_cert_expiry: phases.cert_expiry,
            steps: Vec::new(),
        }
    }

    async fn run(
        &self,
        spec: &MonitorSpec,
        assertions: &Assertions,
        start: Instant,
        phases: &mut Phases,
    ) -> Result<verdict::Verdict, Failure> {
        let request = self.prepare(spec).await?;
        let exchange = self.fetch(spec, request, phases).await?;
        Ok(self.verdict(spec, assertions, start, phases, &exchange))
    }

    /// The verdict on an exchange: its assertions, or the body that was too large.
    pub(super) fn verdict(
        &self,
        spec: &MonitorSpec,
        assertions: &Assertions,
        start: Instant,
        phases: &Phases,
        exchange: &Exchange,
    ) -> verdict::Verdict {
        if exchange.too_large {
            return (
                Outcome::BodyTooLarge,
                Some(format!(
                    "response body exceeds the {} byte limit",
                    self.config.body_limit
                )),
                Vec::new(),
            );
        }
        let response = Response::new(
            Some(exchange.status),
            start.elapsed(),
            &exchange.headers,
            &exchange.body,
            phases.expires_in_ms(),
        );
        verdict::with_response(spec, assertions, &response, exchange.status)
    }

    /// Sends `request`, following redirects as `spec` allows; `phases` are the last hop's.
    pub(super) async fn fetch(
        &self,
        spec: &MonitorSpec,
        mut request: Prepared,
        phases: &mut Phases,
    ) -> Result<Exchange, Failure> {
        let mut hops = 0u8;
        let exchange = loop {
            *phases = Phases::default();
            let exchange = self.exchange(&request, phases).await?;
            let redirect = spec.follow_redirects
                && matches!(exchange.status, 301 | 302 | 303 | 307 | 308)
                && !exchange.too_large;
            let location = exchange
                .headers
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok());
            match location {
                Some(location) if redirect => {
                    if hops >= self.config.max_redirects {
                        return Err(Failure::new(
                            Outcome::HttpStatus,
                            format!("more than {} redirects", self.config.max_redirects),
                        ));
                    }
                    hops += 1;
                    let next = request.url.join(location).map_err(|e| {
                        Failure::new(
                            Outcome::InvalidUrl,
                            format!("invalid redirect location {location:?}: {e}"),
                        )
                    })?;
                    let hop =
                        self.egress
                            .follow(&request.url, &next, spec.allow_insecure_redirects)?;
                    if !hop.same_origin {
                        let secret = &request.secret_headers;
                        request.headers.retain(|(name, _)| {
                            !CREDENTIAL_HEADERS.contains(name) && !secret.contains(name)
                        });
                    }
                    request.url = next;
                    let becomes_get = exchange.status == 303
                        || (matches!(exchange.status, 301 | 302)
                            && request.method == http::Method::POST);
                    if becomes_get {
                        request.method = http::Method::GET;
                        request.body = None;
                    }
                }
                _ => break exchange,
            }
        };
        Ok(exchange)
    }

    /// A TCP connection to `url` through the egress policy (timed in `phases`), without
    /// Nagle's delay, and the address it reached.
    pub(super) async fn connect(
        &self,
        url: &Url,
        phases: &mut Phases,
    ) -> Result<(tokio::net::TcpStream, Option<IpAddr>), Failure> {
        let tcp = self.egress.connect(url, &mut phases.net).await?;
        // Nagle would delay the request line; errors here only cost latency.
        let _ignored = tcp.set_nodelay(true);
        let ip = tcp.peer_addr().ok().map(|a| a.ip());
        Ok((tcp, ip))
    }

    /// One request over one fresh connection, opened through the egress policy.
    async fn exchange(&self, request: &Prepared, phases: &mut Phases) -> Result<Exchange, Failure> {
        let url = &request.url;
        let (tcp, _) = self.connect(url, phases).await?;
        if url.scheme() == "https" {
            let tls = self
                .handshake(url, tcp, request.tls_verify, Alpn::Http1, phases)
                .await?;
            self.send(tls, request, phases).await
        } else {
            self.send(tcp, request, phases).await
        }
    }

    /// A TLS handshake over `tcp` with `url`'s host, offering `alpn`, verifying the
    /// certificate when `verify`; times it and notes the leaf certificate's expiry in `phases`.
    pub(super) async fn handshake(
        &self,
        url: &Url,
        tcp: tokio::net::TcpStream,
        verify: bool,
        alpn: Alpn,
        phases: &mut Phases,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Failure> {
        let connector = match (alpn, verify) {
            (Alpn::Http1, true) => &self.verifying,
            (Alpn::Http1, false) => &self.insecure,
            (Alpn::H2, true) => &self.verifying_h2,
            (Alpn::H2, false) => &self.insecure_h2,
        };
        let server_name = match url.host() {
            Some(url::Host::Ipv4(ip)) => ServerName::IpAddress(IpAddr::V4(ip).into()),
            Some(url::Host::Ipv6(ip)) => ServerName::IpAddress(IpAddr::V6(ip).into()),
            Some(url::Host::Domain(name)) => {
                ServerName::try_from(name.to_owned()).map_err(|e| {
                    Failure::new(Outcome::InvalidUrl, format!("invalid host {name:?}: {e}"))
                })?
            }
            None => return Err(Failure::new(Outcome::InvalidUrl, "url has no host")),
        };
        let t = Instant::now();
        let tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| Failure::new(Outcome::Tls, format!("tls handshake failed: {e}")))?;
        phases.tls_us = Some(micros(t.elapsed()));
        phases.cert_expiry = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(leaf_expiry);
        Ok(tls)
    }

    async fn send<T>(
        &self,
        io: T,
        request: &Prepared,
        phases: &mut Phases,
    ) -> Result<Exchange, Failure>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let protocol = |e: hyper::Error| Failure::new(Outcome::Protocol, format!("http: {e}"));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(protocol)?;
        // The connection task ends when the exchange does (the request says `Connection: close`),
        // or when the check is dropped on timeout, which closes the socket.
        let driver = tokio::spawn(async move {
            let _closed = connection.await;
        });
        let _abort_on_drop = AbortOnDrop(driver);

        let url = &request.url;
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(target)
            .header(header::HOST, host)
            .header(header::CONNECTION, "close");
        let has = |name: &HeaderName| request.headers.iter().any(|(n, _)| n == name);
        if !has(&header::USER_AGENT) {
            builder = builder.header(header::USER_AGENT, &self.config.user_agent);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let body = request.body.clone().unwrap_or_default();
        let http_request = builder
            .body(Full::new(body))
            .map_err(|e| Failure::new(Outcome::InvalidUrl, format!("invalid request: {e}")))?;

        let t = Instant::now();
        let response = sender.send_request(http_request).await.map_err(protocol)?;
        phases.ttfb_us = Some(micros(t.elapsed()));
        let status = response.status().as_u16();
        phases.status = Some(status);
        let (parts, mut body) = response.into_parts();
        let limit = self.config.body_limit;
        let mut buf = Vec::new();
        let mut read: u64 = 0;
        let mut too_large = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(protocol)?;
            if let Ok(data) = frame.into_data() {
                read += data.len() as u64;
                phases.size = Some(read);
                if read > limit {
                    too_large = true;
                    break;
                }
                buf.extend_from_slice(&data);
            }
        }
        phases.size = Some(read);
        Ok(Exchange {
            status,
            headers: parts.headers,
            body: buf,
            too_large,
        })
    }
}

/// Aborts the connection task when the exchange ends or is dropped.
#[derive(Debug)]
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
