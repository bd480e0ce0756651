//! The crate's error type, and how it is shown to clients: RFC 9457 problem documents on REST
//! (`application/problem+json`, a stable `type` per kind) and `extensions.code` on GraphQL.
//! Client errors carry their message; server errors show a generic message and the real error
//! is logged once, where it is converted.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use vigil_schema::FieldError;

/// Errors of the query service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request parameter is missing, malformed or out of range.
    #[error("invalid parameter `{parameter}`: {reason}")]
    BadParameter {
        /// The parameter's name as the client sent it.
        parameter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A request parameter matches the documented pattern but cannot be used: a range that
    /// ends before it starts, a page larger than configured, a cursor this API did not issue.
    #[error("invalid parameter `{parameter}`: {reason}")]
    InvalidParameter {
        /// The parameter's name as the client sent it.
        parameter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request body is not valid JSON.
    #[error("invalid request body: {0}")]
    BadBody(String),
    /// The resource does not exist.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// What was looked up (`monitor`, `rule`).
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// A resource with this id already exists.
    #[error("{kind} {id:?} already exists")]
    Conflict {
        /// What was created (`monitor`, `rule`).
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The resource cannot be deleted while another names it (a channel the routing tree
    /// names).
    #[error("{kind} {id:?} is in use: {by}")]
    InUse {
        /// What was to be deleted (`channel`).
        kind: &'static str,
        /// Its id.
        id: String,
        /// What names it, and where.
        by: String,
    },
    /// A monitor or rule spec failed validation.
    #[error("invalid {kind} spec: {}", render_fields(.errors))]
    InvalidSpec {
        /// What was written (`monitor`, `rule`).
        kind: &'static str,
        /// Every invalid field and why.
        errors: Vec<FieldError>,
    },
    /// No credentials, or unknown ones.
    #[error("missing or unknown API key")]
    Unauthenticated,
    /// An inbound webhook's signature is missing or does not verify.
    #[error("{0}")]
    BadSignature(String),
    /// The credentials do not allow the operation.
    #[error("this operation needs the {needed} role; the key has {has}")]
    Forbidden {
        /// Role the operation needs.
        needed: crate::auth::Role,
        /// Role the caller has.
        has: crate::auth::Role,
    },
    /// The key is valid but its scopes do not include this API.
    #[error("this key may not be used on the {api} API (its scopes: {scopes})")]
    OutOfScope {
        /// The API called (`query`).
        api: &'static str,
        /// The key's scopes.
        scopes: String,
    },
    /// A write was acknowledged by Kafka but the service's view did not show it in time.
    #[error("the write was stored but is not visible yet; retry the read")]
    NotVisible,
    /// A dependency is not ready.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The operation does not apply to the resource (an error budget of a rule that is not a
    /// burn-rate rule).
    #[error("{0}")]
    NotApplicable(String),
    /// Only one operation of this kind runs at a time, and one is running.
    #[error("a {what} is already running; retry in {}s", retry_after.as_secs().max(1))]
    Busy {
        /// What is running (`backtest`).
        what: &'static str,
        /// When to retry (sent as `Retry-After`).
        retry_after: std::time::Duration,
    },
    /// Too many requests from one API key or client address.
    #[error("too many requests from this {scope}; retry in {}s", retry_after.as_secs().max(1))]
    RateLimited {
        /// What was limited (`API key`, `client address`).
        scope: &'static str,
        /// When to retry (sent as `Retry-After`).
        retry_after: std::time::Duration,
    },
    /// The operation ran out of time and was abandoned.
    #[error("the {what} did not finish within {}; narrow it down and retry", humantime::format_duration(*.after))]
    Timeout {
        /// What timed out (`backtest`).
        what: &'static str,
        /// The limit.
        after: std::time::Duration,
    },
    /// Invalid configuration.
    #[error("invalid config: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A Kafka operation failed.
    #[error("kafka operation failed: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A ClickHouse query failed.
    #[error("clickhouse query failed: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    /// JSON (de)serialization failed.
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),
    /// An event could not be encoded or a topic created.
    #[error(transparent)]
    Schema(#[from] vigil_schema::Error),
    /// A backtest failed in the processor's pipeline or topic reader.
    #[error("backtest failed: {0}")]
    Processor(#[from] vigil_processor::Error),
    /// Binding or serving the listener failed.
    #[error("http server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn render_fields(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    /// Stable URI naming the kind of problem (`urn:vigil:problem:bad-parameter`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// For `bad-parameter`: the offending parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// For `invalid-spec`: every invalid field and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<FieldErrorDoc>)]
    pub errors: Vec<FieldError>,
}

/// One invalid field of a monitor or rule spec.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "describes `FieldError` in the OpenAPI document")]
pub(crate) struct FieldErrorDoc {
    /// Path of the field (`interval`, `headers.X-Api-Key`, `condition.anomaly.above`).
    field: String,
    /// Why it is invalid.
    reason: String,
}

impl Error {
    /// The HTTP status, the stable problem slug and the GraphQL code of this error.
    pub fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Error::BadParameter { .. } => (StatusCode::BAD_REQUEST, "bad-parameter", "BAD_REQUEST"),
            Error::InvalidParameter { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-parameter",
                "BAD_REQUEST",
            ),
            Error::BadBody(_) => (StatusCode::BAD_REQUEST, "bad-body", "BAD_REQUEST"),
            Error::NotFound { .. } => (StatusCode::NOT_FOUND, "not-found", "NOT_FOUND"),
            Error::Conflict { .. } => (StatusCode::CONFLICT, "conflict", "CONFLICT"),
            Error::InUse { .. } => (StatusCode::CONFLICT, "in-use", "IN_USE"),
            Error::InvalidSpec { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-spec",
                "INVALID_SPEC",
            ),
            Error::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "UNAUTHENTICATED",
            ),
            Error::BadSignature(_) => (StatusCode::UNAUTHORIZED, "bad-signature", "BAD_SIGNATURE"),
            Error::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", "FORBIDDEN"),
            Error::OutOfScope { .. } => (StatusCode::FORBIDDEN, "out-of-scope", "OUT_OF_SCOPE"),
            Error::NotVisible => (
                StatusCode::SERVICE_UNAVAILABLE,
                "write-not-visible",
                "WRITE_NOT_VISIBLE",
            ),
            Error::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "UNAVAILABLE",
            ),
            Error::NotApplicable(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-applicable",
                "NOT_APPLICABLE",
            ),
            Error::Busy { .. } => (StatusCode::TOO_MANY_REQUESTS, "busy", "BUSY"),
            Error::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "RATE_LIMITED",
            ),
            Error::Timeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, "timeout", "TIMEOUT"),
            Error::Config { .. }
            | Error::Kafka(_)
            | Error::ClickHouse(_)
            | Error::Json(_)
            | Error::Schema(_)
            | Error::Processor(_)
            | Error::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "INTERNAL"),
        }
    }

    /// Builds the problem document, logging server errors (their detail stays in the log).
    pub fn to_problem(&self) -> Problem {
        let (status, slug, _) = self.classify();
        let detail = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %self, "Request failed.");
            "internal error; see the service log".to_owned()
        } else {
            self.to_string()
        };
        Problem {
            kind: format!("urn:vigil:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            parameter: match self {
                Error::BadParameter { parameter, .. }
                | Error::InvalidParameter { parameter, .. } => Some(parameter.clone()),
                _ => None,
            },
            errors: match self {
                Error::InvalidSpec { errors, .. } => errors.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// Shorthand for [`Error::InvalidParameter`].
    pub fn invalid_parameter(parameter: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            parameter: parameter.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::BadParameter`].
    pub fn bad_parameter(parameter: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::BadParameter {
            parameter: parameter.into(),
            reason: reason.into(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let problem = self.to_problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, Error::Unauthenticated) {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vigil\""),
            );
        }
        if let Error::Busy { retry_after, .. } | Error::RateLimited { retry_after, .. } = &self {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        response
    }
}

impl async_graphql::ErrorExtensions for Error {
    fn extend(&self) -> async_graphql::Error {
        let (_, _, code) = self.classify();
        let problem = self.to_problem();
        let mut gql = async_graphql::Error::new(problem.detail);
        gql = gql.extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(parameter) = &problem.parameter {
                ext.set("parameter", parameter.as_str());
            }
            if let Error::Busy { retry_after, .. } | Error::RateLimited { retry_after, .. } = self {
                ext.set("retryAfter", retry_after.as_secs().max(1));
            }
            if !problem.errors.is_empty() {
                let fields: Vec<async_graphql::Value> = problem
                    .errors
                    .iter()
                    .map(|e| {
                        let mut map = async_graphql::indexmap::IndexMap::new();
                        map.insert(
                            async_graphql::Name::new("field"),
                            async_graphql::Value::from(e.field.as_str()),
                        );
                        map.insert(
                            async_graphql::Name::new("reason"),
                            async_graphql::Value::from(e.reason.as_str()),
                        );
                        async_graphql::Value::Object(map)
                    })
                    .collect();
                ext.set("fieldErrors", async_graphql::Value::List(fields));
            }
        });
        gql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_detail() {
        let problem = Error::Io(std::io::Error::other("disk on fire")).to_problem();
        assert_eq!(problem.status, 500);
        assert_eq!(problem.kind, "urn:vigil:problem:internal");
        assert_eq!(problem.detail, "internal error; see the service log");
    }

    #[test]
    fn busy_is_429_with_retry_after_and_timeouts_say_why() {
        let busy = Error::Busy {
            what: "backtest",
            retry_after: std::time::Duration::from_millis(200),
        };
        let response = busy.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let problem = Error::Timeout {
            what: "backtest",
            after: std::time::Duration::from_secs(60),
        }
        .to_problem();
        assert_eq!(
            (problem.status, problem.kind.as_str()),
            (503, "urn:vigil:problem:timeout")
        );
        assert_eq!(
            problem.detail,
            "the backtest did not finish within 1m; narrow it down and retry"
        );
        let gql = async_graphql::ErrorExtensions::extend(&Error::Busy {
            what: "backtest",
            retry_after: std::time::Duration::from_secs(7),
        });
        let ext = serde_json::to_value(gql.extensions.unwrap()).unwrap();
        assert_eq!(ext, serde_json::json!({"code": "BUSY", "retryAfter": 7}));
    }

    #[test]
    fn bad_parameter_names_the_parameter() {
        let problem = Error::bad_parameter("to", "must be after `from`").to_problem();
        assert_eq!(problem.status, 400);
        assert_eq!(problem.parameter.as_deref(), Some("to"));
        assert_eq!(
            problem.detail,
            "invalid parameter `to`: must be after `from`"
        );
    }
}
