//! The egress policy through the whole checker, against a local target: loopback is blocked
//! unless allow-listed (and then nothing else is), names are vetted after resolution, every
//! redirect hop is vetted, https never downgrades to http unless the monitor allows it, and the
//! runner's environment is never expanded into a request.

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "checker/target.rs"]
#[allow(dead_code, reason = "shared with checker.rs")]
mod target;
#[path = "support/tls.rs"]
mod tls;

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::BoxFuture;
use target::Target;
use vigil_ingest::config::CheckerConfig;
use vigil_ingest::probe::{Assertions, Checker, Resolver};
use vigil_schema::{EgressPolicy, MonitorSpec, Outcome, ProbeResult, Timestamp};

/// Resolves from a fixed table; unknown names fail.
#[derive(Debug)]
struct Names(HashMap<&'static str, IpAddr>);

impl Resolver for Names {
    fn resolve(&self, host: &str, _port: u16) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let answer = self
            .0
            .get(host)
            .map(|ip| vec![*ip])
            .ok_or_else(|| io::Error::other("no such host"));
        Box::pin(async move { answer })
    }
}

fn checker(allow: &[String]) -> Checker {
    let names = Names(HashMap::from([
        ("api.public.test", IpAddr::from([127, 0, 0, 1])),
        ("localhost", IpAddr::from([127, 0, 0, 1])),
        ("internal.test", IpAddr::from([10, 0, 0, 1])),
    ]));
    let policy = EgressPolicy {
        allow: allow.iter().map(|a| a.parse().unwrap()).collect(),
        env_allow: vec![],
    };
    Checker::new(CheckerConfig::default(), "local".into(), "test".into())
        .with_policy(policy)
        .with_resolver(Arc::new(names))
}

fn spec(url: &str, extra: serde_json::Value) -> MonitorSpec {
    let mut value =
        serde_json::json!({"id": "target", "name": "Target", "url": url, "timeout": "5s"});
    if let (Some(obj), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
        obj.extend(extra);
    }
    serde_json::from_value(value).unwrap()
}

async fn check(checker: &Checker, spec: &MonitorSpec) -> ProbeResult {
    let assertions = Assertions::of(spec);
    checker.check(spec, &assertions, Timestamp::now()).await
}

/// `host:port` of a target URL.
fn authority(url: &str) -> String {
    url.split_once("://").unwrap().1.to_owned()
}

fn assert_blocked(result: &ProbeResult, starts: &str) {
    assert_eq!(result.outcome, Outcome::Blocked, "{:?}", result.error);
    let error = result.error.as_deref().unwrap();
    assert!(error.starts_with(starts), "{error}");
}

#[tokio::test]
async fn the_default_policy_blocks_loopback_without_connecting() {
    let target = Target::start().await;
    let strict = checker(&[]);
    let http = authority(&target.http);
    for url in [
        format!("{}/ok", target.http),
        format!("{}/ok", target.https),
        format!("{}/ok", target.http.replace("127.0.0.1", "localhost")),
        format!(
            "{}/ok",
            target.http.replace("127.0.0.1", "[::ffff:127.0.0.1]")
        ),
        format!(
            "http://api.public.test:{}/ok",
            http.rsplit(':').next().unwrap()
        ),
    ] {
        let result = check(&strict, &spec(&url, serde_json::json!({}))).await;
        assert_blocked(&result, "blocked: ");
        assert!(
            result
                .error
                .unwrap()
                .contains("a loopback address (127.0.0.0/8)"),
            "{url}"
        );
        assert_eq!(result.timings.connect_us, None, "{url}");
        assert_eq!(result.status_code, None, "{url}");
    }
    assert_eq!(
        target.requests.load(Ordering::SeqCst),
        0,
        "nothing connected"
    );
}

