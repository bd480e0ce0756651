//! Local servers for the check kinds, written against the wire formats rather than with the
//! libraries the checker uses where that is short: a TCP echo server, a TCP server that never
//! replies, a TLS server with a generated certificate, a DNS server answering from a fixed zone
//! (RFC 1035 messages built byte by byte, over UDP and TCP), and a WebSocket echo server.

use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// A TCP server that sends back every chunk it reads, upper-cased.
pub(crate) async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let upper = buf[..n].to_ascii_uppercase();
                    if stream.write_all(&upper).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// A TCP server that accepts and then says nothing.
pub(crate) async fn silent() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// A TLS server for `localhost` and 127.0.0.1 whose self-signed certificate is valid until
/// `not_after` (y, m, d), or expired since 2020 when `None`.
pub(crate) async fn tls(not_after: Option<(i32, u8, u8)>) -> SocketAddr {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "vigil test");
    match not_after {
        Some((y, m, d)) => params.not_after = rcgen::date_time_ymd(y, m, d),
        None => {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
    }
    let acceptor = crate::tls::acceptor(params);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let mut buf = [0u8; 1024];
                    if let Ok(n) = tls.read(&mut buf).await {
                        let _echoed = tls.write_all(&buf[..n]).await;
                    }
                }
            });
        }
    });
    addr
}

/// A WebSocket server that answers each text message with `echo: <message>`.
pub(crate) async fn websocket() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                        let reply = format!("echo: {}", text.as_str());
                        if ws.send(reply.into()).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Record types of the zone.
const A: u16 = 1;
const MX: u16 = 15;
const TXT: u16 = 16;

/// The zone: `example.test` A 192.0.2.1 and 192.0.2.2, MX `10 mail.example.test.`;
/// `text.test` TXT "v=spf1 -all"; `big.test` 40 A records (truncated over UDP, whole over
/// TCP); `broken.test` SERVFAIL; anything else NXDOMAIN.
fn answer(query: &[u8], udp: bool) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // The question: labels up to the root, then type and class.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = &query[12..at + 4];
    let name = labels.join(".");

    let mut records: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut rcode = 0u8;
    match (name.as_str(), qtype) {
        ("example.test", A) => {
            records.push((A, vec![192, 0, 2, 1]));
            records.push((A, vec![192, 0, 2, 2]));
        }
        ("example.test", MX) => {
            let mut rdata = 10u16.to_be_bytes().to_vec();
            for label in ["mail", "example", "test"] {
                rdata.push(label.len() as u8);
                rdata.extend_from_slice(label.as_bytes());
            }
            rdata.push(0);
            records.push((MX, rdata));
        }
        ("text.test", TXT) => {
            let text = b"v=spf1 -all";
            let mut rdata = vec![text.len() as u8];
            rdata.extend_from_slice(text);
            records.push((TXT, rdata));
        }
        ("big.test", A) => {
            for i in 0..40u8 {
                records.push((A, vec![198, 51, 100, i]));
            }
        }
        ("broken.test", _) => rcode = 2,
        ("example.test" | "text.test" | "big.test", _) => {}
        _ => rcode = 3,
    }
    let truncated = udp && records.len() > 20;
    if truncated {
        records.clear();
    }
    let mut out = Vec::new();
    out.extend_from_slice(&query[..2]);
    // QR, opcode 0, AA, TC, RD copied; RA; rcode.
    let rd = query[2] & 1;
    out.push(0x84 | if truncated { 0x02 } else { 0 } | rd);
    out.push(0x80 | rcode);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for (rtype, rdata) in records {
        out.extend_from_slice(&[0xc0, 12]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&60u32.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}

/// A DNS server for the zone above on one UDP and one TCP port of the same number.
pub(crate) async fn dns() -> SocketAddr {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let Ok(tcp) = TcpListener::bind(addr).await else {
            continue;
        };
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                if let Some(reply) = answer(&buf[..n], true) {
                    let _sent = udp.send_to(&reply, peer).await;
                }
            }
        });
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                tokio::spawn(async move {
                    let Ok(len) = stream.read_u16().await else {
                        return;
                    };
                    let mut query = vec![0u8; usize::from(len)];
                    if stream.read_exact(&mut query).await.is_err() {
                        return;
                    }
                    if let Some(reply) = answer(&query, false) {
                        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&reply);
                        let _sent = stream.write_all(&framed).await;
                    }
                });
            }
        });
        return addr;
    }
}
