//! Vigil's query layer: REST with an OpenAPI document and GraphQL with subscriptions, over the
//! window, probe and alert tables in ClickHouse, the monitors and rules topics, and the live
//! topics.
//!
//! ```text
//! vigil.monitors ──► views (DashMap) ─┐            ┌─► REST /api/v1 (utoipa, problem+json)
//! vigil.rules    ──►                  │            │
//! vigil.channels, vigil.routes, vigil.silences ──► notification configuration views
//! vigil.windows  ─┐                   ├─► Service ─┤
//! vigil.probes   ─┼─► hub (broadcast)─┘  ▲  ▲      └─► GraphQL /graphql, /graphql/ws
//! vigil.alerts   ─┘                      │  │ ClickHouse (FINAL, merged sketches)
//! vigil.probes (range) ──► backtest: the processor's Pipeline and evaluator, one at a time
//! ```
//!
//! # Layout
//! - [`config`]: the service's configuration.
//! - [`error`]: the error type and its problem-document / GraphQL rendering.
//! - [`auth`]: API keys and roles.
//! - [`view`]: the monitors, rules and notification configuration views (read-your-writes).
//! - [`hub`]: the per-process consumers and broadcast fan-out behind subscriptions.
//! - [`idempotency`]: `Idempotency-Key` on REST writes.
//! - [`ratelimit`]: request budgets per API key and client address.
//! - [`params`]: parsing and checking of parameters shared by both APIs.
//! - [`model`]: DTOs shared by REST and GraphQL.
//! - [`service`]: the operations both APIs expose ([`service::rules`]: alert rules,
//!   [`service::alerts`]: alert history and the active set, [`service::budget`]: error budgets,
//!   [`service::backtest`]: rule backtests through the processor's pipeline,
//!   [`service::channels`]: channels and the routing tree, [`service::silences`]: silences and
//!   maintenance windows, [`service::deliveries`]: the delivery log, acknowledgements and
//!   redeliveries).
//! - [`rest`], [`openapi`], [`ops`]: the REST routes ([`rest::rules`]: `/api/v1/rules`,
//!   [`rest::alerts`]: `/api/v1/alerts`, [`rest::deliveries`]: `/api/v1/deliveries`,
//!   [`rest::backtest`], [`rest::channels`]:
//!   `/api/v1/channels` and `/api/v1/routes`, [`rest::silences`]: `/api/v1/silences` and
//!   `/api/v1/maintenance`), the OpenAPI document and docs page,
//!   health/readiness/metrics.
//! - [`graphql`]: schema, HTTP and WebSocket handlers.
//! - [`state`]: the router's shared state and the REST caller extractor.

pub mod access;
pub mod auth;
pub mod config;
pub mod error;
pub mod graphql;
pub mod hub;
pub mod idempotency;
pub mod model;
pub mod openapi;
pub mod ops;
pub mod overload;
pub mod params;
pub mod ratelimit;
pub mod rest;
pub mod service;
pub mod state;
pub mod view;
pub(crate) mod web;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{self, MethodRouter};
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureProducer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use config::Config;
pub use error::{Error, Result};
pub use service::Service;
pub use state::AppState;

