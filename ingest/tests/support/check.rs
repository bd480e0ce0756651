//! What the check-kind tests share: a monitor from a URL and fields, a checker allowed to
//! reach loopback, one check, and its verdict.

#![allow(dead_code, reason = "each test crate uses part of it")]

use vigil_ingest::config::CheckerConfig;
use vigil_ingest::probe::{Assertions, Checker};
use vigil_schema::{EgressPolicy, MonitorSpec, Outcome, ProbeResult, Timestamp};

/// A validated monitor checking `url`, with `extra` fields (a 2 s timeout unless given).
pub(crate) fn spec(url: &str, extra: serde_json::Value) -> MonitorSpec {
    let mut value = serde_json::json!({"id": "kind", "name": "Kind", "url": url, "timeout": "2s"});
    if let (Some(obj), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
        obj.extend(extra);
    }
    let spec: MonitorSpec = serde_json::from_value(value).unwrap();
    spec.validate().unwrap();
    spec
}

/// A checker whose egress policy allows 127.0.0.1 and `localhost`, reading 4 KiB bodies.
pub(crate) fn loopback() -> Checker {
    let policy = EgressPolicy {
        allow: vec!["127.0.0.1".parse().unwrap(), "localhost".parse().unwrap()],
        env_allow: Vec::new(),
    };
    let config = CheckerConfig {
        body_limit: 4096,
        ..CheckerConfig::default()
    };
    Checker::new(config, "local".into(), "test".into()).with_policy(policy)
}

/// One check of `spec`, its result naming the URL as written.
pub(crate) async fn check_with(checker: &Checker, spec: &MonitorSpec) -> ProbeResult {
    let assertions = Assertions::of(spec);
    let result = checker.check(spec, &assertions, Timestamp::now()).await;
    assert_eq!(result.url, spec.url);
    result
}

/// Every assertion held, with the values each one saw.
pub(crate) fn assert_ok(r: &ProbeResult) {
    assert_eq!(r.outcome, Outcome::Ok, "{:?}: {:?}", r.error, r.assertions);
    assert!(r.assertions.iter().all(|a| a.passed), "{:?}", r.assertions);
}

/// The value assertion `i` saw.
pub(crate) fn actual(r: &ProbeResult, i: usize) -> Option<&str> {
    r.assertions[i].actual.as_deref()
}
