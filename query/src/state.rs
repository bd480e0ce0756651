//! [`AppState`]: what every handler shares (the service layer, the authenticator, the GraphQL
//! schema, the configuration and the metrics handle).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use metrics_exporter_prometheus::PrometheusHandle;

use vigil_notify::{EnvSecrets, SecretResolver};

use crate::Error;
use crate::auth::{Authenticator, Principal};
use crate::config::Config;
use crate::graphql::VigilSchema;
use crate::service::Service;

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    /// The operations.
    pub service: Service,
    /// API key checks.
    pub auth: Authenticator,
    /// The GraphQL schema (limits applied).
    pub schema: VigilSchema,
    /// The configuration.
    pub config: Arc<Config>,
    /// Renders `/metrics`, when the binary installed a Prometheus recorder.
    pub metrics: Option<PrometheusHandle>,
    /// Where the secrets of inbound integrations are resolved (`VIGIL_SECRET_*` by default).
    pub secrets: Arc<dyn SecretResolver>,
    /// Responses remembered by `Idempotency-Key`.
    pub idempotency: Arc<crate::idempotency::Store>,
    /// Request budgets per API key and client address.
    pub rate_limits: Arc<vigil_schema::ratelimit::RateLimits>,
    /// Requests in flight, capped by `http.max-in-flight`.
    pub in_flight: crate::overload::InFlight,
    /// Status pages as last rendered.
    pub(crate) status_pages: Arc<crate::web::status::PageCache>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("service", &self.service)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds the state and the GraphQL schema around `service`.
    pub fn new(service: Service, config: Config, metrics: Option<PrometheusHandle>) -> Self {
        let credentials = service.credentials().clone();
        let auth = Authenticator::new(&config.auth.keys).with_store(&credentials);
        let rate_limits = Arc::new(vigil_schema::ratelimit::RateLimits::new(&config.rate_limit));
        let schema = crate::graphql::schema(service.clone(), &config.graphql);
        let in_flight = crate::overload::InFlight::new(config.http.max_in_flight);
        Self {
            service,
            auth,
            schema,
            config: Arc::new(config),
            metrics,
            secrets: Arc::new(vigil_notify::vault::Layered {
                first: Arc::new(credentials),
                then: Arc::new(EnvSecrets::new()),
            }),
            idempotency: Arc::default(),
            rate_limits,
            in_flight,
            status_pages: Arc::default(),
        }
    }

    /// The same state resolving secrets from `secrets`.
    pub fn with_secrets(mut self, secrets: Arc<dyn SecretResolver>) -> Self {
        self.secrets = secrets;
        self
    }
}

/// The authenticated caller of a REST request (`Authorization: Bearer <key>`).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        // Already checked by the rate limiter, from the same header.
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(Caller(principal.clone()));
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        state.auth.authenticate(header).map(Caller)
    }
}
