//! End to end: `vigil up --demo` as a child process against the local stack, in its own database
//! and topics. Within a bounded time every demo monitor has windows in ClickHouse, the flaky
//! endpoint's availability sits near 98% with at least its injected failures, the slow endpoint's
//! median is well above the fast one's, REST, GraphQL and ClickHouse agree on the numbers, a
//! GraphQL subscription receives a window, the banner's `curl` and the README's API examples
//! work when pasted, and SIGTERM ends the process with status 0.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{TestDb, clickhouse, clickhouse_url, kafka_brokers, unique_name};

const DEMO_MONITORS: [&str; 13] = [
    "demo-degrading",
    "demo-dns",
    "demo-expiring-cert",
    "demo-fast",
    "demo-flaky",
    "demo-grpc",
    "demo-grpcs",
    "demo-icmp",
    "demo-slow",
    "demo-steps",
    "demo-tcp",
    "demo-tls-handshake",
    "demo-websocket",
];

/// The demo's monitors of kinds other than HTTP, each expected to pass every check.
const DEMO_KINDS: [&str; 7] = [
    "demo-dns",
    "demo-grpc",
    "demo-grpcs",
    "demo-steps",
    "demo-tcp",
    "demo-tls-handshake",
    "demo-websocket",
];

/// The running `vigil up --demo`.
pub(crate) struct Up {
    pub(crate) child: tokio::process::Child,
    stdout: Arc<Mutex<String>>,
    pub(crate) stderr: PathBuf,
    pub(crate) query: String,
    ingest: String,
}

impl Up {
    pub(crate) async fn start(dir: &std::path::Path, prefix: &str, database: &str) -> Self {
        Self::start_with(dir, prefix, database, "").await
    }

