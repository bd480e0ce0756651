//! The OpenAPI 3.1 document (generated from the handlers' `#[utoipa::path]` attributes and the
//! DTOs' `ToSchema` derives) and the `/docs` page, which loads a renderer from a CDN in the
//! browser, so nothing is downloaded at build time.

use utoipa::openapi::path::{Operation, Parameter, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::{ops, rest};

mod exact;

pub use exact::{DURATION_PATTERN, RFC3339_PATTERN};
use exact::{OPEN_SCHEMAS, exact_objects, unsigned_integers};

/// The REST API's description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Vigil query API", description = "Monitors, alert rules (error budgets, \
        backtests), notification channels, routes, silences and maintenance windows, deliveries, \
        windows, raw probes, alerts (and acknowledgements) and summaries. Errors are RFC 9457 problem \
        documents with a stable `type`."),
    paths(
        rest::list_monitors, rest::create_monitor, rest::get_monitor, rest::update_monitor, rest::patch_monitor,
        rest::delete_monitor, rest::enable_monitor, rest::disable_monitor,
        rest::monitor_history, rest::history, rest::summary, rest::probes,
        rest::alerts::alerts, rest::alerts::active_alerts, rest::alerts::acknowledge_alert,
        rest::audit::audit_log,
        rest::integrations::pagerduty,
        rest::deliveries::list_deliveries, rest::deliveries::redeliver,
        rest::export_monitor, rest::export,
        rest::rules::list_rules, rest::rules::create_rule, rest::rules::get_rule,
        rest::rules::update_rule, rest::rules::delete_rule, rest::rules::rule_budget,
        rest::backtest::backtest_rules,
        rest::import::import_openapi,
        rest::channels::list_channels, rest::channels::create_channel,
        rest::channels::get_channel, rest::channels::update_channel,
        rest::channels::delete_channel, rest::channels::get_routes, rest::channels::update_routes,
        rest::silences::list_silences, rest::silences::create_silence,
        rest::silences::get_silence, rest::silences::delete_silence,
        rest::silences::expire_silence, rest::silences::list_maintenance,
        rest::silences::create_maintenance, rest::silences::get_maintenance,
        rest::silences::update_maintenance, rest::silences::delete_maintenance,
        rest::credentials::list_keys, rest::credentials::create_key, rest::credentials::get_key,
        rest::credentials::revoke_key, rest::credentials::list_secrets,
        rest::credentials::put_secret, rest::credentials::delete_secret,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi_json, ops::docs,
        ops::graphql_get, ops::graphql_post,
    ),
    components(schemas(crate::error::FieldErrorDoc, crate::auth::Role)),
    modifiers(&BearerAuth, &IdempotencyHeader, &Limits, &ParameterShapes, &Unprocessable),
    tags(
        (name = "monitors", description = "Monitor configuration (written through the monitors topic)"),
        (name = "history", description = "Windows, summaries and exports from ClickHouse"),
        (name = "probes", description = "Raw checks"),
        (name = "alerts", description = "Alert transitions, the alerts active now, and acknowledgements"),
        (name = "deliveries", description = "Every notification attempt, and redelivery of one"),
        (name = "rules", description = "Alert rule configuration (written through the rules topic)"),
        (name = "channels", description = "Notification channels (written through the channels topic; secrets only as `${secret:NAME}` references)"),
        (name = "routes", description = "The routing tree that picks channels for an alert (written through the routes topic)"),
        (name = "silences", description = "Silences: new firings of matching alerts are not notified for a while (the silences topic)"),
        (name = "maintenance", description = "Planned maintenance windows, once or on a cron schedule in a time zone (the silences topic)"),
        (name = "keys", description = "API keys: created (shown once), listed with their last use, revoked (admins; the api-keys topic)"),
        (name = "secrets", description = "Named secrets referenced as `${secret:NAME}`: write-only, encrypted at rest (the secrets topic)"),
        (name = "audit", description = "Every write through the API: who, what, before and after (admins)"),
        (name = "operations", description = "Health, readiness, metrics and documentation"),
        (name = "graphql", description = "The GraphQL endpoint"),
    )
)]
pub struct ApiDoc;

/// Every operation of a path.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Whether `parameter` goes in the query string.
fn in_query(parameter: &Parameter) -> bool {
    matches!(parameter.parameter_in, ParameterIn::Query)
}

/// A response whose body is a problem document.
fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from the service's configuration"))
                    .build(),
            ),
        );
    }
}

