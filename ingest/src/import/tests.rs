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

/// A document with every kind of security scheme, and the monitor each gives.
#[test]
fn security_schemes_bind_to_secrets() {
    let doc = json!({
        "openapi": "3.0.3",
        "info": { "title": "Secure", "version": "1" },
        "servers": [{ "url": "https://api.example.com" }],
        "security": [{ "bearer": [] }],
        "components": { "securitySchemes": {
            "bearer": { "type": "http", "scheme": "Bearer" },
            "basic": { "type": "http", "scheme": "basic" },
            "key": { "type": "apiKey", "in": "query", "name": "key" },
            "session": { "type": "apiKey", "in": "cookie", "name": "sid" },
            "tenant": { "type": "apiKey", "in": "header", "name": "X-Tenant" },
            "machine": { "type": "oauth2", "flows": { "clientCredentials": {
                "tokenUrl": "https://auth.example.com/token", "scopes": { "read": "" } } } },
            "oidc": { "type": "openIdConnect", "openIdConnectUrl": "https://auth.example.com" },
        } },
        "paths": {
            "/default": { "get": { "operationId": "default", "responses": { "204": { "description": "" } } } },
            "/public": { "get": { "operationId": "public", "security": [], "responses": { "200": { "description": "" } } } },
            "/either": { "get": { "operationId": "either", "security": [{ "oidc": [] }, { "basic": [] }], "responses": { "200": { "description": "" } } } },
            "/both": { "get": { "operationId": "both", "security": [{ "key": [], "tenant": [], "session": [] }], "responses": { "200": { "description": "" } } } },
            "/machine": { "get": { "operationId": "machine", "security": [{ "machine": ["read"] }], "responses": { "200": { "description": "" } } } },
            "/people": { "get": { "operationId": "people", "security": [{ "oidc": [] }], "responses": { "200": { "description": "" } } } },
            "/missing": { "get": { "operationId": "missing", "security": [{ "nope": [] }], "responses": { "200": { "description": "" } } } },
        },
    });
    let err = import_openapi(&doc.to_string(), &ImportOptions::default()).unwrap_err();
    assert_eq!(err.pointer, "/paths/~1missing/get/security/0/nope");
    let mut doc = doc;
    doc["paths"].as_object_mut().unwrap().remove("/missing");
    let import = import(&doc.to_string(), &ImportOptions::default());
    let auth = |id: &str| {
        import
            .monitors
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    assert_eq!(
        auth("default").auth,
        Auth::Bearer {
            token: "${secret:openapi-bearer}".into()
        }
    );
    assert_eq!(auth("default").assertions, ["[STATUS] == 204"]);
    assert_eq!(auth("public").auth, Auth::None);
    assert_eq!(
        auth("either").auth,
        Auth::Basic {
            username: "${secret:openapi-basic-username}".into(),
            password: "${secret:openapi-basic-password}".into(),
        }
    );
    let both = auth("both");
    assert_eq!(
        both.auth,
        Auth::ApiKey {
            name: "key".into(),
            value: "${secret:openapi-key}".into(),
            location: ApiKeyLocation::Query,
        }
    );
    assert_eq!(both.headers["X-Tenant"], "${secret:openapi-tenant}");
    assert_eq!(both.headers["Cookie"], "sid=${secret:openapi-session}");
    assert_eq!(
        auth("machine").auth,
        Auth::Oauth2ClientCredentials {
            token_url: "https://auth.example.com/token".into(),
            client_id: "${secret:openapi-machine-client-id}".into(),
            client_secret: "${secret:openapi-machine-client-secret}".into(),
            scopes: vec!["read".into()],
        }
    );
    assert_eq!(import.skipped.len(), 1);
    assert_eq!(
        import.skipped[0].reason,
        "needs the security scheme \"oidc\" (openIdConnect), which a probe cannot use"
    );
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

#[test]
fn globs() {
    assert!(glob("/pets*", "/pets/{petId}"));
    assert!(glob("*/inventory", "/store/inventory"));
    assert!(glob("/p?ts", "/pets"));
    assert!(!glob("/pets", "/pets/1"));
}

#[test]
fn a_schema_that_does_not_convert_leaves_the_monitor_without_it() {
    let doc = r##"{"openapi":"3.0.0","servers":[{"url":"https://a"}],"paths":{"/a":{"get":{"operationId":"a","responses":{"200":{"description":"","content":{"application/json":{"schema":{"$ref":"common.yaml#/Pet"}}}}}}}}}"##;
    let import = import(doc, &ImportOptions::default());
    let a = &import.monitors[0];
    assert!(a.body_schema.is_none());
    assert_eq!(
        a.assertions,
        [
            "[STATUS] == 200",
            "[HEADER].content-type == pat(application/json*)"
        ]
    );
    assert_eq!(
        import.warnings,
        ["a: the response schema does not convert: at \
          /paths/~1a/get/responses/200/content/application~1json/schema/$ref: \
          \"common.yaml#/Pet\" refers to another document; bundle the description into one \
          file first; the body is not validated"]
    );
}

/// A few hundred bytes of YAML whose aliases would expand to billions of values.
#[test]
fn yaml_aliases_cannot_expand_without_bound() {
    let mut doc =
        String::from("openapi: 3.0.0\npaths: {}\nx0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n");
    for i in 1..12 {
        let p = i - 1;
        doc.push_str(&format!(
            "x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let e = error(&doc);
    assert!(
        e.message
            .contains("the document expands to too many values"),
        "{e}"
    );
    // Aliases within reason are fine.
    let ok = "openapi: 3.0.3\ninfo: {title: T, version: '1'}\nservers: [{url: 'https://a'}]\n\
              paths:\n  /a:\n    get:\n      operationId: a\n      responses: &r {'200': {description: ok}}\n  \
              /b:\n    get:\n      operationId: b\n      responses: *r\n";
    assert_eq!(import(ok, &ImportOptions::default()).monitors.len(), 2);
}

#[test]
fn odd_response_keys_ids_and_scheme_orders() {
    let doc = json!({
        "openapi": "3.0.3",
        "info": { "title": "T", "version": "1" },
        "servers": [{ "url": "https://api.example.com" }],
        "components": { "securitySchemes": {
            "api_key": { "type": "apiKey", "in": "header", "name": "X-Key" },
            "bearerAuth": { "type": "http", "scheme": "bearer" },
        } },
        "paths": {
            "/plus": { "get": { "operationId": "plus", "responses": {
                "+200": { "description": "" }, "0200": { "description": "" }, "201": { "description": "" } } } },
            "/a": { "get": { "operationId": "get pet", "responses": { "200": { "description": "" } } } },
            "/b": { "get": { "operationId": "get-pet", "responses": { "200": { "description": "" } } } },
            "/c": { "get": { "operationId": "get-pet-2", "responses": { "200": { "description": "" } } } },
            "/pets/{id}": { "get": { "operationId": "列出宠物", "parameters": [
                { "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "example": 3 } }],
                "responses": { "200": { "description": "" } } } },
            "/both": { "get": { "operationId": "both", "security": [{ "api_key": [], "bearerAuth": [] }],
                "responses": { "200": { "description": "" } } } },
        },
    });
    let import = import(&doc.to_string(), &ImportOptions::default());
    let ids: Vec<&str> = import.monitors.iter().map(|m| m.id.as_str()).collect();
    // Paths in order: /a, /b, /both, /c, /pets/{id}, /plus; every id distinct.
    assert_eq!(
        ids,
        [
            "get-pet",
            "get-pet-2",
            "both",
            "get-pet-2-2",
            "get-pets-id",
            "plus"
        ]
    );
    assert_eq!(import.monitors[5].assertions, ["[STATUS] == 201"]);
    assert_eq!(import.monitors[4].url, "https://api.example.com/pets/3");
    let both = &import.monitors[2];
    assert_eq!(
        both.auth,
        Auth::Bearer {
            token: "${secret:openapi-bearerAuth}".into()
        }
    );
    assert_eq!(both.headers["X-Key"], "${secret:openapi-api_key}");
}

/// Text the document writes never becomes a reference the probe would expand.
#[test]
fn document_text_cannot_reference_secrets() {
    let server = |url: &str| {
        json!({
            "openapi": "3.0.3",
            "info": { "title": "T", "version": "1" },
            "servers": [{ "url": url }],
            "paths": { "/a": { "get": { "operationId": "a",
                "parameters": [
                    { "name": "X-Trace", "in": "header", "required": true, "example": "${secret:prod-token}" },
                    { "name": "q", "in": "query", "required": true, "example": "${secret:prod-token}" },
                ],
                "responses": { "200": { "description": "" } } } } },
        })
        .to_string()
    };
    let e = error(&server("https://evil.example/?k=${secret:prod-token}"));
    assert_eq!(e.pointer, "/servers/0/url");
    assert!(e.message.contains("holds `${`"), "{e}");
    let import = import(
        &server("https://api.example.com"),
        &ImportOptions::default(),
    );
    assert!(import.monitors.is_empty());
    assert_eq!(
        import.skipped[0].reason,
        "the example of header parameter `X-Trace` holds `${`, which a monitor would read as a \
         reference; give it a value (--param X-Trace=VALUE)"
    );
    // Given by the user, it is the user's to write; a query value is percent-encoded.
    let options = ImportOptions {
        params: [("X-Trace".to_owned(), "${secret:trace}".to_owned())].into(),
        ..ImportOptions::default()
    };
    let import = import_openapi(&server("https://api.example.com"), &options).unwrap();
    assert_eq!(import.monitors[0].headers["X-Trace"], "${secret:trace}");
    assert_eq!(
        import.monitors[0].url,
        "https://api.example.com/a?q=%24%7Bsecret%3Aprod-token%7D"
    );
}

#[test]
fn write_only_properties_are_not_required_in_responses() {
    let doc = json!({
        "openapi": "3.0.3",
        "info": { "title": "T", "version": "1" },
        "servers": [{ "url": "https://api.example.com" }],
        "paths": { "/me": { "get": { "operationId": "me", "responses": { "200": {
            "description": "", "content": { "application/json": { "schema": {
                "type": "object",
                "required": ["login", "password"],
                "properties": {
                    "login": { "type": "string" },
                    "password": { "type": "string", "writeOnly": true },
                },
            } } } } } } } },
    });
    let import = import(&doc.to_string(), &ImportOptions::default());
    let schema = import.monitors[0].body_schema.as_ref().unwrap();
    assert_eq!(schema["required"], json!(["login"]));
    assert_eq!(
        schema["properties"]["password"],
        json!({ "type": "string" })
    );
}

/// Past the import's budget of schema bytes, monitors come without a body schema.
#[test]
fn body_schemas_share_one_budget() {
    let doc = Document::parse(PETSTORE_31).unwrap();
    let pets = json!({ "$ref": "#/components/schemas/Pets" });
    let mut schemas = schema::Schemas::with_budget(&doc, 400);
    let first = schemas.body_schema(&pets, "/x").unwrap();
    let len = serde_json::to_vec(&first).unwrap().len();
    assert!((200..=400).contains(&len), "{len}");
    assert_eq!(
        schemas.body_schema(&pets, "/y").unwrap_err(),
        "the import's body schemas reached their limit of 400 bytes"
    );
}
