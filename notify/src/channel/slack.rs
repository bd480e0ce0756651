//! The Slack channel: an incoming-webhook message with a `text` fallback (notifications,
//! screen readers), a header section, and one attachment per alert coloured by state.
//!
//! Values are escaped for Slack's mrkdwn (`&`, `<`, `>`); the channel's `text` template may use
//! mrkdwn itself (`*bold*`, `<url|label>`). The webhook URL is the credential, so it is a secret
//! reference and never appears in logs.

use serde_json::{Value, json};
use vigil_schema::{ChannelKind, ChannelSpec, Severity};

use super::{Context, HttpRequest, alert_url, text, title, truncate};
use crate::alert::Alert;
use crate::group::Notification;
use crate::template::{Escape, escaped};
use crate::{Error, Result, secret};

/// Most alerts shown as attachments; the rest are counted in a last line.
pub const MAX_ATTACHMENTS: usize = 20;
/// Longest text of a section block (Slack's limit).
const MAX_SECTION: usize = 3000;

/// The attachment colour of an alert: green when resolved, else by severity.
pub fn colour(alert: &Alert) -> &'static str {
    if !alert.is_firing() {
        return "#2eb67d";
    }
    match alert.transition.severity {
        Severity::Critical => "#e01e5a",
        Severity::Warning => "#ecb22e",
        Severity::Info => "#36c5f0",
    }
}

/// The message.
pub fn payload(spec: &ChannelSpec, n: &Notification, ctx: &Context<'_>) -> Value {
    let heading = title(spec, n, ctx, Escape::Slack);
    let count = n.alerts.len();
    let mut attachments: Vec<Value> = n
        .alerts
        .iter()
        .take(MAX_ATTACHMENTS)
        .map(|a| {
            let url = alert_url(ctx.external_url, a);
            let mut context = format!(
                "{} · {} · {}",
                a.status(),
                a.transition.severity,
                escaped(&a.key.to_string(), Escape::Slack)
            );
            if !url.is_empty() {
                context.push_str(&format!(
                    " · <{}|Open in Vigil>",
                    escaped(&url, Escape::Slack)
                ));
            }
            json!({
                "color": colour(a),
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn",
                        "text": truncate(&text(spec, a, count, ctx, Escape::Slack), MAX_SECTION)}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
                ],
            })
        })
        .collect();
    if count > MAX_ATTACHMENTS {
        attachments.push(json!({
            "color": "#868686",
            "blocks": [{"type": "context", "elements": [{"type": "mrkdwn",
                "text": format!("and {} more", count - MAX_ATTACHMENTS)}]}],
        }));
    }
    json!({
        "text": heading,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn",
            "text": truncate(&format!("*{heading}*"), MAX_SECTION)}}],
        "attachments": attachments,
    })
}

/// The request to the incoming webhook.
pub fn request(spec: &ChannelSpec, n: &Notification, ctx: &Context<'_>) -> Result<HttpRequest> {
    let ChannelKind::Slack { url } = &spec.kind else {
        return Err(Error::Config(format!("channel {} is not slack", spec.id)));
    };
    Ok(HttpRequest {
        url: secret::resolve(ctx.secrets, url)?,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&payload(spec, n, ctx))?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::channel::fixture::{channel, context, notification, resolved, secrets};

    fn slack() -> ChannelSpec {
        channel(json!({"id": "chat", "kind": {"slack": {"url": "${secret:SLACK}"}}}))
    }

    #[test]
    fn message_with_fallback_blocks_and_colour() {
        let s = secrets();
        let request = request(&slack(), &notification("chat"), &context(&s)).unwrap();
        assert_eq!(request.url, "https://hooks.slack.test/services/T0/B0/xyz");
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({
                "text": "[FIRING:1] checkout-p99 on checkout-api",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                    "text": "*[FIRING:1] checkout-p99 on checkout-api*"}}],
                "attachments": [{
                    "color": "#e01e5a",
                    "blocks": [
                        {"type": "section", "text": {"type": "mrkdwn",
                            "text": "p99 of checkout-api is 950ms (&gt; 800ms) (critical, \
                                     firing since 2026-03-01T10:00:00Z)"}},
                        {"type": "context", "elements": [{"type": "mrkdwn",
                            "text": "firing · critical · checkout-p99/checkout-api/eu-west · \
                                     <https://vigil.example.com/api/v1/alerts?rule=checkout-p99\
                                     &amp;monitor=checkout-api|Open in Vigil>"}]},
                    ],
                }],
            })
        );
        let done = payload(&slack(), &resolved("chat"), &context(&s));
        assert_eq!(done["text"], "[RESOLVED] checkout-p99 on checkout-api");
        assert_eq!(done["attachments"][0]["color"], "#2eb67d");
    }

    #[test]
    fn templates_keep_mrkdwn_and_escape_values() {
        let s = secrets();
        let spec = channel(
            json!({"id": "chat", "kind": {"slack": {"url": "${secret:SLACK}"}},
            "title": "<!here> {{rule}}", "text": "*{{monitor}}*: {{summary}}"}),
        );
        let mut n = notification("chat");
        n.alerts[0].transition.message = "<script> & co".into();
        let body = payload(&spec, &n, &context(&s));
        assert_eq!(body["text"], "<!here> checkout-p99");
        assert_eq!(
            body["attachments"][0]["blocks"][0]["text"]["text"],
            "*checkout-api*: &lt;script&gt; &amp; co"
        );
    }

    #[test]
    fn many_alerts_are_summarised() {
        let s = secrets();
        let mut n = notification("chat");
        let first = n.alerts[0].clone();
        n.alerts = vec![first; MAX_ATTACHMENTS + 3];
        let body = payload(&slack(), &n, &context(&s));
        let attachments = body["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), MAX_ATTACHMENTS + 1);
        assert_eq!(
            attachments[MAX_ATTACHMENTS]["blocks"][0]["elements"][0]["text"],
            "and 3 more"
        );
    }

    #[test]
    fn missing_url_secret() {
        let s = crate::secret::MemorySecrets::new();
        let err = request(&slack(), &notification("chat"), &context(&s)).unwrap_err();
        assert_eq!(err.to_string(), "secret SLACK is not set");
    }
}
