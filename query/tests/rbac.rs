//! The role × operation matrix: every operation of the OpenAPI document and every GraphQL
//! field (queries, mutations, subscriptions), called without a key and with a viewer, editor and
//! admin key. The expected role of each is written here, independently of the code: an
//! operation missing from these tables fails the test, so a new route cannot ship without a
//! rule. Below its role a caller gets 401 (no key) or 403 before anything else happens; at or
//! above it, neither.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use vigil_query::auth::Role;
use vigil_query::config::ApiKeyConfig;
use vigil_query::{AppState, Config, router};

const KEYS: [(&str, Role); 3] = [
    ("viewer-key-0123456789", Role::Viewer),
    ("editor-key-0123456789", Role::Editor),
    ("admin-key-01234567890", Role::Admin),
];

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Anyone,
    /// Authenticated by a signature, not a key (answers 401 to a request without one).
    Signature,
    /// Any valid key (GraphQL then checks each operation's role).
    Key,
    At(Role),
}

use Needs::{Anyone, At, Key, Signature};
const VIEWER: Needs = At(Role::Viewer);
const EDITOR: Needs = At(Role::Editor);
const ADMIN: Needs = At(Role::Admin);

/// Every REST operation and who may call it.
const REST: &[(&str, &str, Needs)] = &[
    ("GET", "/api/v1/monitors", VIEWER),
    ("POST", "/api/v1/monitors", EDITOR),
    ("GET", "/api/v1/monitors/{id}", VIEWER),
    ("PUT", "/api/v1/monitors/{id}", EDITOR),
    ("PATCH", "/api/v1/monitors/{id}", EDITOR),
    ("DELETE", "/api/v1/monitors/{id}", EDITOR),
    ("POST", "/api/v1/monitors/{id}/enable", EDITOR),
    ("POST", "/api/v1/monitors/{id}/disable", EDITOR),
    ("GET", "/api/v1/monitors/{id}/history", VIEWER),
    ("GET", "/api/v1/monitors/{id}/summary", VIEWER),
    ("GET", "/api/v1/monitors/{id}/probes", VIEWER),
    ("GET", "/api/v1/monitors/{id}/export", VIEWER),
    ("GET", "/api/v1/history", VIEWER),
    ("GET", "/api/v1/export", VIEWER),
    ("GET", "/api/v1/alerts", VIEWER),
    ("GET", "/api/v1/alerts/active", VIEWER),
    ("POST", "/api/v1/alerts/ack", EDITOR),
    ("GET", "/api/v1/audit", ADMIN),
    ("POST", "/api/v1/integrations/pagerduty", Signature),
    ("GET", "/api/v1/deliveries", VIEWER),
    ("POST", "/api/v1/deliveries/{delivery_id}/redeliver", EDITOR),
    ("GET", "/api/v1/rules", VIEWER),
    ("POST", "/api/v1/rules", EDITOR),
    ("GET", "/api/v1/rules/{id}", VIEWER),
    ("PUT", "/api/v1/rules/{id}", EDITOR),
    ("DELETE", "/api/v1/rules/{id}", EDITOR),
    ("GET", "/api/v1/rules/{id}/budget", VIEWER),
    ("POST", "/api/v1/rules/backtest", EDITOR),
    ("POST", "/api/v1/import/openapi", EDITOR),
    ("GET", "/api/v1/channels", VIEWER),
    ("POST", "/api/v1/channels", EDITOR),
    ("GET", "/api/v1/channels/{id}", VIEWER),
    ("PUT", "/api/v1/channels/{id}", EDITOR),
    ("DELETE", "/api/v1/channels/{id}", EDITOR),
    ("GET", "/api/v1/routes", VIEWER),
    ("PUT", "/api/v1/routes", EDITOR),
    ("GET", "/api/v1/silences", VIEWER),
    ("POST", "/api/v1/silences", EDITOR),
    ("GET", "/api/v1/silences/{id}", VIEWER),
    ("DELETE", "/api/v1/silences/{id}", EDITOR),
    ("POST", "/api/v1/silences/{id}/expire", EDITOR),
    ("GET", "/api/v1/maintenance", VIEWER),
    ("POST", "/api/v1/maintenance", EDITOR),
    ("GET", "/api/v1/maintenance/{id}", VIEWER),
    ("PUT", "/api/v1/maintenance/{id}", EDITOR),
    ("DELETE", "/api/v1/maintenance/{id}", EDITOR),
    ("GET", "/api/v1/keys", ADMIN),
    ("POST", "/api/v1/keys", ADMIN),
    ("GET", "/api/v1/keys/{id}", ADMIN),
    ("POST", "/api/v1/keys/{id}/revoke", ADMIN),
    ("GET", "/api/v1/secrets", EDITOR),
    ("PUT", "/api/v1/secrets/{name}", ADMIN),
    ("DELETE", "/api/v1/secrets/{name}", ADMIN),
    ("GET", "/api/v1/openapi.json", Anyone),
    ("GET", "/docs", Anyone),
    ("GET", "/healthz", Anyone),
    ("GET", "/readyz", Anyone),
    ("GET", "/metrics", Anyone),
    // GraphQL checks each operation (see the GraphQL matrix below).
    ("GET", "/graphql", Anyone),
    ("POST", "/graphql", Key),
    ("GET", "/graphql/ws", Anyone),
];

