//! Apply-time checks: everything that makes a channel, routing tree, silence or maintenance
//! window unusable, found before it is written to its topic. Each function runs the spec's own
//! `validate()` and adds what needs the notifier's engines: templates parsed (unknown fields
//! are errors) and webhook body templates rendered to JSON, e-mail addresses parsed, regular
//! expressions compiled, cron expressions and time zones read, receivers looked up.

use std::collections::BTreeMap;

use lettre::message::Mailbox;
use lettre::transport::smtp::client::Certificate;
use uuid::Uuid;
use vigil_schema::{
    AlertKind, AlertState, AlertTransition, ChannelKind, ChannelSpec, FieldError, MaintenanceSpec,
    RouteSpec, Severity, SilenceSpec, Timestamp,
};

use crate::alert::Alert;
use crate::route::Router;
use crate::silence::Suppressor;
use crate::template::{Escape, Fields, Template};

fn finish(errors: Vec<FieldError>) -> Result<(), Vec<FieldError>> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn error(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A made-up alert to render templates with, its values full of characters that need escaping.
fn sample(resolved: bool) -> Alert {
    let t = AlertTransition {
        transition_id: Uuid::nil(),
        rule_id: "rule".into(),
        monitor_id: "monitor".into(),
        region: Some("region".into()),
        kind: AlertKind::Availability,
        from: if resolved {
            AlertState::Firing
        } else {
            AlertState::Pending
        },
        to: if resolved {
            AlertState::Ok
        } else {
            AlertState::Firing
        },
        at: Timestamp(0),
        value: 0.5,
        threshold: 0.99,
        severity: Severity::Critical,
        labels: BTreeMap::new(),
        message: "a \"quoted\" <summary> & a \\ backslash\nand a new line".into(),
    };
    let mut alert = Alert::firing(&t);
    if resolved {
        alert.ends_at = Some(t.at);
    }
    alert
}

/// Checks a channel.
pub fn channel(spec: &ChannelSpec) -> Result<(), Vec<FieldError>> {
    let mut errors = spec.validate().err().unwrap_or_default();
    for (field, source) in [("title", &spec.title), ("text", &spec.text)] {
        if let Some(source) = source
            && let Err(reason) = Template::parse(source)
        {
            errors.push(error(field, reason));
        }
    }
    match &spec.kind {
        ChannelKind::Webhook {
            body: Some(body), ..
        } => {
            if let Err(reason) = json_template(body) {
                errors.push(error("kind.webhook.body", reason));
            }
        }
        ChannelKind::Email {
            from,
            to,
            ca_certificate,
            ..
        } => {
            let field = "kind.email.ca_certificate";
            if let Some(pem) = ca_certificate
                && !errors.iter().any(|e| e.field == field)
                && let Err(e) = Certificate::from_pem(pem.as_bytes())
            {
                errors.push(error(field, format!("not a PEM certificate: {e}")));
            }
            let addresses = std::iter::once(("kind.email.from".to_owned(), from)).chain(
                to.iter()
                    .enumerate()
                    .map(|(i, a)| (format!("kind.email.to[{i}]"), a)),
            );
            for (field, address) in addresses {
                let reported = errors.iter().any(|e| e.field == field);
                if let (false, Err(e)) = (reported, address.parse::<Mailbox>()) {
                    errors.push(error(field, format!("{address:?} is not an address: {e}")));
                }
            }
        }
        _ => {}
    }
    finish(errors)
}

/// Parses a body template and renders it, firing and resolved, as JSON.
fn json_template(source: &str) -> Result<(), String> {
    let template = Template::parse(source)?;
    for resolved in [false, true] {
        let alert = sample(resolved);
        let rendered = template.render(
            &Fields {
                alert: &alert,
                count: 2,
                resolved,
                url: "https://vigil.example/\"x\"",
            },
            Escape::Json,
        );
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&rendered) {
            return Err(format!(
                "must render to JSON ({} alert): {e}",
                if resolved { "a resolved" } else { "a firing" }
            ));
        }
    }
    Ok(())
}

/// Checks a routing tree against the channels that exist.
pub fn routes(
    spec: &RouteSpec,
    channels: &BTreeMap<String, ChannelSpec>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Router::new(spec).err().unwrap_or_default();
    for (field, id) in spec.channel_refs() {
        if !channels.contains_key(id) {
            errors.push(error(field, format!("no channel has the id {id:?}")));
        }
    }
    finish(errors)
}

/// Checks a silence.
pub fn silence(spec: &SilenceSpec) -> Result<(), Vec<FieldError>> {
    Suppressor::new().add_silence(spec)
}

