//! Import tests: the three Petstores, options, security schemes and malformed documents.

use std::time::Duration;

use serde_json::json;
use vigil_schema::{ApiKeyLocation, Auth, HttpMethod};

use super::*;

const PETSTORE_30: &str = include_str!("../../tests/fixtures/openapi/petstore-3.0.yaml");
const PETSTORE_31: &str = include_str!("../../tests/fixtures/openapi/petstore-3.1.yaml");
const PETSTORE_20: &str = include_str!("../../tests/fixtures/openapi/petstore-2.0.json");

fn import(text: &str, options: &ImportOptions) -> Import {
    import_openapi(text, options).unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str) -> ImportError {
    import_openapi(text, &ImportOptions::default()).unwrap_err()
}

fn pet(tag: serde_json::Value) -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": { "type": "integer", "format": "int64" },
            "name": { "type": "string" },
            "tag": tag,
        },
    })
}

#[test]
fn petstore_3_0() {
    let import = import(PETSTORE_30, &ImportOptions::default());
    assert_eq!(import.title, "Swagger Petstore");
    assert_eq!(import.format, "OpenAPI 3.0.0");
    assert_eq!(import.monitors.len(), 1);
    let list = &import.monitors[0];
    assert_eq!(list.id, "listpets");
    assert_eq!(list.name, "listPets");
    assert_eq!(list.tags, ["pets"]);
    assert_eq!(list.method, HttpMethod::Get);
    // The optional `limit` is left out.
    assert_eq!(list.url, "http://petstore.swagger.io/v1/pets");
    assert_eq!(list.headers["Accept"], "application/json");
    assert_eq!(
        list.assertions,
        [
            "[STATUS] == 200",
            "[HEADER].content-type == pat(application/json*)",
            "[BODY] matches schema",
        ]
    );
    assert_eq!(
        list.body_schema,
        Some(json!({
            "$ref": "#/$defs/Pets",
            "$defs": {
                "Pet": pet(json!({ "type": ["string", "null"] })),
                "Pets": { "type": "array", "maxItems": 100, "items": { "$ref": "#/$defs/Pet" } },
            },
        }))
    );
    assert_eq!(list.auth, Auth::None);
    assert!(list.follow_redirects);
    assert_eq!(
        import.skipped,
        [Skipped {
            operation: "showPetById".into(),
            method: "GET".into(),
            path: "/pets/{petId}".into(),
            reason: "path parameter `petId` is required and has no example or default; give it \
                     a value (--param petId=VALUE)"
                .into(),
        }]
    );

    let options = ImportOptions {
        params: [("petId".to_owned(), "7 & 8".to_owned())].into(),
        ..ImportOptions::default()
    };
    let import = super::import_openapi(PETSTORE_30, &options).unwrap();
    assert!(import.skipped.is_empty());
    assert_eq!(import.monitors[1].id, "showpetbyid");
    assert_eq!(
        import.monitors[1].url,
        "http://petstore.swagger.io/v1/pets/7%20%26%208"
    );
    assert_eq!(
        import.monitors[1].body_schema,
        Some(json!({
            "$ref": "#/$defs/Pet",
            "$defs": { "Pet": pet(json!({ "type": ["string", "null"] })) },
        }))
    );
}

#[test]
fn petstore_3_1() {
    let import = import(PETSTORE_31, &ImportOptions::default());
    assert_eq!(import.format, "OpenAPI 3.1.0");
    let ids: Vec<&str> = import.monitors.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["listpets", "showpetbyid", "petexists"]);
    let [list, show, head] = &import.monitors[..] else {
        unreachable!()
    };
    // A required parameter's default; server variables at their defaults.
    assert_eq!(list.url, "https://petstore.example.com/v1/pets?limit=20");
    // The path item's parameter, with its schema's example.
    assert_eq!(show.url, "https://petstore.example.com/v1/pets/7");
    let pet = json!({
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": { "type": "integer", "exclusiveMinimum": 0 },
            "name": { "type": "string" },
            "tag": { "type": ["string", "null"] },
        },
    });
    assert_eq!(
        show.body_schema,
        Some(json!({ "$ref": "#/$defs/Pet", "$defs": { "Pet": pet } }))
    );
    assert_eq!(head.method, HttpMethod::Head);
    assert_eq!(head.assertions, ["[STATUS] == 200"]);
    assert!(head.headers.is_empty() && head.body_schema.is_none());
}

