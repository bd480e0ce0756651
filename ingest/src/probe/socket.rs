//! Check kinds beyond one HTTP request (the kind is the URL's scheme, see
//! [`CheckKind`](vigil_schema::CheckKind)). Each connects through the egress policy like an HTTP
//! check, is timed phase by phase, and is judged by the same conditions:
//!
//! - **TCP** (`tcp://host:port`): a connect. With a `body`, the body is sent (references
//!   expanded) and `[BODY]` is the first reply read (up to the body limit); a peer that closes
//!   without replying gives an empty `[BODY]`.
//! - **TLS** (`tls://host:port`): a connect and a handshake, verified unless `tls_verify` is
//!   off (an invalid chain, an expired certificate or a name mismatch then fails with outcome
//!   `tls`). `[BODY]` is a JSON description of the session: `protocol` (`TLSv1.3`), `cipher`,
//!   `verified`, and the leaf certificate's `subject`, `issuer`, `sans`, `not_before`,
//!   `not_after`, `serial`, with `chain_length`; `[CERTIFICATE_EXPIRATION]` is the time left.
//! - **WebSocket** (`ws://`, `wss://`): the upgrade handshake with the monitor's headers and
//!   credentials (`[STATUS]` 101). With a `body`, the body is sent as a text message and `[BODY]`
//!   is the first message received.
//! - **DNS** (`dns://resolver/name?type=T`): see [`super::dns`].
//! - **ICMP** (`icmp://host?count=N`): see [`super::icmp`].
//! - **gRPC health** (`grpc://host:port?service=S`, `grpcs://…`): see [`super::grpc`].
//!
//! `[CONNECTED]` is true once the connection is up; `[IP]` is the address connected to.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Instant;

use futures::{SinkExt, StreamExt};
use http::HeaderMap;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};
use url::Url;
use vigil_schema::{CheckKind, DnsQuery, IcmpTarget, MonitorSpec, Outcome, Timestamp};

use super::condition::{Condition, Response};
use super::dns;
use super::http::verdict::{Verdict, judge};
use super::http::{Alpn, Assertions, Checker, Failure, Phases};

/// No headers: what a check of a kind without them shows `[HEADER]`.
static NO_HEADERS: LazyLock<HeaderMap> = LazyLock::new(HeaderMap::new);

/// What a connected check of a kind without a status or headers of its own observed.
pub(super) fn observed<'a>(
    start: Instant,
    body: &'a [u8],
    phases: &Phases,
    ip: Option<IpAddr>,
) -> Response<'a> {
    let mut response = Response::new(
        None,
        start.elapsed(),
        &NO_HEADERS,
        body,
        phases.expires_in_ms(),
    );
    response.connected = true;
    response.ip = ip;
    response
}

impl Checker {
    /// The monitor's URL with its references expanded.
    fn expanded_url(&self, spec: &MonitorSpec) -> Result<String, Failure> {
        self.references
            .expand(&spec.url)
            .map_err(|e| Failure::new(Outcome::InvalidUrl, format!("url: {e}")))
    }

    /// The monitor's URL, expanded and read by `parse` (`DnsQuery::parse`, …).
    fn parsed_url<T>(
        &self,
        spec: &MonitorSpec,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<T, Failure> {
        parse(&self.expanded_url(spec)?)
            .map_err(|e| Failure::new(Outcome::InvalidUrl, format!("url: {e}")))
    }

    /// `tcp://` and `tls://` URLs are read like `http://` ones (the WHATWG host rules the egress
    /// policy was checked with at write time), their port required.
    fn stream_url(&self, spec: &MonitorSpec) -> Result<Url, Failure> {
        let invalid = |m: String| Failure::new(Outcome::InvalidUrl, m);
        let expanded = self.expanded_url(spec)?;
        let rest = expanded
            .split_once("://")
            .map(|(_, rest)| rest)
            .ok_or_else(|| invalid(format!("url: no scheme in {}", spec.url)))?;
        let url =
            Url::parse(&format!("http://{rest}")).map_err(|e| invalid(format!("url: {e}")))?;
        if url.host().is_none() || url.port().is_none() {
            return Err(invalid(format!(
                "url: a tcp:// or tls:// url is host:port, got {}",
                spec.url
            )));
        }
        Ok(url)
    }
}

fn io_failure(what: &str) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::new(Outcome::Connect, format!("{what}: {e}"))
}

impl Checker {
    /// Runs a check of a kind other than HTTP.
    pub(super) async fn run_kind(
        &self,
        kind: CheckKind,
        spec: &MonitorSpec,
        assertions: &Assertions,
        start: Instant,
        phases: &mut Phases,
    ) -> Result<Verdict, Failure> {
        match kind {
            CheckKind::Http => Err(Failure::new(Outcome::InvalidUrl, "not a socket check")),
            CheckKind::Tcp | CheckKind::Tls => {
                self.stream(kind, spec, assertions, start, phases).await
            }
            CheckKind::WebSocket => self.websocket(spec, assertions, start, phases).await,
            CheckKind::Dns => self.dns(spec, assertions, start, phases).await,
            CheckKind::Icmp => self.icmp(spec, assertions, start, phases).await,
            CheckKind::Grpc => self.grpc(spec, assertions, start, phases).await,
        }
    }

