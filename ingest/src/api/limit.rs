//! Rate limits of the ingestion API (`[ingest.api.rate-limit]`, see
//! [`vigil_schema::ratelimit`]): every request to `/v1/events` counts against its client
//! address, and one with an accepted key against that key. Over a limit: `429` with
//! `Retry-After`; otherwise the IETF `RateLimit-Policy` and `RateLimit` fields.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiState, Problem, presented_key};

/// The middleware.
pub(super) async fn layer(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let limits = &state.inner.limits;
    if limits.is_off() || request.uri().path() != "/v1/events" {
        return next.run(request).await;
    }
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let key = presented_key(request.headers())
        .filter(|k| {
            super::authorized(
                &state.inner.config,
                state.inner.keys.as_ref(),
                request.headers(),
            )
            .is_some()
                && !k.is_empty()
        })
        .map(str::to_owned);
    match limits.check(key.as_deref(), address) {
        Ok(allowed) => {
            let mut response = next.run(request).await;
            if let Some(a) = allowed {
                let h = response.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&a.policy) {
                    h.insert(HeaderName::from_static("ratelimit-policy"), v);
                }
                if let Ok(v) = HeaderValue::from_str(&a.state()) {
                    h.insert(HeaderName::from_static("ratelimit"), v);
                }
            }
            response
        }
        Err(limited) => {
            metrics::counter!("vigil_ingest_rate_limited_total", "scope" => limited.scope)
                .increment(1);
            let seconds = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let mut response = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "urn:vigil:problem:rate-limited",
                "Too many requests",
                format!(
                    "too many requests from this {}; retry in {seconds}s",
                    limited.scope
                ),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use rdkafka::mocking::MockCluster;
    use tower::ServiceExt;
    use vigil_schema::TopicNames;
    use vigil_schema::ratelimit::RateLimitConfig;

    use super::*;
    use crate::KafkaConnection;
    use crate::config::{ApiConfig, ProducerConfig};
    use crate::monitors::MonitorView;
    use crate::producer::ProbeProducer;

    const KEY: &str = "limit-test-key";

    #[tokio::test]
    async fn over_the_budget_of_a_key_is_429_with_retry_after() {
        let mock = MockCluster::new(1).unwrap();
        let topics = TopicNames::with_prefix("limit-test");
        mock.create_topic(&topics.probes, 1, 1).unwrap();
        let kafka = KafkaConnection {
            brokers: mock.bootstrap_servers(),
            topics,
            request_timeout: Duration::from_secs(5),
        };
        let producer = ProbeProducer::new(&kafka, &ProducerConfig::default()).unwrap();
        let config = ApiConfig {
            enabled: true,
            api_keys: vec![KEY.into()],
            rate_limit: RateLimitConfig {
                per_key: 1,
                per_key_burst: 2,
                ..RateLimitConfig::OFF
            },
            ..ApiConfig::default()
        };
        let state = ApiState::new(config, producer, MonitorView::from_specs([]), None);
        let send = |key: &str| {
            Request::post("/v1/events")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::from("[]"))
                .unwrap()
        };
        let app = super::super::router(state);
        for left in ["1", "0"] {
            let response = app.clone().oneshot(send(KEY)).await.unwrap();
            // (An empty batch is a 400: the limiter let it through.)
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            assert_eq!(
                response.headers()["ratelimit"],
                format!("\"per-key\";r={left};t={}", if left == "1" { 1 } else { 2 }).as_str()
            );
            assert_eq!(
                response.headers()["ratelimit-policy"],
                "\"per-key\";q=2;w=2"
            );
        }
        let response = app.clone().oneshot(send(KEY)).await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["type"], "urn:vigil:problem:rate-limited");
        // A wrong key is not counted as a key (it is refused as unauthenticated).
        let response = app.oneshot(send("wrong-key")).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}