/// Every `POST` under `/api/v1` takes an optional `Idempotency-Key` (see
/// [`crate::idempotency`]), with the answers it adds.
struct IdempotencyHeader;

impl Modify for IdempotencyHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterBuilder;
        use utoipa::openapi::{ObjectBuilder, Required, Type};
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(255))
            .pattern(Some("^[!-~]+$"))
            .build();
        let parameter = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Retry-safe writes: the same key with the same request replays the first \
                 response (`Idempotent-Replayed: true`); with another request it is a 422; \
                 while the first is running, a 409. Remembered 24 h per instance.",
            ))
            .schema(Some(schema))
            .build();
        let problem = |description: &str| problem_response(description).build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let Some(op) = item.post.as_mut() else {
                continue;
            };
            op.parameters
                .get_or_insert_with(Vec::new)
                .push(parameter.clone());
            for (code, description) in [
                ("400", "Malformed parameter, body or Idempotency-Key"),
                (
                    "409",
                    "Conflict, or a request with this Idempotency-Key is still running",
                ),
                (
                    "422",
                    "Invalid body, or an Idempotency-Key used with another request",
                ),
            ] {
                op.responses
                    .responses
                    .entry(code.to_owned())
                    .or_insert_with(|| problem(description).into());
            }
        }
    }
}

/// Answers any operation can give: 429 past a rate limit (every path but `/healthz`,
/// `/readyz` and `/metrics`), 503 past the in-flight cap or the request deadline (every path).
struct Limits;

impl Modify for Limits {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{HeaderBuilder, ObjectBuilder, Type};
        let header = |description: &str, ty: Type| {
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(ty))
                .description(Some(description))
                .build()
        };
        let problem = |description: &str| {
            problem_response(description).header(
                "retry-after",
                header("Seconds to wait before retrying", Type::Integer),
            )
        };
        let limited = problem("Over a rate limit (per API key or per client address)")
            .header(
                "ratelimit",
                header(
                    "The tighter limit's state, e.g. `\"per-key\";r=0;t=1`",
                    Type::String,
                ),
            )
            .header(
                "ratelimit-policy",
                header(
                    "The tighter limit, e.g. `\"per-key\";q=200;w=2`",
                    Type::String,
                ),
            )
            .build();
        let unavailable = problem(
            "Too many requests in flight, past the request deadline, or a store is unavailable",
        )
        .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let unlimited = matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics");
            for op in operations(item) {
                if !unlimited {
                    op.responses
                        .responses
                        .entry("429".to_owned())
                        .or_insert_with(|| limited.clone().into());
                }
                op.responses
                    .responses
                    .entry("503".to_owned())
                    .or_insert_with(|| unavailable.clone().into());
            }
        }
    }
}

/// Parameters every list or range shares, declared once with the shape their parser checks
/// ([`crate::params::TIME_PATTERN`], [`crate::params::CURSOR_PATTERN`]).
struct ParameterShapes;

impl Modify for ParameterShapes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ObjectBuilder, Type};
        let time = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(crate::params::TIME_PATTERN))
            .examples(["now-24h", "2026-01-01T00:00:00Z"])
            .build();
        let cursor = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(crate::params::CURSOR_PATTERN))
            .max_length(Some(crate::params::CURSOR_MAX_LENGTH))
            .build();
        let matcher = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(vigil_schema::MATCHER_PATTERN))
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in operations(item) {
                for parameter in op.parameters.iter_mut().flatten() {
                    if !in_query(parameter) {
                        continue;
                    }
                    let schema = match parameter.name.as_str() {
                        "from" | "to" => time.clone(),
                        "cursor" => cursor.clone(),
                        "matcher" => matcher.clone(),
                        _ => continue,
                    };
                    parameter.schema = Some(schema.into());
                }
            }
        }
    }
}

/// Every operation that takes query parameters or a body can answer 422: the request matches this
/// document but cannot be used (a range that ends before it starts, an id in the body that is
/// not the one in the path, a cursor this API did not issue, a spec that fails validation).
/// A request that does not match the document is a 400.
struct Unprocessable;

impl Modify for Unprocessable {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let response = problem_response(
            "The request matches this document but cannot be used (see `detail`, and `errors` \
             for every invalid field of a spec)",
        )
        .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let shared = item.parameters.iter().flatten().any(in_query);
            for op in operations(item) {
                let takes_input = shared
                    || op.request_body.is_some()
                    || op.parameters.iter().flatten().any(in_query);
                if takes_input {
                    op.responses
                        .responses
                        .entry("422".to_owned())
                        .or_insert_with(|| response.clone().into());
                }
            }
        }
    }
}

