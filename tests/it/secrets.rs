//! The secret store and created API keys end to end, with `vigil up` as a child process:
//! a secret set with the CLI under the old key-encryption key and one set through the API
//! under the new one are resolved by the probe runner (a monitor's header) and the notification
//! stage (a webhook header); `vigil secrets rotate` re-wraps the old one so the new key alone
//! opens every record; a key created with `vigil keys create --scope ingest` posts results to
//! the ingestion API (its use there listed by the query API), is refused on the query API, and
//! stops working once revoked. After the
//! run, no topic, table or log holds a secret value or a key in plaintext.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use vigil_schema::vault::{Kek, Keyring, SealedSecret};

use crate::common::{TestDb, VigilProcess, clickhouse, init_logs, kafka_config, unique_name};

const PROBE_VALUE: &str = "probe-token-value-4b1f9c";
const HOOK_VALUE: &str = "hook-token-value-e73a20";
/// A Standard Webhooks signing secret (`whsec_` and base64).
const SIGNING_VALUE: &str = "whsec_c2lnbmluZy1zZWNyZXQtdmFsdWUtOWQ0YTEy";
const ADMIN_KEY: &str = "secrets-it-admin-key-0123";

#[derive(Clone, Default)]
struct Target {
    /// `Authorization` headers the probe sent.
    probes: Arc<Mutex<Vec<String>>>,
    /// `X-Token` headers the webhook sent.
    hooks: Arc<Mutex<Vec<String>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

async fn probe(State(t): State<Target>, headers: HeaderMap) -> StatusCode {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    t.probes.lock().unwrap().push(auth.to_owned());
    if t.down.load(std::sync::atomic::Ordering::SeqCst) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn hook(State(t): State<Target>, headers: HeaderMap) -> StatusCode {
    let token = headers
        .get("x-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    t.hooks.lock().unwrap().push(token.to_owned());
    StatusCode::OK
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn eventually(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> bool,
    logs: &std::path::Path,
) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} within {within:?}\n{}",
            tail(logs)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.chars()
        .rev()
        .take(6000)
        .collect::<String>()
        .chars()
        .rev()
        .collect()
}

/// Every record of every topic under `prefix`, raw: (topic, key, value).
fn topic_bytes(prefix: &str) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = kafka_config()
        .set("group.id", unique_name("raw", prefix))
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let mut list = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for topic in metadata.topics() {
        if !topic.name().starts_with(&format!("{prefix}.")) {
            continue;
        }
        for p in topic.partitions() {
            let (_, high) = consumer
                .fetch_watermarks(topic.name(), p.id(), Duration::from_secs(10))
                .unwrap();
            if high > 0 {
                list.add_partition_offset(topic.name(), p.id(), Offset::Beginning)
                    .unwrap();
                ends.insert((topic.name().to_owned(), p.id()), high);
            }
        }
    }
    assert!(!ends.is_empty(), "no topics under {prefix}");
    consumer.assign(&list).unwrap();
    let mut out = Vec::new();
    let mut done = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.len() < ends.len() && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let Ok(m) = message else { continue };
        let id = (m.topic().to_owned(), m.partition());
        if m.offset() + 1 >= ends[&id] {
            done.insert(id);
        }
        out.push((
            m.topic().to_owned(),
            m.key().unwrap_or_default().to_vec(),
            m.payload().unwrap_or_default().to_vec(),
        ));
    }
    assert_eq!(
        done.len(),
        ends.len(),
        "not every topic was read to its end"
    );
    out
}

