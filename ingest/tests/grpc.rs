//! The gRPC health check kind against tonic's implementation of `grpc.health.v1` served over
//! HTTP/2 by hyper, in plaintext and over TLS: serving, not serving, unknown service, a server
//! without the health service, metadata (credentials), refused, and the egress policy.

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "support/check.rs"]
mod support;
#[path = "support/tls.rs"]
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tonic_health::ServingStatus;
use vigil_ingest::config::CheckerConfig;
use vigil_ingest::probe::Checker;
use vigil_schema::{MonitorSpec, Outcome, ProbeResult};

use self::support::{assert_ok, check_with, loopback, spec};

/// What the test server answers with.
#[derive(Clone, Copy, PartialEq)]
enum Serve {
    /// tonic's health service: the server and `ok.Svc` serving, `down.Svc` not.
    Health,
    /// The health service, only to requests with `authorization: Bearer s3cret`.
    HealthWithToken,
    /// A gRPC server without the health service (`Unimplemented`).
    NoHealth,
}

/// A gRPC server on loopback (HTTP/2 by hyper), over TLS with ALPN `h2` when `tls`.
async fn server(serve: Serve, tls: bool) -> SocketAddr {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("ok.Svc", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("down.Svc", ServingStatus::NotServing)
        .await;
    let acceptor = tls.then(|| {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let mut config = tls::server_config(params);
        config.alpn_protocols = vec![b"h2".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    });
    let service = tower::service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let mut health = health.clone();
        async move {
            let authorized = request
                .headers()
                .get("authorization")
                .is_some_and(|v| v == "Bearer s3cret");
            let response = match serve {
                Serve::NoHealth => tonic::Status::unimplemented("no such service").into_http(),
                Serve::HealthWithToken if !authorized => {
                    tonic::Status::unauthenticated("token required").into_http()
                }
                _ => {
                    use tower::Service;
                    health.call(request).await?
                }
            };
            Ok::<_, Infallible>(response)
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                let _done = match acceptor {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(tls) => http2.serve_connection(TokioIo::new(tls), service).await,
                        Err(_) => return,
                    },
                    None => http2.serve_connection(TokioIo::new(stream), service).await,
                };
            });
        }
    });
    addr
}

async fn check(url: &str, extra: serde_json::Value) -> ProbeResult {
    check_with(&loopback(), &spec(url, extra)).await
}

#[tokio::test]
async fn serving_service_and_server() {
    let addr = server(Serve::Health, false).await;
    let r = check(
        &format!("grpc://{addr}?service=ok.Svc"),
        serde_json::json!({"assertions": [
            "[BODY] == SERVING", "[CONNECTED] == true", "[IP] == 127.0.0.1",
            "[RESPONSE_TIME] < 2s"
        ]}),
    )
    .await;
    assert_ok(&r);
    assert_eq!(r.method, "GRPC");
    assert_eq!(r.status_code, None);
    assert_eq!(r.assertions[0].actual.as_deref(), Some("SERVING"));
    assert_eq!(r.response_size, Some(7));
    assert!(r.timings.connect_us.is_some() && r.timings.ttfb_us.is_some());
    assert_eq!(r.timings.tls_us, None);

    // No service: the server as a whole; no assertions: serving is what passes.
    let r = check(&format!("grpc://{addr}"), serde_json::json!({})).await;
    assert_ok(&r);
    let r = check(
        &format!("grpc://localhost:{}/?service=ok.Svc", addr.port()),
        serde_json::json!({}),
    )
    .await;
    assert_ok(&r);
    assert!(r.timings.dns_us.is_some(), "a name is resolved");
}

