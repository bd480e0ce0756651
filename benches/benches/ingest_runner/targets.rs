//! Local targets for every check kind of the runner bench: HTTP (one JSON response per
//! connection), a TCP echo, TLS (a generated certificate), DNS (UDP, every A query answered
//! with 127.0.0.1), a WebSocket echo, gRPC health (tonic's service over axum's HTTP/2); ICMP goes
//! to 127.0.0.1 itself.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// A check kind of the bench and the monitor fields that check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Http,
    Tcp,
    Tls,
    Dns,
    Ws,
    Icmp,
    Grpc,
    Steps,
}

impl Kind {
    pub(crate) fn parse(s: &str) -> Option<Kind> {
        Some(match s.trim() {
            "http" => Kind::Http,
            "tcp" => Kind::Tcp,
            "tls" => Kind::Tls,
            "dns" => Kind::Dns,
            "ws" => Kind::Ws,
            "icmp" => Kind::Icmp,
            "grpc" => Kind::Grpc,
            "steps" => Kind::Steps,
            _ => return None,
        })
    }
}

/// The running targets.
pub(crate) struct Targets {
    pub(crate) http: SocketAddr,
    pub(crate) tcp: SocketAddr,
    pub(crate) tls: SocketAddr,
    pub(crate) dns: SocketAddr,
    pub(crate) ws: SocketAddr,
    pub(crate) grpc: SocketAddr,
}

impl Targets {
    pub(crate) async fn start() -> Self {
        Self {
            http: http().await,
            tcp: echo().await,
            tls: tls().await,
            dns: dns().await,
            ws: websocket().await,
            grpc: grpc().await,
        }
    }

    /// The allow-list: exactly the targets, and 127.0.0.1 for ICMP (port 0).
    pub(crate) fn allow(&self) -> Vec<vigil_schema::AllowEntry> {
        let icmp = SocketAddr::from(([127, 0, 0, 1], 0));
        [
            self.http, self.tcp, self.tls, self.dns, self.ws, self.grpc, icmp,
        ]
        .into_iter()
        .map(vigil_schema::AllowEntry::socket)
        .collect()
    }

    /// The monitor fields (url, body, assertions) checking `kind`.
    pub(crate) fn monitor(&self, kind: Kind) -> serde_json::Value {
        match kind {
            Kind::Http => serde_json::json!({
                "url": format!("http://{}/health", self.http),
                "assertions": ["[STATUS] == 200", "[BODY].status == UP"],
            }),
            Kind::Tcp => serde_json::json!({
                "url": format!("tcp://{}", self.tcp), "body": "ping",
                "assertions": ["[BODY] == ping"],
            }),
            Kind::Tls => serde_json::json!({
                "url": format!("tls://{}", self.tls), "tls_verify": false,
                "assertions": ["[BODY].protocol == TLSv1.3", "[CERTIFICATE_EXPIRATION] > 48h"],
            }),
            Kind::Dns => serde_json::json!({
                "url": format!("dns://{}/bench.test?type=A", self.dns),
                "assertions": ["[DNS_RCODE] == NOERROR", "[BODY] == 127.0.0.1"],
            }),
            Kind::Ws => serde_json::json!({
                "url": format!("ws://{}/", self.ws), "body": "ping",
                "assertions": ["[STATUS] == 101", "[BODY] == ping"],
            }),
            Kind::Icmp => serde_json::json!({
                "url": "icmp://127.0.0.1?count=1",
                "assertions": ["[BODY].loss == 0"],
            }),
            Kind::Steps => serde_json::json!({
                "url": format!("http://{}/", self.http),
                "steps": [
                    {"name": "first", "url": "/health", "assertions": ["[BODY].status == UP"],
                     "extract": {"status": "[BODY].status"}},
                    {"name": "second", "url": "/health?seen=${steps.first.status}",
                     "assertions": ["[STATUS] == 200"]},
                ],
            }),
            Kind::Grpc => serde_json::json!({
                "url": format!("grpc://{}?service=bench.Svc", self.grpc),
                "assertions": ["[BODY] == SERVING"],
            }),
        }
    }
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

async fn http() -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                    if read == buf.len() {
                        return;
                    }
                }
                let _written = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                          Content-Length: 15\r\nConnection: close\r\n\r\n{\"status\":\"UP\"}",
                    )
                    .await;
            });
        }
    });
    addr
}

async fn echo() -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn tls() -> SocketAddr {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let mut buf = [0u8; 64];
                    let _closed = tls.read(&mut buf).await;
                }
            });
        }
    });
    addr
}

/// Answers every query with one A record, 127.0.0.1 (RFC 1035 message built by hand).
async fn dns() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            let query = &buf[..n];
            if n < 12 {
                continue;
            }
            // The question ends after its labels, type and class.
            let mut at = 12;
            while at < n && query[at] != 0 {
                at += 1 + usize::from(query[at]);
            }
            let end = at + 5;
            if end > n {
                continue;
            }
            let mut reply = Vec::with_capacity(end + 16);
            reply.extend_from_slice(&query[..2]);
            reply.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
            reply.extend_from_slice(&query[12..end]);
            reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
            let _sent = socket.send_to(&reply, peer).await;
        }
    });
    addr
}

async fn grpc() -> SocketAddr {
    let (health, service) = tonic_health::server::health_reporter();
    health
        .set_service_status("bench.Svc", tonic_health::ServingStatus::Serving)
        .await;
    let app = axum::Router::new().route_service("/grpc.health.v1.Health/{*method}", service);
    let (listener, addr) = listener().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn websocket() -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() && ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}
