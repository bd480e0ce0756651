//! The ingestion API's access matrix: every route of [`vigil_ingest::api::ROUTES`] (the table the
//! router is built from) called by every kind of caller — no key, a wrong key, a configured key,
//! and created keys of each role, scope and state — answers as its rule says. Kafka is rdkafka's
//! in-process mock cluster.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use rdkafka::mocking::MockCluster;
use tower::ServiceExt;
use vigil_ingest::api::{Access, ApiState, ROUTES, router};
use vigil_ingest::config::{ApiConfig, ProducerConfig};
use vigil_ingest::monitors::SpecView;
use vigil_ingest::{KafkaConnection, MonitorView, ProbeProducer};
use vigil_schema::{ApiKeyRecord, KeyRole, KeyScope, Timestamp, TopicNames, UsageRecorder};

const CONFIGURED: &str = "configured-ingest-key-0123";

fn sha256_hex(key: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, key.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A created key `vk_<id>_secret-<id>` and its record.
fn created(id: &str, role: KeyRole, scopes: &[KeyScope]) -> (String, ApiKeyRecord) {
    let key = format!("vk_{id}_secret-{id}");
    let record = ApiKeyRecord {
        id: id.into(),
        name: format!("key-{id}"),
        digest: sha256_hex(&key),
        role,
        scopes: scopes.to_vec(),
        expires: None,
        created_at: Timestamp::from_millis(0),
        created_by: "admin".into(),
        revoked_at: None,
    };
    (key, record)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_caller_as_its_rule_says() {
    let mock = MockCluster::new(1).unwrap();
    let topics = TopicNames::with_prefix("access-test");
    mock.create_topic(&topics.probes, 1, 1).unwrap();
    let kafka = KafkaConnection {
        brokers: mock.bootstrap_servers(),
        topics,
        request_timeout: Duration::from_secs(5),
    };
    let producer = ProbeProducer::new(&kafka, &ProducerConfig::default()).unwrap();
    let config = ApiConfig {
        enabled: true,
        api_keys: vec![CONFIGURED.into()],
        ..ApiConfig::default()
    };
    // (caller, key, accepted on an `IngestKey` route)
    let mut callers: Vec<(&str, Option<String>, bool)> = vec![
        ("no key", None, false),
        ("wrong key", Some("wrong-key-0123456789".into()), false),
        ("configured key", Some(CONFIGURED.into()), true),
    ];
    let mut records = Vec::new();
    let kinds: [(&str, &str, KeyRole, &[KeyScope], bool); 6] = [
        (
            "editor, scope ingest",
            "00000000000a",
            KeyRole::Editor,
            &[KeyScope::Ingest],
            true,
        ),
        ("admin, no scope", "00000000000b", KeyRole::Admin, &[], true),
        (
            "editor, scope query",
            "00000000000c",
            KeyRole::Editor,
            &[KeyScope::Query],
            false,
        ),
        (
            "viewer, scope ingest",
            "00000000000d",
            KeyRole::Viewer,
            &[KeyScope::Ingest],
            false,
        ),
        ("revoked", "00000000000e", KeyRole::Admin, &[], false),
        ("expired", "00000000000f", KeyRole::Admin, &[], false),
    ];
    for (what, id, role, scopes, accepted) in kinds {
        let (key, mut record) = created(id, role, scopes);
        if what == "revoked" {
            record.revoked_at = Some(Timestamp::from_millis(1));
        }
        if what == "expired" {
            record.expires = Some(Timestamp::from_millis(1));
        }
        records.push(record);
        callers.push((what, Some(key), accepted));
    }
    // The right id with another secret.
    callers.push((
        "forged secret",
        Some("vk_00000000000a_forged".into()),
        false,
    ));
    let usage = Arc::new(UsageRecorder::new("ingest@test:0"));
    let metrics: vigil_ingest::api::RenderMetrics = Arc::new(|| "vigil_test 1\n".to_owned());
    let state = ApiState::new(config, producer, MonitorView::from_specs([]), Some(metrics))
        .with_keys(SpecView::from_specs(records), Arc::clone(&usage));

    let mut checked = 0;
    for &(method, path, access) in ROUTES {
        for (who, key, accepted) in &callers {
            let mut request = Request::builder().method(method).uri(path);
            if let Some(key) = key {
                request = request.header("authorization", format!("Bearer {key}"));
            }
            // Not a valid batch: an accepted caller gets past authentication to a 4xx about
            // the body, never a 401.
            let response = router(state.clone())
                .oneshot(request.body(Body::from("not json")).unwrap())
                .await
                .unwrap();
            let status = response.status();
            assert_ne!(
                status,
                StatusCode::NOT_FOUND,
                "{method} {path} has no handler"
            );
            let what = format!("{method} {path} by {who}: {status}");
            match access {
                Access::Public => assert!(status.is_success(), "{what}"),
                Access::IngestKey if *accepted => {
                    assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}");
                    assert!(status.is_client_error(), "{what}");
                }
                Access::IngestKey => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * callers.len());
    // The accepted created keys' uses were noted for the usage report; the refused ones' not.
    assert!(usage.last_used("00000000000a").is_some());
    assert!(usage.last_used("00000000000b").is_some());
    for refused in [
        "00000000000c",
        "00000000000d",
        "00000000000e",
        "00000000000f",
    ] {
        assert_eq!(usage.last_used(refused), None, "{refused}");
    }
}