async fn state(cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>) -> AppState {
    let mut config = Config::default();
    config.kafka.brokers = cluster.bootstrap_servers();
    config.kafka.topic_prefix = "t".into();
    config.kafka.request_timeout = Duration::from_secs(2);
    config.clickhouse.url = "http://127.0.0.1:9".into();
    config.integrations.pagerduty_webhook_secret =
        Some(vigil_schema::event::SecretRef::to("PD_WEBHOOK"));
    config.auth.keys = KEYS
        .iter()
        .map(|(key, role)| ApiKeyConfig {
            name: format!("{role:?}").to_lowercase(),
            key: (*key).into(),
            role: *role,
            expires: None,
        })
        .collect();
    for topic in config.topics().specs() {
        cluster
            .create_topic(&topic.name, topic.partitions, 1)
            .unwrap();
    }
    let token = CancellationToken::new();
    let service = vigil_query::connect(&config, &token).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !service.view().is_caught_up() || !service.hub().is_ready() {
        assert!(std::time::Instant::now() < deadline, "view never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The service lives as long as the test process.
    std::mem::forget(token.drop_guard());
    let secrets = vigil_notify::MemorySecrets::new().with("PD_WEBHOOK", "pd-secret");
    AppState::new(service, config, None).with_secrets(std::sync::Arc::new(secrets))
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    call_raw(state, method, uri, key, body.map(Value::to_string)).await
}

async fn call_raw(
    state: &AppState,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(uri);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let request = match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body)),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        router(state.clone()).oneshot(request),
    )
    .await
    .unwrap_or_else(|_| panic!("{method} {uri} did not answer"))
    .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