    async fn stream(
        &self,
        kind: CheckKind,
        spec: &MonitorSpec,
        assertions: &Assertions,
        start: Instant,
        phases: &mut Phases,
    ) -> Result<Verdict, Failure> {
        let url = self.stream_url(spec)?;
        let send = match &spec.body {
            Some(body) => Some(
                self.references
                    .expand(body)
                    .map_err(|e| Failure::new(Outcome::InvalidUrl, format!("body: {e}")))?,
            ),
            None => None,
        };
        let (tcp, ip) = self.connect(&url, phases).await?;
        if kind == CheckKind::Tcp {
            let body = self.exchange_bytes(tcp, send.as_deref(), phases).await?;
            let response = observed(start, &body, phases, ip);
            return Ok(judge(spec, assertions, &response, None, |_| false));
        }
        let tls = self
            .handshake(&url, tcp, spec.tls_verify, Alpn::Http1, phases)
            .await?;
        let session = describe_session(tls.get_ref().1, spec.tls_verify);
        if send.is_some() {
            // Bytes sent over TLS: the reply is read like TCP's, but `[BODY]` stays the session.
            self.exchange_bytes(tls, send.as_deref(), phases).await?;
        }
        let body = session.to_string();
        let response = observed(start, body.as_bytes(), phases, ip);
        Ok(judge(spec, assertions, &response, None, |_| false))
    }

