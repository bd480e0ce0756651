//! The audit record of every write, through the whole router (harness in `notify/harness.rs`):
//! who, what, before and after, on the audit topic. Reading the log needs the admin role.

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "notify/harness.rs"]
#[allow(dead_code, reason = "a shared harness; not every helper is used here")]
mod harness;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::json;
use vigil_schema::{AuditAction, AuditEvent, decode};

use harness::{EDITOR, VIEWER, call, harness};

fn audit_events(
    cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    want: usize,
) -> Vec<AuditEvent> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "audit-reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("t.audit", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while out.len() < want && std::time::Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            out.push(decode(m.unwrap().payload().unwrap()).unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_is_audited_with_its_author_before_and_after() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    use Method as M;
    let api = json!({"id": "api", "name": "API", "url": "https://example.com/"});
    let (status, _, _) = call(&h, M::POST, "/api/v1/monitors", Some(EDITOR), Some(api)).await;
    assert_eq!(status, StatusCode::CREATED);
    let renamed = json!({"id": "api", "name": "Public API", "url": "https://example.com/"});
    let (status, _, _) = call(
        &h,
        M::PUT,
        "/api/v1/monitors/api",
        Some(EDITOR),
        Some(renamed),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let hook = json!({"id": "hook", "kind": {"webhook": {
        "url": "https://hooks.example.com/x", "secret": "${secret:HOOK}"}}});
    let (status, _, _) = call(&h, M::POST, "/api/v1/channels", Some(EDITOR), Some(hook)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = call(&h, M::DELETE, "/api/v1/monitors/api", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A refused write is not audited.
    let (status, _, _) = call(&h, M::DELETE, "/api/v1/monitors/api", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let events = audit_events(&cluster, 4);
    let summary: Vec<(&str, AuditAction, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.resource.as_str(),
                e.action,
                e.resource_id.as_str(),
                e.actor.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("monitor", AuditAction::Create, "api", "ops"),
            ("monitor", AuditAction::Update, "api", "ops"),
            ("channel", AuditAction::Create, "hook", "ops"),
            ("monitor", AuditAction::Delete, "api", "ops"),
        ]
    );
    assert_eq!(events[0].before, None);
    assert_eq!(events[0].after.as_ref().unwrap()["name"], "API");
    assert_eq!(events[1].before.as_ref().unwrap()["name"], "API");
    assert_eq!(events[1].after.as_ref().unwrap()["name"], "Public API");
    assert_eq!(events[3].after, None);
    // The channel's secret is a reference, as written.
    assert_eq!(
        events[2].after.as_ref().unwrap()["kind"]["webhook"]["secret"],
        "${secret:HOOK}"
    );
    for e in &events {
        let id = e.request_id.as_deref().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }

    // Reading the log is for admins only.
    for key in [VIEWER, EDITOR] {
        let (status, _, _) = call(&h, M::GET, "/api/v1/audit", Some(key), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