#[tokio::test]
async fn not_serving_and_unknown_services_fail_unless_expected() {
    let addr = server(Serve::Health, false).await;
    let r = check(
        &format!("grpc://{addr}?service=down.Svc"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.outcome, Outcome::HttpStatus, "{:?}", r.error);
    assert_eq!(
        r.error.as_deref(),
        Some("health of service \"down.Svc\": NOT_SERVING")
    );

    // A drained server, expected: the condition on [BODY] decides.
    let r = check(
        &format!("grpc://{addr}?service=down.Svc"),
        serde_json::json!({"assertions": ["[BODY] == NOT_SERVING"]}),
    )
    .await;
    assert_ok(&r);

    // Serving expected, not serving seen: the assertion fails with the value.
    let r = check(
        &format!("grpc://{addr}?service=down.Svc"),
        serde_json::json!({"assertions": ["[BODY] == SERVING"]}),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Assertion);
    assert_eq!(r.assertions[0].actual.as_deref(), Some("NOT_SERVING"));

    // The server answers NOT_FOUND for a service it does not know.
    let r = check(
        &format!("grpc://{addr}?service=nope.Svc"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.outcome, Outcome::HttpStatus, "{:?}", r.error);
    assert_eq!(
        r.error.as_deref(),
        Some("health of service \"nope.Svc\": SERVICE_UNKNOWN")
    );
}

#[tokio::test]
async fn over_tls() {
    let addr = server(Serve::Health, true).await;
    let url = format!("grpcs://localhost:{}?service=ok.Svc", addr.port());
    let r = check(
        &url,
        serde_json::json!({"tls_verify": false, "assertions": [
            "[BODY] == SERVING", "[CERTIFICATE_EXPIRATION] > 48h"
        ]}),
    )
    .await;
    assert_ok(&r);
    assert!(r.timings.tls_us.is_some());
    assert_eq!(
        r.tls_cert_expiry.unwrap().to_string(),
        "2035-01-01T00:00:00Z"
    );

    // Verified (the default): a self-signed certificate is not trusted.
    let r = check(&url, serde_json::json!({})).await;
    assert_eq!(r.outcome, Outcome::Tls, "{:?}", r.error);

    // Plaintext against the TLS port: no HTTP/2 there.
    let r = check(&format!("grpc://{addr}"), serde_json::json!({})).await;
    assert_eq!(r.outcome, Outcome::Protocol, "{:?}", r.error);
}

#[tokio::test]
async fn credentials_go_out_as_metadata() {
    let addr = server(Serve::HealthWithToken, false).await;
    let url = format!("grpc://{addr}?service=ok.Svc");
    let r = check(
        &url,
        serde_json::json!({"auth": {"type": "bearer", "token": "s3cret"}}),
    )
    .await;
    assert_ok(&r);
    let r = check(
        &url,
        serde_json::json!({"headers": {"authorization": "Bearer s3cret"}}),
    )
    .await;
    assert_ok(&r);

    let r = check(&url, serde_json::json!({})).await;
    assert_eq!(r.outcome, Outcome::Protocol, "{:?}", r.error);
    assert_eq!(
        r.error.as_deref(),
        Some("grpc.health.v1.Health/Check: Unauthenticated: token required")
    );
}

#[tokio::test]
async fn failures() {
    let addr = server(Serve::NoHealth, false).await;
    let r = check(&format!("grpc://{addr}"), serde_json::json!({})).await;
    assert_eq!(r.outcome, Outcome::Protocol, "{:?}", r.error);
    assert_eq!(
        r.error.as_deref(),
        Some("grpc.health.v1.Health/Check: Unimplemented: no such service")
    );

    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let r = check(&format!("grpc://{closed}"), serde_json::json!({})).await;
    assert_eq!(r.outcome, Outcome::Connect, "{:?}", r.error);
    let r = check(
        &format!("grpc://{closed}"),
        serde_json::json!({"assertions": ["[CONNECTED] == false"]}),
    )
    .await;
    assert_ok(&r);

    // Credentials go as metadata: an API key in the query is refused when written.
    let query_key: MonitorSpec = serde_json::from_value(serde_json::json!({
        "id": "g", "name": "G", "url": "grpcs://api.example.com",
        "auth": {"type": "api_key", "name": "key", "value": "${secret:K}", "in": "query"},
    }))
    .unwrap();
    let errors = query_key.validate().unwrap_err();
    assert_eq!(errors[0].field, "auth.in", "{errors:?}");

    // The default policy: loopback is not a public address.
    let default = Checker::new(CheckerConfig::default(), "local".into(), "test".into());
    let r = check_with(
        &default,
        &spec(&format!("grpc://{addr}"), serde_json::json!({})),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Blocked, "{:?}", r.error);
}
