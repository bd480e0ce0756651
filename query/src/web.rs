//! Vigil's web face, every byte embedded in the binary and nothing fetched from another origin:
//!
//! - `/ui`: the dashboard, a few ES modules that draw monitors, charts and alerts from the
//!   GraphQL API and keep them current through its subscriptions (the key stays in the tab).
//! - `/status/{id}`: public status pages, rendered on the server, no script ([`status`]).
//! - `/docs/`: Swagger UI over `/api/v1/openapi.json` (the `utoipa-swagger-ui` crate, with
//!   Swagger UI vendored in it).
//! - `/graphql` (GET): GraphiQL, vendored under `web/vendor/graphiql`.
//!
//! Every page carries a Content-Security-Policy that allows scripts, styles, images and
//! connections from this origin only (`'self'`); Swagger UI and GraphiQL also need inline style
//! attributes, and nothing needs inline script or `eval`.

pub(crate) mod assets;
pub(crate) mod status;

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::state::AppState;

/// The dashboard's and the status pages' policy.
const STRICT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Swagger UI's and GraphiQL's: the same, with inline style attributes (both set styles from
/// script) and `blob:` workers (the editors' syntax workers).
const TOOL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self' data:; worker-src 'self' blob:; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The routes of the web face (all public: the dashboard's data needs a key, its files do not).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(dashboard))
        .route("/ui/assets/{*file}", get(asset))
        .route("/status/{id}", get(status::page))
        .route("/docs/", get(docs))
        .route("/docs/{*tail}", get(docs))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Adds the page's Content-Security-Policy and the usual hardening headers.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let tool = request.uri().path().starts_with("/docs");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if tool { TOOL_CSP } else { STRICT_CSP }),
    );
    harden(headers);
    response
}

/// `X-Content-Type-Options`, `Referrer-Policy` and `X-Frame-Options`.
pub(crate) fn harden(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

async fn dashboard(request: HeaderMap) -> Response {
    static ETAG: LazyLock<String> = LazyLock::new(|| assets::etag_of(assets::DASHBOARD_HTML));
    assets::cached(
        &request,
        "text/html; charset=utf-8",
        assets::DASHBOARD_HTML,
        &ETAG,
        "no-cache",
    )
}

async fn asset(Path(file): Path<String>, request: HeaderMap) -> Response {
    assets::serve(&request, &file).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

/// The GraphiQL page, with GraphiQL's policy.
pub(crate) fn graphiql(request: &HeaderMap) -> Response {
    static ETAG: LazyLock<String> = LazyLock::new(|| assets::etag_of(assets::GRAPHIQL_HTML));
    let mut response = assets::cached(
        request,
        "text/html; charset=utf-8",
        assets::GRAPHIQL_HTML,
        &ETAG,
        "no-cache",
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(TOOL_CSP),
    );
    harden(headers);
    response
}

async fn docs(tail: Option<Path<String>>) -> Response {
    static CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> = LazyLock::new(|| {
        Arc::new(utoipa_swagger_ui::Config::from("/api/v1/openapi.json").try_it_out_enabled(true))
    });
    let tail = tail.map_or_else(String::new, |Path(t)| t);
    match utoipa_swagger_ui::serve(&tail, Arc::clone(&CONFIG)) {
        Ok(Some(file)) => (
            [
                (header::CONTENT_TYPE, file.content_type),
                (header::CACHE_CONTROL, "public, max-age=300".to_owned()),
            ],
            file.bytes.into_owned(),
        )
            .into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "Swagger UI file could not be served");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests;