    /// [`Up::start`] with `extra` appended to the configuration file.
    pub(crate) async fn start_with(
        dir: &std::path::Path,
        prefix: &str,
        database: &str,
        extra: &str,
    ) -> Self {
        let config = dir.join("vigil.toml");
        // A consumer group of its own, so no other test's processor shares its partitions.
        std::fs::write(
            &config,
            format!("[processor]\ngroup-id = \"{prefix}-processor\"\n{extra}"),
        )
        .unwrap();
        let (query, ingest) = (free_port(), free_port());
        let stderr = dir.join("stderr.log");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_vigil"));
        for (name, _) in std::env::vars() {
            if name.starts_with("VIGIL_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("VIGIL_KAFKA_BROKERS", kafka_brokers())
            .env("VIGIL_CLICKHOUSE_URL", clickhouse_url())
            .env("VIGIL_TOPIC_PREFIX", prefix)
            .env("VIGIL_CLICKHOUSE_DATABASE", database)
            .env("VIGIL_CONFIG", &config)
            .env("RUST_LOG", "info")
            .args(["up", "--demo", "--no-stack", "--shutdown-grace", "40s"])
            .args(["--listen", &format!("127.0.0.1:{query}")])
            .args(["--ingest-listen", &format!("127.0.0.1:{ingest}")])
            .args([
                "--demo-listen",
                "127.0.0.1:0",
                "--demo-tls-listen",
                "127.0.0.1:0",
                "--demo-dns-listen",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let sink = Arc::clone(&stdout);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut out = sink.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
        Self {
            child,
            stdout,
            stderr,
            query: format!("127.0.0.1:{query}"),
            ingest: format!("127.0.0.1:{ingest}"),
        }
    }

    /// The end of the process's log, for failure messages.
    pub(crate) fn logs(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let tail: String = text.chars().rev().take(6000).collect();
        format!(
            "--- stdout ---\n{}\n--- stderr (end) ---\n{}",
            self.stdout.lock().unwrap(),
            tail.chars().rev().collect::<String>()
        )
    }

    /// Waits for the start-up block and returns it.
    pub(crate) async fn banner(&mut self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let out = self.stdout.lock().unwrap().clone();
            if out.contains("Press Ctrl-C to stop.") {
                return out;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "vigil up exited with {status} before it was ready\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no banner within {within:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value after `label` on its banner line.
pub(crate) fn banner_field<'a>(banner: &'a str, label: &str) -> &'a str {
    banner
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in the banner:\n{banner}"))
        .trim()
}

/// Runs a shell snippet as a user would paste it; returns its stdout.
fn sh(script: &str, api_key: &str) -> String {
    let out = std::process::Command::new("sh")
        .args(["-e", "-c", script])
        .env("VIGIL_API_KEY", api_key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\nfailed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct MonitorTotals {
    monitor_id: String,
    windows: u64,
    checks: u64,
    ok: u64,
}

async fn totals(db: &str) -> BTreeMap<String, MonitorTotals> {
    clickhouse()
        .with_database(db)
        .query(
            "SELECT toString(monitor_id) AS monitor_id, count() AS windows, sum(count) AS checks, \
             sum(ok_count) AS ok FROM windows_1m FINAL GROUP BY monitor_id",
        )
        .fetch_all::<MonitorTotals>()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.monitor_id.clone(), t))
        .collect()
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct WindowRow {
    start_ms: i64,
    count: u64,
    ok_count: u64,
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "POST {path}");
        response.json().await.unwrap()
    }

    async fn graphql(&self, query: &str) -> Value {
        let response = self.post("/graphql", &json!({ "query": query })).await;
        assert!(response.get("errors").is_none(), "{query}: {response}");
        response["data"].clone()
    }
}

/// What importing the demo target's OpenAPI document creates.
const IMPORTED_MONITORS: [&str; 2] = ["api-callendpoint", "api-listendpoints"];

fn parse_ms(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_end_to_end() {
    let prefix = unique_name("it", "e2e");
    let database = TestDb::fresh_name("e2e_demo");
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).unwrap();
    let mut up = Up::start(&dir, &prefix, &database).await;
    let started = Instant::now();

    // The start-up block: URLs on the chosen ports, the key, a curl that works when pasted.
    let banner = up.banner(Duration::from_secs(180)).await;
    let key = banner_field(&banner, "API key").to_owned();
    assert!(key.len() >= 16, "{banner}");
    assert_eq!(
        banner_field(&banner, "REST API docs"),
        format!(
            "http://{0}/docs  (OpenAPI: http://{0}/api/v1/openapi.json)",
            up.query
        )
    );
    assert_eq!(
        banner_field(&banner, "GraphQL"),
        format!(
            "http://{0}/graphql  (subscriptions: ws://{0}/graphql/ws)",
            up.query
        )
    );
    assert_eq!(
        banner_field(&banner, "Ingestion API"),
        format!("http://{}/v1/events", up.ingest)
    );
    assert!(
        banner_field(&banner, "ClickHouse").starts_with(&clickhouse_url()),
        "{banner}"
    );
    assert!(
        banner.contains("Windows         10s (demo setting"),
        "{banner}"
    );
    let demo_http = banner_field(&banner, "Demo target")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(demo_http.starts_with("http://127.0.0.1:"), "{banner}");
    let curl = banner
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("curl "))
        .unwrap_or_else(|| panic!("no curl example in the banner:\n{banner}"))
        .to_owned();
    let pasted: Value = serde_json::from_str(&sh(&curl, "")).unwrap();
    assert_eq!(pasted["monitor_id"], "demo-slow", "{pasted}");

    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", up.query),
        key: key.clone(),
    };
    // Authentication is on: no key, no data.
    let anonymous = api
        .http
        .get(format!("{}/api/v1/monitors", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let page = api.get("/api/v1/monitors").await;
    let mut ids: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, DEMO_MONITORS);

    // The demo target describes itself; importing its document adds monitors of its API.
    let document = api
        .http
        .get(format!("{demo_http}/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body = json!({
        "document": document,
        "base_url": demo_http,
        "id_prefix": "api-",
        "interval": "2s",
        "tags": ["imported"],
        "apply": true,
    });
    let imported = api.post("/api/v1/import/openapi", &body).await;
    assert_eq!(imported["applied"], true, "{imported}");
    assert_eq!(
        imported["plan"]["create"],
        json!(IMPORTED_MONITORS),
        "{imported}"
    );

    // A subscriber connected now receives the next window of the fast endpoint.
    let mut request = format!("ws://{}/graphql/ws", up.query)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init =
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {key}")}});
    ws.send(Message::text(init.to_string())).await.unwrap();
    let ack = ws.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack}");
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query":
        r#"subscription { windowClosed(monitorId: "demo-fast") { monitorId start count p50Us } }"#}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    // And, on a second connection, the demo's alerts as they change.
    let mut alerts_request = format!("ws://{}/graphql/ws", up.query)
        .into_client_request()
        .unwrap();
    alerts_request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut alerts_ws, _) = tokio_tungstenite::connect_async(alerts_request)
        .await
        .unwrap();
    alerts_ws
        .send(Message::text(init.to_string()))
        .await
        .unwrap();
    let ack = alerts_ws.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack}");
    let subscribe = json!({"id": "2", "type": "subscribe", "payload": {"query":
        r#"subscription { alertChanged(ruleId: "demo-flaky-errors") { ruleId monitorId to value threshold message } }"#}});
    alerts_ws
        .send(Message::text(subscribe.to_string()))
        .await
        .unwrap();
    let live = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let m = ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
            if v["type"] != "ping" && v["type"] != "pong" {
                return v;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no window over the subscription within 90 s\n{}", up.logs()));
    assert_eq!(live["type"], "next", "{live}");
    let window = &live["payload"]["data"]["windowClosed"];
    assert_eq!(window["monitorId"], "demo-fast", "{live}");
    assert!(window["count"].as_u64().unwrap() >= 1, "{live}");
    assert!(window["p50Us"].as_f64().unwrap() > 1_000.0, "{live}");
    ws.close(None).await.unwrap();

    // Within about two minutes the flaky endpoint's 5xx share (2%) fires its rule (above 1%),
    // over the subscription and in the REST history; the certificate rule fired before.
    let alert = tokio::time::timeout(Duration::from_secs(180), async {
        loop {
            let m = alerts_ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
            if v["type"] == "next" && v["payload"]["data"]["alertChanged"]["to"] == "firing" {
                return v;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no firing alert over the subscription\n{}", up.logs()));
    eprintln!(
        "first firing alert {:?} after start: {alert}",
        started.elapsed()
    );
    let fired = &alert["payload"]["data"]["alertChanged"];
    assert_eq!(fired["monitorId"], "demo-flaky", "{alert}");
    assert!(fired["value"].as_f64().unwrap() > 0.01, "{alert}");
    alerts_ws.close(None).await.unwrap();
    // The alert leaves on the topic as its window closes; the history table has it once the
    // batch holding it is written, a moment later.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let history = api.get("/api/v1/alerts?state=firing").await;
        let rules: BTreeSet<String> = history["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["rule_id"].as_str().unwrap().to_owned())
            .collect();
        if rules.contains("demo-flaky-errors") && rules.contains("demo-cert-expiring") {
            break;
        }
        assert!(Instant::now() < deadline, "{history}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let active = api
        .get("/api/v1/alerts/active?rule=demo-cert-expiring")
        .await;
    assert_eq!(
        active["items"][0]["monitor_id"], "demo-expiring-cert",
        "{active}"
    );

    // Windows for every monitor, and enough flaky checks to see its 2%.
    let deadline = Instant::now() + Duration::from_secs(300);
    let totals = loop {
        let t = totals(&database).await;
        let every = DEMO_MONITORS
            .iter()
            .all(|m| t.get(*m).is_some_and(|x| x.windows > 0));
        if every && t["demo-flaky"].checks >= 100 {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "windows so far: {t:?}\n{}",
            up.logs()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    eprintln!(
        "windows for every demo monitor and 100 flaky checks {:?} after start: {totals:?}",
        started.elapsed()
    );
    let flaky = &totals["demo-flaky"];
    let failures = flaky.checks - flaky.ok;
    let availability = flaky.ok as f64 / flaky.checks as f64;
    // Exactly one request in every block of 50 fails, so at least checks/50 failed.
    assert!(failures >= flaky.checks / 50, "{flaky:?}");
    assert!(
        (0.95..=0.99).contains(&availability),
        "flaky availability {availability}: {flaky:?}"
    );
    assert!(totals["demo-fast"].ok > 0, "{totals:?}");
    // ICMP needs a datagram or raw ICMP socket; without either, its checks fail (`blocked`).
    let icmp = [socket2::Type::DGRAM, socket2::Type::RAW]
        .into_iter()
        .any(|t| {
            socket2::Socket::new(socket2::Domain::IPV4, t, Some(socket2::Protocol::ICMPV4)).is_ok()
        });
    for kind in DEMO_KINDS.into_iter().filter(|k| icmp || *k != "demo-icmp") {
        let t = &totals[kind];
        assert!(
            t.checks > 0 && t.ok == t.checks,
            "{kind}: {t:?}\n{}",
            up.logs()
        );
    }
    // The imported monitors pass: status, content type, and the body against its schema.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = crate::e2e::totals(&database).await;
        let passing = IMPORTED_MONITORS
            .iter()
            .all(|m| t.get(*m).is_some_and(|x| x.checks >= 3));
        if passing {
            for m in IMPORTED_MONITORS {
                assert_eq!(t[m].ok, t[m].checks, "{m}: {:?}\n{}", t[m], up.logs());
            }
            break;
        }
        assert!(Instant::now() < deadline, "{t:?}\n{}", up.logs());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let monitor = api.get("/api/v1/monitors/api-callendpoint").await;
    assert_eq!(monitor["url"], format!("{demo_http}/api/fast"), "{monitor}");
    assert_eq!(
        monitor["assertions"][2], "[BODY] matches schema",
        "{monitor}"
    );

    // The multi-step monitor's checks, as the probe history shows them: both steps, in order.
    let probes = api
        .get("/api/v1/monitors/demo-steps/probes?from=now-1h&limit=1")
        .await;
    let probe = &probes["items"][0];
    assert_eq!(probe["method"], "STEPS", "{probes}");
    assert_eq!(probe["outcome"], "ok", "{probes}");
    let steps: Vec<(&str, &str, u64)> = probe["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
                s["status_code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [("index", "ok", 200), ("first", "ok", 200)],
        "{probes}"
    );
    let held = &probe["steps"][1]["assertions"][1];
    assert_eq!(held["condition"], "[BODY].status == UP", "{probes}");
    assert_eq!(held["passed"], true, "{probes}");
    assert!(
        held["actual"].is_null(),
        "a passing condition shows no value: {probes}"
    );
    let passing: Vec<&Value> = probe["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["passed"] == true)
        .collect();
    assert!(
        !passing.is_empty() && passing.iter().all(|a| a["actual"].is_null()),
        "the check's own conditions show no value when they pass: {probes}"
    );
    let data = api
        .graphql(
            r#"{ probes(monitorId: "demo-steps", from: "now-1h", first: 1) {
                   items { method steps { name outcome statusCode assertions { condition passed } } } }
                 monitor(id: "demo-steps") { steps { name url assertions } } }"#,
        )
        .await;
    let steps = &data["probes"]["items"][0]["steps"];
    assert_eq!(steps[0]["name"], "index", "{data}");
    assert_eq!(steps[1]["statusCode"], 200, "{data}");
    assert_eq!(
        steps[1]["assertions"][1]["condition"], "[BODY].status == UP",
        "{data}"
    );
    assert_eq!(
        data["monitor"]["steps"][1]["url"], "${steps.index.first}",
        "{data}"
    );

    // The certificate expires in five days; its monitor asks for more than seven.
    assert_eq!(totals["demo-expiring-cert"].ok, 0, "{totals:?}");
    #[derive(Debug, clickhouse::Row, serde::Deserialize)]
    struct CertProbe {
        outcome: String,
        expiry_ms: Option<i64>,
    }
    let cert: CertProbe = clickhouse()
        .with_database(&database)
        .query(
            "SELECT toString(outcome) AS outcome, toUnixTimestamp64Milli(tls_cert_expiry) AS \
             expiry_ms FROM probes WHERE monitor_id = 'demo-expiring-cert' LIMIT 1",
        )
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(cert.outcome, "assertion", "{cert:?}");
    let days = (cert.expiry_ms.unwrap() - vigil_schema::Timestamp::now().as_millis()) as f64
        / 86_400_000.0;
    assert!(
        (4.0..=5.0).contains(&days),
        "certificate expires in {days} days"
    );

    // A fixed range of closed windows, so every reader sees the same rows.
    let to_ms = vigil_schema::Timestamp::now().as_millis() / 10_000 * 10_000 - 20_000;
    let from_ms = to_ms - 3_600_000;
    let range = format!("from={from_ms}&to={to_ms}");

    // Medians: slow well above fast; REST and GraphQL agree.
    let mut p50 = BTreeMap::new();
    for id in ["demo-fast", "demo-slow"] {
        let rest = api
            .get(&format!("/api/v1/monitors/{id}/summary?{range}"))
            .await;
        let gql = api
            .graphql(&format!(
                r#"{{ summary(monitorId: "{id}", from: "{from_ms}", to: "{to_ms}") {{ overall {{ count okCount p50Us p99Us }} }} }}"#
            ))
            .await;
        let (r, g) = (&rest["overall"], &gql["summary"]["overall"]);
        assert_eq!(r["count"], g["count"], "{rest} {gql}");
        assert_eq!(r["ok_count"], g["okCount"], "{rest} {gql}");
        assert_eq!(r["p50_us"], g["p50Us"], "{rest} {gql}");
        assert_eq!(r["p99_us"], g["p99Us"], "{rest} {gql}");
        p50.insert(id, r["p50_us"].as_f64().unwrap());
    }
    assert!(
        p50["demo-slow"] > 2.0 * p50["demo-fast"],
        "medians in µs: {p50:?}"
    );

    // The flaky monitor's windows: REST = GraphQL = ClickHouse, point by point.
    let rest = api
        .get(&format!(
            "/api/v1/monitors/demo-flaky/history?{range}&resolution=1m"
        ))
        .await;
    let gql = api
        .graphql(&format!(
            r#"{{ history(monitorId: "demo-flaky", from: "{from_ms}", to: "{to_ms}", resolution: "1m") {{ points {{ start count okCount p50Us availability }} }} }}"#
        ))
        .await;
    let rest_points = rest["points"].as_array().unwrap();
    let gql_points = gql["history"]["points"].as_array().unwrap();
    assert!(rest_points.len() >= 5, "{rest}");
    assert_eq!(rest_points.len(), gql_points.len(), "{rest} {gql}");
    let rows: Vec<WindowRow> = clickhouse()
        .with_database(&database)
        .query(
            "SELECT toUnixTimestamp64Milli(window_start) AS start_ms, count, ok_count \
             FROM windows_1m FINAL WHERE monitor_id = 'demo-flaky' \
             AND window_start >= fromUnixTimestamp64Milli(?) \
             AND window_start < fromUnixTimestamp64Milli(?) ORDER BY window_start",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), rest_points.len(), "{rows:?} {rest}");
    for ((r, g), row) in rest_points.iter().zip(gql_points).zip(&rows) {
        assert_eq!(r["start"], g["start"]);
        assert_eq!(r["count"], g["count"]);
        assert_eq!(r["ok_count"], g["okCount"]);
        assert_eq!(r["p50_us"], g["p50Us"]);
        assert_eq!(r["availability"], g["availability"]);
        assert_eq!(parse_ms(r["start"].as_str().unwrap()), row.start_ms);
        assert_eq!(r["count"].as_u64().unwrap(), row.count);
        assert_eq!(r["ok_count"].as_u64().unwrap(), row.ok_count);
    }

    // Every example of the README's API section, pasted into a shell.
    for example in api_examples() {
        let script = example
            .replace("127.0.0.1:8080", &up.query)
            .replace("127.0.0.1:8081", &up.ingest)
            .replace("http://127.0.0.1:8090", &demo_http);
        let out = sh(&script, &key);
        assert!(!out.trim().is_empty(), "{script} printed nothing");
        // GraphQL reports failures in the body of a 200.
        assert!(!out.contains(r#""errors":[{"message""#), "{script}\n{out}");
    }

    // SIGTERM: stop accepting, flush, commit, exit 0 within the grace period.
    let pid = up.child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(45), up.child.wait())
        .await
        .unwrap_or_else(|_| panic!("still running 45 s after SIGTERM\n{}", up.logs()))
        .unwrap();
    assert!(status.success(), "exit status {status}\n{}", up.logs());
    let logs = std::fs::read_to_string(&up.stderr).unwrap();
    assert!(logs.contains("Stopped cleanly."), "{}", up.logs());
    crate::common::drop_database(&database).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The README's section with the API examples: every `sh` block in it is one example.
fn api_examples() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("\n## API examples\n")
        .expect("README has an `## API examples` section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let blocks: Vec<String> = section
        .split("```sh\n")
        .skip(1)
        .map(|rest| rest[..rest.find("```").unwrap()].to_owned())
        .collect();
    assert!(blocks.len() >= 3, "{section}");
    blocks
}

/// `vigil up` with everything else from the test's own arguments; (exit code, stderr).
fn up_fails(args: &[&str], config: Option<&std::path::Path>) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"));
    for (name, _) in std::env::vars() {
        if name.starts_with("VIGIL_") {
            cmd.env_remove(name);
        }
    }
    if let Some(config) = config {
        cmd.env("VIGIL_CONFIG", config);
    }
    cmd.arg("up");
    for flag in ["--listen", "--ingest-listen"] {
        if !args.contains(&flag) {
            cmd.args([flag, &format!("127.0.0.1:{}", free_port())]);
        }
    }
    let out = cmd.args(args).stdin(Stdio::null()).output().unwrap();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn start_up_checks_name_the_problem_and_the_fix() {
    // A broker that is not the local default is never replaced by the local stack.
    let (code, stderr) = up_fails(&["--kafka-brokers", "127.0.0.1:1"], None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: Kafka is unreachable at 127.0.0.1:1 (127.0.0.1:1: Connection refused"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("`scripts/stack up`"), "{stderr}");
    assert!(!stderr.contains("starting it with"), "{stderr}");

    let (code, stderr) = up_fails(
        &[
            "--kafka-brokers",
            &kafka_brokers(),
            "--clickhouse-url",
            "http://127.0.0.1:1",
        ],
        None,
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: ClickHouse is unreachable at http://127.0.0.1:1 ("),
        "{stderr}"
    );
    assert!(stderr.contains("`scripts/stack up`"), "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = up_fails(&["--demo", "--demo-listen", &addr], None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: demo target: cannot listen on {addr} (port in use?)"
        )),
        "{stderr}"
    );
    let (code, stderr) = up_fails(&["--ingest-listen", &addr], None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: port already in use: ingestion API (--ingest-listen) cannot listen on {addr}"
        )),
        "{stderr}"
    );
    drop(taken);

    let dir = std::env::temp_dir().join(unique_name("it", "e2e_bad_config"));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("vigil.toml");
    std::fs::write(&bad, "[kafka]\nbrokers = \"k:9092\"\nbrokerz = 2\n").unwrap();
    let (code, stderr) = up_fails(&[], Some(&bad));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: invalid config file {}: TOML parse error at line 3, column 1",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `brokerz`"), "{stderr}");
    let (code, stderr) = up_fails(&["--api-key", "short"], None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: invalid config: --api-key / VIGIL_API_KEY: must be at least 16 characters"
        ),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
