//! Rate limits per API key and per client address (`[query.rate-limit]`, see
//! [`vigil_schema::ratelimit`]).
//!
//! Every request but `/healthz`, `/readyz` and `/metrics` counts against its client address; a
//! request with a known API key also counts against that key. Over a limit the answer is `429`
//! (problem type `rate-limited`) with `Retry-After`; every other answer carries the IETF
//! `RateLimit-Policy` and `RateLimit` fields of the tighter limit.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vigil_schema::ratelimit::Allowed;

use crate::Error;
use crate::state::AppState;

/// Sets the RateLimit fields of `allowed` on `response`.
pub fn set_fields(response: &mut Response, allowed: &Allowed) {
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&allowed.policy) {
        h.insert(HeaderName::from_static("ratelimit-policy"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&allowed.state()) {
        h.insert(HeaderName::from_static("ratelimit"), v);
    }
}

/// The middleware.
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if state.rate_limits.is_off() || matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // Without keys configured every caller is the same anonymous admin: only the address counts.
    let principal = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|_| state.auth.enabled())
        .and_then(|a| state.auth.authenticate(Some(a)).ok());
    let key = principal.as_ref().map(|p| Arc::clone(&p.name));
    if let Some(principal) = principal {
        // The handler's `Caller` takes it from here instead of checking the key again.
        request.extensions_mut().insert(principal);
    }
    match state.rate_limits.check(key.as_deref(), address) {
        Ok(allowed) => {
            let mut response = next.run(request).await;
            if let Some(a) = allowed {
                set_fields(&mut response, &a);
            }
            response
        }
        Err(limited) => {
            metrics::counter!("vigil_query_rate_limited_total", "scope" => limited.scope)
                .increment(1);
            Error::RateLimited {
                scope: limited.scope,
                retry_after: limited.retry_after,
            }
            .into_response()
        }
    }
}
