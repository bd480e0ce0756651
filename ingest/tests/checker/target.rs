//! A local target for checks: a tiny HTTP/1.1 server over plain TCP and over TLS with a
//! self-signed certificate, whose routes control delays, status codes and bodies.
//!
//! Routes: `/ok` (JSON), `/delay/{ms}`, `/status/{code}`, `/bytes/{n}`, `/hang` (never
//! answers), `/garbage` (not HTTP), `/redirect` (302 to `/ok`), `/echo` (request line and
//! headers as the body), `/redirect-echo/{same|away}` (302 to `/echo` on this or another
//! origin), `/redirect-to?{location}` (302 to the location given as the query), `/token` (OAuth 2
//! token endpoint counting its calls). Every request is counted in `requests`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub(crate) struct Target {
    pub(crate) http: String,
    pub(crate) https: String,
    pub(crate) token_calls: Arc<AtomicUsize>,
    pub(crate) requests: Arc<AtomicUsize>,
}

/// Expiry of the self-signed certificate.
pub(crate) const CERT_NOT_AFTER: (i32, u8, u8) = (2031, 6, 1);

impl Target {
    pub(crate) async fn start() -> Self {
        let token_calls = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = format!("http://{}", plain.local_addr().unwrap());
        let calls = Arc::clone(&token_calls);
        let counted = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let (stream, _) = plain.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, Arc::clone(&calls)));
            }
        });

        let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let https = format!("https://{}", tls.local_addr().unwrap());
        let acceptor = acceptor();
        let calls = Arc::clone(&token_calls);
        let counted = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let (stream, _) = tls.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let calls = Arc::clone(&calls);
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve(stream, calls).await;
                    }
                });
            }
        });
        Self {
            http,
            https,
            token_calls,
            requests,
        }
    }
}

/// An address where nothing listens.
pub(crate) async fn refused_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn acceptor() -> TlsAcceptor {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let (y, m, d) = CERT_NOT_AFTER;
    params.not_after = rcgen::date_time_ymd(y, m, d);
    crate::tls::acceptor(params)
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, token_calls: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let route = path.split('?').next().unwrap_or("/").to_owned();
    let segments: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    let (status, content_type, body): (u16, &str, Vec<u8>) = match segments.as_slice() {
        ["ok"] => (
            200,
            "application/json",
            br#"{"status":"UP","items":[1,2],"data":[{"id":7}]}"#.to_vec(),
        ),
        ["delay", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            (200, "text/plain", b"slow".to_vec())
        }
        ["status", code] => (code.parse().unwrap(), "text/plain", b"status".to_vec()),
        ["bytes", n] => (200, "text/plain", vec![b'x'; n.parse().unwrap()]),
        ["hang"] => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        ["garbage"] => {
            let _ignored = stream.write_all(b"THIS IS NOT HTTP\r\n\r\n").await;
            let _ignored = stream.shutdown().await;
            return;
        }
        ["redirect"] => {
            let response = "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\
                            Connection: close\r\n\r\n";
            let _ignored = stream.write_all(response.as_bytes()).await;
            let _ignored = stream.shutdown().await;
            return;
        }
        ["echo"] => (200, "text/plain", head.clone().into_bytes()),
        ["redirect-to"] => {
            let location = path.split_once('?').map(|(_, q)| q).unwrap_or("/");
            let response = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            );
            let _ignored = stream.write_all(response.as_bytes()).await;
            let _ignored = stream.shutdown().await;
            return;
        }
        ["redirect-echo", to] => {
            // `same`: to /echo on this origin; `away`: to the same server named `localhost`,
            // which is another origin.
            let host = head
                .lines()
                .find_map(|l| l.strip_prefix("host: "))
                .unwrap_or_default()
                .to_owned();
            let location = match *to {
                "same" => "/echo".to_owned(),
                _ => format!("http://{}/echo", host.replace("127.0.0.1", "localhost")),
            };
            let response = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            );
            let _ignored = stream.write_all(response.as_bytes()).await;
            let _ignored = stream.shutdown().await;
            return;
        }
        ["token"] => {
            let n = token_calls.fetch_add(1, Ordering::SeqCst) + 1;
            let body = format!(r#"{{"access_token":"tok-{n}","expires_in":3600}}"#);
            (200, "application/json", body.into_bytes())
        }
        _ => (404, "text/plain", b"not found".to_vec()),
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ignored = stream.write_all(response.as_bytes()).await;
    let _ignored = stream.write_all(&body).await;
    let _ignored = stream.shutdown().await;
}
