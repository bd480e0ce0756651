//! `POST /api/v1/import/openapi` and the `importOpenapi` mutation: the plan against the
//! current monitors, applying it (creates, then updates, then nothing), the egress policy, and
//! errors naming the document's JSON pointer or the option. Kafka from rdkafka's in-process
//! mock cluster, ClickHouse never reached.

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "notify/harness.rs"]
#[allow(dead_code, reason = "a shared harness; not every helper is used here")]
mod harness;

use axum::http::{Method, StatusCode};
use harness::{EDITOR, Harness, harness_with};
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use vigil_schema::EgressPolicy;

const PETSTORE_30: &str = include_str!("../../ingest/tests/fixtures/openapi/petstore-3.0.yaml");
const PETSTORE_20: &str = include_str!("../../ingest/tests/fixtures/openapi/petstore-2.0.json");

/// A call by an editor; a `null` body sends none.
async fn call(h: &Harness, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
    let body = (!body.is_null()).then_some(body);
    let (status, _, value) = harness::call(h, method, uri, Some(EDITOR), body).await;
    (status, value)
}

async fn import(h: &Harness, body: Value) -> (StatusCode, Value) {
    call(h, Method::POST, "/api/v1/import/openapi", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_plans_applies_and_names_problems() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness_with(
        &cluster,
        |config| {
            config.egress = EgressPolicy {
                allow: vec!["127.0.0.1:8090".parse().unwrap()],
                env_allow: Vec::new(),
            };
        },
        None,
    )
    .await;

    // The plan alone writes nothing.
    let body = json!({ "document": PETSTORE_30, "base_url": "http://127.0.0.1:8090/v1" });
    let (status, plan) = import(&h, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["title"], "Swagger Petstore");
    assert_eq!(plan["format"], "OpenAPI 3.0.0");
    assert_eq!(plan["monitors"][0]["id"], "listpets");
    assert_eq!(plan["monitors"][0]["url"], "http://127.0.0.1:8090/v1/pets");
    assert_eq!(
        plan["monitors"][0]["body_schema"]["$ref"], "#/$defs/Pets",
        "{plan}"
    );
    assert_eq!(plan["skipped"][0]["operation"], "showPetById");
    assert_eq!(
        plan["plan"],
        json!({ "create": ["listpets"], "update": [], "unchanged": 0 })
    );
    assert_eq!(plan["applied"], false);
    let (_, list) = call(&h, Method::GET, "/api/v1/monitors", Value::Null).await;
    assert_eq!(list["items"], json!([]));

    // Applied: the monitor exists as planned.
    let mut apply = body.clone();
    apply["apply"] = true.into();
    apply["params"] = json!({ "petId": "1" });
    let (status, applied) = import(&h, apply.clone()).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied["applied"], true);
    assert_eq!(
        applied["plan"]["create"],
        json!(["listpets", "showpetbyid"])
    );
    let (status, stored) = call(&h, Method::GET, "/api/v1/monitors/showpetbyid", Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["url"], "http://127.0.0.1:8090/v1/pets/1");
    assert_eq!(stored["assertions"][2], "[BODY] matches schema");
    assert_eq!(
        stored["body_schema"]["$defs"]["Pet"]["required"],
        json!(["id", "name"])
    );

    // Again: nothing to do; with another interval, updates naming the field.
    let (_, again) = import(&h, apply.clone()).await;
    assert_eq!(
        again["plan"],
        json!({ "create": [], "update": [], "unchanged": 2 })
    );
    apply["interval"] = "30s".into();
    apply["apply"] = false.into();
    let (_, changed) = import(&h, apply).await;
    assert_eq!(
        changed["plan"]["update"],
        json!([
            { "id": "listpets", "fields": ["interval"] },
            { "id": "showpetbyid", "fields": ["interval"] },
        ])
    );

    // A document as JSON, through GraphQL.
    let query = "mutation($input: JSON!) { importOpenapi(input: $input) { \
                 format monitors { id } skipped { operation reason } plan { create } applied } }";
    let doc: Value = serde_json::from_str(PETSTORE_20).unwrap();
    let input =
        json!({ "document": doc, "base_url": "http://127.0.0.1:8090/v1", "id_prefix": "v2-" });
    let (status, gql) = call(
        &h,
        Method::POST,
        "/graphql",
        json!({ "query": query, "variables": { "input": input } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{gql}");
    let result = &gql["data"]["importOpenapi"];
    assert_eq!(result["format"], "Swagger 2.0", "{gql}");
    assert_eq!(
        result["monitors"],
        json!([{ "id": "v2-listpets" }, { "id": "v2-getinventory" }])
    );
    assert_eq!(
        result["plan"]["create"],
        json!(["v2-getinventory", "v2-listpets"])
    );
    assert_eq!(result["applied"], false);

    // Problems: the egress policy, the document's pointer, options, unknown fields.
    let outside = json!({ "document": PETSTORE_30, "base_url": "http://10.0.0.1/", "apply": true });
    let (status, err) = import(&h, outside).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["errors"][0]["field"], "monitors.listpets.url");
    let broken = json!({ "document": { "openapi": "3.0.3", "paths": { "/a": { "get": {} } } }, "base_url": "http://127.0.0.1:8090" });
    let (status, err) = import(&h, broken).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(
        err["errors"][0]["field"],
        "document/paths/~1a/get/responses"
    );
    assert_eq!(err["errors"][0]["reason"], "is missing");
    let bad = json!({ "document": 7, "interval": "often", "base_url": "ftp://x" });
    let (status, err) = import(&h, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let fields: Vec<&str> = err["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["interval", "document", "base_url"]);
    let (status, err) = import(&h, json!({ "document": "{}", "aply": true })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(
        err["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `aply`"),
        "{err}"
    );
}

/// The served document describes the body the route reads: the document as text or JSON,
/// every option optional, unknown members refused.
#[test]
fn the_openapi_document_describes_the_import_body() {
    use utoipa::OpenApi;
    let doc = serde_json::to_value(vigil_query::openapi::ApiDoc::openapi()).unwrap();
    let input = &doc["components"]["schemas"]["ImportInput"];
    assert_eq!(input["required"], json!(["document"]), "{input}");
    let document = &doc["components"]["schemas"]["DocumentDoc"];
    let kinds: Vec<&str> = document["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{document}"))
        .iter()
        .map(|v| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["string", "object"]);
    let route = &doc["paths"]["/api/v1/import/openapi"]["post"];
    assert_eq!(
        route["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ImportInput"
    );
}
