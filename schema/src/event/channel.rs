//! [`ChannelSpec`]: where notifications go; [`RouteSpec`]: which alerts go to which channels.
//!
//! Channels are configuration, event-sourced like rules: written to the compacted
//! `vigil.channels` topic (key = channel id, tombstone = deleted) by `vigil apply`, the REST API
//! and GraphQL, and read by the notification stage. Secrets are never part of a spec: a field
//! that needs one holds a [`SecretRef`] (`${secret:NAME}`), resolved by the notification stage
//! when it sends, so specs can be logged, exported and audited as they are.
//!
//! [`validate`](ChannelSpec::validate) checks what the wire contract alone can decide (slugs,
//! URLs, secret references, loopback-only plain SMTP); the notification stage adds the checks
//! that need its engines (templates, e-mail addresses).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

mod check;
mod matcher;
mod route;

pub use matcher::{MATCHER_PATTERN, MatchOp, Matcher};
pub use route::{
    DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT, DEFAULT_REPEAT_INTERVAL, Escalation, RouteSpec,
};

/// Configuration of one notification channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ChannelSpec {
    /// Stable identifier, a slug; the Kafka key, and what routes name as receivers.
    pub id: String,
    /// Display name (defaults to the id).
    #[serde(default)]
    pub name: String,
    /// Where and how notifications are sent.
    pub kind: ChannelKind,
    /// Whether resolves are sent (for alerts whose firing this channel was sent).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// Template of the one-line title (Slack fallback text, e-mail subject, PagerDuty summary,
    /// webhook `title`). Empty: the default title.
    #[serde(default)]
    pub title: Option<String>,
    /// Template of the message body (Slack, e-mail, console, webhook `text`). Empty: the
    /// default body.
    #[serde(default)]
    pub text: Option<String>,
    /// Disabled channels are kept but sent nothing (a `410 Gone` answer disables one).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// The kinds of channel and their settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelKind {
    /// An HTTP POST of Vigil's JSON payload, signed the Standard Webhooks way.
    Webhook {
        /// The receiver's URL.
        url: String,
        /// The signing secret: `whsec_<base64>`, or several separated by spaces while a secret
        /// is rotated (every one signs).
        secret: SecretRef,
        /// Extra request headers; values may hold `${secret:NAME}` references.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Template of the request body, rendered with JSON string escaping; it must render
        /// to JSON. Empty: Vigil's documented payload.
        #[serde(default)]
        body: Option<String>,
    },
    /// An Alertmanager-compatible webhook receiver (payload version 4).
    Alertmanager {
        /// The receiver's URL.
        url: String,
    },
    /// A Slack incoming webhook.
    Slack {
        /// The incoming-webhook URL, which is itself the credential.
        url: SecretRef,
    },
    /// PagerDuty Events API v2.
    Pagerduty {
        /// The integration's routing key.
        routing_key: SecretRef,
        /// The Events API endpoint.
        #[serde(default = "pagerduty_url")]
        url: String,
        /// Vigil's URL, for links back from incidents. Default: the notifier's external URL.
        #[serde(default)]
        links_base: Option<String>,
    },
    /// E-mail over SMTP, plain-text and HTML alternatives.
    Email {
        /// The SMTP server.
        smtp_host: String,
        /// Its port. Default: 587 with STARTTLS, 465 with implicit TLS, 25 without TLS.
        #[serde(default)]
        smtp_port: Option<u16>,
        /// How the connection is secured.
        #[serde(default)]
        tls: EmailTls,
        /// A PEM certificate to trust as a root besides the public ones (a relay with a
        /// private CA). Public data, not a secret.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_certificate: Option<String>,
        /// User name for SMTP authentication (with `password`).
        #[serde(default)]
        username: Option<String>,
        /// Password for SMTP authentication (with `username`).
        #[serde(default)]
        password: Option<SecretRef>,
        /// The sender address.
        from: String,
        /// The recipients.
        to: Vec<String>,
    },
    /// Lines on the notifier's standard output (development, all-in-one mode).
    Console {},
}