/// Every route of the router: method, path, handler. The OpenAPI test checks each is documented.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    use routing::{delete, get, patch, post, put};
    vec![
        (Method::GET, "/api/v1/monitors", get(rest::list_monitors)),
        (Method::POST, "/api/v1/monitors", post(rest::create_monitor)),
        (Method::GET, "/api/v1/monitors/{id}", get(rest::get_monitor)),
        (
            Method::PUT,
            "/api/v1/monitors/{id}",
            put(rest::update_monitor),
        ),
        (
            Method::PATCH,
            "/api/v1/monitors/{id}",
            patch(rest::patch_monitor),
        ),
        (
            Method::DELETE,
            "/api/v1/monitors/{id}",
            delete(rest::delete_monitor),
        ),
        (
            Method::POST,
            "/api/v1/monitors/{id}/enable",
            post(rest::enable_monitor),
        ),
        (
            Method::POST,
            "/api/v1/monitors/{id}/disable",
            post(rest::disable_monitor),
        ),
        (
            Method::GET,
            "/api/v1/monitors/{id}/history",
            get(rest::monitor_history),
        ),
        (
            Method::GET,
            "/api/v1/monitors/{id}/summary",
            get(rest::summary),
        ),
        (
            Method::GET,
            "/api/v1/monitors/{id}/probes",
            get(rest::probes),
        ),
        (
            Method::GET,
            "/api/v1/monitors/{id}/export",
            get(rest::export_monitor),
        ),
        (Method::GET, "/api/v1/history", get(rest::history)),
        (Method::GET, "/api/v1/export", get(rest::export)),
        (Method::GET, "/api/v1/alerts", get(rest::alerts::alerts)),
        (
            Method::GET,
            "/api/v1/alerts/active",
            get(rest::alerts::active_alerts),
        ),
        (
            Method::POST,
            "/api/v1/alerts/ack",
            post(rest::alerts::acknowledge_alert),
        ),
        (Method::GET, "/api/v1/audit", get(rest::audit::audit_log)),
        (
            Method::POST,
            "/api/v1/integrations/pagerduty",
            post(rest::integrations::pagerduty),
        ),
        (
            Method::GET,
            "/api/v1/deliveries",
            get(rest::deliveries::list_deliveries),
        ),
        (
            Method::POST,
            "/api/v1/deliveries/{delivery_id}/redeliver",
            post(rest::deliveries::redeliver),
        ),
        (Method::GET, "/api/v1/rules", get(rest::rules::list_rules)),
        (
            Method::POST,
            "/api/v1/rules",
            post(rest::rules::create_rule),
        ),
        (
            Method::GET,
            "/api/v1/rules/{id}",
            get(rest::rules::get_rule),
        ),
        (
            Method::PUT,
            "/api/v1/rules/{id}",
            put(rest::rules::update_rule),
        ),
        (
            Method::DELETE,
            "/api/v1/rules/{id}",
            delete(rest::rules::delete_rule),
        ),
        (
            Method::GET,
            "/api/v1/rules/{id}/budget",
            get(rest::rules::rule_budget),
        ),
        (
            Method::POST,
            "/api/v1/rules/backtest",
            post(rest::backtest::backtest_rules),
        ),
        (
            Method::GET,
            "/api/v1/channels",
            get(rest::channels::list_channels),
        ),
        (
            Method::POST,
            "/api/v1/channels",
            post(rest::channels::create_channel),
        ),
        (
            Method::GET,
            "/api/v1/channels/{id}",
            get(rest::channels::get_channel),
        ),
        (
            Method::PUT,
            "/api/v1/channels/{id}",
            put(rest::channels::update_channel),
        ),
        (
            Method::DELETE,
            "/api/v1/channels/{id}",
            delete(rest::channels::delete_channel),
        ),
        (
            Method::GET,
            "/api/v1/routes",
            get(rest::channels::get_routes),
        ),
        (
            Method::PUT,
            "/api/v1/routes",
            put(rest::channels::update_routes),
        ),
        (
            Method::POST,
            "/api/v1/import/openapi",
            post(rest::import::import_openapi)
                .layer(DefaultBodyLimit::max(rest::import::MAX_IMPORT_BODY)),
        ),
        (
            Method::GET,
            "/api/v1/keys",
            get(rest::credentials::list_keys),
        ),
        (
            Method::POST,
            "/api/v1/keys",
            post(rest::credentials::create_key),
        ),
        (
            Method::GET,
            "/api/v1/keys/{id}",
            get(rest::credentials::get_key),
        ),
        (
            Method::POST,
            "/api/v1/keys/{id}/revoke",
            post(rest::credentials::revoke_key),
        ),
        (
            Method::GET,
            "/api/v1/secrets",
            get(rest::credentials::list_secrets),
        ),
        (
            Method::PUT,
            "/api/v1/secrets/{name}",
            put(rest::credentials::put_secret),
        ),
        (
            Method::DELETE,
            "/api/v1/secrets/{name}",
            delete(rest::credentials::delete_secret),
        ),
        (
            Method::GET,
            "/api/v1/silences",
            get(rest::silences::list_silences),
        ),
        (
            Method::POST,
            "/api/v1/silences",
            post(rest::silences::create_silence),
        ),
        (
            Method::GET,
            "/api/v1/silences/{id}",
            get(rest::silences::get_silence),
        ),
        (
            Method::DELETE,
            "/api/v1/silences/{id}",
            delete(rest::silences::delete_silence),
        ),
        (
            Method::POST,
            "/api/v1/silences/{id}/expire",
            post(rest::silences::expire_silence),
        ),
        (
            Method::GET,
            "/api/v1/maintenance",
            get(rest::silences::list_maintenance),
        ),
        (
            Method::POST,
            "/api/v1/maintenance",
            post(rest::silences::create_maintenance),
        ),
        (
            Method::GET,
            "/api/v1/maintenance/{id}",
            get(rest::silences::get_maintenance),
        ),
        (
            Method::PUT,
            "/api/v1/maintenance/{id}",
            put(rest::silences::update_maintenance),
        ),
        (
            Method::DELETE,
            "/api/v1/maintenance/{id}",
            delete(rest::silences::delete_maintenance),
        ),
        (Method::GET, "/api/v1/openapi.json", get(ops::openapi_json)),
        (Method::GET, "/docs", get(ops::docs)),
        (Method::GET, "/healthz", get(ops::healthz)),
        (Method::GET, "/readyz", get(ops::readyz)),
        (Method::GET, "/metrics", get(ops::metrics)),
        (Method::GET, "/graphql", get(ops::graphql_get)),
        (Method::POST, "/graphql", post(ops::graphql_post)),
        (Method::GET, "/graphql/ws", get(ops::graphql_ws)),
    ]
}

