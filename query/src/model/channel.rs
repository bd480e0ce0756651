//! Notification channel and routing tree DTOs: the JSON of a [`ChannelSpec`] and a
//! [`RouteSpec`] with their constraints in the OpenAPI document, and the GraphQL `Channel` type
//! (scalar fields typed, the kind's settings as JSON).
//!
//! Both serialize exactly like the spec they are built from (a test checks every channel kind
//! and a whole tree), so the document describes the bodies the API takes and returns. Secret
//! fields only ever hold `${secret:NAME}` references: the value lives in the notifier's
//! environment (`VIGIL_SECRET_<NAME>`) and is never sent to, stored by or returned from the API.

use std::collections::BTreeMap;
use std::time::Duration;

use async_graphql::{ComplexObject, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;
use vigil_schema::{ChannelSpec, RouteSpec};

/// A notification channel (the same shape is accepted when creating or replacing one; fields
/// with a default may be omitted).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
#[graphql(complex)]
pub struct Channel {
    /// Stable identifier, a slug; the Kafka key, and what routes name as receivers.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub id: String,
    /// Display name (empty: the id).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: String,
    /// Where and how notifications are sent: exactly one kind.
    #[graphql(skip)]
    pub kind: ChannelKind,
    /// Whether resolves are sent (for alerts whose firing this channel was sent).
    #[serde(default)]
    #[schema(default = true)]
    pub send_resolved: bool,
    /// Template of the one-line title (Slack fallback text, e-mail subject, PagerDuty summary,
    /// webhook `title`); null: the default title.
    #[schema(max_length = 1000)]
    pub title: Option<String>,
    /// Template of the message body (Slack, e-mail, console, webhook `text`); null: the
    /// default body.
    #[schema(max_length = 10000)]
    pub text: Option<String>,
    /// Disabled channels are kept but sent nothing.
    #[serde(default)]
    #[schema(default = true)]
    pub enabled: bool,
}

#[ComplexObject]
impl Channel {
    /// The kind (`webhook`, `alertmanager`, `slack`, `pagerduty`, `email`, `console`).
    #[graphql(name = "kind")]
    async fn kind_name(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The kind's settings, as in the REST body (secrets as `${secret:NAME}` references).
    async fn settings(&self) -> async_graphql::Json<serde_json::Value> {
        let settings = serde_json::to_value(&self.kind)
            .ok()
            .and_then(|v| v.get(self.kind.as_str()).cloned())
            .unwrap_or_default();
        async_graphql::Json(settings)
    }

    /// The whole channel as JSON (the REST body).
    async fn spec(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::to_value(self).unwrap_or_default())
    }
}

/// The kinds of channel: an object with exactly one of these keys.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// An HTTP POST of Vigil's JSON payload, signed the Standard Webhooks way
    /// (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`).
    Webhook {
        /// The receiver's URL: no `user:password@`, no credential-like query parameter
        /// (`token`, `key`, `sig`, `*_token`, …), not a Slack or Discord incoming webhook.
        #[schema(pattern = "^https?://", example = "https://hooks.example.com/vigil")]
        url: String,
        /// The signing secret's reference; its value is `whsec_<base64>` (several separated
        /// by spaces while one is rotated: each signs).
        #[schema(
            pattern = r"^\$\{secret:[A-Za-z0-9_-]{1,64}\}$",
            example = "${secret:OPS_HOOK}"
        )]
        secret: String,
        /// Extra request headers. Values may hold `${secret:NAME}` references and must for a
        /// header that carries a credential (`Authorization`, `Cookie`, names with `auth`,
        /// `token`, `secret`, `password`, `api-key`, or ending in `-key`). `Content-Type`,
        /// `Host`, `Content-Length`, `Idempotency-Key` and the `webhook-*` headers are set by
        /// the channel.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Template of the request body, rendered with JSON escaping; it must render to JSON.
        /// Null: Vigil's documented payload.
        #[schema(max_length = 10000)]
        body: Option<String>,
    },
    /// An Alertmanager-compatible webhook receiver (payload version 4).
    Alertmanager {
        /// The receiver's URL (no credentials in it, as for `webhook`).
        #[schema(pattern = "^https?://")]
        url: String,
    },
    /// A Slack incoming webhook.
    Slack {
        /// The incoming-webhook URL is itself the credential: its reference.
        #[schema(
            pattern = r"^\$\{secret:[A-Za-z0-9_-]{1,64}\}$",
            example = "${secret:SLACK_OPS}"
        )]
        url: String,
    },
    /// PagerDuty Events API v2.
    Pagerduty {
        /// The integration's routing key: its reference.
        #[schema(
            pattern = r"^\$\{secret:[A-Za-z0-9_-]{1,64}\}$",
            example = "${secret:PD_KEY}"
        )]
        routing_key: String,
        /// The Events API endpoint.
        #[serde(default)]
        #[schema(
            pattern = "^https?://",
            default = "https://events.pagerduty.com/v2/enqueue"
        )]
        url: String,
        /// Vigil's URL for links back from incidents; null: the notifier's external URL.
        #[schema(pattern = "^https?://")]
        links_base: Option<String>,
    },
    /// E-mail over SMTP, plain-text and HTML alternatives.
    Email {
        /// The SMTP server.
        smtp_host: String,
        /// Its port; null: 587 with STARTTLS, 465 with implicit TLS, 25 without TLS.
        #[schema(minimum = 1, maximum = 65535)]
        smtp_port: Option<u16>,
        /// How the connection is secured (`none` only for a loopback server).
        #[serde(default)]
        #[schema(default = "starttls")]
        tls: EmailTls,
        /// A PEM certificate to trust as a root besides the public ones (a relay with a
        /// private CA).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_length = 65536)]
        ca_certificate: Option<String>,
        /// User name for SMTP authentication (with `password`).
        username: Option<String>,
        /// Password for SMTP authentication (with `username`): its reference.
        #[schema(pattern = r"^\$\{secret:[A-Za-z0-9_-]{1,64}\}$")]
        password: Option<String>,
        /// The sender address (`Vigil <vigil@example.com>`).
        from: String,
        /// The recipients.
        #[schema(min_items = 1, max_items = 50)]
        to: Vec<String>,
    },
    /// Lines on the notifier's standard output.
    Console {},
}

