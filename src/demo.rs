//! The demo target `vigil up --demo` runs on loopback, and the monitors that probe it.
//!
//! One small HTTP API served twice: over plain HTTP, and over TLS with a freshly generated
//! self-signed certificate that expires in [`CERT_LIFETIME_DAYS`] days. Its endpoints behave like
//! a real service so the first windows already show something worth looking at:
//!
//! - `/api/fast`: log-normal latency with a median of 40 ms;
//! - `/api/slow`: median 350 ms;
//! - `/api/flaky`: like `fast`, but exactly one request in every block of 50 (at a random place
//!   in the block) fails with 503, so availability converges on 98%;
//! - `/api/degrading`: like `fast`, except during minutes 0–4 and 30–34 of every hour (UTC),
//!   when its median rises to 300 ms with a wider spread;
//! - `/`: the list of endpoints;
//! - `/openapi.json`: the description of all of the above (OpenAPI 3.1), for
//!   `vigil import openapi`;
//! - `grpc.health.v1.Health` over HTTP/2 on both ports: the server and [`GRPC_SERVICE`] report
//!   `SERVING`.
//!
//! [`MONITORS`] (the `demo/monitors.yaml` next to this file) names the target as `{{demo}}` and
//! `{{demo_tls}}`; [`monitors_yaml`] fills in the bound addresses.

use std::f64::consts::TAU;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub(crate) mod dns;
mod openapi;
pub(crate) mod receiver;

/// The demo monitors, with `{{demo}}`, `{{demo_tls}}` (URLs), `{{demo_addr}}`,
/// `{{demo_tls_addr}}` (host:port), `{{demo_dns}}` (the DNS server's host:port) and
/// `{{demo_host}}` (the address) standing for the target's addresses.
pub(crate) const MONITORS: &str = include_str!("demo/monitors.yaml");

/// Days until the TLS listener's certificate expires, counted from start-up.
pub(crate) const CERT_LIFETIME_DAYS: i64 = 5;

/// The service the demo's gRPC health checks ask about.
pub(crate) const GRPC_SERVICE: &str = "vigil.demo.Api";

/// One request in this many to `/api/flaky` fails.
const FLAKY_BLOCK: u64 = 50;

/// Where the demo target listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DemoTarget {
    /// `http://127.0.0.1:port`.
    pub(crate) http: String,
    /// `https://127.0.0.1:port`.
    pub(crate) https: String,
    /// `127.0.0.1:port` of the DNS server (UDP).
    pub(crate) dns: String,
    /// Expiry of the HTTPS certificate (RFC 3339 date).
    pub(crate) cert_expires: String,
    /// Signing secret of the demo's webhook channel (the receiver verifies with it).
    pub(crate) webhook_secret: String,
}

/// The demo monitors file with the target's addresses filled in.
pub(crate) fn monitors_yaml(target: &DemoTarget) -> String {
    let strip = |url: &str| url.split_once("://").map_or(url, |(_, a)| a).to_owned();
    let host = strip(&target.http)
        .parse::<SocketAddr>()
        .map_or_else(|_| "127.0.0.1".to_owned(), |a| a.ip().to_string());
    MONITORS
        .replace("{{demo_host}}", &host)
        .replace("{{demo_tls_addr}}", &strip(&target.https))
        .replace("{{demo_addr}}", &strip(&target.http))
        .replace("{{demo_dns}}", &target.dns)
        .replace("{{demo_tls}}", &target.https)
        .replace("{{demo}}", &target.http)
}