#[test]
fn petstore_2_0() {
    let import = import(PETSTORE_20, &ImportOptions::default());
    assert_eq!(import.format, "Swagger 2.0");
    let ids: Vec<&str> = import.monitors.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["listpets", "getinventory"]);
    let list = &import.monitors[0];
    // https preferred among the schemes; host and basePath.
    assert_eq!(list.url, "https://petstore.swagger.io/v1/pets");
    assert_eq!(
        list.body_schema.as_ref().unwrap()["$defs"]["Pet"],
        pet(json!({ "type": ["string", "null"] }))
    );
    let inventory = &import.monitors[1];
    assert_eq!(
        inventory.auth,
        Auth::ApiKey {
            name: "api_key".into(),
            value: "${secret:openapi-api_key}".into(),
            location: ApiKeyLocation::Header,
        }
    );
    // Draft 4's boolean exclusiveMinimum, as 2020-12.
    assert_eq!(
        inventory.body_schema,
        Some(json!({
            "type": "object",
            "additionalProperties": { "type": "integer", "format": "int32", "exclusiveMinimum": 0 },
        }))
    );
    let reasons: Vec<(&str, &str)> = import
        .skipped
        .iter()
        .map(|s| (s.operation.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "findPetsByStatus",
                "query parameter `status` is required and has no example or default; give it a \
                 value (--param status=VALUE)"
            ),
            (
                "showPetById",
                "path parameter `petId` is required and has no example or default; give it a \
                 value (--param petId=VALUE)"
            ),
        ]
    );
    let options = ImportOptions {
        params: [("status".to_owned(), "sold".to_owned())].into(),
        ..ImportOptions::default()
    };
    let import = import_openapi(PETSTORE_20, &options).unwrap();
    assert_eq!(
        import.skipped[0].reason,
        "needs the OAuth 2 scheme \"petstore_auth\" without a client-credentials flow, which \
         takes a person to sign in"
    );
}

#[test]
fn options_select_name_bind_and_schedule() {
    let options = ImportOptions {
        base_url: Some("http://127.0.0.1:9000/api/".into()),
        include_tags: vec!["PETS".into(), "store".into()],
        exclude_paths: vec!["/pets/*".into()],
        secrets: [("api_key".to_owned(), "petstore-key".to_owned())].into(),
        id_prefix: "petstore-".into(),
        tags: vec!["imported".into()],
        interval: Some(Duration::from_secs(30)),
        timeout: Some(Duration::from_secs(5)),
        regions: vec!["eu-west".into()],
        ..ImportOptions::default()
    };
    let import = import(PETSTORE_20, &options);
    let ids: Vec<&str> = import.monitors.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["petstore-listpets", "petstore-getinventory"]);
    // showPetById by path, findPetsByStatus by tag.
    assert_eq!(import.excluded, 2);
    assert!(import.skipped.is_empty());
    let inventory = &import.monitors[1];
    assert_eq!(inventory.url, "http://127.0.0.1:9000/api/store/inventory");
    assert_eq!(inventory.tags, ["store", "imported"]);
    assert_eq!(inventory.interval, Duration::from_secs(30));
    assert_eq!(inventory.timeout, Duration::from_secs(5));
    assert_eq!(inventory.regions, ["eu-west"]);
    let Auth::ApiKey { value, .. } = &inventory.auth else {
        panic!("{:?}", inventory.auth)
    };
    assert_eq!(value, "${secret:petstore-key}");
}

