//! Multi-step checks against a local API with a login flow: values extracted from one response
//! (JSON path, header, regex) feed later requests, each step with its own assertions and
//! timings; the check fails at the first failing step and says which; secrets come from the
//! store, and a value a server sent is never expanded as a reference.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use vigil_ingest::config::CheckerConfig;
use vigil_ingest::probe::{Assertions, Checker};
use vigil_notify::MemorySecrets;
use vigil_schema::{EgressPolicy, MonitorSpec, Outcome, ProbeResult, Timestamp};

const TOKEN: &str = "t-123";

async fn login(Json(body): Json<serde_json::Value>) -> Response {
    match (body["user"].as_str(), body["password"].as_str()) {
        (Some("bot"), Some("pw-secret")) => (
            [("x-session", "s-9")],
            Json(serde_json::json!({"token": TOKEN, "user": {"id": 7}})),
        )
            .into_response(),
        // A hostile server: its token looks like a reference to a secret.
        (Some("mallory"), _) => {
            Json(serde_json::json!({"token": "${secret:BOT_PASSWORD}"})).into_response()
        }
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn me(headers: HeaderMap) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth == format!("Bearer {TOKEN}") {
        Json(serde_json::json!({"name": "bot", "id": 7})).into_response()
    } else {
        // Echoes what it got, so a test can see exactly what was sent.
        (StatusCode::UNAUTHORIZED, auth.to_owned()).into_response()
    }
}

async fn orders(
    Path(id): Path<u32>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let order_ok = q.get("order").is_none_or(|o| o == "42");
    if id == 7 && q.get("session").map(String::as_str) == Some("s-9") && order_ok {
        "<ul><li>order-42</li></ul>".into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn server() -> SocketAddr {
    let app = axum::Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route(
            "/point",
            get(
                |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    Json(serde_json::json!({"to": q.get("to")}))
                },
            ),
        )
        .route("/users/{id}/orders", get(orders))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn checker() -> Checker {
    let policy = EgressPolicy {
        allow: vec!["127.0.0.1".parse().unwrap()],
        env_allow: Vec::new(),
    };
    let secrets = MemorySecrets::new().with("BOT_PASSWORD", "pw-secret");
    Checker::new(CheckerConfig::default(), "local".into(), "test".into())
        .with_policy(policy)
        .with_secrets(Arc::new(secrets))
}

fn spec(value: serde_json::Value) -> MonitorSpec {
    let spec: MonitorSpec = serde_json::from_value(value).unwrap();
    spec.validate().unwrap();
    vigil_schema::validate_egress(
        &spec,
        &EgressPolicy {
            allow: vec!["127.0.0.1".parse().unwrap(), "localhost".parse().unwrap()],
            env_allow: Vec::new(),
        },
    )
    .unwrap();
    spec
}

async fn check(spec: &MonitorSpec) -> ProbeResult {
    let assertions = Assertions::of(spec);
    checker().check(spec, &assertions, Timestamp::now()).await
}

/// The login flow, with `password` and the `me` step's assertion.
fn flow(addr: SocketAddr, user: &str, me_assertion: &str) -> MonitorSpec {
    spec(serde_json::json!({
        "id": "flow", "name": "Flow", "url": format!("http://{addr}/"), "timeout": "2s",
        "steps": [
            {
                "name": "login", "method": "POST", "url": "/login",
                "headers": {"content-type": "application/json"},
                "body": format!(r#"{{"user": "{user}", "password": "${{secret:BOT_PASSWORD}}"}}"#),
                "assertions": ["[STATUS] == 200", "has([BODY].token) == true"],
                "extract": {"token": "[BODY].token", "uid": "$.user.id"},
            },
            {
                "name": "me", "url": "me",
                "headers": {"authorization": "Bearer ${steps.login.token}"},
                "assertions": [me_assertion],
            },
            {
                "name": "orders",
                "url": format!(
                    "http://{addr}/users/${{steps.login.body.user.id}}/orders?session=${{steps.login.header.x-session}}"
                ),
                "assertions": ["[BODY] == pat(*order-*)"],
                "extract": {"order": {"from": "[BODY]", "regex": "order-(\\d+)"}},
            },
            {
                "name": "again",
                "url": "/users/${steps.login.uid}/orders?session=s-9&order=${steps.orders.order}",
                "assertions": ["[STATUS] == 200"],
            },
        ],
    }))
}

#[tokio::test]
async fn a_login_flow_passes_with_values_from_earlier_steps() {
    let addr = server().await;
    let r = check(&flow(addr, "bot", "[BODY].name == bot")).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}: {:#?}", r.error, r.steps);
    assert_eq!(r.method, "STEPS");
    assert_eq!(r.url, format!("http://{addr}/"));
    let names: Vec<&str> = r.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["login", "me", "orders", "again"]);
    for step in &r.steps {
        assert_eq!(step.outcome, Outcome::Ok, "{step:?}");
        assert_eq!(step.status_code, Some(200), "{step:?}");
        assert!(step.timings.connect_us.is_some() && step.timings.ttfb_us.is_some());
        assert!(step.assertions.iter().all(|a| a.passed), "{step:?}");
    }
    assert_eq!(r.steps[0].method, "POST");
    assert_eq!(r.steps[1].assertions[0].actual.as_deref(), Some("bot"));
    // The check's own fields: every step's assertions, prefixed; phases summed.
    let conditions: Vec<&str> = r.assertions.iter().map(|a| a.condition.as_str()).collect();
    assert_eq!(
        conditions,
        [
            "login: [STATUS] == 200",
            "login: has([BODY].token) == true",
            "me: [BODY].name == bot",
            "orders: [BODY] == pat(*order-*)",
            "again: [STATUS] == 200",
        ]
    );
    let connects: u64 = r.steps.iter().filter_map(|s| s.timings.connect_us).sum();
    assert_eq!(r.timings.connect_us, Some(connects));
    assert!(r.timings.total_us >= r.steps.iter().map(|s| s.timings.total_us).sum::<u64>());
    assert_eq!(r.status_code, Some(200));
}

#[tokio::test]
async fn the_check_fails_at_the_first_failing_step_and_says_which() {
    let addr = server().await;
    // Step 2's assertion fails: steps 3 and 4 never run.
    let r = check(&flow(addr, "bot", "[BODY].name == alice")).await;
    assert_eq!(r.outcome, Outcome::Assertion);
    assert_eq!(
        r.error.as_deref(),
        Some("step 2 \"me\": assertion failed: [BODY].name == alice (actual: bot)")
    );
    assert_eq!(r.steps.len(), 2);
    assert_eq!(r.steps[0].outcome, Outcome::Ok);
    assert_eq!(r.steps[1].outcome, Outcome::Assertion);

    // Wrong credentials: the login itself fails on its status.
    let r = check(&flow(addr, "eve", "[BODY].name == bot")).await;
    assert_eq!(r.outcome, Outcome::Assertion, "{:?}", r.error);
    assert_eq!(r.steps.len(), 1);
    assert_eq!(r.steps[0].status_code, Some(401));
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .starts_with("step 1 \"login\": "),
        "{:?}",
        r.error
    );
}

#[tokio::test]
async fn a_value_a_server_sent_is_never_expanded() {
    let addr = server().await;
    // mallory's token is the text `${secret:BOT_PASSWORD}`; `me` echoes the authorization it
    // was sent: the literal text, not the secret.
    let echoed = check(&spec(serde_json::json!({
        "id": "echo", "name": "Echo", "url": format!("http://{addr}/"), "timeout": "2s",
        "steps": [
            {"name": "login", "method": "POST", "url": "/login",
             "headers": {"content-type": "application/json"},
             "body": r#"{"user": "mallory"}"#, "extract": {"token": "[BODY].token"}},
            {"name": "me", "url": "/me", "headers": {"authorization": "${steps.login.token}"},
             "assertions": ["[BODY] == ${secret:BOT_PASSWORD}"]},
        ],
    })))
    .await;
    assert_eq!(echoed.steps.len(), 2, "{:?}", echoed.error);
    assert_eq!(echoed.steps[1].status_code, Some(401));
    assert_eq!(
        echoed.steps[1].assertions[0].actual.as_deref(),
        Some("${secret:BOT_PASSWORD}")
    );
}

#[tokio::test]
async fn credentials_do_not_follow_an_origin_a_response_chose() {
    let addr = server().await;
    // Another origin for the same server: `localhost` instead of 127.0.0.1.
    let elsewhere = format!("http://localhost:{}/me", addr.port());
    let run = |second_url: String, expect: &str| {
        spec(serde_json::json!({
            "id": "o", "name": "O", "url": format!("http://{addr}/"), "timeout": "2s",
            "auth": {"type": "bearer", "token": TOKEN},
            "steps": [
                {"name": "first", "url": format!("/point?to={elsewhere}"),
                 "extract": {"to": "[BODY].to"}},
                {"name": "second", "url": second_url, "assertions": [expect]},
            ],
        }))
    };
    // The response chose the origin: no credentials go there (`me` answers 401).
    let r = check(&run("${steps.first.to}".into(), "[STATUS] == 401")).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}: {:?}", r.error, r.steps);
    // The same origin, written in the step by the monitor's author: credentials go.
    let r = check(&run(elsewhere.clone(), "[STATUS] == 200")).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}: {:?}", r.error, r.steps);
    // Nor do secrets in its body or URL: the step is refused instead.
    let leaky = spec(serde_json::json!({
        "id": "o", "name": "O", "url": format!("http://{addr}/"), "timeout": "2s",
        "steps": [
            {"name": "first", "url": format!("/point?to={elsewhere}"),
             "extract": {"to": "[BODY].to"}},
            {"name": "second", "method": "POST", "url": "${steps.first.to}",
             "body": "password=${secret:BOT_PASSWORD}"},
        ],
    }));
    let r = check(&leaky).await;
    assert_eq!(r.outcome, Outcome::Blocked, "{:?}", r.error);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("body references a secret"),
        "{:?}",
        r.error
    );
    assert!(!r.error.as_deref().unwrap().contains("pw-secret"));
    // A path from a response stays on the monitor's origin: credentials go.
    let r = check(&spec(serde_json::json!({
        "id": "o", "name": "O", "url": format!("http://{addr}/"), "timeout": "2s",
        "auth": {"type": "bearer", "token": TOKEN},
        "steps": [
            {"name": "first", "url": "/point?to=/me", "extract": {"to": "[BODY].to"}},
            {"name": "second", "url": "${steps.first.to}", "assertions": ["[STATUS] == 200"]},
        ],
    })))
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}: {:?}", r.error, r.steps);
}