impl ChannelKind {
    /// The kind's name on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Alertmanager { .. } => "alertmanager",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Pagerduty { .. } => "pagerduty",
            ChannelKind::Email { .. } => "email",
            ChannelKind::Console {} => "console",
        }
    }
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte.
    Implicit,
    /// No TLS: only for a server on a loopback address.
    None,
}

impl From<&vigil_schema::ChannelKind> for ChannelKind {
    fn from(kind: &vigil_schema::ChannelKind) -> Self {
        use vigil_schema::ChannelKind as K;
        match kind {
            K::Webhook {
                url,
                secret,
                headers,
                body,
            } => ChannelKind::Webhook {
                url: url.clone(),
                secret: secret.to_string(),
                headers: headers.clone(),
                body: body.clone(),
            },
            K::Alertmanager { url } => ChannelKind::Alertmanager { url: url.clone() },
            K::Slack { url } => ChannelKind::Slack {
                url: url.to_string(),
            },
            K::Pagerduty {
                routing_key,
                url,
                links_base,
            } => ChannelKind::Pagerduty {
                routing_key: routing_key.to_string(),
                url: url.clone(),
                links_base: links_base.clone(),
            },
            K::Email {
                smtp_host,
                smtp_port,
                tls,
                ca_certificate,
                username,
                password,
                from,
                to,
            } => ChannelKind::Email {
                smtp_host: smtp_host.clone(),
                smtp_port: *smtp_port,
                tls: match tls {
                    vigil_schema::EmailTls::Starttls => EmailTls::Starttls,
                    vigil_schema::EmailTls::Implicit => EmailTls::Implicit,
                    vigil_schema::EmailTls::None => EmailTls::None,
                },
                ca_certificate: ca_certificate.clone(),
                username: username.clone(),
                password: password.as_ref().map(ToString::to_string),
                from: from.clone(),
                to: to.clone(),
            },
            K::Console {} => ChannelKind::Console {},
        }
    }
}

impl From<&ChannelSpec> for Channel {
    fn from(spec: &ChannelSpec) -> Self {
        Self {
            id: spec.id.clone(),
            name: spec.name.clone(),
            kind: ChannelKind::from(&spec.kind),
            send_resolved: spec.send_resolved,
            title: spec.title.clone(),
            text: spec.text.clone(),
            enabled: spec.enabled,
        }
    }
}

/// One page of channels, ordered by id.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct ChannelPage {
    /// The channels on this page.
    pub items: Vec<Channel>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One node of the routing tree (the body of `GET` and `PUT /api/v1/routes` is the root).