#[test]
fn redirects_and_ranges_and_media_types() {
    let doc = json!({
        "openapi": "3.0.3",
        "info": { "title": "T", "version": "1" },
        "servers": [{ "url": "https://api.example.com/v2/" }],
        "paths": {
            "/download": { "get": { "operationId": "download", "responses": {
                "302": { "description": "to the file" }, "404": { "description": "" } } } },
            "/range": { "get": { "operationId": "range", "responses": {
                "2XX": { "description": "", "content": { "text/csv": {} } } } } },
            "/many": { "get": { "operationId": "many", "responses": {
                "201": { "description": "" },
                "200": { "description": "", "content": {
                    "text/plain": { "schema": { "type": "string" } },
                    "application/vnd.api+json; charset=utf-8": { "schema": { "type": "object" } } } } } } },
            "/any": { "get": { "responses": { "default": { "description": "", "content": { "*/*": {} } } } } },
        },
    });
    let import = import(&doc.to_string(), &ImportOptions::default());
    let [any, download, many, range] = &import.monitors[..] else {
        panic!("{:?}", import.monitors)
    };
    assert!(!download.follow_redirects);
    assert_eq!(download.assertions, ["[STATUS] == 302"]);
    assert_eq!(download.url, "https://api.example.com/v2/download");
    assert_eq!(
        range.assertions,
        [
            "[STATUS] >= 200",
            "[STATUS] <= 299",
            "[HEADER].content-type == pat(text/csv*)"
        ]
    );
    assert_eq!(
        many.assertions,
        [
            "[STATUS] == any(200, 201)",
            "[HEADER].content-type == pat(application/vnd.api+json*)",
            "[BODY] matches schema"
        ]
    );
    assert_eq!(many.body_schema, Some(json!({ "type": "object" })));
    // No operationId: the method and path; only `default`: no status assertion.
    assert_eq!(any.id, "get-any");
    assert_eq!(any.name, "GET /any");
    assert!(any.assertions.is_empty());
}

#[test]
fn recursive_and_nullable_schemas_stay_finite() {
    let doc = json!({
        "openapi": "3.0.3",
        "info": { "title": "T", "version": "1" },
        "servers": [{ "url": "https://api.example.com" }],
        "paths": { "/tree": { "get": { "operationId": "tree", "responses": { "200": {
            "description": "", "content": { "application/json": { "schema": {
                "$ref": "#/components/schemas/Node" } } } } } } } },
        "components": { "schemas": {
            "Node": {
                "type": "object",
                "description": "A node.",
                "x-internal": true,
                "properties": {
                    "description": { "type": "string", "example": "a property named like a keyword" },
                    "children": { "type": "array", "items": { "$ref": "#/components/schemas/Node" } },
                    "parent": { "allOf": [{ "$ref": "#/components/schemas/Node" }], "nullable": true },
                    "kind": { "type": "string", "enum": ["leaf", "inner"], "nullable": true },
                },
            },
        } },
    });
    let import = import(&doc.to_string(), &ImportOptions::default());
    assert_eq!(
        import.monitors[0].body_schema,
        Some(json!({
            "$ref": "#/$defs/Node",
            "$defs": { "Node": {
                "type": "object",
                "properties": {
                    "description": { "type": "string" },
                    "children": { "type": "array", "items": { "$ref": "#/$defs/Node" } },
                    "parent": { "anyOf": [{ "type": "null" }, { "allOf": [{ "$ref": "#/$defs/Node" }] }] },
                    "kind": { "type": ["string", "null"], "enum": ["leaf", "inner", null] },
                },
            } },
        }))
    );
    let validator =
        vigil_schema::compile_body_schema(import.monitors[0].body_schema.as_ref().unwrap())
            .unwrap();
    assert!(validator.is_valid(&json!({
        "kind": null, "parent": null,
        "children": [{ "kind": "leaf", "children": [] }],
    })));
    assert!(!validator.is_valid(&json!({ "children": [{ "kind": "root" }] })));
}