#[tokio::test]
async fn an_extraction_that_does_not_resolve_fails_its_step() {
    let addr = server().await;
    let r = check(&spec(serde_json::json!({
        "id": "x", "name": "X", "url": format!("http://{addr}/"), "timeout": "2s",
        "steps": [
            {"name": "login", "method": "POST", "url": "/login",
             "headers": {"content-type": "application/json"},
             "body": r#"{"user": "bot", "password": "${secret:BOT_PASSWORD}"}"#,
             "extract": {"missing": "[BODY].nope"}},
            {"name": "me", "url": "/me"},
        ],
    })))
    .await;
    assert_eq!(r.outcome, Outcome::Assertion);
    assert_eq!(
        r.error.as_deref(),
        Some("step 1 \"login\": extract missing: [BODY].nope does not resolve in the response")
    );
    assert_eq!(r.steps.len(), 1);
}

#[tokio::test]
async fn the_timeout_covers_the_flow_and_names_the_step_it_cut() {
    let addr = server().await;
    let r = check(&spec(serde_json::json!({
        "id": "t", "name": "T", "url": format!("http://{addr}/"), "timeout": "500ms",
        "steps": [
            {"name": "first", "url": "/users/7/orders?session=s-9"},
            {"name": "slow", "url": "/slow"},
            {"name": "never", "url": "/me"},
        ],
    })))
    .await;
    assert_eq!(r.outcome, Outcome::Timeout, "{:?}", r.error);
    assert_eq!(r.steps.len(), 2);
    assert_eq!(r.steps[0].outcome, Outcome::Ok);
    assert_eq!(r.steps[1].name, "slow");
    assert_eq!(r.steps[1].outcome, Outcome::Timeout);
    assert!(
        r.steps[1].timings.connect_us.is_some(),
        "phases before the cut are kept"
    );
    assert!(r.error.as_deref().unwrap().starts_with("step 2 \"slow\": "));
}