/// The demo target with its listeners bound, ready to [`serve`](Demo::serve).
pub(crate) struct Demo {
    /// The bound addresses.
    pub(crate) target: DemoTarget,
    http: TcpListener,
    https: TcpListener,
    dns: tokio::net::UdpSocket,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Demo {
    /// Binds the listeners (failing with the address when one is taken) and generates the
    /// certificate.
    pub(crate) async fn bind(
        http: SocketAddr,
        https: SocketAddr,
        dns: SocketAddr,
    ) -> anyhow::Result<Self> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("demo target: cannot listen on {addr} (port in use?)"))
        };
        let http = bind(http).await?;
        let https = bind(https).await?;
        let dns = tokio::net::UdpSocket::bind(dns)
            .await
            .with_context(|| format!("demo target: cannot listen on {dns}/udp (port in use?)"))?;
        let not_after = OffsetDateTime::now_utc() + time::Duration::days(CERT_LIFETIME_DAYS);
        let acceptor = tls_acceptor(not_after)?;
        let target = DemoTarget {
            http: format!("http://{}", http.local_addr()?),
            https: format!("https://{}", https.local_addr()?),
            dns: dns.local_addr()?.to_string(),
            cert_expires: not_after.date().to_string(),
            webhook_secret: receiver::new_secret(),
        };
        Ok(Self {
            target,
            http,
            https,
            dns,
            acceptor,
        })
    }

    /// The egress allow-list entries of the listeners: exactly their addresses and ports.
    pub(crate) fn egress_allow(&self) -> io::Result<Vec<vigil_schema::AllowEntry>> {
        let http = self.http.local_addr()?;
        // ICMP to the target's address: port 0, which no TCP or UDP listener has.
        let addrs = [
            http,
            self.https.local_addr()?,
            self.dns.local_addr()?,
            SocketAddr::new(http.ip(), 0),
        ];
        Ok(addrs
            .into_iter()
            .map(vigil_schema::AllowEntry::socket)
            .collect())
    }

    /// Serves both listeners until `token` is cancelled, then lets in-flight requests finish.
    pub(crate) async fn serve(self, token: CancellationToken) -> anyhow::Result<()> {
        let (health, grpc) = tonic_health::server::health_reporter();
        health
            .set_service_status(GRPC_SERVICE, tonic_health::ServingStatus::Serving)
            .await;
        let app = router(Arc::new(Behaviour::new(seed())))
            .route_service("/grpc.health.v1.Health/{*method}", grpc)
            .merge(receiver::router(&self.target.webhook_secret)?);
        let tls_addr = self.https.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let handshakes = accept_tls(self.https, self.acceptor, tx, token.clone());
        let dns = dns::serve(self.dns, token.clone());
        let plain = axum::serve(self.http, app.clone())
            .with_graceful_shutdown(token.clone().cancelled_owned());
        let tls = axum::serve(
            TlsListener {
                connections: rx,
                local: tls_addr,
            },
            app,
        )
        .with_graceful_shutdown(token.cancelled_owned());
        info!(http = %self.target.http, https = %self.target.https, "Demo target listening.");
        let (plain, tls, (), ()) = tokio::join!(
            std::future::IntoFuture::into_future(plain),
            std::future::IntoFuture::into_future(tls),
            handshakes,
            dns
        );
        plain.context("demo target (http) failed")?;
        tls.context("demo target (https) failed")?;
        Ok(())
    }
}

fn seed() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, valid from a day ago until
/// `not_after`.
fn tls_acceptor(not_after: OffsetDateTime) -> anyhow::Result<TlsAcceptor> {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .context("demo certificate parameters")?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = not_after;
    let key = rcgen::KeyPair::generate().context("demo certificate key")?;
    let cert = params
        .self_signed(&key)
        .context("demo certificate signature")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("demo TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .context("demo TLS configuration")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TCP connections and completes TLS handshakes off the accept loop, so one slow or
/// broken client cannot hold up the others.
async fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    connections: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    token: CancellationToken,
) {
    loop {
        // Cancel-safe: `accept` loses nothing when the other branch wins.
        let accepted = tokio::select! {
            () = token.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "Demo target: accept failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let connections = connections.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _closed = connections.send((tls, peer)).await;
                }
                Ok(Err(error)) => debug!(%peer, %error, "Demo target: TLS handshake failed."),
                Err(_) => debug!(%peer, "Demo target: TLS handshake timed out."),
            }
        });
    }
}

/// Hands axum the connections whose handshake completed.
struct TlsListener {
    connections: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The handshake loop stopped (shutdown): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Fast,
    Slow,
    Flaky,
    Degrading,
}

impl Endpoint {
    const ALL: [Endpoint; 4] = [
        Endpoint::Fast,
        Endpoint::Slow,
        Endpoint::Flaky,
        Endpoint::Degrading,
    ];

