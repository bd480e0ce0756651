//! The audit log on the real engine: writes through the API are listed newest first with their
//! author, action and the spec before and after, filtered and paged.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::query::stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_listed_newest_first_filtered_and_paged() {
    let s = stack("audit").await;
    s.create("api", &["public"]).await;
    let (status, _) = s
        .call(Method::POST, "/api/v1/monitors/api/disable", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let rule = json!({"id": "down", "condition": {"consecutive_failures": {}}});
    let (status, _) = s.call(Method::POST, "/api/v1/rules", Some(rule)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = s.call(Method::DELETE, "/api/v1/monitors/api", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let page = s.json("/api/v1/audit").await;
    let items = page["items"].as_array().unwrap();
    let got: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|r| {
            (
                r["resource"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
                r["resource_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("monitor", "delete", "api"),
            ("rule", "create", "down"),
            ("monitor", "update", "api"),
            ("monitor", "create", "api"),
        ]
    );
    // Authentication is off in this stack: every caller is the anonymous admin.
    assert!(items.iter().all(|r| r["actor"] == "anonymous"));
    let disabled = &items[2];
    assert_eq!(disabled["before"]["enabled"], true);
    assert_eq!(disabled["after"]["enabled"], false);
    assert_eq!(items[0]["after"], Value::Null);
    assert_eq!(items[3]["before"], Value::Null);
    assert_eq!(items[3]["after"]["tags"], json!(["public"]));

    let rules = s.json("/api/v1/audit?resource=rule").await;
    assert_eq!(rules["items"].as_array().unwrap().len(), 1);
    // Pages of one follow each other to the end.
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/v1/audit?limit=1&cursor={c}"),
            None => "/api/v1/audit?limit=1".to_owned(),
        };
        let page = s.json(&uri).await;
        seen.push(page["items"][0]["audit_id"].as_str().unwrap().to_owned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let ids: Vec<&str> = items
        .iter()
        .map(|r| r["audit_id"].as_str().unwrap())
        .collect();
    assert_eq!(seen, ids);
    let (status, _) = s.call(Method::GET, "/api/v1/audit?cursor=nope", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