#[test]
fn malformed_documents_name_the_json_pointer() {
    let cases = [
        (
            r##"{"openapi":"3.0.0","servers":[{"url":"https://a"}],"paths":{"/a":{"get":{"responses":{"200":{"$ref":"#/components/responses/Missing"}}}}}}"##,
            "/paths/~1a/get/responses/200/$ref",
            "points to \"/components/responses/Missing\", which the document does not have",
        ),
        (
            r##"{"openapi":"3.0.0","paths":{"/a":{"get":{"parameters":[{"name":1,"in":"query"}],"responses":{}}}}}"##,
            "/paths/~1a/get/parameters/0/name",
            "must be a string",
        ),
        (
            r##"{"openapi":"3.0.0","paths":{"/a":{"get":{}}}}"##,
            "/paths/~1a/get/responses",
            "is missing",
        ),
        (r##"{"openapi":"3.0.0"}"##, "/paths", "is missing"),
        (
            r##"{"openapi":"4.0.0","paths":{}}"##,
            "/openapi",
            "OpenAPI 4.0.0 is not supported (3.0, 3.1 and Swagger 2.0 are)",
        ),
        (
            r##"{"info":{}}"##,
            "",
            "not an OpenAPI document: it has neither `openapi` nor `swagger`",
        ),
        (
            r##"{"openapi":"3.0.0","servers":[{"url":"https://a"}],"paths":{"/a":{"get":{"responses":{"200":{"$ref":"#/components/responses/A"}}}}},"components":{"responses":{"A":{"$ref":"#/components/responses/A"}}}}"##,
            "/paths/~1a/get/responses/200",
            "`$ref`s refer to each other in a loop",
        ),
        (
            r##"{"openapi":"3.0.0","paths":{"/a":{"get":{"responses":{"200":{"description":""}}}}}}"##,
            "/servers",
            "the server URL \"/\" is relative; give a base URL",
        ),
    ];
    for (doc, pointer, message) in cases {
        let e = error(doc);
        assert_eq!(
            (e.pointer.as_str(), e.message.as_str()),
            (pointer, message),
            "{doc}"
        );
    }
    let e = error("{\"openapi\": \"3.0.0\",\n  \"paths\": {,}}");
    assert_eq!(e.pointer, "");
    assert!(
        e.message.starts_with("invalid JSON at line 2, column 13"),
        "{e}"
    );
    let e = error("openapi: 3.0.0\npaths: [\n");
    assert!(e.message.starts_with("invalid YAML"), "{e}");
}

#[test]
fn yaml_numbers_as_keys_and_relative_servers() {
    let doc = "openapi: 3.0.3\ninfo: {title: T, version: '1'}\nservers: [{url: /api}]\n\
               paths:\n  /ping:\n    get:\n      operationId: ping\n      responses:\n        \
               200: {description: ok}\n";
    let options = ImportOptions {
        source_url: Some("https://example.com/docs/openapi.yaml".parse().unwrap()),
        ..ImportOptions::default()
    };
    let import = import(doc, &options);
    assert_eq!(import.monitors[0].url, "https://example.com/api/ping");
    assert_eq!(import.monitors[0].assertions, ["[STATUS] == 200"]);
}

#[test]
fn ids_are_slugs_unique_and_bounded() {
    assert_eq!(operation::slug("repos/get-content"), "repos-get-content");
    assert_eq!(operation::slug("  Get Pet By ID!! "), "get-pet-by-id");
    let long = operation::slug(&"a".repeat(100));
    assert_eq!(long.len(), 64);
    assert_eq!(operation::unique_id(&long, 2).len(), 64);
    let doc = json!({
        "openapi": "3.0.3",
        "info": { "title": "T", "version": "1" },
        "servers": [{ "url": "https://api.example.com" }],
        "paths": {
            "/a": { "get": { "operationId": "same", "responses": { "200": { "description": "" } } } },
            "/b": { "get": { "operationId": "Same", "responses": { "200": { "description": "" } } } },
        },
    });
    let import = import(&doc.to_string(), &ImportOptions::default());
    let ids: Vec<&str> = import.monitors.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["same", "same-2"]);
}

mod safety;
