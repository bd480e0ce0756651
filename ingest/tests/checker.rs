//! The HTTP checker against a local target: timings are ordered and plausible, every outcome
//! kind is produced, and secrets and credentials reach the target. The target listens on
//! loopback, so these checkers allow-list it (`127.0.0.1` and `localhost`); `egress.rs` covers
//! what the default policy blocks.

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "checker/target.rs"]
mod target;
#[path = "support/tls.rs"]
mod tls;

use target::{CERT_NOT_AFTER, Target, refused_address};
use vigil_ingest::config::CheckerConfig;
use vigil_ingest::probe::{Assertions, Checker};
use vigil_schema::{EgressPolicy, MonitorSpec, Outcome, ProbeResult, Timestamp};

fn spec(url: &str, extra: serde_json::Value) -> MonitorSpec {
    let mut value = serde_json::json!({"id": "target", "name": "Target", "url": url});
    if let (Some(obj), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
        obj.extend(extra);
    }
    serde_json::from_value(value).unwrap()
}

fn checker() -> Checker {
    let config = CheckerConfig {
        body_limit: 1024,
        ..CheckerConfig::default()
    };
    let policy = EgressPolicy {
        allow: vec!["127.0.0.1".parse().unwrap(), "localhost".parse().unwrap()],
        env_allow: vec!["CARGO_PKG_NAME".into(), "VIGIL_TEST_SURELY_UNSET".into()],
    };
    Checker::new(config, "local".into(), "test".into()).with_policy(policy)
}

async fn check(spec: &MonitorSpec) -> ProbeResult {
    check_with(&checker(), spec).await
}

async fn check_with(checker: &Checker, spec: &MonitorSpec) -> ProbeResult {
    let assertions = Assertions::of(spec);
    let result = checker.check(spec, &assertions, Timestamp::now()).await;
    assert_eq!(result.monitor_id, spec.id);
    assert_eq!(result.url, spec.url, "the url is reported as configured");
    let t = result.timings;
    let phases: u64 = [t.dns_us, t.connect_us, t.tls_us, t.ttfb_us]
        .iter()
        .flatten()
        .sum();
    assert!(
        phases <= t.total_us,
        "phases {phases} µs exceed total {t:?}"
    );
    result
}

#[tokio::test]
async fn ok_check_measures_every_phase() {
    let target = Target::start().await;
    let url = format!("{}/ok", target.http.replace("127.0.0.1", "localhost"));
    let result = check(&spec(&url, serde_json::json!({}))).await;
    assert_eq!(result.outcome, Outcome::Ok, "{:?}", result.error);
    assert_eq!(result.status_code, Some(200));
    assert_eq!(result.response_size, Some(47));
    assert_eq!(result.error, None);
    let t = result.timings;
    assert!(t.dns_us.is_some(), "a host name is resolved: {t:?}");
    assert!(t.connect_us.is_some() && t.ttfb_us.is_some(), "{t:?}");
    assert_eq!(t.tls_us, None);
    assert_eq!(result.tls_cert_expiry, None);
    assert!(t.total_us < 5_000_000, "{t:?}");

    let ip = check(&spec(&format!("{}/ok", target.http), serde_json::json!({}))).await;
    assert_eq!(ip.timings.dns_us, None, "no lookup for an IP literal");
}

#[tokio::test]
async fn server_delay_shows_in_ttfb() {
    let target = Target::start().await;
    let url = format!("{}/delay/200", target.http);
    let result = check(&spec(&url, serde_json::json!({}))).await;
    assert_eq!(result.outcome, Outcome::Ok);
    let ttfb = result.timings.ttfb_us.unwrap();
    assert!(ttfb >= 200_000, "ttfb {ttfb} µs after a 200 ms delay");
    assert!(result.timings.total_us >= ttfb);
    assert!(result.timings.connect_us.unwrap() < 200_000);
}

