//! Rate limits through the whole router (harness in `notify/harness.rs`; `oneshot` has no
//! client address, so the per-key limit is the one that applies).

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "notify/harness.rs"]
#[allow(dead_code, reason = "a shared harness; not every helper is used here")]
mod harness;

use axum::http::{Method, StatusCode, header};
use rdkafka::mocking::MockCluster;
use vigil_schema::ratelimit::RateLimitConfig;

use harness::{EDITOR, VIEWER, call, harness_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_budget_gets_429_and_others_do_not() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness_with(
        &cluster,
        |c| {
            c.rate_limit = RateLimitConfig {
                per_key: 1,
                per_key_burst: 3,
                ..RateLimitConfig::OFF
            };
        },
        None,
    )
    .await;
    for left in [2, 1, 0] {
        let (status, headers, _) =
            call(&h, Method::GET, "/api/v1/channels", Some(VIEWER), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["ratelimit-policy"], "\"per-key\";q=3;w=3");
        let state = headers["ratelimit"].to_str().unwrap();
        assert!(
            state.starts_with(&format!("\"per-key\";r={left};t=")),
            "{state}"
        );
    }
    let (status, headers, body) =
        call(&h, Method::GET, "/api/v1/channels", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert_eq!(body["type"], "urn:vigil:problem:rate-limited");
    assert_eq!(
        body["detail"],
        "too many requests from this API key; retry in 1s"
    );
    // Another key has its own budget; health is never limited.
    let (status, _, _) = call(&h, Method::GET, "/api/v1/channels", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..10 {
        let (status, _, _) = call(&h, Method::GET, "/healthz", Some(VIEWER), None).await;
        assert_eq!(status, StatusCode::OK);
    }
}
