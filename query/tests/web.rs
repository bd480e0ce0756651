//! The web face over the whole router: the dashboard, GraphiQL and Swagger UI pages and every
//! file they load come from this origin, with their Content-Security-Policy, ETags and 304s;
//! an unknown status page is a 404 page; and `PATCH /api/v1/monitors/{id}` (what the
//! dashboard's editor uses) changes only the fields it names. Kafka from rdkafka's in-process
//! mock cluster, ClickHouse never reached.

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "notify/harness.rs"]
#[allow(dead_code, reason = "a shared harness; not every helper is used here")]
mod harness;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use harness::{EDITOR, Harness, VIEWER, harness};
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A GET without a key: status, headers, body.
async fn get(
    h: &Harness,
    uri: &str,
    headers: &[(header::HeaderName, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = vigil_query::router(h.state().clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

/// Every `src="…"` and `href="…"` of a page.
fn references(html: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"(?:src|href)="([^"]+)""#).unwrap();
    re.captures_iter(html).map(|c| c[1].to_owned()).collect()
}

/// Loads `page` and every file it references, relative ones resolved against `base`; all must
/// be from this origin and served.
async fn page_and_files(h: &Harness, page: &str, base: &str) -> (HeaderMap, String) {
    let (status, headers, body) = get(h, page, &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let html = String::from_utf8(body).unwrap();
    let refs = references(&html);
    assert!(!refs.is_empty(), "{page} loads nothing?");
    for r in refs.iter().filter(|r| !r.starts_with('#')) {
        assert!(!r.contains("//"), "{page} loads {r} from another origin");
        let path = if r.starts_with('/') {
            r.clone()
        } else {
            format!("{base}{}", r.trim_start_matches("./"))
        };
        let (status, headers, body) = get(h, &path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{page} references {path}");
        assert!(!body.is_empty(), "{path}");
        let kind = headers[header::CONTENT_TYPE].to_str().unwrap();
        let want = match path.rsplit('.').next().unwrap() {
            "js" => "javascript",
            "css" => "text/css",
            "svg" => "image/svg",
            "png" => "image/png",
            _ => "",
        };
        assert!(kind.contains(want), "{path} is {kind}");
    }
    (headers, html)
}

fn csp(headers: &HeaderMap) -> &str {
    headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap()
}

#[tokio::test]
async fn the_dashboard_and_its_files_come_from_this_origin_with_a_strict_policy() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let (headers, html) = page_and_files(&h, "/ui/", "/ui/").await;
    assert!(html.contains(r#"<script type="module" src="/ui/assets/app.js">"#));
    let policy = csp(&headers);
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    // Modules import each other: every import is served too.
    let import = regex::Regex::new(r#"from "\./([a-z]+\.js)""#).unwrap();
    let (_, _, app) = get(&h, "/ui/assets/app.js", &[]).await;
    let mut modules = vec![String::from_utf8(app).unwrap()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(text) = modules.pop() {
        for m in import.captures_iter(&text) {
            if seen.insert(m[1].to_owned()) {
                let (status, _, body) = get(&h, &format!("/ui/assets/{}", &m[1]), &[]).await;
                assert_eq!(status, StatusCode::OK, "{}", &m[1]);
                modules.push(String::from_utf8(body).unwrap());
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["chart.js", "dom.js", "gql.js", "monitor.js", "overview.js"]
    );
    let (status, headers, _) = get(&h, "/ui", &[]).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "/ui/");
    let (status, _, _) = get(&h, "/ui/assets/../Cargo.toml", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_carry_etags_and_answer_304_to_a_client_that_has_them() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let (status, headers, body) = get(&h, "/ui/assets/app.css", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
    assert!(!body.is_empty());
    let (status, headers, body) =
        get(&h, "/ui/assets/app.css", &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(headers[header::ETAG].to_str().unwrap(), etag);
    assert!(body.is_empty());
    let (status, _, _) = get(
        &h,
        "/ui/assets/app.css",
        &[(header::IF_NONE_MATCH, "\"other\"")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn graphiql_is_served_from_the_binary() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let (headers, html) = page_and_files(&h, "/graphql", "/").await;
    assert!(html.contains("/ui/assets/graphiql/graphiql.min.js"));
    let policy = csp(&headers);
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(!policy.contains("unsafe-eval"), "{policy}");
    assert!(!html.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_over_the_served_document() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let (status, headers, _) = get(&h, "/docs", &[]).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "/docs/");
    let (headers, html) = page_and_files(&h, "/docs/", "/docs/").await;
    assert!(html.contains("swagger-initializer.js"), "{html}");
    assert!(csp(&headers).contains("script-src 'self';"));
    let (status, _, init) = get(&h, "/docs/swagger-initializer.js", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let init = String::from_utf8(init).unwrap();
    assert!(init.contains("/api/v1/openapi.json"), "{init}");
}

#[tokio::test]
async fn an_unknown_status_page_is_a_404_page() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let (status, headers, body) = get(&h, "/status/nope", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("Status page not found")
    );
}

#[tokio::test]
async fn patch_changes_only_the_fields_it_names() {
    let cluster = MockCluster::new(1).unwrap();
    let h = harness(&cluster).await;
    let monitor = json!({
        "id": "api", "name": "API", "url": "https://api.example.com/health",
        "interval": "30s", "tags": ["public"],
        "headers": {"X-Token": "${secret:api-token}", "Accept": "application/json"},
        "assertions": ["[STATUS] == 200"],
    });
    let (status, _, _) = harness::call(
        &h,
        Method::POST,
        "/api/v1/monitors",
        Some(EDITOR),
        Some(monitor),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let patch = |body: Value, key: &'static str| {
        let h = &h;
        async move {
            let mut request = Request::builder()
                .method(Method::PATCH)
                .uri("/api/v1/monitors/api")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, "application/merge-patch+json");
            request = request.header(header::ACCEPT, "application/json");
            let response = vigil_query::router(h.state().clone())
                .oneshot(request.body(Body::from(body.to_string())).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = patch(
        json!({"name": "Public API", "interval": "1m", "tags": null}),
        EDITOR,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, got) =
        harness::call(&h, Method::GET, "/api/v1/monitors/api", Some(EDITOR), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["name"], "Public API");
    assert_eq!(got["interval"], "1m");
    assert_eq!(got["tags"], json!([]));
    assert_eq!(got["url"], "https://api.example.com/health");
    assert_eq!(got["headers"]["X-Token"], "${secret:api-token}");
    assert_eq!(got["assertions"], json!(["[STATUS] == 200"]));

    let (status, body) = patch(json!({"interval": "soon"}), EDITOR).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(harness::error_fields(&body), ["interval"]);
    let (status, body) = patch(json!({"colour": "red"}), EDITOR).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = patch(json!({"id": "other"}), EDITOR).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(harness::error_fields(&body), ["id"]);
    let (status, body) = patch(json!(["not", "an", "object"]), EDITOR).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = patch(json!({"name": "x"}), VIEWER).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, _, after) =
        harness::call(&h, Method::GET, "/api/v1/monitors/api", Some(EDITOR), None).await;
    assert_eq!(after, got, "refused patches change nothing");
}