/// The default PagerDuty Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

fn pagerduty_url() -> String {
    PAGERDUTY_EVENTS_URL.to_owned()
}

impl ChannelKind {
    /// The kind's name on the wire (`webhook`, `slack`, …).
    pub const fn as_str(&self) -> &'static str {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS (required, never skipped).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// No TLS: only for a server on a loopback address.
    None,
}

impl EmailTls {
    /// The usual port of the mode.
    pub const fn default_port(self) -> u16 {
        match self {
            EmailTls::Starttls => 587,
            EmailTls::Implicit => 465,
            EmailTls::None => 25,
        }
    }
}

/// A reference to a named secret, `${secret:NAME}`. Secrets are write-only: specs hold the
/// reference, the notification stage resolves it when it sends, and the value is never stored
/// in or logged with a spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(pub String);

impl SecretRef {
    /// The reference to the secret `name`.
    pub fn to(name: &str) -> Self {
        Self(format!("${{secret:{name}}}"))
    }

    /// The secret's name, or `None` when the string is not a valid reference.
    pub fn name(&self) -> Option<&str> {
        let name = self.0.strip_prefix("${secret:")?.strip_suffix('}')?;
        is_secret_name(name).then_some(name)
    }

    /// The reference as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn check(&self) -> Result<(), String> {
        match self.name() {
            Some(_) => Ok(()),
            None => Err(format!(
                "must be a secret reference `${{secret:NAME}}` (NAME: 1–64 of A-Z, a-z, 0-9, \
                 '_' or '-'); secret values are never stored in specs, got {:?}",
                redact(&self.0)
            )),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `name` may name a secret.
pub fn is_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A value that was meant to be a reference may be the secret itself: show a malformed
/// reference as written, a URL by its scheme only, anything else not at all.
fn redact(value: &str) -> String {
    if value.starts_with("${") {
        value.to_owned()
    } else if value.starts_with("http") {
        "http…".to_owned()
    } else {
        "…".to_owned()
    }
}

/// Whether `host` is a loopback name or address.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl ChannelSpec {
    /// The secret references of the spec, with their field names.
    pub fn secrets(&self) -> Vec<(&'static str, &SecretRef)> {
        match &self.kind {
            ChannelKind::Webhook { secret, .. } => vec![("secret", secret)],
            ChannelKind::Slack { url } => vec![("url", url)],
            ChannelKind::Pagerduty { routing_key, .. } => vec![("routing_key", routing_key)],
            ChannelKind::Email {
                password: Some(password),
                ..
            } => vec![("password", password)],
            _ => Vec::new(),
        }
    }

    /// The display name: the name, or the id when it has none.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn from_yaml<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
        let value: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
        serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap()
    }

