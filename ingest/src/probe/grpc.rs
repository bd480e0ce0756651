//! The gRPC health check (`grpc://host:port?service=S`, `grpcs://host:port?service=S`): one
//! `grpc.health.v1.Health/Check` call over HTTP/2 (prior knowledge in plaintext, ALPN `h2` over
//! TLS) on a connection opened through the egress policy, like every other kind.
//!
//! - `[BODY]` is the serving status: `SERVING`, `NOT_SERVING`, `UNKNOWN`, or `SERVICE_UNKNOWN`
//!   when the server does not know the service (it answers `NOT_FOUND`, as the protocol says).
//! - Anything but `SERVING` fails the check (outcome `http_status`, the message naming the
//!   service and its status) unless a condition looks at `[BODY]`: `[BODY] == NOT_SERVING`
//!   expects a drained server.
//! - Any other gRPC error fails with outcome `protocol`, its code and message: `Unimplemented`
//!   (the server has no health service), `Unavailable`, a peer that does not speak HTTP/2, ….
//! - The monitor's headers and credentials go out as request metadata; the timings are DNS,
//!   connect, TLS and the call itself (first byte).

use std::time::Instant;

use http::header::{HeaderValue, USER_AGENT};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use vigil_schema::{MonitorSpec, Outcome};

use super::condition::Condition;
use super::egress::micros;
use super::http::verdict::{Verdict, judge};
use super::http::{AbortOnDrop, Alpn, Assertions, Checker, Failure, Phases, Prepared};

/// Largest health-check answer read (the protocol's is a few bytes).
const MAX_MESSAGE: usize = 64 * 1024;

/// The serving status as `[BODY]` shows it.
fn status_name(status: ServingStatus) -> &'static str {
    match status {
        ServingStatus::Serving => "SERVING",
        ServingStatus::NotServing => "NOT_SERVING",
        ServingStatus::ServiceUnknown => "SERVICE_UNKNOWN",
        ServingStatus::Unknown => "UNKNOWN",
    }
}

impl Checker {
    pub(super) async fn grpc(
        &self,
        spec: &MonitorSpec,
        assertions: &Assertions,
        start: Instant,
        phases: &mut Phases,
    ) -> Result<Verdict, Failure> {
        // `grpc://` rides on `http://`, `grpcs://` on `https://`: the same expansion, egress
        // policy and credentials as an HTTP check.
        let (scheme, rest) = spec.url.split_once("://").unwrap_or(("grpc", &spec.url));
        let carrier = if scheme.eq_ignore_ascii_case("grpcs") {
            "https"
        } else {
            "http"
        };
        let prepared = self
            .prepare_url(spec, &format!("{carrier}://{rest}"))
            .await?;
        // From the URL as written (validated; a service name holds no reference), so nothing
        // expanded can end up in an error.
        let service = vigil_schema::grpc_service(&spec.url)
            .map_err(|e| Failure::new(Outcome::InvalidUrl, format!("url: {e}")))?;
        let (tcp, ip) = self.connect(&prepared.url, phases).await?;
        let status = if carrier == "https" {
            let tls = self
                .handshake(&prepared.url, tcp, prepared.tls_verify, Alpn::H2, phases)
                .await?;
            self.health_check(tls, &prepared, &service, phases).await?
        } else {
            self.health_check(tcp, &prepared, &service, phases).await?
        };
        phases.size = Some(status.len() as u64);
        let response = super::socket::observed(start, status.as_bytes(), phases, ip);
        let failing = (status != "SERVING").then(|| {
            let what = if service.is_empty() {
                "the server".to_owned()
            } else {
                format!("service {service:?}")
            };
            (Outcome::HttpStatus, format!("health of {what}: {status}"))
        });
        Ok(judge(
            spec,
            assertions,
            &response,
            failing,
            Condition::checks_body,
        ))
    }

    /// One `Check` call over `io`: the serving status, or the gRPC error as a failure.
    async fn health_check<S>(
        &self,
        io: S,
        prepared: &Prepared,
        service: &str,
        phases: &mut Phases,
    ) -> Result<&'static str, Failure>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let t = Instant::now();
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .map_err(|e| {
                    Failure::new(Outcome::Protocol, format!("http/2 handshake failed: {e}"))
                })?;
        // The connection's task ends with the check (or its timeout).
        let _driver = AbortOnDrop(tokio::spawn(async move {
            let _closed = connection.await;
        }));
        let url = &prepared.url;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or_default();
        let origin: http::Uri = format!("{}://{host}:{port}", url.scheme())
            .parse()
            .map_err(|e| Failure::new(Outcome::InvalidUrl, format!("url: {e}")))?;
        let headers = prepared.headers.clone();
        let agent = HeaderValue::from_str(&self.config.user_agent).ok();
        let call = tower::service_fn(move |mut request: http::Request<tonic::body::Body>| {
            for (name, value) in &headers {
                // The protocol's own headers stay the client's.
                let reserved = matches!(name.as_str(), "content-type" | "te")
                    || name.as_str().starts_with("grpc-");
                if !reserved {
                    request.headers_mut().append(name.clone(), value.clone());
                }
            }
            if let Some(agent) = &agent {
                request.headers_mut().insert(USER_AGENT, agent.clone());
            }
            let mut sender = sender.clone();
            async move { sender.send_request(request).await }
        });
        // A health answer is a few bytes: a larger message is refused rather than buffered.
        let mut client =
            HealthClient::with_origin(call, origin).max_decoding_message_size(MAX_MESSAGE);
        let answer = client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await;
        phases.ttfb_us = Some(micros(t.elapsed()));
        match answer {
            Ok(response) => Ok(status_name(response.into_inner().status())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok("SERVICE_UNKNOWN"),
            Err(status) => Err(Failure::new(
                Outcome::Protocol,
                format!(
                    "grpc.health.v1.Health/Check: {:?}: {}",
                    status.code(),
                    status.message()
                ),
            )),
        }
    }
}
