//! GraphQL over the same service layer as REST: queries and mutations on `POST /graphql`,
//! GraphiQL on `GET /graphql`, subscriptions on `/graphql/ws` (`graphql-transport-ws` and the
//! legacy `graphql-ws`). Depth, complexity and document size are limited; every error carries
//! `extensions.code`. The API key comes from `Authorization: Bearer` on HTTP and from the
//! `connection_init` payload on WebSockets.
//!
//! Modules: [`query`] (reads), [`mutation`] (monitor and alert rule writes), [`notify`]
//! (channels, routes, silences and maintenance windows, merged into both roots),
//! [`subscription`] (live windows, probes, alerts, and monitor and rule changes from the hub).

pub mod credentials;
pub mod mutation;
pub mod notify;
pub mod query;
pub mod subscription;

use async_graphql::{Context, Data, ErrorExtensions, MergedObject, Schema};
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Json;
use axum::extract::FromRequest;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{Principal, Role};
use crate::config::GraphQlConfig;
use crate::service::Service;
use crate::state::AppState;

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

/// Every read: [`QueryRoot`] and the notification configuration's.
#[derive(Debug, Default, MergedObject)]
pub struct Query(
    QueryRoot,
    notify::NotifyQuery,
    credentials::CredentialsQuery,
);

/// Every write: [`MutationRoot`] and the notification configuration's.
#[derive(Debug, Default, MergedObject)]
pub struct Mutation(
    MutationRoot,
    notify::NotifyMutation,
    credentials::CredentialsMutation,
);

/// The schema type.
pub type VigilSchema = Schema<Query, Mutation, SubscriptionRoot>;

/// Builds the schema with the configured limits.
pub fn schema(service: Service, config: &GraphQlConfig) -> VigilSchema {
    Schema::build(Query::default(), Mutation::default(), SubscriptionRoot)
        .data(service)
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity)
        .limit_recursive_depth(config.max_depth.max(32))
        .finish()
}

/// Converts the crate's results into GraphQL results carrying `extensions.code` (plain `?`
/// would go through async-graphql's blanket `From<Display>` and lose the code).
pub(crate) trait Gql<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> Gql<T> for crate::Result<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}

/// Whether the caller may see monitors' secrets (editors and admins).
pub(crate) fn can_see_secrets(ctx: &Context<'_>) -> bool {
    ctx.data_opt::<Principal>()
        .is_some_and(|p| p.role >= Role::Editor)
}

/// The service, once the caller is known to have `role`.
pub(crate) fn authorized<'a>(ctx: &Context<'a>, role: Role) -> async_graphql::Result<&'a Service> {
    let caller = ctx
        .data_opt::<Principal>()
        .ok_or_else(|| crate::Error::Unauthenticated.extend())?;
    caller.require(role).gql()?;
    ctx.data::<Service>()
}

fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{"message": message, "extensions": {"code": code}}]
    });
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"vigil\""),
        );
    }
    response
}

/// `POST /graphql`.
pub(crate) async fn http(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Response {
    // The caller first: a request without a valid key is not parsed at all.
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match state.auth.authenticate(authorization) {
        Ok(caller) => caller,
        Err(e) => return error_body(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &e.to_string()),
    };
    let request = match GraphQLRequest::<GraphQLRejection>::from_request(request, &state).await {
        Ok(request) => request.into_inner(),
        Err(GraphQLRejection(e)) => {
            return error_body(StatusCode::BAD_REQUEST, "BAD_REQUEST", &e.to_string());
        }
    };
    if request.query.is_empty() {
        return error_body(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the request has no `query` (a GraphQL document)",
        );
    }
    let limit = state.config.graphql.max_query_bytes;
    if request.query.len() > limit {
        return error_body(
            StatusCode::BAD_REQUEST,
            "QUERY_TOO_LARGE",
            &format!(
                "the query document is {} bytes; at most {limit} are accepted",
                request.query.len()
            ),
        );
    }
    let mut response = state.schema.execute(request.data(caller)).await;
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            let code = if error.message.contains("nested too deep") {
                "QUERY_TOO_DEEP"
            } else if error.message.contains("too complex") {
                "QUERY_TOO_COMPLEX"
            } else if error.path.is_empty() {
                "GRAPHQL_VALIDATION_FAILED"
            } else {
                "INTERNAL"
            };
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", code);
        }
    }
    GraphQLResponse::from(response).into_response()
}

/// Reads the API key from a `connection_init` payload: `{"authorization": "Bearer <key>"}`
/// (also `Authorization`, or `{"apiKey": "<key>"}`).
fn key_from_init(payload: &serde_json::Value) -> Option<String> {
    let field = |name: &str| payload.get(name).and_then(|v| v.as_str());
    field("authorization")
        .or_else(|| field("Authorization"))
        .map(str::to_owned)
        .or_else(|| field("apiKey").map(|k| format!("Bearer {k}")))
}

/// `GET /graphql/ws`.
pub(crate) fn websocket(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let schema = state.schema.clone();
    let auth = state.auth.clone();
    let shutdown = state.service.hub().shutdown().clone();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            metrics::gauge!("vigil_query_websockets").increment(1.0);
            let connection = GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let caller = auth
                        .authenticate(key_from_init(&payload).as_deref())
                        .map_err(|e| e.extend())?;
                    let mut data = Data::default();
                    data.insert(caller);
                    Ok(data)
                })
                .serve();
            // Cancel-safe: dropping the connection future closes the socket, which is what
            // shutdown wants.
            tokio::select! {
                () = connection => {}
                () = shutdown.cancelled() => {}
            }
            metrics::gauge!("vigil_query_websockets").decrement(1.0);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_payload_forms() {
        let key = |v| key_from_init(&v);
        assert_eq!(
            key(serde_json::json!({"authorization": "Bearer k"})).as_deref(),
            Some("Bearer k")
        );
        assert_eq!(
            key(serde_json::json!({"apiKey": "k"})).as_deref(),
            Some("Bearer k")
        );
        assert_eq!(key(serde_json::json!({})), None);
    }
}