    fn messages(spec: &ChannelSpec) -> Vec<String> {
        spec.validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_kind_parses_with_defaults() {
        let webhook: ChannelSpec = from_yaml(
            "{id: hooks, kind: {webhook: {url: 'https://hooks.example.com/vigil', \
             secret: '${secret:HOOK_KEY}', headers: {X-Team: payments}}}}",
        );
        assert!(webhook.send_resolved && webhook.enabled);
        assert_eq!(webhook.validate(), Ok(()));
        assert_eq!(webhook.secrets()[0].1.name(), Some("HOOK_KEY"));
        assert_eq!(webhook.display_name(), "hooks");
        let pd: ChannelSpec = from_yaml(
            "{id: pager, send_resolved: false, kind: {pagerduty: {routing_key: '${secret:PD}'}}}",
        );
        assert_eq!(
            pd.kind,
            ChannelKind::Pagerduty {
                routing_key: SecretRef::to("PD"),
                url: PAGERDUTY_EVENTS_URL.into(),
                links_base: None
            }
        );
        assert_eq!(pd.validate(), Ok(()));
        let mail: ChannelSpec = from_yaml(
            "{id: mail, kind: {email: {smtp_host: smtp.example.com, username: vigil, \
             password: '${secret:SMTP}', from: 'Vigil <vigil@example.com>', to: [ops@example.com]}}}",
        );
        assert_eq!(mail.validate(), Ok(()));
        let ChannelKind::Email { tls, smtp_port, .. } = mail.kind else {
            panic!("email")
        };
        assert_eq!(
            (tls, smtp_port, tls.default_port()),
            (EmailTls::Starttls, None, 587)
        );
        for yaml in [
            "{id: am, kind: {alertmanager: {url: 'http://127.0.0.1:9093/hook'}}}",
            "{id: chat, kind: {slack: {url: '${secret:SLACK_OPS}'}}}",
            "{id: out, kind: {console: {}}}",
        ] {
            assert_eq!(from_yaml::<ChannelSpec>(yaml).validate(), Ok(()), "{yaml}");
        }
    }

    #[test]
    fn secrets_must_be_references() {
        let spec: ChannelSpec = from_yaml(
            "{id: chat, kind: {slack: {url: 'https://hooks.slack.com/services/T0/B0/XYZ'}}}",
        );
        let got = messages(&spec);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("kind.slack.url: must be a secret reference"),
            "{got:?}"
        );
        assert!(
            got[0].ends_with("got \"http…\""),
            "the value is not echoed: {got:?}"
        );
        assert_eq!(SecretRef("${secret:}".into()).name(), None);
        assert_eq!(SecretRef("${secret:a b}".into()).name(), None);
        assert_eq!(SecretRef("${env:A}".into()).name(), None);
        assert_eq!(SecretRef::to("ops-key_1").name(), Some("ops-key_1"));
    }

    #[test]
    fn credentials_never_sit_in_urls_or_headers() {
        let webhook = |url: &str, headers: serde_json::Value| -> ChannelSpec {
            serde_json::from_value(serde_json::json!({"id": "hooks", "kind": {"webhook": {
                "url": url, "secret": "${secret:HOOK}", "headers": headers}}}))
            .unwrap()
        };
        let ok = webhook(
            "https://hooks.example.com/v1?team=web&format=json",
            serde_json::json!({"Authorization": "Bearer ${secret:HOOK_TOKEN}",
                               "X-Api-Key": "${secret:KEY}", "X-Team": "web"}),
        );
        assert_eq!(ok.validate(), Ok(()));
        for (url, want) in [
            (
                "https://ops:hunter2@hooks.example.com/",
                "must not embed credentials",
            ),
            (
                "https://hooks.slack.com/services/T0/B0/XYZ",
                "incoming-webhook URL of hooks.slack.com",
            ),
            (
                "https://discord.com/api/webhooks/1/abc",
                "incoming-webhook URL of discord.com",
            ),
            (
                "https://x.test/hook?team=a&access_token=abc",
                "query parameter `access_token`",
            ),
            ("https://x.test/hook?Token=abc", "query parameter `Token`"),
            (
                "https://x.test/hook?code=abc#frag",
                "query parameter `code`",
            ),
        ] {
            let got = messages(&webhook(url, serde_json::json!({})));
            assert_eq!(got.len(), 1, "{url}: {got:?}");
            assert!(got[0].starts_with("kind.webhook.url: "), "{got:?}");
            assert!(got[0].contains(want), "{url}: {got:?}");
            assert!(
                !got[0].contains("hunter2") && !got[0].contains("abc"),
                "{got:?}"
            );
        }
        let got = messages(&webhook(
            "https://x.test/",
            serde_json::json!({"Authorization": "Bearer abc", "X-Auth-Token": "abc",
                               "X-Functions-Key": "abc", "X-Ref": "${secret:bad name}"}),
        ));
        let fields: Vec<&str> = got.iter().map(|m| m.split(": ").next().unwrap()).collect();
        assert_eq!(
            fields,
            [
                "kind.webhook.headers.Authorization",
                "kind.webhook.headers.X-Auth-Token",
                "kind.webhook.headers.X-Functions-Key",
                "kind.webhook.headers.X-Ref",
            ]
        );
        assert!(
            got[0].contains("must hold a `${secret:NAME}` reference"),
            "{got:?}"
        );
        assert!(got[3].contains("malformed secret reference"), "{got:?}");
        let am: ChannelSpec =
            from_yaml("{id: am, kind: {alertmanager: {url: 'http://u:p@127.0.0.1:9093/hook'}}}");
        assert!(messages(&am)[0].starts_with("kind.alertmanager.url: must not embed credentials"));
        let pd: ChannelSpec = from_yaml(
            "{id: pd, kind: {pagerduty: {routing_key: '${secret:PD}', \
             links_base: 'https://vigil.example.com/?api_key=1'}}}",
        );
        assert!(messages(&pd)[0].starts_with("kind.pagerduty.links_base: must not carry"));
    }