/// Whether `role` (`None`: no key) may call what `needs`.
fn allowed(needs: Needs, role: Option<Role>) -> bool {
    match needs {
        Anyone => true,
        Signature => false,
        Key => role.is_some(),
        At(needed) => role.is_some_and(|r| r >= needed),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_operation_answers_each_role_as_the_matrix_says() {
    let cluster = MockCluster::new(1).unwrap();
    let state = state(&cluster).await;
    // Every documented operation has a rule here, and every rule a documented operation.
    let doc = serde_json::to_value(vigil_query::openapi::document()).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    // The WebSocket is not an HTTP operation, so the document does not describe it.
    let ruled: BTreeSet<(String, String)> = REST
        .iter()
        .filter(|(_, p, _)| *p != "/graphql/ws")
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let unruled: Vec<_> = documented.difference(&ruled).collect();
    assert!(unruled.is_empty(), "operations without a rule: {unruled:?}");
    let undocumented: Vec<_> = ruled.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "rules without an operation: {undocumented:?}"
    );

    let mut checked = 0;
    for &(method, path, needs) in REST {
        // Malformed on purpose: a caller who may not call it is refused before anything is
        // parsed; one who may gets a 400, never a 401 or 403.
        let uri = path
            .replace("{id}", "nope")
            .replace("{name}", "nope")
            .replace("{delivery_id}", "00000000-0000-0000-0000-000000000000")
            + "?not-a-parameter=1";
        let body = (method == "POST" || method == "PUT").then(|| "{\"unclosed\": ".to_owned());
        let callers = std::iter::once(None).chain(KEYS.iter().map(|(k, r)| Some((*k, *r))));
        for caller in callers {
            let role = caller.map(|(_, r)| r);
            let (status, problem) =
                call_raw(&state, method, &uri, caller.map(|(k, _)| k), body.clone()).await;
            let what = format!("{method} {path} as {role:?}: {status} {problem}");
            if allowed(needs, role) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{what}"
                );
            } else if role.is_none() || needs == Signature {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                assert_eq!(problem["status"], 403, "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, REST.len() * 4);
}

/// Every GraphQL field (camelCase) and who may call it.
const GRAPHQL: &[(&str, &str, Needs)] = &[
    ("query", "monitors", VIEWER),
    ("query", "monitor", VIEWER),
    ("query", "rules", VIEWER),
    ("query", "rule", VIEWER),
    ("query", "history", VIEWER),
    ("query", "summary", VIEWER),
    ("query", "probes", VIEWER),
    ("query", "alerts", VIEWER),
    ("query", "activeAlerts", VIEWER),
    ("query", "errorBudget", VIEWER),
    ("query", "channels", VIEWER),
    ("query", "channel", VIEWER),
    ("query", "routes", VIEWER),
    ("query", "silences", VIEWER),
    ("query", "silence", VIEWER),
    ("query", "maintenanceWindows", VIEWER),
    ("query", "maintenanceWindow", VIEWER),
    ("query", "deliveries", VIEWER),
    ("query", "apiKeys", ADMIN),
    ("query", "apiKey", ADMIN),
    ("query", "secrets", EDITOR),
    ("mutation", "createMonitor", EDITOR),
    ("mutation", "updateMonitor", EDITOR),
    ("mutation", "patchMonitor", EDITOR),
    ("mutation", "deleteMonitor", EDITOR),
    ("mutation", "setMonitorEnabled", EDITOR),
    ("mutation", "createRule", EDITOR),
    ("mutation", "updateRule", EDITOR),
    ("mutation", "deleteRule", EDITOR),
    ("mutation", "backtestRules", EDITOR),
    ("mutation", "importOpenapi", EDITOR),
    ("mutation", "createChannel", EDITOR),
    ("mutation", "updateChannel", EDITOR),
    ("mutation", "deleteChannel", EDITOR),
    ("mutation", "updateRoutes", EDITOR),
    ("mutation", "createSilence", EDITOR),
    ("mutation", "expireSilence", EDITOR),
    ("mutation", "deleteSilence", EDITOR),
    ("mutation", "createMaintenanceWindow", EDITOR),
    ("mutation", "updateMaintenanceWindow", EDITOR),
    ("mutation", "deleteMaintenanceWindow", EDITOR),
    ("mutation", "acknowledgeAlert", EDITOR),
    ("mutation", "redeliver", EDITOR),
    ("mutation", "createApiKey", ADMIN),
    ("mutation", "revokeApiKey", ADMIN),
    ("mutation", "setSecret", ADMIN),
    ("mutation", "deleteSecret", ADMIN),
    ("subscription", "windowClosed", VIEWER),
    ("subscription", "probeCompleted", VIEWER),
    ("subscription", "alertChanged", VIEWER),
    ("subscription", "monitorChanged", VIEWER),
    ("subscription", "ruleChanged", VIEWER),
];

const INTROSPECTION: &str = "{ __schema { \
    queryType { fields { ...F } } mutationType { fields { ...F } } \
    subscriptionType { fields { ...F } } } } \
    fragment F on __Field { name args { name type { ...T } } type { ...T } } \
    fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// The named type under any NON_NULL/LIST wrappers, and whether the outer one is NON_NULL.
fn unwrap(t: &Value) -> (&str, &str, bool) {
    let required = t["kind"] == "NON_NULL";
    let mut t = t;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    (
        t["kind"].as_str().unwrap(),
        t["name"].as_str().unwrap(),
        required,
    )
}

/// `field(required args…) { __typename }` (no selection on a scalar).
fn operation(kind: &str, field: &Value) -> String {
    let args: Vec<String> = field["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| {
            let (_, ty, required) = unwrap(&a["type"]);
            let value = match ty {
                "Boolean" => "true".to_owned(),
                "Int" => "1".to_owned(),
                "Float" => "0.5".to_owned(),
                "JSON" => "{}".to_owned(),
                "NewApiKey" => "{name: \"nope\", role: VIEWER}".to_owned(),
                _ => "\"nope\"".to_owned(),
            };
            required.then(|| format!("{}: {value}", a["name"].as_str().unwrap()))
        })
        .collect();
    let args = if args.is_empty() {
        String::new()
    } else {
        format!("({})", args.join(", "))
    };
    let (ty_kind, _, _) = unwrap(&field["type"]);
    let selection = if matches!(ty_kind, "OBJECT" | "INTERFACE" | "UNION") {
        " { __typename }"
    } else {
        ""
    };
    format!(
        "{kind} {{ {}{args}{selection} }}",
        field["name"].as_str().unwrap()
    )
}

/// The `extensions.code` of every error of a GraphQL answer.
fn codes(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_graphql_operation_answers_each_role_as_the_matrix_says() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let cluster = MockCluster::new(1).unwrap();
    let state = state(&cluster).await;
    let admin = Some(KEYS[2].0);
    let (status, schema) = call(
        &state,
        "POST",
        "/graphql",
        admin,
        Some(&json!({"query": INTROSPECTION})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    let mut fields = Vec::new();
    for (kind, root) in [
        ("query", "queryType"),
        ("mutation", "mutationType"),
        ("subscription", "subscriptionType"),
    ] {
        for field in schema["data"]["__schema"][root]["fields"]
            .as_array()
            .unwrap()
        {
            fields.push((kind, field.clone()));
        }
    }
    // Every field has a rule here, and every rule a field.
    let found: BTreeSet<(String, String)> = fields
        .iter()
        .map(|(k, f)| ((*k).to_owned(), f["name"].as_str().unwrap().to_owned()))
        .collect();
    let ruled: BTreeSet<(String, String)> = GRAPHQL
        .iter()
        .map(|(k, f, _)| ((*k).to_owned(), (*f).to_owned()))
        .collect();
    assert_eq!(found, ruled, "GraphQL fields and rules differ");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let server = tokio::spawn(vigil_query::serve(listener, state.clone(), token.clone()));
    let mut checked = 0;
    for (kind, field) in &fields {
        let name = field["name"].as_str().unwrap();
        let needs = GRAPHQL
            .iter()
            .find(|(k, f, _)| k == kind && *f == name)
            .map(|r| r.2)
            .unwrap();
        let query = operation(kind, field);
        for &(key, role) in &KEYS {
            let answer = if *kind == "subscription" {
                let mut request = format!("ws://{addr}/graphql/ws")
                    .into_client_request()
                    .unwrap();
                request.headers_mut().insert(
                    "sec-websocket-protocol",
                    "graphql-transport-ws".parse().unwrap(),
                );
                let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
                let init = json!({"type": "connection_init",
                    "payload": {"authorization": format!("Bearer {key}")}});
                ws.send(Message::text(init.to_string())).await.unwrap();
                let ack = ws.next().await.unwrap().unwrap();
                assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack}");
                let subscribe =
                    json!({"id": "1", "type": "subscribe", "payload": {"query": query}});
                ws.send(Message::text(subscribe.to_string())).await.unwrap();
                // A refusal comes at once; an accepted subscription waits for events.
                match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
                    Ok(Some(Ok(message))) => {
                        let value: Value =
                            serde_json::from_str(message.to_text().unwrap()).unwrap();
                        json!({"errors": value["payload"].clone()})
                    }
                    _ => json!({}),
                }
            } else {
                let (status, answer) = call(
                    &state,
                    "POST",
                    "/graphql",
                    Some(key),
                    Some(&json!({"query": query})),
                )
                .await;
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{query}: {answer}");
                answer
            };
            let codes = codes(&answer);
            let what = format!("{query} as {role:?}: {answer}");
            if allowed(needs, Some(role)) {
                assert!(
                    !codes
                        .iter()
                        .any(|c| c == "FORBIDDEN" || c == "UNAUTHENTICATED"),
                    "{what}"
                );
            } else {
                assert_eq!(codes, ["FORBIDDEN"], "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, GRAPHQL.len() * KEYS.len());
    token.cancel();
    server.await.unwrap().unwrap();
}
