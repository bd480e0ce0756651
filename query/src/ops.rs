//! Operational routes: `/healthz` (the process is up), `/readyz` (the monitors and rules views
//! caught up, live consumers positioned, ClickHouse reachable), `/metrics` (Prometheus text), the OpenAPI
//! document and docs page, and the GraphQL endpoints' entries in the OpenAPI document.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::Error;
use crate::error::Problem;
use crate::state::AppState;

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = String)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = String),
        (status = 503, description = "Not ready, and why", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.service.not_ready().await {
        None => "ready\n".into_response(),
        Some(reason) => Error::Unavailable(reason).into_response(),
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        (status = 404, description = "No recorder installed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => Error::NotFound {
            kind: "metrics recorder",
            id: "prometheus".into(),
        }
        .into_response(),
    }
}

/// The OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", body = Object)))]
pub async fn openapi_json(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
) -> impl IntoResponse {
    axum::Json(crate::openapi::served(&state.config.limits))
}

/// Interactive API reference (Swagger UI at `/docs/`, served from the binary).
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 308, description = "To the reference at `/docs/`")))]
pub async fn docs() -> impl IntoResponse {
    axum::response::Redirect::permanent("/docs/")
}

/// GraphiQL, the in-browser GraphQL IDE (served from the binary).
#[utoipa::path(get, path = "/graphql", tag = "graphql",
    responses(
        (status = 200, description = "GraphiQL page", body = String, content_type = "text/html"),
        (status = 304, description = "The page the client has is current"),
        (status = 404, description = "GraphiQL is disabled", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn graphql_get(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    if state.config.graphql.graphiql {
        crate::web::graphiql(&headers)
    } else {
        Error::NotFound {
            kind: "page",
            id: "graphiql".into(),
        }
        .into_response()
    }
}

/// A GraphQL request (GraphQL over HTTP).
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = GraphQLRequest)]
#[allow(
    dead_code,
    reason = "describes the GraphQL request body in the OpenAPI document"
)]
pub(crate) struct GraphQlRequestDoc {
    /// The query or mutation document.
    #[schema(min_length = 1)]
    query: String,
    /// Which operation of the document to run.
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    /// Values of the document's variables.
    variables: Option<std::collections::HashMap<String, serde_json::Value>>,
    /// Protocol extensions.
    extensions: Option<std::collections::HashMap<String, serde_json::Value>>,
}

/// A GraphQL response: `data`, and `errors` whose `extensions.code` is stable.
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = GraphQLResponse)]
#[allow(
    dead_code,
    reason = "describes GraphQL responses in the OpenAPI document"
)]
pub(crate) struct GraphQlResponseDoc {
    /// The result; absent when the request could not run.
    #[schema(value_type = Option<Object>)]
    data: Option<serde_json::Value>,
    /// What went wrong, if anything.
    #[schema(value_type = Option<Vec<Object>>)]
    errors: Option<Vec<serde_json::Value>>,
    /// Protocol extensions.
    #[schema(value_type = Option<Object>)]
    extensions: Option<serde_json::Value>,
}

/// GraphQL queries and mutations (`{"query": …, "variables": …}`); API key as bearer. Answers
/// `application/graphql-response+json` when the `Accept` header asks for it, else
/// `application/json`. Subscriptions are served over WebSocket at `/graphql/ws`
/// (`graphql-transport-ws` or legacy `graphql-ws`), with the API key in the `connection_init`
/// payload as `{"authorization": "Bearer <key>"}`.
#[utoipa::path(post, path = "/graphql", tag = "graphql",
    request_body(content = GraphQlRequestDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "GraphQL response; errors carry `extensions.code`", content(
            (GraphQlResponseDoc = "application/json"),
            (GraphQlResponseDoc = "application/graphql-response+json"))),
        (status = 400, description = "Not a GraphQL request, or the query is too large", content(
            (GraphQlResponseDoc = "application/json"),
            (GraphQlResponseDoc = "application/graphql-response+json"))),
        (status = 401, description = "Missing or unknown API key", body = GraphQlResponseDoc),
    ),
    security(("bearer" = [])))]
pub async fn graphql_post(state: State<AppState>, request: axum::extract::Request) -> Response {
    crate::graphql::http(state, request).await
}

/// GraphQL subscriptions over WebSocket: not an HTTP operation, so not in the OpenAPI
/// document (see `POST /graphql`).
pub async fn graphql_ws(
    state: State<AppState>,
    protocol: async_graphql_axum::GraphQLProtocol,
    upgrade: axum::extract::WebSocketUpgrade,
) -> Response {
    crate::graphql::websocket(state, protocol, upgrade)
}

/// Fallback for unknown paths: a problem document rather than an empty 404.
pub(crate) async fn not_found(uri: axum::http::Uri) -> Response {
    let mut response = Error::NotFound {
        kind: "route",
        id: uri.path().to_owned(),
    }
    .into_response();
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}