    /// Sends `send` (if any) and reads the first reply, up to the body limit.
    async fn exchange_bytes<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut io: S,
        send: Option<&str>,
        phases: &mut Phases,
    ) -> Result<Vec<u8>, Failure> {
        let Some(send) = send else {
            return Ok(Vec::new());
        };
        let t = Instant::now();
        io.write_all(send.as_bytes())
            .await
            .map_err(io_failure("cannot send the body"))?;
        io.flush()
            .await
            .map_err(io_failure("cannot send the body"))?;
        let limit = usize::try_from(self.config.body_limit).unwrap_or(usize::MAX);
        let mut buf = vec![0u8; limit.clamp(1, 64 * 1024)];
        let n = io
            .read(&mut buf)
            .await
            .map_err(io_failure("cannot read the reply"))?;
        phases.ttfb_us = Some(super::egress::micros(t.elapsed()));
        phases.size = Some(n as u64);
        buf.truncate(n);
        Ok(buf)
    }

    async fn websocket(
        &self,
        spec: &MonitorSpec,
        assertions: &Assertions,
        start: Instant,
        phases: &mut Phases,
    ) -> Result<Verdict, Failure> {
        let prepared = self.prepare(spec).await?;
        let (tcp, ip) = self.connect(&prepared.url, phases).await?;
        let (headers, body) = if prepared.url.scheme() == "wss" {
            let tls = self
                .handshake(&prepared.url, tcp, prepared.tls_verify, Alpn::Http1, phases)
                .await?;
            self.upgrade(tls, &prepared, phases).await?
        } else {
            self.upgrade(tcp, &prepared, phases).await?
        };
        let mut response = Response::new(
            phases.status,
            start.elapsed(),
            &headers,
            &body,
            phases.expires_in_ms(),
        );
        response.ip = ip;
        Ok(judge(spec, assertions, &response, None, |_| false))
    }

    /// The upgrade handshake, then the message exchange: (response headers, first reply).
    async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
        prepared: &super::http::Prepared,
        phases: &mut Phases,
    ) -> Result<(HeaderMap, Vec<u8>), Failure> {
        let protocol =
            |e: tungstenite::Error| Failure::new(Outcome::Protocol, format!("websocket: {e}"));
        let mut request = prepared
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| Failure::new(Outcome::InvalidUrl, format!("url: {e}")))?;
        for (name, value) in &prepared.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
        if !request.headers().contains_key(http::header::USER_AGENT)
            && let Ok(agent) = http::HeaderValue::from_str(&self.config.user_agent)
        {
            request
                .headers_mut()
                .insert(http::header::USER_AGENT, agent);
        }
        let t = Instant::now();
        let limit = usize::try_from(self.config.body_limit).unwrap_or(usize::MAX);
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(limit.max(1)))
            .max_frame_size(Some(limit.max(1)));
        let (mut socket, response) =
            match tokio_tungstenite::client_async_with_config(request, io, Some(config)).await {
                Ok(done) => done,
                Err(tungstenite::Error::Http(response)) => {
                    let status = response.status().as_u16();
                    phases.status = Some(status);
                    return Err(Failure::new(
                        Outcome::HttpStatus,
                        format!("websocket upgrade refused: http status {status}"),
                    ));
                }
                Err(e) => return Err(protocol(e)),
            };
        phases.ttfb_us = Some(super::egress::micros(t.elapsed()));
        phases.status = Some(response.status().as_u16());
        let mut body = Vec::new();
        if let Some(send) = &prepared.body {
            let text = String::from_utf8_lossy(send).into_owned();
            socket.send(Message::text(text)).await.map_err(protocol)?;
            while let Some(message) = socket.next().await {
                match message {
                    Ok(Message::Text(text)) => body = text.as_bytes().to_vec(),
                    Ok(Message::Binary(bytes)) => body = bytes.to_vec(),
                    Ok(Message::Close(_)) => {}
                    Ok(_) => continue,
                    Err(tungstenite::Error::Capacity(e)) => {
                        return Err(Failure::new(
                            Outcome::BodyTooLarge,
                            format!("websocket message exceeds the {limit} byte limit: {e}"),
                        ));
                    }
                    Err(e) => return Err(protocol(e)),
                }
                break;
            }
            phases.size = Some(body.len() as u64);
        }
        // A polite close; the check does not wait for the peer's.
        let _closing = socket.close(None).await;
        Ok((response.headers().clone(), body))
    }

    async fn icmp(
        &self,
        spec: &MonitorSpec,
        assertions: &Assertions,
        start: Instant,
        phases: &mut Phases,
    ) -> Result<Verdict, Failure> {
        let target = self.parsed_url(spec, IcmpTarget::parse)?;
        // Leave a little of the timeout for the verdict: the pings share the rest.
        let budget = spec.timeout.mul_f64(0.9);
        let echoes = self
            .pingers
            .ping(&self.egress, &target, budget, &mut phases.net)
            .await?;
        phases.ttfb_us = echoes.average_us();
        let body = echoes.describe().to_string();
        phases.size = Some(body.len() as u64);
        let mut response = observed(start, body.as_bytes(), phases, Some(echoes.ip));
        response.connected = !echoes.rtts.is_empty();
        let failing = echoes.rtts.is_empty().then(|| {
            (
                Outcome::Timeout,
                format!("no echo reply from {} ({} sent)", echoes.ip, echoes.sent),
            )
        });
        Ok(judge(
            spec,
            assertions,
            &response,
            failing,
            Condition::checks_connected,
        ))
    }

    async fn dns(
        &self,
        spec: &MonitorSpec,
        assertions: &Assertions,
        start: Instant,
        phases: &mut Phases,
    ) -> Result<Verdict, Failure> {
        let query = self.parsed_url(spec, DnsQuery::parse)?;
        let answer = dns::query(&self.egress, &query, &mut phases.net).await?;
        let body = answer.records.join("\n");
        phases.size = Some(body.len() as u64);
        let mut response = observed(start, body.as_bytes(), phases, Some(answer.resolver.ip()));
        response.dns_rcode = Some(answer.rcode.clone());
        let failing = if answer.rcode != "NOERROR" {
            Some((
                Outcome::Dns,
                format!(
                    "{} {}: {}",
                    query.record_type.as_str(),
                    query.name,
                    answer.rcode
                ),
            ))
        } else if answer.records.is_empty() {
            Some((
                Outcome::Dns,
                format!("{} {}: no record", query.record_type.as_str(), query.name),
            ))
        } else {
            None
        };
        Ok(judge(
            spec,
            assertions,
            &response,
            failing,
            Condition::checks_rcode,
        ))
    }
}

/// The TLS session and its leaf certificate, as `[BODY]` shows them.
fn describe_session(conn: &rustls::ClientConnection, verified: bool) -> serde_json::Value {
    let protocol = conn.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        other => format!("{other:?}"),
    });
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()));
    let chain = conn.peer_certificates().unwrap_or_default();
    let mut value = serde_json::json!({
        "protocol": protocol,
        "cipher": cipher,
        "verified": verified,
        "chain_length": chain.len(),
    });
    if let (Some(leaf), Some(obj)) = (chain.first(), value.as_object_mut()) {
        obj.extend(describe_certificate(leaf));
    }
    value
}

fn describe_certificate(der: &CertificateDer<'_>) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return out;
    };
    let instant = |t: x509_parser::time::ASN1Time| {
        Timestamp::from_millis(t.timestamp().saturating_mul(1000)).to_string()
    };
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(n) => Some((*n).to_owned()),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes)
                            .ok()
                            .map(|b| IpAddr::from(b).to_string()),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .ok()
                            .map(|b| IpAddr::from(b).to_string()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    out.insert("subject".into(), cert.subject().to_string().into());
    out.insert("issuer".into(), cert.issuer().to_string().into());
    out.insert("sans".into(), sans.into());
    out.insert("serial".into(), cert.raw_serial_as_string().into());
    out.insert(
        "not_before".into(),
        instant(cert.validity().not_before).into(),
    );
    out.insert(
        "not_after".into(),
        instant(cert.validity().not_after).into(),
    );
    out
}