#[tokio::test]
async fn steps_are_validated_naming_the_field() {
    let base = serde_json::json!({"id": "v", "name": "V", "url": "https://api.example.com/"});
    let cases = [
        (
            serde_json::json!([{"name": "a", "url": "/x", "headers": {"h": "${steps.b.token}"}},
                               {"name": "b", "url": "/y", "extract": {"token": "[BODY].t"}}]),
            "steps[0].headers.h",
            "names no earlier step",
        ),
        (
            serde_json::json!([{"name": "a", "url": "/x"},
                               {"name": "b", "url": "/y?t=${steps.a.token}"}]),
            "steps[1].url",
            "extracts no \"token\"",
        ),
        (
            serde_json::json!([{"name": "a", "url": "/x"}, {"name": "a", "url": "/y"}]),
            "steps[1].name",
            "already named",
        ),
        (
            serde_json::json!([{"name": "a", "url": "/x", "extract": {"body": "[BODY]"}}]),
            "steps[0].extract.body",
            "reserved",
        ),
        (
            serde_json::json!([{"name": "a", "url": "tcp://h:1"}]),
            "steps[0].url",
            "a step is an HTTP request",
        ),
    ];
    for (steps, field, why) in cases {
        let mut value = base.clone();
        value["steps"] = steps;
        let spec: MonitorSpec = serde_json::from_value(value).unwrap();
        let errors = spec.validate().unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.field == field && e.reason.contains(why)),
            "{field}: {errors:?}"
        );
    }
    // The monitor's own body and assertions belong on a step; step references only in steps.
    let spec: MonitorSpec = serde_json::from_value(serde_json::json!({
        "id": "v", "name": "V", "url": "https://api.example.com/", "body": "x",
        "assertions": ["[STATUS] == 200"], "headers": {"a": "${steps.a.status}"},
        "steps": [{"name": "a", "url": "/x"}],
    }))
    .unwrap();
    let errors = spec.validate().unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["body", "assertions"]);
    let errors = vigil_schema::validate_egress(&spec, &EgressPolicy::default()).unwrap_err();
    assert_eq!(errors[0].field, "headers.a", "{errors:?}");
    assert!(errors[0].reason.contains("only expanded in a step"));
    // A step's absolute URL is vetted like the monitor's.
    let spec: MonitorSpec = serde_json::from_value(serde_json::json!({
        "id": "v", "name": "V", "url": "https://api.example.com/",
        "steps": [{"name": "a", "url": "http://127.0.0.1:8080/admin"}],
    }))
    .unwrap();
    let errors = vigil_schema::validate_egress(&spec, &EgressPolicy::default()).unwrap_err();
    assert_eq!(errors[0].field, "steps[0].url", "{errors:?}");
}
