//! Channel and routing tree handler tests: CRUD with exact statuses and roles, 422s naming
//! fields without echoing secrets, the tree's receivers, and the GraphQL operations (harness in
//! `notify/harness.rs`).

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "notify/harness.rs"]
mod harness;

use axum::http::{Method, StatusCode, header};
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};

use harness::{EDITOR, VIEWER, call, error_fields, harness, ids};

fn webhook(id: &str) -> Value {
    json!({"id": id, "kind": {"webhook": {"url": "https://hooks.example.com/vigil",
        "secret": "${secret:OPS_HOOK}",
        "headers": {"Authorization": "Bearer ${secret:OPS_TOKEN}"}}}})
}

fn console(id: &str) -> Value {
    json!({"id": id, "kind": {"console": {}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_crud_with_exact_statuses_and_no_secret_values() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    use Method as M;

    let (status, _, body) = call(&h, M::GET, "/api/v1/channels", None, None).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("urn:vigil:problem:unauthenticated")
        )
    );
    let (status, _, _) = call(
        &h,
        M::POST,
        "/api/v1/channels",
        Some(VIEWER),
        Some(webhook("a")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Create and read back, defaults filled in, secrets as references.
    let (status, headers, body) = call(
        &h,
        M::POST,
        "/api/v1/channels",
        Some(EDITOR),
        Some(webhook("ops-hooks")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(headers[header::LOCATION], "/api/v1/channels/ops-hooks");
    assert_eq!(
        body,
        json!({"id": "ops-hooks", "name": "", "kind": {"webhook": {
                   "url": "https://hooks.example.com/vigil", "secret": "${secret:OPS_HOOK}",
                   "headers": {"Authorization": "Bearer ${secret:OPS_TOKEN}"}, "body": null}},
               "send_resolved": true, "title": null, "text": null, "enabled": true})
    );
    let (status, _, got) = call(&h, M::GET, "/api/v1/channels/ops-hooks", Some(VIEWER), None).await;
    assert_eq!((status, &got), (StatusCode::OK, &body));
    for spec in [
        console("out"),
        json!({"id": "chat", "kind": {"slack": {"url": "${secret:SLACK_OPS}"}}, "enabled": false}),
    ] {
        let (status, _, body) =
            call(&h, M::POST, "/api/v1/channels", Some(EDITOR), Some(spec)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // 409 on an existing id; 422 naming every bad field, never echoing a secret.
    let (status, _, body) = call(
        &h,
        M::POST,
        "/api/v1/channels",
        Some(EDITOR),
        Some(console("out")),
    )
    .await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::CONFLICT, Some("channel \"out\" already exists"))
    );
    let bad = json!({"id": "Bad Id", "title": "{{titel}}", "kind": {"webhook": {
        "url": "https://hooks.slack.com/services/T0/B0/XOXSECRET", "secret": "whsec_TOPSECRET",
        "headers": {"X-Api-Key": "k3y-SECRET"}}}});
    let (status, headers, body) =
        call(&h, M::POST, "/api/v1/channels", Some(EDITOR), Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(
        error_fields(&body),
        [
            "id",
            "kind.webhook.url",
            "kind.webhook.secret",
            "kind.webhook.headers.X-Api-Key",
            "title"
        ]
    );
    let text = body.to_string();
    assert!(!text.contains("SECRET"), "a secret value leaked: {text}");
    let mail = json!({"id": "mail", "kind": {"email": {"smtp_host": "smtp.example.com",
        "username": "vigil", "password": "hunter2", "from": "v@example.com", "to": []}}});
    let (status, _, body) = call(&h, M::POST, "/api/v1/channels", Some(EDITOR), Some(mail)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error_fields(&body),
        ["kind.email.password", "kind.email.to"]
    );
    assert!(!body.to_string().contains("hunter2"), "{body}");
    let (status, _, body) = call(
        &h,
        M::POST,
        "/api/v1/channels",
        Some(EDITOR),
        Some(json!({"id": "x", "kind": {"teams": {}}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["type"], "urn:vigil:problem:bad-body");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("kind: unknown variant `teams`"),
        "{body}"
    );

    // Update: 404, 422 on another id, 200.
    let (status, _, _) = call(
        &h,
        M::PUT,
        "/api/v1/channels/nope",
        Some(EDITOR),
        Some(console("nope")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = call(
        &h,
        M::PUT,
        "/api/v1/channels/out",
        Some(EDITOR),
        Some(console("other")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&body), ["id"]);
    let mut renamed = console("out");
    renamed["name"] = json!("Standard output");
    renamed["text"] = json!("{{summary}}");
    let (status, _, body) = call(
        &h,
        M::PUT,
        "/api/v1/channels/out",
        Some(EDITOR),
        Some(renamed),
    )
    .await;
    assert_eq!(
        (status, body["name"].as_str()),
        (StatusCode::OK, Some("Standard output"))
    );

    // List: ordered, filtered, paginated; bad filters are 400s naming the parameter.
    let (_, _, body) = call(&h, M::GET, "/api/v1/channels", Some(VIEWER), None).await;
    assert_eq!(ids(&body), ["chat", "ops-hooks", "out"]);
    for (query, expected) in [
        ("kind=webhook", &["ops-hooks"][..]),
        ("status=disabled", &["chat"]),
        ("kind=console&status=enabled", &["out"]),
    ] {
        let (_, _, body) = call(
            &h,
            M::GET,
            &format!("/api/v1/channels?{query}"),
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(ids(&body), expected, "{query}");
    }
    let (status, _, body) = call(
        &h,
        M::GET,
        "/api/v1/channels?kind=teams",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("kind"))
    );
    let (_, _, page1) = call(&h, M::GET, "/api/v1/channels?limit=2", Some(VIEWER), None).await;
    assert_eq!(ids(&page1), ["chat", "ops-hooks"]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, _, page2) = call(
        &h,
        M::GET,
        &format!("/api/v1/channels?limit=2&cursor={cursor}"),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(ids(&page2), ["out"]);

    // Delete: 403, 204, gone, 404.
    let (status, _, _) = call(&h, M::DELETE, "/api/v1/channels/chat", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(&h, M::DELETE, "/api/v1/channels/chat", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&h, M::GET, "/api/v1/channels/chat", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = call(&h, M::DELETE, "/api/v1/channels/chat", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routing_tree_names_existing_channels() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    use Method as M;

    // Before one is written: a root without receivers.
    let (status, _, body) = call(&h, M::GET, "/api/v1/routes", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"receiver": [], "matchers": [], "continue": false, "group_by": null,
               "group_wait": null, "group_interval": null, "repeat_interval": null,
               "escalate": null, "routes": []})
    );
    for id in ["pager", "ops"] {
        call(
            &h,
            M::POST,
            "/api/v1/channels",
            Some(EDITOR),
            Some(console(id)),
        )
        .await;
    }
    let bad = json!({"receiver": ["ops"], "matchers": ["a=b"],
        "routes": [{"matchers": ["team=~(web"], "receiver": ["ghost"]},
                   {"receiver": ["pager"], "escalate": {"after": "10m", "to": ["lead"]}}]});
    let (status, _, body) = call(&h, M::PUT, "/api/v1/routes", Some(EDITOR), Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error_fields(&body),
        [
            "matchers",
            "routes[0].receiver[0]",
            "routes[1].escalate.to[0]"
        ],
        "the structure, then the receivers (regexes wait for a valid structure): {body}"
    );
    let bad = json!({"receiver": ["ops"],
        "routes": [{"matchers": ["team=~(web"], "receiver": ["ghost"]},
                   {"receiver": ["pager"], "escalate": {"after": "10m", "to": ["lead"]}}]});
    let (status, _, body) = call(&h, M::PUT, "/api/v1/routes", Some(EDITOR), Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error_fields(&body),
        [
            "routes[0].matchers[0]",
            "routes[0].receiver[0]",
            "routes[1].escalate.to[0]"
        ]
    );
    assert_eq!(
        body["errors"][1]["reason"],
        "no channel has the id \"ghost\""
    );
    let (status, _, _) = call(&h, M::PUT, "/api/v1/routes", Some(VIEWER), Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let tree = json!({"receiver": ["ops"], "group_by": ["rule"], "repeat_interval": "6h",
        "routes": [{"matchers": ["severity=critical"], "receiver": ["pager"], "group_wait": "10s",
                    "escalate": {"after": "15m", "to": ["ops"]}}]});
    let (status, _, put) = call(&h, M::PUT, "/api/v1/routes", Some(EDITOR), Some(tree)).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(
        put["routes"][0]["escalate"],
        json!({"after": "15m", "to": ["ops"]})
    );
    let (_, _, got) = call(&h, M::GET, "/api/v1/routes", Some(VIEWER), None).await;
    assert_eq!(got, put);

    // A channel the tree names cannot be deleted.
    let (status, _, body) = call(&h, M::DELETE, "/api/v1/channels/pager", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["type"], "urn:vigil:problem:in-use");
    assert_eq!(
        body["detail"],
        "channel \"pager\" is in use: the routing tree names it at routes[0].receiver[0]; \
         change the routes first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_reads_and_writes_the_same_configuration() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let harness = &h;
    let gql = move |key: &'static str, query: &str, variables: Value| {
        let body = json!({"query": query, "variables": variables});
        async move {
            call(harness, Method::POST, "/graphql", Some(key), Some(body))
                .await
                .2
        }
    };

    let created = gql(
        EDITOR,
        "mutation($spec: JSON!) { createChannel(spec: $spec) { id kind settings enabled } }",
        json!({"spec": webhook("hooks")}),
    )
    .await;
    assert_eq!(
        created["data"]["createChannel"],
        json!({"id": "hooks", "kind": "webhook", "enabled": true, "settings": {
            "url": "https://hooks.example.com/vigil", "secret": "${secret:OPS_HOOK}",
            "headers": {"Authorization": "Bearer ${secret:OPS_TOKEN}"}, "body": null}})
    );
    let denied = gql(
        VIEWER,
        "mutation($spec: JSON!) { createChannel(spec: $spec) { id } }",
        json!({"spec": console("c")}),
    )
    .await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let invalid = gql(
        EDITOR,
        "mutation($spec: JSON!) { updateRoutes(spec: $spec) }",
        json!({"spec": {"receiver": ["ghost"]}}),
    )
    .await;
    assert_eq!(invalid["errors"][0]["extensions"]["code"], "INVALID_SPEC");
    assert_eq!(
        invalid["errors"][0]["extensions"]["fieldErrors"][0]["field"],
        "receiver[0]"
    );
    let routes = gql(
        EDITOR,
        "mutation($spec: JSON!) { updateRoutes(spec: $spec) }",
        json!({"spec": {"receiver": ["hooks"]}}),
    )
    .await;
    assert_eq!(routes["data"]["updateRoutes"]["receiver"], json!(["hooks"]));
    let silence = gql(
        EDITOR,
        "mutation($input: JSON!) { createSilence(input: $input) { id author state } }",
        json!({"input": {"matchers": ["monitor=checkout"], "duration": "30m"}}),
    )
    .await;
    assert_eq!(silence["data"]["createSilence"]["author"], "ops");
    let id = silence["data"]["createSilence"]["id"].as_str().unwrap();
    let expired = gql(
        EDITOR,
        "mutation($id: String!) { expireSilence(id: $id) { state } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(expired["data"]["expireSilence"]["state"], "EXPIRED");
    let window = gql(
        EDITOR,
        "mutation($spec: JSON!) { createMaintenanceWindow(spec: $spec) { id schedule } }",
        json!({"spec": {"id": "nightly", "matchers": ["monitor=db"],
                        "schedule": {"recurring": {"cron": "0 3 * * *", "duration": "1h"}}}}),
    )
    .await;
    assert_eq!(
        window["data"]["createMaintenanceWindow"]["schedule"]["recurring"]["time_zone"],
        "UTC"
    );
    let read = gql(
        VIEWER,
        "{ channels { items { id kind } } channel(id: \"hooks\") { name } routes \
           silences(state: \"expired\") { items { id author } } \
           maintenanceWindows { items { id active } } }",
        json!({}),
    )
    .await;
    assert!(read["errors"].is_null(), "{read}");
    let data = &read["data"];
    assert_eq!(
        data["channels"]["items"],
        json!([{"id": "hooks", "kind": "webhook"}])
    );
    assert_eq!(data["channel"]["name"], "");
    assert_eq!(data["routes"]["receiver"], json!(["hooks"]));
    assert_eq!(data["silences"]["items"][0]["author"], "ops");
    assert_eq!(data["maintenanceWindows"]["items"][0]["id"], "nightly");
    let deleted = gql(
        EDITOR,
        "mutation { deleteChannel(id: \"hooks\") }",
        json!({}),
    )
    .await;
    assert_eq!(deleted["errors"][0]["extensions"]["code"], "IN_USE");
}