/// The whole HTTP application: REST, GraphQL, operations, with CORS, compression, request ids,
/// tracing, request metrics and a body size limit.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new();
    for (method, path, handler) in routes() {
        let needed = match access::access(&method, path) {
            Some(access::Access::Role(role)) => Some(role),
            Some(_) => None,
            // Fail closed.
            None => Some(auth::Role::Admin),
        };
        let handler = match needed {
            Some(role) => handler.route_layer(middleware::from_fn_with_state(
                (state.clone(), role),
                access::guard,
            )),
            None => handler,
        };
        app = app.route(path, handler);
    }
    let request_id = HeaderName::from_static("x-request-id");
    let cors = cors_layer(&state.config.http.cors_origins);
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("http", method = %request.method(), uri = %request.uri(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .option_layer(cors)
        .layer(CompressionLayer::new())
        .layer(DefaultBodyLimit::max(state.config.http.max_body_bytes));
    app.merge(web::router())
        .fallback(ops::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            rest::audit::scope_layer,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::layer,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            overload::layer,
        ))
        .layer(middleware::from_fn(record_metrics))
        .layer(middleware)
        .with_state(state)
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
            ])
            .expose_headers([HeaderName::from_static("x-request-id")]),
    )
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("vigil_query_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("vigil_query_http_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Serves `state` on `listener` until `token` is cancelled, then lets in-flight requests
/// finish for up to the configured shutdown grace.
pub async fn serve(listener: TcpListener, state: AppState, token: CancellationToken) -> Result<()> {
    let grace = state.config.http.shutdown_grace;
    let app = router(state);
    let shutdown = token.clone();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned());
    let server = tokio::spawn(async move { server.await });
    token.cancelled().await;
    match tokio::time::timeout(grace, server).await {
        Ok(joined) => joined
            .map_err(|e| Error::Unavailable(format!("server task failed: {e}")))?
            .map_err(Error::Io),
        Err(_) => {
            tracing::warn!(
                ?grace,
                "In-flight requests did not finish within the grace period."
            );
            Ok(())
        }
    }
}

/// Kafka client settings for `config`.
pub fn kafka_client(config: &Config) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.kafka.brokers);
    client
}