/// Every row of every table of `database`, as TSV.
async fn table_text(database: &str) -> String {
    let tables: Vec<String> = clickhouse()
        .query("SELECT name FROM system.tables WHERE database = ? AND engine NOT LIKE '%View%'")
        .bind(database)
        .fetch_all()
        .await
        .unwrap();
    assert!(tables.len() > 5, "{tables:?}");
    let http = reqwest::Client::new();
    let mut text = String::new();
    for table in tables {
        let body = http
            .post(crate::common::clickhouse_url())
            .body(format!("SELECT * FROM `{database}`.`{table}` FORMAT TSV"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.push_str(&body);
    }
    text
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_created_keys_work_rotate_and_never_appear_in_plaintext() {
    init_logs();
    let prefix = unique_name("it", "secrets");
    let db = TestDb::new("secrets").await;
    let target = Target::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/probe", axum::routing::get(probe))
        .route("/hook", axum::routing::post(hook))
        .with_state(target.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (old_kek, new_kek) = (Kek::generate().unwrap(), Kek::generate().unwrap());
    let process = VigilProcess::new(&prefix, &db.name, "");
    let dir = process.dir.clone();
    std::fs::write(dir.join("old.kek"), &old_kek).unwrap();
    std::fs::write(dir.join("new.kek"), &new_kek).unwrap();
    let config = format!(
        "[processor]\ngroup-id = \"{prefix}-processor\"\nwindow = \"10s\"\nallowed-lateness = \"2s\"\n\
         idle-timeout = \"3s\"\n\n[ingest.egress]\nallow = [\"127.0.0.1/32\"]\n\n\
         [secrets]\nkey-file = \"{new}\"\nprevious-key-files = [\"{old}\"]\n",
        new = dir.join("new.kek").display(),
        old = dir.join("old.kek").display(),
    );
    std::fs::write(dir.join("vigil.toml"), config).unwrap();
    std::fs::write(
        dir.join("old.toml"),
        format!(
            "[secrets]\nkey-file = \"{}\"\n",
            dir.join("old.kek").display()
        ),
    )
    .unwrap();
    let log = dir.join("vigil.log");

    // A secret set with the CLI, sealed under the old key (as before a rotation started).
    let mut set = process.command(&["secrets", "set", "probe-token"]);
    let mut child = set
        .env("VIGIL_CONFIG", dir.join("old.toml"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(PROBE_VALUE.as_bytes()).await.unwrap();
    drop(stdin);
    assert!(child.wait().await.unwrap().success(), "{}", tail(&log));

    let (query, ingest) = (free_port(), free_port());
    let mut up = process
        .command(&[
            "up",
            "--no-stack",
            "--listen",
            &format!("127.0.0.1:{query}"),
            "--ingest-listen",
            &format!("127.0.0.1:{ingest}"),
            "--api-key",
            ADMIN_KEY,
        ])
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{query}");
    let http = reqwest::Client::new();
    eventually(
        "the query API is ready",
        Duration::from_secs(120),
        async || {
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
        &log,
    )
    .await;
    let call = async |method: reqwest::Method, path: &str, key: &str, body: Option<Value>| {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    use reqwest::Method as M;

    // A secret set through the API, sealed under the new key.
    let (status, meta) = call(
        M::PUT,
        "/api/v1/secrets/hook-token",
        ADMIN_KEY,
        Some(json!({"value": HOOK_VALUE})),
    )
    .await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["key_id"], Kek::parse(&new_kek, "new").unwrap().id());
    let (_, listed) = call(M::GET, "/api/v1/secrets", ADMIN_KEY, None).await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            Kek::parse(&new_kek, "new").unwrap().id(),
            Kek::parse(&old_kek, "old").unwrap().id()
        ],
        "hook-token then probe-token"
    );

    let (status, _) = call(
        M::PUT,
        "/api/v1/secrets/hook-signing",
        ADMIN_KEY,
        Some(json!({"value": SIGNING_VALUE})),
    )
    .await;
    assert_eq!(status, 200);

    // The notification path: every alert to a webhook whose header is a stored secret.
    let channel = json!({"id": "hook", "kind": {"webhook": {
        "url": format!("http://{target_addr}/hook"), "secret": "${secret:hook-signing}",
        "headers": {"X-Token": "${secret:hook-token}"}}}});
    let (status, body) = call(M::POST, "/api/v1/channels", ADMIN_KEY, Some(channel)).await;
    assert_eq!(status, 201, "{body}");
    let routes = json!({"receiver": ["hook"], "group_wait": "1s", "group_interval": "1s"});
    let (status, body) = call(M::PUT, "/api/v1/routes", ADMIN_KEY, Some(routes)).await;
    assert_eq!(status, 200, "{body}");
    // The probe path: a monitor whose header is a stored secret.
    let monitor = json!({"id": "sec", "name": "Secret header",
        "url": format!("http://{target_addr}/probe"), "interval": "1s",
        "headers": {"Authorization": "Bearer ${secret:probe-token}"}});
    let (status, body) = call(M::POST, "/api/v1/monitors", ADMIN_KEY, Some(monitor)).await;
    assert_eq!(status, 201, "{body}");
    let expected = format!("Bearer {PROBE_VALUE}");
    eventually(
        "the probe sends the secret sealed under the previous key",
        Duration::from_secs(60),
        async || target.probes.lock().unwrap().contains(&expected),
        &log,
    )
    .await;
    target.down.store(true, std::sync::atomic::Ordering::SeqCst);
    eventually(
        "the built-in down rule's notification carries the stored header",
        Duration::from_secs(120),
        async || target.hooks.lock().unwrap().iter().any(|t| t == HOOK_VALUE),
        &log,
    )
    .await;

    // Rotation: every record ends up under the new key, which alone opens them.
    let rotated = process
        .command(&["secrets", "rotate"])
        .stdout(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(rotated.status.success(), "{}", tail(&log));
    assert_eq!(
        String::from_utf8_lossy(&rotated.stdout).trim(),
        format!(
            "1 of 3 secrets re-wrapped under key {}.",
            Kek::parse(&new_kek, "new").unwrap().id()
        )
    );
    let new_only = Keyring::new(Kek::parse(&new_kek, "new").unwrap(), vec![]);
    let mut latest: HashMap<String, SealedSecret> = HashMap::new();
    for (topic, _, value) in topic_bytes(&prefix) {
        if topic == format!("{prefix}.secrets") && !value.is_empty() {
            let sealed: SealedSecret = vigil_schema::decode(&value).unwrap();
            latest.insert(sealed.name.clone(), sealed);
        }
    }
    assert_eq!(new_only.open(&latest["probe-token"]).unwrap(), PROBE_VALUE);
    assert_eq!(new_only.open(&latest["hook-token"]).unwrap(), HOOK_VALUE);
    target.probes.lock().unwrap().clear();
    eventually(
        "the probe still sends the secret after the rotation",
        Duration::from_secs(30),
        async || target.probes.lock().unwrap().contains(&expected),
        &log,
    )
    .await;

    // A created key scoped to ingestion: accepted there, refused on the query API, revocable.
    let created = process
        .command(&[
            "keys", "create", "--name", "agent", "--role", "editor", "--scope", "ingest",
        ])
        .stdout(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(created.status.success(), "{}", tail(&log));
    let out = String::from_utf8(created.stdout).unwrap();
    let agent_key = out
        .split_whitespace()
        .find(|w| vigil_schema::api_key_id(w).is_some())
        .unwrap_or_else(|| panic!("no key in {out}"))
        .to_owned();
    let agent_id = vigil_schema::api_key_id(&agent_key).unwrap().to_owned();
    let now = vigil_schema::Timestamp::now().as_millis();
    let event = json!({
        "event_id": uuid::Uuid::now_v7(), "monitor_id": "sec", "region": "edge",
        "agent": "agent-7", "scheduled_at": now, "event_time": now, "method": "GET",
        "url": "https://x/", "status_code": 200, "outcome": "ok", "error": null,
        "timings": {"dns_us": 1, "connect_us": 2, "tls_us": 3, "ttfb_us": 4, "total_us": 20},
        "response_size": 5, "assertions": [], "tls_cert_expiry": null,
    });
    let post = async |key: &str| {
        http.post(format!("http://127.0.0.1:{ingest}/v1/events"))
            .bearer_auth(key)
            .json(&json!([event.clone()]))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    eventually(
        "the ingestion API accepts the created key",
        Duration::from_secs(20),
        async || post(&agent_key).await == 202,
        &log,
    )
    .await;
    // Its use on the ingestion API shows in the query API's listing.
    eventually(
        "the ingestion API's use of the key is listed",
        Duration::from_secs(30),
        async || {
            let (_, key) = call(M::GET, &format!("/api/v1/keys/{agent_id}"), ADMIN_KEY, None).await;
            key["last_used_at"].is_string()
        },
        &log,
    )
    .await;
    let (status, problem) = call(M::GET, "/api/v1/monitors", &agent_key, None).await;
    assert_eq!(
        (status, &problem["type"]),
        (403, &json!("urn:vigil:problem:out-of-scope"))
    );
    let (status, _) = call(
        M::POST,
        &format!("/api/v1/keys/{agent_id}/revoke"),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(status, 200);
    eventually(
        "the ingestion API refuses the revoked key",
        Duration::from_secs(20),
        async || post(&agent_key).await == 401,
        &log,
    )
    .await;

    // Stop, then look everywhere for the values.
    let pid = up.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), up.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}\n{}", tail(&log));
    let digest_of_agent = hex_sha256(&agent_key);
    for (topic, key, value) in topic_bytes(&prefix) {
        for needle in [PROBE_VALUE, HOOK_VALUE, SIGNING_VALUE, agent_key.as_str()] {
            assert!(
                !holds(&key, needle) && !holds(&value, needle),
                "{topic} holds a secret in plaintext"
            );
        }
        if topic == format!("{prefix}.audit") {
            assert!(
                !holds(&value, &digest_of_agent),
                "the audit holds a key digest"
            );
        }
    }
    let tables = table_text(&db.name).await;
    for needle in [PROBE_VALUE, HOOK_VALUE, agent_key.as_str()] {
        assert!(
            !tables.contains(needle),
            "a table holds a secret in plaintext"
        );
    }
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("Secret store loaded."), "{}", tail(&log));
    for needle in [
        PROBE_VALUE,
        HOOK_VALUE,
        agent_key.as_str(),
        &old_kek,
        &new_kek,
    ] {
        assert!(
            !logs.contains(needle),
            "the log holds a secret in plaintext"
        );
    }
    db.drop_database().await;
}

fn hex_sha256(text: &str) -> String {
    hex::encode(vigil_query::auth::digest(text))
}