    fn name(self) -> &'static str {
        match self {
            Endpoint::Fast => "fast",
            Endpoint::Slow => "slow",
            Endpoint::Flaky => "flaky",
            Endpoint::Degrading => "degrading",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Median and log-space standard deviation of the latency at `unix_secs`.
    fn latency_profile(self, unix_secs: u64) -> (f64, f64) {
        match self {
            Endpoint::Fast | Endpoint::Flaky => (40.0, 0.3),
            Endpoint::Slow => (350.0, 0.25),
            Endpoint::Degrading if degraded_at(unix_secs) => (300.0, 0.5),
            Endpoint::Degrading => (40.0, 0.3),
        }
    }
}

/// Whether `/api/degrading` is degraded at `unix_secs`: minutes 0–4 and 30–34 of every hour.
fn degraded_at(unix_secs: u64) -> bool {
    (unix_secs / 60) % 30 < 5
}

/// A SplitMix64 generator: tiny, fast, statistically fine for simulated latencies.
#[derive(Debug)]
struct Rng(AtomicU64);

impl Rng {
    fn next_u64(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .0
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1).
    fn unit(&self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Uniform in `0..n`.
    fn below(&self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Standard normal (Box–Muller).
    fn normal(&self) -> f64 {
        let (u1, u2) = (self.unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }
}

/// The target's shared state: randomness and the flaky endpoint's position in its block.
#[derive(Debug)]
struct Behaviour {
    rng: Rng,
    /// (requests served in the current block, index of the failing request in it).
    flaky: Mutex<(u64, u64)>,
}

impl Behaviour {
    fn new(seed: u64) -> Self {
        let rng = Rng(AtomicU64::new(seed));
        let fail_at = rng.below(FLAKY_BLOCK);
        Self {
            rng,
            flaky: Mutex::new((0, fail_at)),
        }
    }

    /// A latency drawn from the endpoint's log-normal distribution, kept within 1 ms … 5 s.
    fn latency(&self, endpoint: Endpoint, unix_secs: u64) -> Duration {
        let (median_ms, sigma) = endpoint.latency_profile(unix_secs);
        let ms = median_ms * (sigma * self.rng.normal()).exp();
        Duration::from_secs_f64(ms.clamp(1.0, 5_000.0) / 1_000.0)
    }

    /// Whether this `/api/flaky` request fails: exactly one per block of [`FLAKY_BLOCK`].
    fn flaky_fails(&self) -> bool {
        let mut state = self.flaky.lock().unwrap_or_else(PoisonError::into_inner);
        let (served, fail_at) = *state;
        let fails = served == fail_at;
        *state = if served + 1 == FLAKY_BLOCK {
            (0, self.rng.below(FLAKY_BLOCK))
        } else {
            (served + 1, fail_at)
        };
        fails
    }
}

#[derive(Debug, Serialize)]
struct Reply {
    status: &'static str,
    endpoint: &'static str,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Index {
    service: &'static str,
    endpoints: Vec<String>,
}

fn router(behaviour: Arc<Behaviour>) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .route("/api/{endpoint}", get(endpoint))
        .route("/ws", get(websocket))
        .with_state(behaviour)
}

async fn index() -> axum::Json<Index> {
    axum::Json(Index {
        service: "vigil demo target",
        endpoints: Endpoint::ALL
            .iter()
            .map(|e| format!("/api/{}", e.name()))
            .collect(),
    })
}

/// A WebSocket that answers each text message with `echo: <message>`.
async fn websocket(upgrade: axum::extract::WebSocketUpgrade) -> Response {
    use axum::extract::ws::Message;
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Text(text) = message {
                let reply = format!("echo: {}", text.as_str());
                if socket.send(Message::Text(reply.into())).await.is_err() {
                    break;
                }
            }
        }
    })
}

async fn endpoint(State(behaviour): State<Arc<Behaviour>>, Path(name): Path<String>) -> Response {
    let Some(endpoint) = Endpoint::parse(&name) else {
        return (StatusCode::NOT_FOUND, "no such demo endpoint\n").into_response();
    };
    let unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let latency = behaviour.latency(endpoint, unix_secs);
    let fails = endpoint == Endpoint::Flaky && behaviour.flaky_fails();
    tokio::time::sleep(latency).await;
    let latency_ms = (latency.as_secs_f64() * 1e4).round() / 10.0;
    let (status, reply) = if fails {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Reply {
                status: "DOWN",
                endpoint: endpoint.name(),
                latency_ms,
                error: Some("injected failure (one request in 50)"),
            },
        )
    } else {
        (
            StatusCode::OK,
            Reply {
                status: "UP",
                endpoint: endpoint.name(),
                latency_ms,
                error: None,
            },
        )
    };
    (status, axum::Json(reply)).into_response()
}

#[cfg(test)]
mod tests;
