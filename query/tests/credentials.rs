//! API keys and named secrets through the whole router (harness in `notify/harness.rs`): a key
//! created by an admin works at once with its role and scope, shows its last use, is never
//! answered again and stops working when revoked; a secret is write-only, sealed on the topic,
//! resolvable by the service, and audited without its value.

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "notify/harness.rs"]
#[allow(dead_code, reason = "a shared harness; not every helper is used here")]
mod harness;

use std::time::Duration;

use axum::http::{Method as M, StatusCode};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use vigil_notify::SecretResolver;
use vigil_schema::vault::{Kek, Keyring, SealedSecret};

use harness::{ADMIN, EDITOR, VIEWER, call, harness, harness_with};

/// Every record of `topic`, raw.
fn records(
    cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    topic: &str,
    want: usize,
) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "raw-reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while out.len() < want && std::time::Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            out.push(m.unwrap().payload().unwrap_or_default().to_vec());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_keys_work_at_once_within_role_and_scope_until_revoked() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    // Only admins manage keys.
    let new = json!({"name": "dashboard", "role": "viewer", "scopes": ["query"]});
    for key in [VIEWER, EDITOR] {
        let (status, _, _) = call(&h, M::POST, "/api/v1/keys", Some(key), Some(new.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, headers, created) =
        call(&h, M::POST, "/api/v1/keys", Some(ADMIN), Some(new)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(headers["cache-control"], "no-store");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["api_key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(vigil_schema::api_key_id(&key), Some(id.as_str()));
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("/api/v1/keys/{id}")
    );
    assert_eq!(created["api_key"]["prefix"], format!("vk_{id}_"));
    assert_eq!(created["api_key"]["role"], "viewer");
    assert_eq!(created["api_key"]["scopes"], json!(["query"]));
    assert_eq!(created["api_key"]["created_by"], "root");
    assert_eq!(created["api_key"]["last_used_at"], Value::Null);

    // It reads at once, and may not write (viewer).
    let (status, _, _) = call(&h, M::GET, "/api/v1/monitors", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK);
    let monitor = json!({"id": "api", "name": "API", "url": "https://example.com/"});
    let (status, _, problem) =
        call(&h, M::POST, "/api/v1/monitors", Some(&key), Some(monitor)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    // The right id with another secret is an unknown key.
    let forged = format!("vk_{id}_{}", "A".repeat(43));
    let (status, _, _) = call(&h, M::GET, "/api/v1/monitors", Some(&forged), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Listed with its last use, never with the key or its digest.
    let (status, _, page) = call(&h, M::GET, "/api/v1/keys", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["items"][0]["last_used_at"].is_string(), "{page}");
    let text = page.to_string();
    let digest = hex::encode(vigil_query::auth::digest(&key));
    assert!(!text.contains(&key) && !text.contains(&digest), "{text}");
    let (_, _, one) = call(&h, M::GET, &format!("/api/v1/keys/{id}"), Some(ADMIN), None).await;
    assert_eq!(one["name"], "dashboard");
    // On the topic only the digest exists.
    let stored = records(&cluster, "t.api-keys", 1);
    assert!(contains(&stored[0], &digest));
    assert!(!contains(&stored[0], &key));

    // A key scoped to ingestion only is refused on the query API, naming why.
    let ingest_only = json!({"name": "agent", "role": "editor", "scopes": ["ingest"]});
    let (_, _, agent) = call(&h, M::POST, "/api/v1/keys", Some(ADMIN), Some(ingest_only)).await;
    let agent_key = agent["key"].as_str().unwrap();
    let (status, _, problem) = call(&h, M::GET, "/api/v1/monitors", Some(agent_key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        problem["type"], "urn:vigil:problem:out-of-scope",
        "{problem}"
    );

    // Bad bodies name the field.
    for (body, field) in [
        (json!({"name": "", "role": "viewer"}), "name"),
        (
            json!({"name": "x", "role": "viewer", "expires": "2001-01-01T00:00:00Z"}),
            "expires",
        ),
    ] {
        let (status, _, problem) = call(&h, M::POST, "/api/v1/keys", Some(ADMIN), Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // A body of another shape than the document's is a 400.
    let body = json!({"name": "x", "role": "root"});
    let (status, _, problem) = call(&h, M::POST, "/api/v1/keys", Some(ADMIN), Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["type"], "urn:vigil:problem:bad-body");

    // Revoked: refused at once, still listed.
    let (status, _, revoked) = call(
        &h,
        M::POST,
        &format!("/api/v1/keys/{id}/revoke"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, _, _) = call(&h, M::GET, "/api/v1/monitors", Some(&key), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(
        &h,
        M::POST,
        "/api/v1/keys/000000000000/revoke",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // GraphQL creates keys too, answering the key once.
    let (status, _, answer) = call(
        &h,
        M::POST,
        "/graphql",
        Some(ADMIN),
        Some(json!({"query": "mutation { createApiKey(input: {name: \"ci\", role: EDITOR}) { key apiKey { id role } } }"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let gql_key = answer["data"]["createApiKey"]["key"].as_str().unwrap();
    assert_eq!(answer["data"]["createApiKey"]["apiKey"]["role"], "EDITOR");
    let (status, _, _) = call(&h, M::GET, "/api/v1/rules", Some(gql_key), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_encryption_key_secrets_are_refused() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness_with(
        &cluster,
        |c| c.secrets.key_env = "VIGIL_TEST_UNSET_SECRETS_KEY".into(),
        None,
    )
    .await;
    let (status, _, problem) = call(
        &h,
        M::PUT,
        "/api/v1/secrets/token",
        Some(ADMIN),
        Some(json!({"value": "v"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"].as_str().unwrap().contains("key-file"),
        "{problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_write_only_sealed_on_the_topic_and_audited_without_values() {
    const VALUE: &str = "xoxb-plaintext-that-must-never-leave-7731";
    let cluster = MockCluster::new(1).unwrap();
    let dir = std::env::temp_dir().join(format!("vigil-kek-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let kek = Kek::generate().unwrap();
    std::fs::write(dir.join("kek"), &kek).unwrap();
    let path = dir.join("kek");
    let h = harness_with(&cluster, move |c| c.secrets.key_file = Some(path), None).await;

    // Only admins set secrets; editors may list names.
    let body = json!({"value": VALUE});
    let (status, _, _) = call(
        &h,
        M::PUT,
        "/api/v1/secrets/slack-token",
        Some(EDITOR),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, meta) = call(
        &h,
        M::PUT,
        "/api/v1/secrets/slack-token",
        Some(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{meta}");
    assert_eq!(meta["name"], "slack-token");
    assert_eq!(meta["updated_by"], "root");
    assert_eq!(meta["key_id"], Kek::parse(&kek, "t").unwrap().id());
    let (status, _, page) = call(&h, M::GET, "/api/v1/secrets", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"][0]["name"], "slack-token");
    assert!(!page.to_string().contains(VALUE));

    // Bad names and values.
    let (status, _, _) = call(
        &h,
        M::PUT,
        "/api/v1/secrets/bad%20name",
        Some(ADMIN),
        Some(json!({"value": "v"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for (body, want) in [
        (json!({"value": ""}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"value": "x".repeat(8193)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"val": "x"}), StatusCode::BAD_REQUEST),
    ] {
        let (status, _, problem) =
            call(&h, M::PUT, "/api/v1/secrets/other", Some(ADMIN), Some(body)).await;
        assert_eq!(status, want, "{problem}");
    }

    // The service resolves it (the inbound integrations use this resolver).
    let credentials = h_credentials(&h);
    assert_eq!(credentials.resolve("slack-token").as_deref(), Some(VALUE));

    // The topic holds a sealed record only, which opens with the key and nothing else.
    let raw = records(&cluster, "t.secrets", 1);
    assert!(!contains(&raw[0], VALUE));
    let sealed: SealedSecret = vigil_schema::decode(&raw[0]).unwrap();
    let ring = Keyring::new(Kek::parse(&kek, "t").unwrap(), vec![]);
    assert_eq!(ring.open(&sealed).unwrap(), VALUE);
    let other = Keyring::new(Kek::parse(&Kek::generate().unwrap(), "t").unwrap(), vec![]);
    assert!(other.open(&sealed).is_err());

    // Audited without the value (nor the ciphertext).
    let (status, _, _) = call(
        &h,
        M::DELETE,
        "/api/v1/secrets/slack-token",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(
        &h,
        M::DELETE,
        "/api/v1/secrets/slack-token",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let audit = records(&cluster, "t.audit", 2);
    assert_eq!(audit.len(), 2);
    for record in &audit {
        assert!(!contains(record, VALUE));
        assert!(!contains(record, &sealed.ciphertext));
        let event: vigil_schema::AuditEvent = vigil_schema::decode(record).unwrap();
        assert_eq!(
            (event.resource.as_str(), event.actor.as_str()),
            ("secret", "root")
        );
    }
    assert_eq!(credentials.resolve("slack-token"), None);
    std::fs::remove_dir_all(dir).unwrap();
}

fn h_credentials(h: &harness::Harness) -> vigil_query::service::Credentials {
    h.state().service.credentials().clone()
}
