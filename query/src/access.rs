//! Who may call each REST route, checked before the request is read any further.
//!
//! A caller without a valid key gets 401 and one whose role is too low 403, from the route's
//! entry here, before its parameters or body are parsed (so nothing about the input is revealed
//! to, or costs anything for, a caller who may not send it). Handlers check the same role
//! again. A route missing from this table is refused to everyone but admins.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::Role;
use crate::state::Caller;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, metrics, the documents).
    Public,
    /// A request signed with a shared secret (integrations), checked by the handler.
    Signed,
    /// GraphQL over HTTP: any valid key, checked before the request is parsed and answered
    /// as a GraphQL error; then each operation checks its own role.
    PerOperation,
    /// A key with at least this role.
    Role(Role),
}

/// The access rule of `method` `path` (a route template, as in [`crate::routes`]); `None` if
/// the route has none.
pub fn access(method: &Method, path: &str) -> Option<Access> {
    Some(match (method.as_str(), path) {
        ("GET", "/api/v1/monitors") => Access::Role(Role::Viewer),
        ("POST", "/api/v1/monitors") => Access::Role(Role::Editor),
        ("GET", "/api/v1/monitors/{id}") => Access::Role(Role::Viewer),
        ("PUT", "/api/v1/monitors/{id}") => Access::Role(Role::Editor),
        ("PATCH", "/api/v1/monitors/{id}") => Access::Role(Role::Editor),
        ("DELETE", "/api/v1/monitors/{id}") => Access::Role(Role::Editor),
        ("POST", "/api/v1/monitors/{id}/enable") => Access::Role(Role::Editor),
        ("POST", "/api/v1/monitors/{id}/disable") => Access::Role(Role::Editor),
        ("GET", "/api/v1/monitors/{id}/history") => Access::Role(Role::Viewer),
        ("GET", "/api/v1/monitors/{id}/summary") => Access::Role(Role::Viewer),
        ("GET", "/api/v1/monitors/{id}/probes") => Access::Role(Role::Viewer),
        ("GET", "/api/v1/monitors/{id}/export") => Access::Role(Role::Viewer),
        ("GET", "/api/v1/history") => Access::Role(Role::Viewer),
        ("GET", "/api/v1/export") => Access::Role(Role::Viewer),
        ("GET", "/api/v1/alerts") => Access::Role(Role::Viewer),
        ("GET", "/api/v1/alerts/active") => Access::Role(Role::Viewer),
        ("POST", "/api/v1/alerts/ack") => Access::Role(Role::Editor),
        ("GET", "/api/v1/audit") => Access::Role(Role::Admin),
        ("POST", "/api/v1/integrations/pagerduty") => Access::Signed,
        ("GET", "/api/v1/deliveries") => Access::Role(Role::Viewer),
        ("POST", "/api/v1/deliveries/{delivery_id}/redeliver") => Access::Role(Role::Editor),
        ("GET", "/api/v1/rules") => Access::Role(Role::Viewer),
        ("POST", "/api/v1/rules") => Access::Role(Role::Editor),
        ("GET", "/api/v1/rules/{id}") => Access::Role(Role::Viewer),
        ("PUT", "/api/v1/rules/{id}") => Access::Role(Role::Editor),
        ("DELETE", "/api/v1/rules/{id}") => Access::Role(Role::Editor),
        ("GET", "/api/v1/rules/{id}/budget") => Access::Role(Role::Viewer),
        ("POST", "/api/v1/rules/backtest") => Access::Role(Role::Editor),
        ("POST", "/api/v1/import/openapi") => Access::Role(Role::Editor),
        ("GET", "/api/v1/channels") => Access::Role(Role::Viewer),
        ("POST", "/api/v1/channels") => Access::Role(Role::Editor),
        ("GET", "/api/v1/channels/{id}") => Access::Role(Role::Viewer),
        ("PUT", "/api/v1/channels/{id}") => Access::Role(Role::Editor),
        ("DELETE", "/api/v1/channels/{id}") => Access::Role(Role::Editor),
        ("GET", "/api/v1/routes") => Access::Role(Role::Viewer),
        ("PUT", "/api/v1/routes") => Access::Role(Role::Editor),
        ("GET", "/api/v1/silences") => Access::Role(Role::Viewer),
        ("POST", "/api/v1/silences") => Access::Role(Role::Editor),
        ("GET", "/api/v1/silences/{id}") => Access::Role(Role::Viewer),
        ("DELETE", "/api/v1/silences/{id}") => Access::Role(Role::Editor),
        ("POST", "/api/v1/silences/{id}/expire") => Access::Role(Role::Editor),
        ("GET", "/api/v1/maintenance") => Access::Role(Role::Viewer),
        ("POST", "/api/v1/maintenance") => Access::Role(Role::Editor),
        ("GET", "/api/v1/maintenance/{id}") => Access::Role(Role::Viewer),
        ("PUT", "/api/v1/maintenance/{id}") => Access::Role(Role::Editor),
        ("DELETE", "/api/v1/maintenance/{id}") => Access::Role(Role::Editor),
        ("GET", "/api/v1/keys") => Access::Role(Role::Admin),
        ("POST", "/api/v1/keys") => Access::Role(Role::Admin),
        ("GET", "/api/v1/keys/{id}") => Access::Role(Role::Admin),
        ("POST", "/api/v1/keys/{id}/revoke") => Access::Role(Role::Admin),
        ("GET", "/api/v1/secrets") => Access::Role(Role::Editor),
        ("PUT", "/api/v1/secrets/{name}") => Access::Role(Role::Admin),
        ("DELETE", "/api/v1/secrets/{name}") => Access::Role(Role::Admin),
        ("GET", "/api/v1/openapi.json") => Access::Public,
        ("GET", "/docs") => Access::Public,
        ("GET", "/healthz") => Access::Public,
        ("GET", "/readyz") => Access::Public,
        ("GET", "/metrics") => Access::Public,
        // The GraphiQL page; queries go by POST.
        ("GET", "/graphql") => Access::Public,
        ("POST", "/graphql") => Access::PerOperation,
        // The key comes in `connection_init`, checked there; each operation checks its role.
        ("GET", "/graphql/ws") => Access::Public,
        _ => return None,
    })
}

/// Refuses a caller below `needed` (401 without a valid key, 403 with a lower role).
pub(crate) async fn guard(
    State((state, needed)): State<(AppState, Role)>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let principal = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(Caller(principal)) => principal,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = principal.require(needed) {
        return e.into_response();
    }
    // The handler's `Caller` reads it back instead of authenticating again.
    parts.extensions.insert(principal);
    next.run(Request::from_parts(parts, body)).await
}