/// Checks a maintenance window.
pub fn maintenance(spec: &MaintenanceSpec) -> Result<(), Vec<FieldError>> {
    Suppressor::new().add_maintenance(spec)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn messages(result: Result<(), Vec<FieldError>>) -> Vec<String> {
        result
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn spec(json: serde_json::Value) -> ChannelSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn channel_templates_are_validated() {
        let ok = spec(json!({"id": "hooks",
            "kind": {"webhook": {"url": "https://x.test", "secret": "${secret:H}",
                "body": "{\"text\": \"{{summary}}\", \"count\": {{count}}}"}},
            "title": "{{#if resolved}}OK{{else}}{{count}} firing{{/if}}: {{labels.team}}"}));
        assert_eq!(channel(&ok), Ok(()));
        let bad = spec(json!({"id": "hooks",
            "kind": {"webhook": {"url": "https://x.test", "secret": "${secret:H}",
                "body": "{\"text\": {{summary}}}"}},
            "title": "{{titel}}", "text": "{{#if resolved}}"}));
        let got = messages(channel(&bad));
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].starts_with("title: unknown field `{{titel}}`"),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("text: `{{#if}}` is never closed"),
            "{got:?}"
        );
        assert!(
            got[2].starts_with("kind.webhook.body: must render to JSON (a firing alert)"),
            "{got:?}"
        );
        // Values that need escaping are quoted correctly, so a well-formed template passes
        // whatever the summary holds; an unquoted value does not.
        let unquoted = spec(json!({"id": "hooks",
            "kind": {"webhook": {"url": "https://x.test", "secret": "${secret:H}",
                "body": "{\"n\": {{value}}, \"s\": \"{{state}}\"}"}}}));
        assert_eq!(channel(&unquoted), Ok(()), "numbers need no quotes");
    }

    #[test]
    fn email_addresses_are_parsed() {
        let bad = spec(
            json!({"id": "mail", "kind": {"email": {"smtp_host": "localhost",
            "tls": "none", "from": "vigil@",
            "to": ["ops@example.com", "a@b@c", "ops@example..com", "ops@-x.test"]}}}),
        );
        let got = messages(channel(&bad));
        assert_eq!(
            got,
            [
                "kind.email.from: must be an e-mail address, got \"vigil@\"",
                "kind.email.to[1]: must be an e-mail address, got \"a@b@c\"",
                // Plausible to the spec, refused by the mailer's parser: reported once each.
                "kind.email.to[2]: \"ops@example..com\" is not an address: Invalid input",
                "kind.email.to[3]: \"ops@-x.test\" is not an address: Invalid email domain",
            ]
        );
    }

    #[test]
    fn routes_name_existing_channels_and_valid_regexes() {
        let channels: BTreeMap<String, ChannelSpec> = [(
            "pager".to_owned(),
            spec(json!({"id": "pager", "kind": {"console": {}}})),
        )]
        .into();
        let tree: RouteSpec = serde_json::from_value(json!({
            "receiver": ["pager"],
            "routes": [{"matchers": ["team=~(web"], "receiver": ["chat"],
                        "escalate": {"after": "10m", "to": ["pager", "lead"]}}],
        }))
        .unwrap();
        let got = messages(routes(&tree, &channels));
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].starts_with(
                "routes[0].matchers[0]: invalid regular expression \"(web\": regex parse error"
            ),
            "{got:?}"
        );
        assert_eq!(
            got[1..],
            [
                "routes[0].receiver[0]: no channel has the id \"chat\"",
                "routes[0].escalate.to[1]: no channel has the id \"lead\"",
            ]
        );
    }

    #[test]
    fn silences_and_maintenance() {
        let s: SilenceSpec = serde_json::from_value(json!({
            "id": "s", "matchers": ["monitor=~[a-"], "author": "ana",
            "starts_at": "2026-03-01T10:00:00Z", "ends_at": "2026-03-01T11:00:00Z"}))
        .unwrap();
        let got = messages(silence(&s));
        assert!(
            got[0].starts_with("matchers[0]: invalid regular expression"),
            "{got:?}"
        );
        let m: MaintenanceSpec = serde_json::from_value(json!({
            "id": "m", "matchers": ["monitor=db"],
            "schedule": {"recurring": {"cron": "0 2 * * MON-FRI", "duration": "1h",
                                       "time_zone": "America/New_York"}}}))
        .unwrap();
        assert_eq!(maintenance(&m), Ok(()));
    }
}