/// Creates missing topics, starts the monitors, rules and notification configuration views
/// and the live consumers, and builds the service. Background tasks stop when `token` is cancelled.
pub async fn connect(config: &Config, token: &CancellationToken) -> Result<Service> {
    config.validate_settings()?;
    let client = kafka_client(config);
    let topics = config.topics();
    let timeout = config.kafka.request_timeout;
    let admin: AdminClient<DefaultClientContext> = client.create()?;
    vigil_schema::kafka::ensure_topics(&admin, &topics.specs(), timeout, 1).await?;

    let hub = hub::Hub::new(config.subscriptions.buffer, token.child_token());
    let view = view::MonitorView::new(hub.monitors.clone());
    view.start(&client, &topics.monitors, timeout, token.child_token())
        .await?;
    let rules = view::RuleView::new(hub.rules.clone());
    rules
        .start(&client, &topics.rules, timeout, token.child_token())
        .await?;
    hub.start(&client, &topics, timeout, token).await?;

    let mut producer_config = client.clone();
    producer_config
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "0");
    let producer: FutureProducer = producer_config.create()?;
    let usage_producer = producer.clone();
    let topics_usage = topics.api_key_usage.clone();
    let probes_topic = topics.probes.clone();
    let service = Service::new(service::ServiceParts {
        clickhouse: config.clickhouse.client(),
        producer,
        topics,
        view,
        rules,
        hub,
        limits: config.limits.clone(),
        write_timeout: config.http.write_visibility_timeout,
        produce_timeout: timeout,
        backtest: service::BacktestSettings {
            brokers: config.kafka.brokers.clone(),
            probes_topic,
            processor: config.processor.clone(),
            timeout: config.backtest.timeout,
        },
        egress: config.egress.clone(),
        credentials: service::Credentials::new(
            config
                .secrets
                .keyring()
                .map_err(|e| Error::Unavailable(e.to_string()))?,
            vigil_schema::reporter_name("query", config.http.listen.port()),
        ),
    });
    let credentials = service.credentials();
    credentials
        .secrets
        .start(
            &client,
            &config.topics().secrets,
            timeout,
            token.child_token(),
        )
        .await?;
    credentials
        .keys
        .start(
            &client,
            &config.topics().api_keys,
            timeout,
            token.child_token(),
        )
        .await?;
    // The keys view is read to its end before the exposure check and before serving, so a
    // deployment whose keys were all created through the API never starts open.
    let deadline = Instant::now() + timeout.max(Duration::from_secs(10));
    while !credentials.keys.is_caught_up() {
        if Instant::now() >= deadline {
            return Err(Error::Unavailable(
                "the api-keys topic was not read in time".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    config.check_exposure(!credentials.keys.is_empty())?;
    credentials
        .reported
        .start(&client, &topics_usage, timeout, token.child_token())
        .await?;
    tokio::spawn(vigil_schema::kafka::report_usage(
        Arc::clone(&credentials.usage),
        usage_producer,
        topics_usage,
        Duration::from_secs(10),
        token.child_token(),
    ));
    service
        .notify_views()
        .start(&client, &config.topics(), timeout, token)
        .await?;
    Ok(service)
}

/// Runs the query service until `token` is cancelled.
pub async fn run(config: Config, token: CancellationToken) -> Result<()> {
    run_with_metrics(config, None, token).await
}

/// [`run`], rendering `/metrics` from the binary's Prometheus recorder.
pub async fn run_with_metrics(
    config: Config,
    metrics: Option<PrometheusHandle>,
    token: CancellationToken,
) -> Result<()> {
    let service = connect(&config, &token).await?;
    let listener = TcpListener::bind(config.http.listen).await?;
    let auth = if config.auth.keys.is_empty() && service.credentials().keys.is_empty() {
        "off (every caller is admin)"
    } else {
        "api keys"
    };
    tracing::info!(address = %listener.local_addr()?, auth, "Query API listening.");
    let state = AppState::new(service, config, metrics);
    serve(listener, state, token).await
}

/// Waits up to `timeout` for the service to become ready (views caught up, consumers positioned,
/// ClickHouse reachable).
pub async fn wait_ready(service: &Service, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match service.not_ready().await {
            None => return Ok(()),
            Some(reason) if Instant::now() >= deadline => return Err(Error::Unavailable(reason)),
            Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_an_access_rule() {
        for (method, path, _) in routes() {
            assert!(
                access::access(&method, path).is_some(),
                "{method} {path} has no access rule"
            );
        }
    }

    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc = openapi::document();
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        let paths = json["paths"].as_object().unwrap();
        let mut documented = 0;
        for (method, path, _) in routes() {
            if path == "/graphql/ws" {
                // A WebSocket, which OpenAPI does not describe (see `POST /graphql`).
                continue;
            }
            let operation = paths
                .get(path)
                .and_then(|item| item.get(method.as_str().to_lowercase()));
            assert!(operation.is_some(), "{method} {path} is not documented");
            documented += 1;
        }
        // And nothing is documented that the router does not serve.
        let served: usize = paths
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(served, documented);
        // Every error response of the REST API is a problem document.
        let problem = &json["paths"]["/api/v1/monitors"]["post"]["responses"]["409"]["content"]["application/problem+json"]
            ["schema"]["$ref"];
        assert_eq!(problem, "#/components/schemas/Problem");
    }
}
