//! Bounds on every HTTP request: a deadline and a cap on requests in flight.
//!
//! A request not answered within `http.request-timeout` is abandoned with 503 and a problem
//! document (the deadline covers producing the response: a streamed export or a WebSocket runs
//! on after its first bytes). Past `http.max-in-flight` requests being handled, new ones are
//! refused at once with 503 instead of queueing without bound.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::{AppState, Error};

/// The in-flight cap shared by every request of one router.
#[derive(Debug, Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    /// A cap of `max` requests.
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.max(1))))
    }
}

/// Applies the deadline and the cap.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let http = &state.config.http;
    let Ok(_permit) = state.in_flight.0.clone().try_acquire_owned() else {
        metrics::counter!("vigil_query_requests_shed_total").increment(1);
        return Error::Unavailable(format!(
            "more than {} requests in flight; retry shortly",
            http.max_in_flight
        ))
        .into_response();
    };
    match tokio::time::timeout(http.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("vigil_query_requests_timed_out_total").increment(1);
            Error::Timeout {
                what: "request",
                after: http.request_timeout,
            }
            .into_response()
        }
    }
}
