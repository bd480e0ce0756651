//! Check kinds other than HTTP (TCP, TLS, DNS, WebSocket, ICMP) against real local servers, their
//! failures included: refused, timeout, blocked by the egress policy, NXDOMAIN, SERVFAIL, a
//! truncated answer retried over TCP, an untrusted or expired certificate, a refused upgrade.

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "kinds/servers.rs"]
mod servers;
#[path = "support/check.rs"]
mod support;
#[path = "support/tls.rs"]
mod tls;

use vigil_ingest::config::CheckerConfig;
use vigil_ingest::probe::Checker;
use vigil_schema::{EgressPolicy, MonitorSpec, Outcome, ProbeResult};

use self::support::{actual, assert_ok, check_with, loopback, spec};

async fn check(spec: &MonitorSpec) -> ProbeResult {
    check_with(&loopback(), spec).await
}

#[tokio::test]
async fn tcp_connects_sends_and_reads_the_reply() {
    let addr = servers::echo().await;
    let r = check(&spec(
        &format!("tcp://{addr}"),
        serde_json::json!({
            "body": "hello\n",
            "assertions": ["[CONNECTED] == true", "[BODY] == pat(HELLO*)", "[IP] == 127.0.0.1",
                           "[RESPONSE_TIME] < 2s"],
        }),
    ))
    .await;
    assert_ok(&r);
    assert_eq!(r.method, "TCP");
    assert_eq!(actual(&r, 1), Some("HELLO\n"));
    assert_eq!(r.response_size, Some(6));
    assert_eq!(r.status_code, None);
    assert!(r.timings.connect_us.is_some() && r.timings.ttfb_us.is_some());
    assert_eq!(r.timings.dns_us, None, "an IP literal is not resolved");

    // Connect only: no body, nothing read.
    let r = check(&spec(
        &format!("tcp://localhost:{}", addr.port()),
        serde_json::json!({}),
    ))
    .await;
    assert_ok(&r);
    assert!(r.timings.dns_us.is_some(), "a name is resolved");
}