/// The generated document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as served: [`document_for`] `limits`, with unsigned integers stated as such
/// and objects as exact as their decoders ([`exact_objects`]).
pub fn served(limits: &crate::config::LimitsConfig) -> serde_json::Value {
    let mut value = serde_json::to_value(document_for(limits)).unwrap_or_default();
    unsigned_integers(&mut value);
    if let Some(serde_json::Value::Object(schemas)) = value.pointer_mut("/components/schemas") {
        for (name, schema) in schemas.iter_mut() {
            if !OPEN_SCHEMAS.contains(&name.as_str()) {
                exact_objects(schema);
            }
        }
    }
    // A maintenance window's instants may also be unix milliseconds.
    for at in ["starts_at", "ends_at"] {
        let pointer =
            format!("/components/schemas/Schedule/oneOf/0/properties/one_off/properties/{at}");
        if let Some(serde_json::Value::Object(member)) = value.pointer_mut(&pointer) {
            member.insert("type".into(), serde_json::json!(["string", "integer"]));
            let range = vigil_schema::event::WINDOW_RANGE_MS;
            member.insert("minimum".into(), (*range.start()).into());
            member.insert("maximum".into(), (*range.end()).into());
        }
    }
    value
}

/// The document as a service with `limits` honours it: every `limit` parameter states its
/// configured maximum (`limits.max-history-points` for history pages,
/// `limits.max-page-size` for every other list).
pub fn document_for(limits: &crate::config::LimitsConfig) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;
    let mut doc = document();
    for (path, item) in doc.paths.paths.iter_mut() {
        let maximum = if path.contains("history") {
            limits.max_history_points
        } else {
            limits.max_page_size
        };
        for op in operations(item) {
            for parameter in op.parameters.iter_mut().flatten() {
                if parameter.name != "limit" {
                    continue;
                }
                if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut() {
                    object.maximum = Some(f64::from(maximum).into());
                }
            }
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_document_states_ranges_syntax_and_closed_objects() {
        let doc = served(&crate::config::LimitsConfig::default());
        let schemas = &doc["components"]["schemas"];
        let quorum = &schemas["Rule"]["properties"]["quorum"];
        assert_eq!(
            (&quorum["format"], &quorum["minimum"], &quorum["maximum"]),
            (&"int64".into(), &1.into(), &u32::MAX.into())
        );
        assert_eq!(
            schemas["DeliveryAttempt"]["properties"]["http_status"]["maximum"],
            65535
        );
        assert_eq!(
            schemas["NewSilence"]["properties"]["matchers"]["items"]["pattern"],
            vigil_schema::MATCHER_PATTERN
        );
        assert_eq!(
            schemas["Rule"]["properties"]["for"]["pattern"],
            DURATION_PATTERN
        );
        assert_eq!(schemas["MonitorInput"]["additionalProperties"], false);
        assert!(
            schemas["GraphQLRequest"]
                .get("additionalProperties")
                .is_none()
        );
        // Every object of a request or response that lists its members is closed.
        for (name, schema) in schemas.as_object().unwrap() {
            if OPEN_SCHEMAS.contains(&name.as_str()) {
                continue;
            }
            let text = schema.to_string();
            let mut open = Vec::new();
            fn walk(v: &serde_json::Value, open: &mut Vec<String>) {
                if let Some(map) = v.as_object() {
                    if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                        open.push(v.to_string());
                    }
                    map.values().for_each(|x| walk(x, open));
                } else if let Some(items) = v.as_array() {
                    items.iter().for_each(|x| walk(x, open));
                }
            }
            walk(schema, &mut open);
            assert!(open.is_empty(), "{name}: {text}");
        }
    }

    #[test]
    fn the_served_document_states_the_configured_page_limits() {
        let limits = crate::config::LimitsConfig {
            max_page_size: 250,
            max_history_points: 5_000,
            ..crate::config::LimitsConfig::default()
        };
        let doc = served(&limits);
        let limit = |path: &str| {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "limit")
                .map(|p| {
                    (
                        p["schema"]["minimum"].clone(),
                        p["schema"]["maximum"].clone(),
                    )
                })
                .unwrap()
        };
        assert_eq!(limit("/api/v1/monitors"), (1.into(), 250.into()));
        assert_eq!(limit("/api/v1/alerts"), (1.into(), 250.into()));
        assert_eq!(limit("/api/v1/history"), (1.into(), 5_000.into()));
    }
}