#[tokio::test]
async fn https_with_and_without_verification() {
    let target = Target::start().await;
    let url = format!("{}/ok", target.https);
    let verified = check(&spec(&url, serde_json::json!({}))).await;
    assert_eq!(verified.outcome, Outcome::Tls);
    let error = verified.error.unwrap();
    assert!(error.starts_with("tls handshake failed: "), "{error}");
    assert_eq!(verified.status_code, None);
    assert!(verified.timings.connect_us.is_some());
    assert_eq!(verified.timings.ttfb_us, None);

    let insecure = check(&spec(
        &url,
        serde_json::json!({"tls_verify": false, "assertions": ["[CERTIFICATE_EXPIRATION] > 48h"]}),
    ))
    .await;
    assert_eq!(insecure.outcome, Outcome::Ok, "{:?}", insecure.error);
    let t = insecure.timings;
    assert!(
        t.tls_us.is_some() && t.connect_us.is_some() && t.ttfb_us.is_some(),
        "{t:?}"
    );
    let (y, m, d) = CERT_NOT_AFTER;
    let expected = time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d)
        .unwrap()
        .midnight()
        .assume_utc();
    assert_eq!(insecure.tls_cert_expiry, Some(Timestamp::from(expected)));
    assert!(insecure.assertions[0].passed);
}

#[tokio::test]
async fn every_error_kind() {
    let target = Target::start().await;
    let cases: Vec<(MonitorSpec, Outcome, &str)> = vec![
        (
            spec("http://does-not-exist.invalid/", serde_json::json!({})),
            Outcome::Dns,
            "cannot resolve does-not-exist.invalid",
        ),
        (
            spec(
                &format!("{}/", refused_address().await),
                serde_json::json!({}),
            ),
            Outcome::Connect,
            "cannot connect to 127.0.0.1:",
        ),
        (
            spec(
                &format!("{}/hang", target.http),
                serde_json::json!({"timeout": "300ms"}),
            ),
            Outcome::Timeout,
            "no complete response within 300ms",
        ),
        (
            spec(
                &format!("{}/status/503", target.http),
                serde_json::json!({}),
            ),
            Outcome::HttpStatus,
            "http status 503",
        ),
        (
            spec(
                &format!("{}/ok", target.http),
                serde_json::json!({"assertions": ["[STATUS] == 200", "[BODY].status == DOWN"]}),
            ),
            Outcome::Assertion,
            "assertion failed: [BODY].status == DOWN (actual: UP)",
        ),
        (
            spec(
                &format!("{}/bytes/5000", target.http),
                serde_json::json!({}),
            ),
            Outcome::BodyTooLarge,
            "response body exceeds the 1024 byte limit",
        ),
        (
            spec("http://${VIGIL_TEST_SURELY_UNSET}/", serde_json::json!({})),
            Outcome::InvalidUrl,
            "url: environment variable VIGIL_TEST_SURELY_UNSET is not set",
        ),
        (
            spec(&format!("{}/garbage", target.http), serde_json::json!({})),
            Outcome::Protocol,
            "http: ",
        ),
        (
            spec(
                "http://169.254.169.254/latest/meta-data/",
                serde_json::json!({}),
            ),
            Outcome::Blocked,
            "blocked: 169.254.169.254 is the cloud metadata address (169.254.169.254/32); ",
        ),
    ];
    let mut seen = vec![Outcome::Ok, Outcome::Tls];
    for (spec, outcome, message) in cases {
        let result = check(&spec).await;
        assert_eq!(result.outcome, outcome, "{}: {:?}", spec.url, result.error);
        let error = result.error.clone().unwrap();
        assert!(error.starts_with(message), "{outcome}: {error}");
        match outcome {
            Outcome::Timeout => {
                assert!(result.timings.total_us >= 300_000);
                assert!(result.timings.connect_us.is_some());
                assert_eq!(result.timings.ttfb_us, None);
            }
            Outcome::BodyTooLarge => {
                assert_eq!(result.status_code, Some(200));
                assert!(result.response_size.unwrap() > 1024);
            }
            Outcome::Assertion => {
                assert_eq!(result.assertions.len(), 2);
                assert!(result.assertions[0].passed);
                assert!(!result.assertions[1].passed);
                assert_eq!(result.assertions[1].actual.as_deref(), Some("UP"));
            }
            Outcome::Dns | Outcome::Connect | Outcome::InvalidUrl | Outcome::Blocked => {
                assert_eq!(result.status_code, None);
                assert_eq!(result.timings.ttfb_us, None);
            }
            _ => {}
        }
        seen.push(outcome);
    }
    seen.sort();
    assert_eq!(
        seen,
        Outcome::ALL.to_vec(),
        "every outcome kind is produced"
    );
}