#[tokio::test]
async fn tcp_failures() {
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let r = check(&spec(&format!("tcp://{closed}"), serde_json::json!({}))).await;
    assert_eq!(r.outcome, Outcome::Connect, "{:?}", r.error);
    assert!(r.error.unwrap().contains("cannot connect"));

    // Expected to be down: `[CONNECTED] == false` holds and the check passes.
    let r = check(&spec(
        &format!("tcp://{closed}"),
        serde_json::json!({"assertions": ["[CONNECTED] == false"]}),
    ))
    .await;
    assert_ok(&r);

    let (silent, _server) = servers::silent().await;
    let r = check(&spec(
        &format!("tcp://{silent}"),
        serde_json::json!({"body": "ping", "timeout": "300ms"}),
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Timeout, "{:?}", r.error);
    assert!(
        r.timings.connect_us.is_some(),
        "the connect is still reported"
    );

    let r = check(&spec(
        &format!("tcp://{}", servers::echo().await),
        serde_json::json!({"body": "x", "assertions": ["[BODY] == Y"]}),
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Assertion);
    assert_eq!(actual(&r, 0), Some("X"));

    // The default policy: loopback is not a public address.
    let default = Checker::new(CheckerConfig::default(), "local".into(), "test".into());
    let r = check_with(
        &default,
        &spec(&format!("tcp://{silent}"), serde_json::json!({})),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Blocked, "{:?}", r.error);
}

#[tokio::test]
async fn tls_describes_the_session_and_the_certificate() {
    let addr = servers::tls(Some((2031, 6, 1))).await;
    let url = format!("tls://localhost:{}", addr.port());
    let r = check(&spec(
        &url,
        serde_json::json!({
            "tls_verify": false,
            "assertions": [
                "[BODY].protocol == TLSv1.3",
                "[BODY].sans[0] == localhost",
                "[BODY].sans[1] == 127.0.0.1",
                "[BODY].issuer == pat(*vigil test*)",
                "[BODY].not_after == 2031-06-01T00:00:00Z",
                "[BODY].verified == false",
                "[BODY].chain_length == 1",
                "[CERTIFICATE_EXPIRATION] > 48h",
                "[CONNECTED] == true",
            ],
        }),
    ))
    .await;
    assert_ok(&r);
    assert_eq!(r.method, "TLS");
    assert!(r.timings.tls_us.is_some());
    let expiry = r.tls_cert_expiry.unwrap();
    assert_eq!(expiry.to_string(), "2031-06-01T00:00:00Z");

    // Verified (the default): a self-signed certificate is not trusted.
    let r = check(&spec(&url, serde_json::json!({}))).await;
    assert_eq!(r.outcome, Outcome::Tls, "{:?}", r.error);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("invalid peer certificate"),
        "{:?}",
        r.error
    );

    // Bytes over TLS: the reply is read, `[BODY]` stays the session.
    let r = check(&spec(
        &url,
        serde_json::json!({"tls_verify": false, "body": "hi", "assertions": ["has([BODY].cipher) == true"]}),
    ))
    .await;
    assert_ok(&r);
    assert!(r.timings.ttfb_us.is_some());
}

#[tokio::test]
async fn tls_expired_certificate() {
    let addr = servers::tls(None).await;
    let r = check(&spec(
        &format!("tls://127.0.0.1:{}", addr.port()),
        serde_json::json!({"tls_verify": false, "assertions": ["[CERTIFICATE_EXPIRATION] > 0"]}),
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Assertion, "{:?}", r.error);
    let shown = actual(&r, 0).unwrap();
    assert!(
        shown.starts_with('-'),
        "time left is negative, got {shown:?}"
    );
    assert_eq!(
        r.tls_cert_expiry.unwrap().to_string(),
        "2020-01-01T00:00:00Z"
    );
}

#[tokio::test]
async fn dns_answers_rcodes_and_truncation() {
    let server = servers::dns().await;
    let dns = |path: &str| format!("dns://{server}/{path}");

    let r = check(&spec(
        &dns("example.test?type=A"),
        serde_json::json!({"assertions": ["[DNS_RCODE] == NOERROR", "[BODY] == pat(*192.0.2.2*)",
                                          "[IP] == 127.0.0.1"]}),
    ))
    .await;
    assert_ok(&r);
    assert_eq!(r.method, "DNS");
    assert_eq!(actual(&r, 1), Some("192.0.2.1\n192.0.2.2"));
    assert!(r.timings.dns_us.is_some());

    let r = check(&spec(
        &dns("Example.TEST.?type=mx"),
        serde_json::json!({"assertions": ["[BODY] == 10 mail.example.test."]}),
    ))
    .await;
    assert_ok(&r);

    let r = check(&spec(
        &dns("text.test?type=TXT"),
        serde_json::json!({"assertions": ["[BODY] == pat(*spf1*)"]}),
    ))
    .await;
    assert_ok(&r);

    // NXDOMAIN fails the check by itself, unless a condition expects it.
    let r = check(&spec(&dns("missing.test"), serde_json::json!({}))).await;
    assert_eq!(r.outcome, Outcome::Dns);
    assert_eq!(r.error.as_deref(), Some("A missing.test: NXDOMAIN"));
    let r = check(&spec(
        &dns("missing.test"),
        serde_json::json!({"assertions": ["[DNS_RCODE] == NXDOMAIN"]}),
    ))
    .await;
    assert_ok(&r);

    let r = check(&spec(&dns("broken.test"), serde_json::json!({}))).await;
    assert_eq!(r.error.as_deref(), Some("A broken.test: SERVFAIL"));

    // NOERROR without a record of the type.
    let r = check(&spec(&dns("text.test?type=A"), serde_json::json!({}))).await;
    assert_eq!(r.outcome, Outcome::Dns);
    assert_eq!(r.error.as_deref(), Some("A text.test: no record"));

    // 40 records do not fit the server's UDP answers: retried over TCP.
    let r = check(&spec(
        &dns("big.test"),
        serde_json::json!({"assertions": ["[BODY] == pat(*198.51.100.39*)"]}),
    ))
    .await;
    assert_ok(&r);
    assert_eq!(actual(&r, 0).unwrap().lines().count(), 40);

    // A resolver on loopback is not public: the default policy refuses it.
    let default = Checker::new(CheckerConfig::default(), "local".into(), "test".into());
    let r = check_with(&default, &spec(&dns("example.test"), serde_json::json!({}))).await;
    assert_eq!(r.outcome, Outcome::Blocked, "{:?}", r.error);

    // A resolver that does not answer.
    let quiet = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let r = check(&spec(
        &format!("dns://{}/example.test", quiet.local_addr().unwrap()),
        serde_json::json!({"timeout": "300ms"}),
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Timeout, "{:?}", r.error);
}

#[tokio::test]
async fn websocket_upgrades_and_exchanges_a_message() {
    let addr = servers::websocket().await;
    let r = check(&spec(
        &format!("ws://{addr}/socket"),
        serde_json::json!({
            "body": "ping",
            "assertions": ["[STATUS] == 101", "[BODY] == echo: ping", "[HEADER].upgrade == pat(*ebsocket)"],
        }),
    ))
    .await;
    assert_ok(&r);
    assert_eq!(r.method, "WEBSOCKET");
    assert_eq!(r.status_code, Some(101));
    assert_eq!(r.response_size, Some(10));

    // Not a WebSocket endpoint: the upgrade is refused with the server's status.
    let http = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 2048];
                let _request = s.read(&mut buf).await;
                let _sent = s
                    .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        addr
    };
    let r = check(&spec(&format!("ws://{http}/"), serde_json::json!({}))).await;
    assert_eq!(r.outcome, Outcome::HttpStatus, "{:?}", r.error);
    assert_eq!(r.status_code, Some(404));
}

/// Whether this machine lets the tests open an ICMP socket (datagram or raw), asked of the
/// socket API directly.
fn icmp_permitted() -> bool {
    use socket2::{Domain, Protocol, Socket, Type};
    [Type::DGRAM, Type::RAW]
        .into_iter()
        .any(|t| Socket::new(Domain::IPV4, t, Some(Protocol::ICMPV4)).is_ok())
}

#[tokio::test]
async fn icmp_round_trips_and_loss() {
    if !icmp_permitted() {
        // Neither socket opens on this machine: every ICMP check says so, with outcome
        // `blocked` and the setting to change.
        let r = check(&spec("icmp://127.0.0.1", serde_json::json!({}))).await;
        assert_eq!(r.outcome, Outcome::Blocked, "{:?}", r.error);
        assert!(
            r.error.as_deref().unwrap().contains("ping_group_range"),
            "{:?}",
            r.error
        );
        return;
    }
    let r = check(&spec(
        "icmp://127.0.0.1?count=3",
        serde_json::json!({"assertions": ["[CONNECTED] == true", "[BODY].received == 3",
                                          "[BODY].loss == 0", "[IP] == 127.0.0.1",
                                          "[BODY].rtt_max_ms < 1000"]}),
    ))
    .await;
    assert_ok(&r);
    assert_eq!(r.method, "ICMP");
    assert!(r.timings.ttfb_us.is_some(), "the average round trip");

    // By name, resolved and vetted like any target.
    let r = check(&spec("icmp://localhost?count=1", serde_json::json!({}))).await;
    assert_ok(&r);
    assert!(r.timings.dns_us.is_some());

    // An allowed address that does not answer (this host ignores echo requests to multicast
    // addresses, net.ipv4.icmp_echo_ignore_broadcasts): every request is lost.
    let policy = EgressPolicy {
        allow: vec!["224.0.0.1".parse().unwrap()],
        env_allow: Vec::new(),
    };
    let lossy =
        Checker::new(CheckerConfig::default(), "local".into(), "test".into()).with_policy(policy);
    let r = check_with(
        &lossy,
        &spec(
            "icmp://224.0.0.1?count=2",
            serde_json::json!({"timeout": "400ms"}),
        ),
    )
    .await;
    assert!(
        matches!(r.outcome, Outcome::Timeout | Outcome::Connect),
        "{r:?}"
    );

    // Loopback is not public, and an allow-list entry with a port other than 0 does not
    // cover ICMP.
    let default = Checker::new(CheckerConfig::default(), "local".into(), "test".into());
    let r = check_with(&default, &spec("icmp://127.0.0.1", serde_json::json!({}))).await;
    assert_eq!(r.outcome, Outcome::Blocked, "{:?}", r.error);
    let port = EgressPolicy {
        allow: vec!["127.0.0.1:8090".parse().unwrap()],
        env_allow: Vec::new(),
    };
    let only_port =
        Checker::new(CheckerConfig::default(), "local".into(), "test".into()).with_policy(port);
    let r = check_with(&only_port, &spec("icmp://127.0.0.1", serde_json::json!({}))).await;
    assert_eq!(r.outcome, Outcome::Blocked, "{:?}", r.error);
}

#[tokio::test]
async fn invalid_kind_urls_are_rejected_with_the_field() {
    for (url, why) in [
        ("tcp://host.example", "needs a port"),
        (
            "dns://1.1.1.1/example.org?type=BOGUS",
            "unknown record type",
        ),
        ("gopher://x/", "must start with"),
    ] {
        let spec: MonitorSpec =
            serde_json::from_value(serde_json::json!({"id": "k", "name": "K", "url": url}))
                .unwrap();
        let errors = spec.validate().unwrap_err();
        assert_eq!(errors[0].field, "url", "{url}");
        assert!(
            errors[0].reason.contains(why),
            "{url}: {}",
            errors[0].reason
        );
    }
}
