//! `Idempotency-Key` on REST writes, through the whole router (harness in `notify/harness.rs`).

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "notify/harness.rs"]
#[allow(dead_code, reason = "a shared harness; not every helper is used here")]
mod harness;

use axum::http::StatusCode;
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};

use harness::{EDITOR, harness, post_raw};

const UNKNOWN: &str = "Bearer unknown-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_replays_the_first_answer_and_refuses_another_request() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let auth = format!("Bearer {EDITOR}");
    let post = |key: &'static str, body: Value| {
        let auth = auth.clone();
        let h = &h;
        async move {
            let body = body.to_string().into_bytes();
            let mut headers = vec![
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
            ];
            if !key.is_empty() {
                headers.push(("idempotency-key", key));
            }
            post_raw(h, "/api/v1/monitors", &headers, &body).await
        }
    };
    let api = json!({"id": "api", "name": "API", "url": "https://example.com/"});

    let (status, first) = post("create-api-1", api.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // A retry with the same key: the first answer again, nothing written twice.
    let (status, again) = post("create-api-1", api.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, first);
    // Without the key the same write is a conflict: the monitor exists once.
    let (status, _) = post("", api.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The same key with another body: 422 naming the header.
    let other = json!({"id": "web", "name": "Web", "url": "https://example.com/"});
    let (status, body) = post("create-api-1", other.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "Idempotency-Key");
    let (status, body) = post("create-web-1", other).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Client errors are remembered too.
    let bad = json!({"id": "BAD", "name": "x", "url": "ftp://x"});
    let (status, first_bad) = post("bad-1", bad.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(post("bad-1", bad).await, (status, first_bad));

    // Malformed keys are refused before anything runs.
    let (status, body) = post("has space", api.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let long: &'static str = Box::leak("k".repeat(256).into_boxed_str());
    let (status, _) = post(long, api).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Keys belong to the caller: the same key under other credentials is another key (and
    // then an unknown API key, so 401).
    let body = json!({"id": "db", "name": "DB", "url": "https://example.com/"})
        .to_string()
        .into_bytes();
    let (status, _) = post_raw(
        &h,
        "/api/v1/monitors",
        &[
            ("authorization", UNKNOWN),
            ("content-type", "application/json"),
            ("idempotency-key", "create-api-1"),
        ],
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Callers without a valid key always get 401, whatever keys and bodies were seen before
    // (never a 422 about the key, nor a replayed answer).
    for caller in [None, Some(UNKNOWN)] {
        for (n, id) in ["db", "db2"].iter().enumerate() {
            let body = json!({"id": id, "name": "DB", "url": "https://example.com/"})
                .to_string()
                .into_bytes();
            let mut headers = vec![
                ("content-type", "application/json"),
                ("idempotency-key", "anonymous-1"),
            ];
            if let Some(auth) = caller {
                headers.push(("authorization", auth));
            }
            let (status, body) = post_raw(&h, "/api/v1/monitors", &headers, &body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{caller:?} #{n}: {body}");
        }
    }
}

#[test]
fn every_api_post_documents_the_header() {
    let doc = serde_json::to_value(vigil_query::openapi::document()).unwrap();
    let mut posts = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("post") else { continue };
        if !path.starts_with("/api/v1/") {
            continue;
        }
        posts += 1;
        let params = op["parameters"].as_array().unwrap();
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
            "{path}"
        );
        for code in ["400", "409", "422"] {
            assert!(op["responses"].get(code).is_some(), "{path} {code}");
        }
    }
    assert!(posts >= 10, "{posts}");
}
