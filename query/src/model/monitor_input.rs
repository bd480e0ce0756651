//! The body of `POST /api/v1/monitors` and `PUT /api/v1/monitors/{id}` as the OpenAPI document
//! states it: exactly the shape [`vigil_schema::MonitorSpec`] decodes (a body of another shape
//! is a 400); what only validation can tell (an interval under 1 s, a timeout not below the
//! interval, a URL that does not parse, a condition that does not compile) is a 422.

#![allow(dead_code, reason = "describes request bodies in the OpenAPI document")]

use std::collections::BTreeMap;

use utoipa::ToSchema;

fn tags() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .min_length(Some(1))
                .max_length(Some(64))
                .pattern(Some("^[a-z0-9][a-z0-9_-]*$")),
        )
        .max_items(Some(32))
        .build()
}

pub(crate) fn duration() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(crate::openapi::DURATION_PATTERN))
        .build()
}

/// A monitor to create, or to put in place of one.
#[derive(Debug, ToSchema)]
#[schema(as = MonitorInput)]
#[serde(deny_unknown_fields)]
pub(crate) struct MonitorInput {
    /// Stable identifier, a slug (`checkout-api`): 1–64 of a-z, 0-9, `-`, `_`.
    #[schema(
        example = "checkout-api",
        min_length = 1,
        max_length = 64,
        pattern = "^[a-z0-9][a-z0-9_-]*$"
    )]
    id: String,
    /// Display name (at most 200 bytes, not blank).
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Tags for grouping and filtering: at most 32 slugs.
    #[serde(default)]
    #[schema(schema_with = tags, max_items = 32)]
    tags: Vec<String>,
    /// What is checked; the scheme picks the kind: `http://`, `https://` (a request),
    /// `tcp://host:port`, `tls://host:port`, `dns://resolver/name?type=A` (`system` as the
    /// resolver: the system's), `ws://`, `wss://`, `icmp://host`, `grpc://host:port`,
    /// `grpcs://host:port` (`?service=NAME`: a gRPC health check). May hold `${secret:NAME}`
    /// references.
    #[schema(example = "https://api.example.com/health")]
    url: String,
    /// HTTP method (default `GET`).
    #[serde(default)]
    method: MethodDoc,
    /// Request headers; values may hold `${secret:NAME}` references.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default)]
    body: Option<String>,
    /// How the probe authenticates (default `{"type": "none"}`).
    #[serde(default)]
    auth: AuthDoc,
    /// Time between checks, at least 1s (default `1m`).
    #[serde(default)]
    #[schema(schema_with = duration, example = "30s")]
    interval: String,
    /// Time after which a check fails with `timeout`, below the interval (default `10s`).
    #[serde(default)]
    #[schema(schema_with = duration, example = "5s")]
    timeout: String,
    /// Regions that run it; empty means every region.
    #[serde(default)]
    regions: Vec<String>,
    /// Whether redirects are followed, up to 10 (default true).
    #[serde(default)]
    follow_redirects: bool,
    /// Whether a redirect from `https://` to `http://` is followed (default false).
    #[serde(default)]
    allow_insecure_redirects: bool,
    /// Whether certificates are verified (default true).
    #[serde(default)]
    tls_verify: bool,
    /// Conditions that must hold (`[STATUS] == 200`); empty means any status below 400.
    #[serde(default)]
    assertions: Vec<String>,
    /// Disabled monitors are kept but not run (default true).
    #[serde(default)]
    enabled: bool,
    /// Monitors this one depends on (ids, at most 32).
    #[serde(default)]
    depends_on: Vec<String>,
    /// A multi-step check: these requests in order (at most 16), `url` their base, `headers`
    /// and `auth` applied to each; the monitor's own `body` and `assertions` stay empty.
    #[serde(default)]
    #[schema(max_items = 16)]
    steps: Vec<StepInput>,
    /// The JSON Schema (2020-12 unless its `$schema` says otherwise; `$ref`s only inside it,
    /// at most 512 KiB) the body must match where an assertion says `[BODY] matches schema`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    body_schema: Option<serde_json::Value>,
}

/// One request of a multi-step monitor.
#[derive(Debug, ToSchema)]
#[schema(as = StepInput)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepInput {
    /// A slug unique within the monitor; later steps refer to it as `${steps.NAME.VALUE}`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    name: String,
    /// HTTP method (default `GET`).
    #[serde(default)]
    method: MethodDoc,
    /// An `http(s)://` URL, or a path (`/login`) resolved against the monitor's URL. May hold
    /// `${secret:NAME}` and `${steps.STEP.VALUE}` references.
    #[schema(example = "/login")]
    url: String,
    /// Request headers, over the monitor's; values may hold references.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Request body; may hold references.
    #[serde(default)]
    body: Option<String>,
    /// Conditions on this step's response; empty means any status below 400.
    #[serde(default)]
    assertions: Vec<String>,
    /// Values later steps may use as `${steps.NAME.KEY}`.
    #[serde(default)]
    extract: BTreeMap<String, ExtractDoc>,
}

/// Where an extracted value comes from.
#[derive(Debug, ToSchema)]
#[schema(as = Extract)]
#[serde(untagged)]
pub(crate) enum ExtractDoc {
    /// A placeholder: `[BODY].token`, `$.items[0].id`, `[HEADER].location`, `[STATUS]`.
    Placeholder(String),
    /// The first capture group (or the match) of `regex` in the placeholder's value.
    Regex {
        /// The placeholder read.
        from: String,
        /// The regular expression.
        regex: String,
    },
}

/// HTTP methods a monitor may use.
#[derive(Debug, ToSchema)]
#[schema(as = HttpMethod)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum MethodDoc {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

/// How a probe authenticates; secret values may be `${secret:NAME}` references.
#[derive(Debug, ToSchema)]
#[schema(as = Auth)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum AuthDoc {
    /// No authentication.
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
    /// A static API key in a header or query parameter.
    ApiKey {
        /// Header or parameter name.
        name: String,
        /// The key.
        value: String,
        /// Where the key goes (default `header`).
        #[serde(default, rename = "in")]
        location: ApiKeyLocationDoc,
    },
    /// OAuth 2 client-credentials grant.
    Oauth2ClientCredentials {
        /// Token endpoint.
        token_url: String,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: String,
        /// Requested scopes.
        #[serde(default)]
        scopes: Vec<String>,
    },
}

/// Where an API key is sent.
#[derive(Debug, ToSchema)]
#[schema(as = ApiKeyLocation)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ApiKeyLocationDoc {
    Header,
    Query,
}