#[tokio::test]
async fn status_assertions_override_the_default() {
    let target = Target::start().await;
    let url = format!("{}/status/503", target.http);
    let result = check(&spec(
        &url,
        serde_json::json!({"assertions": ["[STATUS] == 503"]}),
    ))
    .await;
    assert_eq!(result.outcome, Outcome::Ok);
    assert_eq!(result.status_code, Some(503));
}

#[tokio::test]
async fn redirects_follow_or_not() {
    let target = Target::start().await;
    let url = format!("{}/redirect", target.http);
    let followed = check(&spec(&url, serde_json::json!({}))).await;
    assert_eq!(followed.status_code, Some(200));
    assert_eq!(followed.response_size, Some(47));
    assert_eq!(
        target.requests.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one connection per hop"
    );
    let kept = check(&spec(&url, serde_json::json!({"follow_redirects": false}))).await;
    assert_eq!(kept.status_code, Some(302));
    assert_eq!(kept.outcome, Outcome::Ok);
}

async fn echo(target: &Target, extra: serde_json::Value) -> String {
    let spec = spec(&format!("{}/echo?x=1", target.http), extra);
    let result = check(&spec).await;
    assert_eq!(result.outcome, Outcome::Ok, "{:?}", result.error);
    // The echo body is the request head; the assertion's actual value carries it back.
    let spec = MonitorSpec {
        assertions: vec!["[BODY] == pat(*)".into()],
        ..spec
    };
    let result = check(&spec).await;
    result.assertions[0].actual.clone().unwrap()
}

