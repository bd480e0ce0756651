//! The ingest service on the local stack: `vigil apply` writes three monitors to the monitors
//! topic, a probe runner checks them against a target started here for a few intervals, and the
//! probe results are read back from the probes topic.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil_ingest::{KafkaConnection, MonitorView};
use vigil_schema::{Outcome, ProbeResult, TopicNames};

use crate::common::{kafka_brokers, kafka_config, unique_name};

/// An HTTP target: `/health` answers 200 with a small JSON body, anything else 404.
async fn start_target() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..read]);
                let (status, body) = if head.starts_with("GET /health ") {
                    ("200 OK", r#"{"status":"UP"}"#)
                } else {
                    ("404 Not Found", "missing")
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _written = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

async fn refused() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn vigil(prefix: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env("VIGIL_KAFKA_BROKERS", kafka_brokers())
        .env("VIGIL_TOPIC_PREFIX", prefix)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn connection(topics: &TopicNames) -> KafkaConnection {
    KafkaConnection {
        brokers: kafka_brokers(),
        topics: topics.clone(),
        request_timeout: Duration::from_secs(10),
    }
}

async fn load(kafka: &KafkaConnection) -> MonitorView {
    let token = CancellationToken::new();
    let view = vigil_ingest::monitors::load(kafka, Duration::from_secs(20), token.clone())
        .await
        .unwrap();
    token.cancel();
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_run_a_runner_and_read_probes_back() {
    let prefix = unique_name("it", "ingest");
    let topics = TopicNames::with_prefix(&prefix);
    let kafka = connection(&topics);
    let target = start_target().await;
    let refused = refused().await;

    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("monitors.yaml");
    let yaml = format!(
        r#"monitors:
  - id: healthy
    name: Healthy
    url: {target}/health
    interval: 1s
    timeout: 2s
    assertions: ["[STATUS] == 200", "[BODY].status == UP", "[RESPONSE_TIME] < 1000"]
  - id: wrong-body
    name: Wrong body
    url: {target}/health
    interval: 1s
    timeout: 2s
    assertions: ["[BODY].status == DOWN"]
  - id: refused
    name: Refused
    url: {refused}/
    interval: 1s
    timeout: 2s
"#
    );
    std::fs::write(&file, &yaml).unwrap();
    let path = file.to_str().unwrap();
    // The target and the refused address are on loopback, which probes reach only when allowed.
    let config_file = dir.join("vigil.toml");
    std::fs::write(&config_file, "[ingest.egress]\nallow = [\"127.0.0.1\"]\n").unwrap();
    let cfg = config_file.to_str().unwrap();

    let (ok, stdout, stderr) = vigil(
        &prefix,
        &["--config", cfg, "apply", "-f", path, "--dry-run"],
    );
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "+ create healthy\n+ create refused\n+ create wrong-body\n\
         Plan: 3 to create, 0 to update, 0 to delete, 0 unchanged.\n"
    );
    let (ok, stdout, stderr) = vigil(&prefix, &["--config", cfg, "apply", "-f", path]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.ends_with(&format!("Applied 3 change(s) to {prefix}.monitors.\n")),
        "{stdout}"
    );
    let (ok, stdout, _) = vigil(&prefix, &["--config", cfg, "apply", "-f", path]);
    assert!(ok);
    assert_eq!(stdout, "No changes. 3 monitor(s) up to date.\n");
    assert_eq!(load(&kafka).await.len(), 3);

    let config = vigil_ingest::Config {
        region: "it".into(),
        egress: vigil_ingest::config::EgressConfig {
            allow: vec!["127.0.0.1".parse().unwrap()],
        },
        ..vigil_ingest::Config::default()
    };
    let token = CancellationToken::new();
    let runner = tokio::spawn(vigil_ingest::run(
        config,
        kafka.clone(),
        None,
        token.clone(),
    ));

    let consumer: StreamConsumer = kafka_config()
        .set("group.id", &prefix)
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topics.probes]).unwrap();
    let mut by_monitor: BTreeMap<String, Vec<ProbeResult>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while by_monitor.len() < 3 || by_monitor.values().any(|v| v.len() < 3) {
        assert!(Instant::now() < deadline, "probes so far: {by_monitor:?}");
        let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await
        else {
            continue;
        };
        let event: ProbeResult = vigil_schema::decode(message.payload().unwrap()).unwrap();
        assert_eq!(message.key(), Some(event.monitor_id.as_bytes()));
        by_monitor
            .entry(event.monitor_id.clone())
            .or_default()
            .push(event);
    }
    token.cancel();
    runner.await.unwrap().unwrap();

    for (monitor, events) in &by_monitor {
        for e in events {
            assert_eq!(e.region, "it");
            assert_eq!(e.agent, "vigil-it-0-of-1");
            assert!(e.event_time >= e.scheduled_at, "{e:?}");
            assert!(
                e.event_time.as_millis() - e.scheduled_at.as_millis() < 1000,
                "started within the interval: {e:?}"
            );
            assert_eq!(e.method, "GET");
        }
        // One check per second on the monitor's grid: consecutive ticks are whole seconds apart.
        for pair in events.windows(2) {
            let gap = pair[1].scheduled_at.as_millis() - pair[0].scheduled_at.as_millis();
            assert!(gap >= 1000 && gap % 1000 == 0, "{monitor}: gap {gap} ms");
        }
    }
    let healthy = &by_monitor["healthy"][0];
    assert_eq!(healthy.outcome, Outcome::Ok, "{healthy:?}");
    assert_eq!(healthy.status_code, Some(200));
    assert_eq!(healthy.response_size, Some(15));
    assert_eq!(healthy.assertions.len(), 3);
    assert!(healthy.assertions.iter().all(|a| a.passed));
    let t = healthy.timings;
    assert!(
        t.connect_us.is_some() && t.ttfb_us.is_some() && t.dns_us.is_none(),
        "{t:?}"
    );
    assert!(t.ttfb_us.unwrap() <= t.total_us);

    let wrong = &by_monitor["wrong-body"][0];
    assert_eq!(wrong.outcome, Outcome::Assertion);
    assert_eq!(wrong.assertions[0].actual.as_deref(), Some("UP"));
    assert_eq!(
        wrong.error.as_deref(),
        Some("assertion failed: [BODY].status == DOWN (actual: UP)")
    );

    let refused_result = &by_monitor["refused"][0];
    assert_eq!(refused_result.outcome, Outcome::Connect);
    assert_eq!(refused_result.status_code, None);

    // Removing a monitor from the file and applying with --prune writes a tombstone.
    let kept: String = yaml.split("  - id: refused").next().unwrap().to_owned();
    std::fs::write(&file, kept).unwrap();
    let (ok, stdout, stderr) = vigil(&prefix, &["--config", cfg, "apply", "-f", path, "--prune"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.starts_with("- delete refused\n"), "{stdout}");
    let view = load(&kafka).await;
    assert_eq!(view.len(), 2);
    assert!(!view.contains("refused"));
    let (ok, exported, _) = vigil(&prefix, &["export"]);
    assert!(ok);
    let specs = vigil_ingest::plan::parse_monitors("export", &exported).unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["healthy", "wrong-body"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The ingestion API on the real broker: a 202 means every event is readable from the probes
/// topic, invalid events are reported by index, and unknown monitors are flagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_api_acknowledges_only_stored_events() {
    let prefix = unique_name("it", "ingest_api");
    let topics = TopicNames::with_prefix(&prefix);
    let kafka = connection(&topics);
    vigil_ingest::ensure_topics(&kafka, 1).await.unwrap();
    let producer =
        vigil_ingest::ProbeProducer::new(&kafka, &vigil_ingest::config::ProducerConfig::default())
            .unwrap();
    let config = vigil_ingest::config::ApiConfig {
        enabled: true,
        api_keys: vec!["it-key".into(), "other-key".into()],
        max_unknown_monitors: 2,
        ..vigil_ingest::config::ApiConfig::default()
    };
    let known = vigil_ingest::plan::parse_monitors(
        "inline",
        "monitors: [{id: known, name: Known, url: 'http://k/'}]",
    )
    .unwrap();
    let state =
        vigil_ingest::api::ApiState::new(config, producer, MonitorView::from_specs(known), None);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let server = tokio::spawn(vigil_ingest::api::serve(listener, state, token.clone()));

    let now = vigil_schema::Timestamp::now().as_millis();
    let event = |monitor: &str| {
        serde_json::json!({
            "event_id": uuid::Uuid::now_v7(), "monitor_id": monitor, "region": "edge",
            "agent": "agent-7", "scheduled_at": now, "event_time": now, "method": "GET",
            "url": "https://x/", "status_code": 200, "outcome": "ok", "error": null,
            "timings": {"dns_us": 1, "connect_us": 2, "tls_us": 3, "ttfb_us": 4, "total_us": 20},
            "response_size": 5, "assertions": [], "tls_cert_expiry": null,
        })
    };
    let mut batch: Vec<serde_json::Value> = (0..9).map(|_| event("known")).collect();
    batch.push(event("external"));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/events");
    let response = client
        .post(&url)
        .bearer_auth("it-key")
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"accepted": 10, "unknown_monitors": ["external"]})
    );

    let mut invalid = event("known");
    invalid["status_code"] = serde_json::json!(42);
    let ndjson = format!("{}\n{}\n", event("known"), invalid);
    let response = client
        .post(&url)
        .header("x-api-key", "it-key")
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["accepted"], serde_json::json!([0]));
    assert_eq!(
        problem["invalid"],
        serde_json::json!([{"index": 1, "reason": "status_code: must be 100–599, got 42"}])
    );

    let consumer: StreamConsumer = kafka_config()
        .set("group.id", &prefix)
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topics.probes]).unwrap();
    let mut sent: Vec<String> = batch
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 11 {
        assert!(Instant::now() < deadline, "read {} of 11", got.len());
        if let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await
        {
            let event: ProbeResult = vigil_schema::decode(message.payload().unwrap()).unwrap();
            assert_eq!(event.agent, "agent-7");
            got.push(event.event_id.to_string());
        }
    }
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 11, "no duplicates from the idempotent producer");
    sent.retain(|id| got.contains(id));
    assert_eq!(sent.len(), 10, "every event of the 202 batch is stored");

    // A key introduces at most 2 unknown monitors: `external` and `x2` pass, `x3` is refused
    // (a known monitor and `external` again still pass); another key has its own budget.
    // Oversized strings are refused, naming the field and never echoing it.
    let mut long_agent = event("known");
    long_agent["agent"] = serde_json::json!("a".repeat(257));
    let mut long_id = event("known");
    long_id["monitor_id"] = serde_json::json!("m".repeat(5000));
    let batch = [
        event("x2"),
        event("x3"),
        event("external"),
        event("known"),
        long_agent,
        long_id,
    ];
    let post = |key: &'static str, batch: Vec<serde_json::Value>| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client
                .post(&url)
                .bearer_auth(key)
                .json(&batch)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, problem) = post("it-key", batch.to_vec()).await;
    assert_eq!(status, 422);
    assert_eq!(problem["accepted"], serde_json::json!([0, 2, 3]));
    assert_eq!(
        problem["unknown_monitors"],
        serde_json::json!(["x2", "external"])
    );
    let reasons: Vec<(u64, String)> = problem["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0].0, 1);
    assert!(
        reasons[0]
            .1
            .starts_with("monitor_id: \"x3\" is not a known monitor")
            && reasons[0].1.contains("2 unknown monitors in the last 1h"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[1],
        (4, "agent: must be at most 256 bytes, got 257".to_owned())
    );
    assert_eq!(
        reasons[2],
        (
            5,
            "monitor_id: must be 1–64 characters of a-z, 0-9, '-' or '_', got 5000 bytes"
                .to_owned()
        )
    );
    let (status, body) = post("other-key", vec![event("x3")]).await;
    assert_eq!(status, 202, "{body}");
    token.cancel();
    server.await.unwrap().unwrap();
}