    #[test]
    fn validation_names_every_bad_field() {
        let mut spec: ChannelSpec = from_yaml(
            "{id: Hooks!, kind: {webhook: {url: 'ftp://x', secret: 'whsec_abc', \
             headers: {Webhook-Signature: x, 'Bad Name': y, X-Ok: \"a\\r\\nb\"}}}}",
        );
        spec.title = Some("t".repeat(1001));
        let got = messages(&spec);
        assert_eq!(got.len(), 7, "{got:#?}");
        assert!(got[0].starts_with("id: must be 1–64 characters"), "{got:?}");
        assert_eq!(got[1], "title: must be at most 1000 bytes");
        assert_eq!(
            got[2],
            "kind.webhook.url: must start with http:// or https://, got \"ftp://x\""
        );
        assert!(got[3].starts_with("kind.webhook.secret: must be a secret reference"));
        assert_eq!(
            got[4],
            "kind.webhook.headers.Bad Name: is not a valid header name"
        );
        assert_eq!(
            got[5],
            "kind.webhook.headers.Webhook-Signature: is set by the channel and cannot be \
             configured"
        );
        assert_eq!(
            got[6],
            "kind.webhook.headers.X-Ok: value must not contain line breaks"
        );
    }

    #[test]
    fn plain_smtp_only_on_loopback_and_credentials_in_pairs() {
        let spec: ChannelSpec = from_yaml(
            "{id: mail, kind: {email: {smtp_host: mail.example.com, tls: none, username: u, \
             from: nobody, to: []}}}",
        );
        assert_eq!(
            messages(&spec),
            [
                "kind.email.tls: `none` is only allowed for a loopback server (localhost, \
                 127.0.0.1, ::1), got host \"mail.example.com\"",
                "kind.email.password: must be set with username",
                "kind.email.from: must be an e-mail address, got \"nobody\"",
                "kind.email.to: must name at least one recipient",
            ]
        );
        for host in ["localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["10.0.0.1", "example.com", "localhost.example.com", "::2"] {
            assert!(!is_loopback_host(host), "{host}");
        }
        let local: ChannelSpec = from_yaml(
            "{id: mail, kind: {email: {smtp_host: 127.0.0.1, smtp_port: 2525, tls: none, \
             from: v@x.test, to: ['Ops <ops@x.test>', 'bad address@x']}}}",
        );
        assert_eq!(
            messages(&local),
            ["kind.email.to[1]: must be an e-mail address, got \"bad address@x\""]
        );
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected() {
        let err = serde_json::from_value::<ChannelSpec>(serde_json::json!({
            "id": "a", "kind": {"webhook": {"url": "http://a", "secret": "${secret:A}", "sign": true}}
        }))
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `sign`"), "{err}");
        let err = serde_json::from_value::<ChannelSpec>(serde_json::json!({
            "id": "a", "kind": {"teams": {}}
        }))
        .unwrap_err();
        assert!(err.to_string().contains("unknown variant `teams`"), "{err}");
    }

    #[test]
    fn json_round_trip() {
        let spec: ChannelSpec = from_yaml(
            "{id: out, title: '[{{state}}] {{rule}}', kind: {console: {}}, enabled: false}",
        );
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["kind"], serde_json::json!({"console": {}}));
        assert_eq!(serde_json::from_value::<ChannelSpec>(json).unwrap(), spec);
    }
}