/// An alert enters at the root, which takes every alert; at each node the children are tried in
/// order and the alert goes to the first that matches (and on while that one has
/// `continue: true`); when no child matches, the node takes it. `group_by`, `group_wait`,
/// `group_interval` and `repeat_interval` are inherited when null. At most 16 levels deep.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Route {
    /// Channels (ids) notified of the alerts this node takes; each must exist.
    #[serde(default)]
    pub receiver: Vec<String>,
    /// Conditions an alert must meet to enter this node, all of them (`label=value`, `!=`,
    /// `=~` and `!~` with anchored regular expressions); none on the root. At most 32.
    #[serde(default)]
    #[schema(max_items = 32, example = json!(["severity=critical", "team=~web|mobile"]))]
    pub matchers: Vec<String>,
    /// After this node matched, keep trying its next siblings (false on the root).
    #[serde(default, rename = "continue")]
    #[schema(default = false)]
    pub continue_: bool,
    /// Labels whose values split alerts into groups (`[...]`: every label); null: inherited
    /// (the root: all of its alerts in one group).
    pub group_by: Option<Vec<String>>,
    /// Wait before the first notification of a new group (≤ 1h); null: inherited, 30s at the
    /// root.
    #[schema(example = "30s")]
    pub group_wait: Option<String>,
    /// Wait between notifications of a group whose alerts changed (1s–7d); null: inherited, 5m
    /// at the root.
    #[schema(example = "5m")]
    pub group_interval: Option<String>,
    /// Wait before a group still firing is notified again unchanged (1s–7d, ≥ the group
    /// interval); null: inherited, 4h at the root.
    #[schema(example = "4h")]
    pub repeat_interval: Option<String>,
    /// Who else is notified when an alert of this node fires unacknowledged for a while.
    pub escalate: Option<Escalation>,
    /// Child routes, tried in order.
    #[serde(default)]
    #[schema(no_recursion)]
    pub routes: Vec<Route>,
}

/// Escalation of alerts left firing.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Escalation {
    /// How long an alert fires unacknowledged before it escalates (> 0s, ≤ 7d).
    #[schema(example = "15m")]
    pub after: String,
    /// Channels (ids) notified then; at least one, each must exist.
    #[schema(min_items = 1)]
    pub to: Vec<String>,
}

fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

impl From<&RouteSpec> for Route {
    fn from(spec: &RouteSpec) -> Self {
        Self {
            receiver: spec.receiver.clone(),
            matchers: spec.matchers.iter().map(ToString::to_string).collect(),
            continue_: spec.continue_,
            group_by: spec.group_by.clone(),
            group_wait: spec.group_wait.map(duration),
            group_interval: spec.group_interval.map(duration),
            repeat_interval: spec.repeat_interval.map(duration),
            escalate: spec.escalate.as_ref().map(|e| Escalation {
                after: duration(e.after),
                to: e.to.clone(),
            }),
            routes: spec.routes.iter().map(Route::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// One channel of every kind, every optional field set somewhere.
    fn every_kind() -> Vec<ChannelSpec> {
        [
            json!({"webhook": {"url": "https://x.test/hook", "secret": "${secret:HOOK}",
                "headers": {"Authorization": "Bearer ${secret:TOKEN}"},
                "body": "{\"text\": \"{{summary}}\"}"}}),
            json!({"alertmanager": {"url": "http://127.0.0.1:9093/hook"}}),
            json!({"slack": {"url": "${secret:SLACK}"}}),
            json!({"pagerduty": {"routing_key": "${secret:PD}",
                "links_base": "https://vigil.example.com"}}),
            json!({"email": {"smtp_host": "smtp.example.com", "smtp_port": 2525,
                "tls": "implicit", "username": "v", "password": "${secret:SMTP}",
                "from": "v@example.com", "to": ["ops@example.com"]}}),
            json!({"console": {}}),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            serde_json::from_value(json!({
                "id": format!("c{i}"), "name": "C", "kind": kind,
                "send_resolved": i % 2 == 0, "enabled": i % 3 != 0,
                "title": (i % 2 == 1).then_some("[{{state}}] {{rule}}"),
            }))
            .unwrap()
        })
        .collect()
    }

    #[test]
    fn the_dtos_serialize_exactly_like_the_specs() {
        for spec in every_kind() {
            assert_eq!(vigil_notify::check::channel(&spec), Ok(()), "{spec:?}");
            let dto = serde_json::to_value(Channel::from(&spec)).unwrap();
            assert_eq!(dto, serde_json::to_value(&spec).unwrap());
            assert_eq!(serde_json::from_value::<ChannelSpec>(dto).unwrap(), spec);
            assert_eq!(Channel::from(&spec).kind.as_str(), spec.kind.as_str());
        }
        let tree: RouteSpec = serde_json::from_value(json!({
            "receiver": ["c0"], "group_by": ["rule"], "repeat_interval": "6h",
            "routes": [{"matchers": ["severity=critical", "team=\"web ops\""],
                        "receiver": ["c3"], "group_wait": "10s", "continue": true,
                        "escalate": {"after": "15m", "to": ["c2"]},
                        "routes": [{"matchers": ["monitor=~db-.*"], "group_interval": "1m"}]}],
        }))
        .unwrap();
        let dto = serde_json::to_value(Route::from(&tree)).unwrap();
        assert_eq!(dto, serde_json::to_value(&tree).unwrap());
        assert_eq!(serde_json::from_value::<RouteSpec>(dto).unwrap(), tree);
    }
}