#[tokio::test]
async fn the_allow_list_admits_exactly_what_it_names() {
    let target = Target::start().await;
    let other = Target::start().await;
    let allowed = checker(&[authority(&target.http)]);
    let ok = check(
        &allowed,
        &spec(&format!("{}/ok", target.http), serde_json::json!({})),
    )
    .await;
    assert_eq!(ok.outcome, Outcome::Ok, "{:?}", ok.error);

    // A name the test resolver points at the allow-listed address: vetted after resolution.
    let port = authority(&target.http)
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let url = format!("http://api.public.test:{port}/ok");
    let named = check(&allowed, &spec(&url, serde_json::json!({}))).await;
    assert_eq!(named.outcome, Outcome::Ok, "{:?}", named.error);
    assert!(named.timings.dns_us.is_some());

    let elsewhere = check(
        &allowed,
        &spec(&format!("{}/ok", other.http), serde_json::json!({})),
    )
    .await;
    assert_blocked(&elsewhere, "blocked: 127.0.0.1 is a loopback address");
    let internal = check(
        &allowed,
        &spec("http://internal.test/", serde_json::json!({})),
    )
    .await;
    assert_blocked(
        &internal,
        "blocked: internal.test resolves to 10.0.0.1, a private address (10.0.0.0/8)",
    );
    assert_eq!(other.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn every_redirect_hop_is_vetted() {
    let target = Target::start().await;
    let other = Target::start().await;
    let allowed = checker(&[authority(&target.http)]);
    let cases = [
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "blocked: 169.254.169.254 is the cloud metadata address",
        ),
        (
            "http://internal.test/".to_owned(),
            "blocked: internal.test resolves to 10.0.0.1, a private address",
        ),
        (
            format!("{}/ok", other.http),
            "blocked: 127.0.0.1 is a loopback address",
        ),
        (
            "http://[::1]:8123/?query=SELECT%201".to_owned(),
            "blocked: ::1 is a loopback address",
        ),
    ];
    for (location, starts) in cases {
        let url = format!("{}/redirect-to?{location}", target.http);
        let result = check(&allowed, &spec(&url, serde_json::json!({}))).await;
        assert_blocked(&result, starts);
    }
    assert_eq!(other.requests.load(Ordering::SeqCst), 0);
    let not_followed = check(
        &allowed,
        &spec(
            &format!("{}/redirect-to?http://10.0.0.1/", target.http),
            serde_json::json!({"follow_redirects": false}),
        ),
    )
    .await;
    assert_eq!(not_followed.status_code, Some(302));
}

#[tokio::test]
async fn https_never_downgrades_to_http_unless_the_monitor_allows_it() {
    let target = Target::start().await;
    let allowed = checker(&[authority(&target.http), authority(&target.https)]);
    let url = format!("{}/redirect-to?{}/ok", target.https, target.http);
    let strict = check(
        &allowed,
        &spec(&url, serde_json::json!({"tls_verify": false})),
    )
    .await;
    assert_blocked(&strict, "blocked: redirect from https to http://127.0.0.1:");
    assert!(strict.timings.tls_us.is_some(), "the first hop ran");
    assert_eq!(strict.status_code, Some(302));

    let allowing = serde_json::json!({"tls_verify": false, "allow_insecure_redirects": true});
    let followed = check(&allowed, &spec(&url, allowing)).await;
    assert_eq!(followed.outcome, Outcome::Ok, "{:?}", followed.error);
    assert_eq!(followed.status_code, Some(200));

    let upgrade = format!("{}/redirect-to?{}/ok", target.http, target.https);
    let up = check(
        &allowed,
        &spec(&upgrade, serde_json::json!({"tls_verify": false})),
    )
    .await;
    assert_eq!(up.outcome, Outcome::Ok, "{:?}", up.error);
}

#[tokio::test]
async fn the_runner_environment_is_never_expanded() {
    let target = Target::start().await;
    let allowed = checker(&[authority(&target.http)]);
    // Both variables are set in this process (cargo sets CARGO_PKG_NAME; PATH always is).
    let cases = [
        (
            spec(
                &format!("{}/echo?k=${{VIGIL_API_KEY}}", target.http),
                serde_json::json!({}),
            ),
            "url: ${VIGIL_API_KEY} is not expanded: environment variable VIGIL_API_KEY is not \
             in `[ingest] env-allow`",
        ),
        (
            spec(
                &format!("{}/echo", target.http),
                serde_json::json!({"headers": {"X-Leak": "${CARGO_PKG_NAME}"}}),
            ),
            "headers.X-Leak: ${CARGO_PKG_NAME} is not expanded",
        ),
        (
            spec(
                &format!("{}/echo", target.http),
                serde_json::json!({"body": "${PATH}", "method": "POST"}),
            ),
            "body: ${PATH} is not expanded",
        ),
        (
            spec(
                &format!("{}/echo", target.http),
                serde_json::json!({"auth": {"type": "bearer", "token": "${secret:checkout}"}}),
            ),
            "auth.token: ${secret:checkout} cannot be resolved: secret store not configured",
        ),
    ];
    for (spec, starts) in cases {
        let result = check(&allowed, &spec).await;
        assert_eq!(result.outcome, Outcome::InvalidUrl, "{:?}", result.error);
        let error = result.error.unwrap();
        assert!(error.starts_with(starts), "{error}");
        assert!(
            !error.contains("vigil-ingest") && !error.contains("/usr"),
            "{error}"
        );
    }
    assert_eq!(
        target.requests.load(Ordering::SeqCst),
        0,
        "nothing was sent"
    );
}