#[tokio::test]
async fn secrets_expand_and_credentials_are_sent() {
    let target = Target::start().await;
    let head = echo(
        &target,
        serde_json::json!({"headers": {"X-Package": "${CARGO_PKG_NAME}"},
                           "auth": {"type": "basic", "username": "Aladdin", "password": "open sesame"}}),
    )
    .await;
    assert!(head.starts_with("GET /echo?x=1 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("x-package: vigil-ingest\r\n"), "{head}");
    assert!(
        head.contains("authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
        "{head}"
    );
    assert!(head.contains("user-agent: vigil/"), "{head}");

    let head = echo(
        &target,
        serde_json::json!({"auth": {"type": "bearer", "token": "t0k"}}),
    )
    .await;
    assert!(head.contains("authorization: Bearer t0k\r\n"), "{head}");
    let head = echo(
        &target,
        serde_json::json!({"auth": {"type": "api_key", "name": "X-Key", "value": "k1"}}),
    )
    .await;
    assert!(head.contains("x-key: k1\r\n"), "{head}");
    let head = echo(
        &target,
        serde_json::json!({"auth": {"type": "api_key", "name": "key", "value": "k 2", "in": "query"}}),
    )
    .await;
    assert!(head.starts_with("GET /echo?x=1&key=k+2 HTTP/1.1"), "{head}");
}

#[tokio::test]
async fn credentials_do_not_follow_redirects_to_another_origin() {
    let target = Target::start().await;
    let extra = serde_json::json!({
        "headers": {"Cookie": "session=1", "X-Trace": "t", "X-Tenant": "${CARGO_PKG_NAME}"},
        "auth": {"type": "api_key", "name": "X-Key", "value": "k1"},
        "assertions": ["[BODY] == pat(*)"],
    });
    let same = check(&spec(
        &format!("{}/redirect-echo/same", target.http),
        extra.clone(),
    ))
    .await;
    let head = same.assertions[0].actual.clone().unwrap();
    assert!(head.starts_with("GET /echo HTTP/1.1"), "{head}");
    assert!(
        head.contains("x-key: k1\r\n") && head.contains("cookie: session=1\r\n"),
        "{head}"
    );
    assert!(head.contains("x-tenant: vigil-ingest\r\n"), "{head}");

    let away = check(&spec(&format!("{}/redirect-echo/away", target.http), extra)).await;
    let head = away.assertions[0].actual.clone().unwrap();
    assert!(head.contains("host: localhost:"), "{head}");
    assert!(head.contains("x-trace: t\r\n"), "{head}");
    assert!(
        !head.contains("x-key") && !head.contains("cookie") && !head.contains("x-tenant"),
        "a header holding a reference is secret: {head}"
    );
    let bearer = serde_json::json!({
        "auth": {"type": "bearer", "token": "t0k"}, "assertions": ["[BODY] == pat(*)"],
    });
    let away = check(&spec(
        &format!("{}/redirect-echo/away", target.http),
        bearer,
    ))
    .await;
    let head = away.assertions[0].actual.clone().unwrap();
    assert!(!head.contains("authorization"), "{head}");
}

#[tokio::test]
async fn oauth2_tokens_are_cached() {
    let target = Target::start().await;
    let checker = checker();
    let spec = spec(
        &format!("{}/echo", target.http),
        serde_json::json!({
            "auth": {"type": "oauth2_client_credentials", "token_url": format!("{}/token", target.http),
                     "client_id": "c", "client_secret": "s", "scopes": ["read"]},
            "assertions": ["[BODY] == pat(*authorization: Bearer tok-1*)"],
        }),
    );
    for _ in 0..3 {
        let result = check_with(&checker, &spec).await;
        assert_eq!(result.outcome, Outcome::Ok, "{:?}", result.assertions);
    }
    assert_eq!(
        target.token_calls.load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    let broken = MonitorSpec {
        auth: vigil_schema::Auth::Oauth2ClientCredentials {
            token_url: format!("{}/status/401", target.http),
            client_id: "c".into(),
            client_secret: "s".into(),
            scopes: vec![],
        },
        ..spec
    };
    let result = check_with(&checker, &broken).await;
    assert_eq!(result.outcome, Outcome::HttpStatus);
    assert_eq!(
        result.error.as_deref(),
        Some("oauth2 token request: http status 401")
    );
}

#[tokio::test]
async fn a_check_without_a_connection_evaluates_its_conditions() {
    let url = format!("{}/", refused_address().await);
    // Expecting the port closed: a success, the condition recorded.
    let closed = check(&spec(
        &url,
        serde_json::json!({"assertions": ["[CONNECTED] == false", "[RESPONSE_TIME] < 10s"]}),
    ))
    .await;
    assert_eq!(
        (closed.outcome, closed.error.as_deref()),
        (Outcome::Ok, None)
    );
    let seen: Vec<_> = closed
        .assertions
        .iter()
        .map(|a| (a.condition.as_str(), a.passed))
        .collect();
    assert_eq!(
        seen,
        [
            ("[CONNECTED] == false", true),
            ("[RESPONSE_TIME] < 10s", true)
        ]
    );
    assert_eq!(closed.assertions[0].actual.as_deref(), Some("false"));
    // Expecting a response: the connection failure, with every condition recorded as failed.
    let open = check(&spec(
        &url,
        serde_json::json!({"assertions": ["[CONNECTED] == true", "[STATUS] == 200"]}),
    ))
    .await;
    assert_eq!(open.outcome, Outcome::Connect);
    assert!(open.error.unwrap().contains("cannot connect"));
    let seen: Vec<_> = open
        .assertions
        .iter()
        .map(|a| (a.passed, a.actual.as_deref()))
        .collect();
    assert_eq!(seen, [(false, Some("false")), (false, None)]);
    // Without conditions nothing is recorded, as before.
    let bare = check(&spec(&url, serde_json::json!({}))).await;
    assert_eq!((bare.outcome, bare.assertions.len()), (Outcome::Connect, 0));
}
