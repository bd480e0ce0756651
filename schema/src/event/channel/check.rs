//! [`ChannelSpec::validate`]: the checks the wire contract alone can decide.

use std::collections::BTreeMap;

use super::{ChannelKind, ChannelSpec, EmailTls, SecretRef, is_loopback_host};
use crate::event::monitor::{FieldError, check_slug, check_url};

/// Longest name, in bytes.
const MAX_NAME: usize = 200;
/// Longest title template, in bytes.
const MAX_TITLE: usize = 1000;
/// Longest text or body template, in bytes.
const MAX_TEXT: usize = 10_000;
/// Most e-mail recipients.
const MAX_RECIPIENTS: usize = 50;
/// Headers a webhook's configuration may not set: the transport and the signature own them.
const RESERVED_HEADERS: [&str; 7] = [
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "idempotency-key",
];

impl ChannelSpec {
    /// Checks every field and returns all problems found, each naming its field
    /// (`kind.webhook.url`, `kind.email.to[1]`, `title`).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut push = |field: String, reason: String| errors.push(FieldError { field, reason });
        if let Err(reason) = check_slug(&self.id) {
            push("id".into(), reason);
        }
        if self.name.len() > MAX_NAME {
            push("name".into(), format!("must be at most {MAX_NAME} bytes"));
        }
        for (field, template, max) in [
            ("title", &self.title, MAX_TITLE),
            ("text", &self.text, MAX_TEXT),
        ] {
            if let Some(t) = template
                && t.len() > max
            {
                push(field.into(), format!("must be at most {max} bytes"));
            }
        }
        let at = |field: &str| format!("kind.{}.{field}", self.kind.as_str());
        let mut url = |field: &str, value: &str| {
            if let Err(reason) = check_url(value).and_then(|()| check_no_credentials(value)) {
                push(at(field), reason);
            }
        };
        match &self.kind {
            ChannelKind::Webhook { url: u, .. } | ChannelKind::Alertmanager { url: u } => {
                url("url", u);
            }
            ChannelKind::Pagerduty {
                url: u, links_base, ..
            } => {
                url("url", u);
                if let Some(base) = links_base {
                    url("links_base", base);
                }
            }
            ChannelKind::Slack { .. } | ChannelKind::Email { .. } | ChannelKind::Console {} => {}
        }
        for (field, secret) in self.secrets() {
            if let Err(reason) = secret.check() {
                errors.push(FieldError {
                    field: at(field),
                    reason,
                });
            }
        }
        match &self.kind {
            ChannelKind::Webhook { headers, body, .. } => {
                check_headers(headers, &at, &mut errors);
                if let Some(b) = body
                    && b.len() > MAX_TEXT
                {
                    errors.push(FieldError {
                        field: at("body"),
                        reason: format!("must be at most {MAX_TEXT} bytes"),
                    });
                }
            }
            ChannelKind::Email { .. } => self.check_email(&at, &mut errors),
            _ => {}
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn check_email(&self, at: &dyn Fn(&str) -> String, errors: &mut Vec<FieldError>) {
        let ChannelKind::Email {
            smtp_host,
            smtp_port,
            tls,
            ca_certificate,
            username,
            password,
            from,
            to,
        } = &self.kind
        else {
            return;
        };
        let mut push = |field: String, reason: String| errors.push(FieldError { field, reason });
        if smtp_host.is_empty() || smtp_host.contains(|c: char| c.is_whitespace() || c == '/') {
            push(
                at("smtp_host"),
                format!("must be a host name or address, got {smtp_host:?}"),
            );
        } else if *tls == EmailTls::None && !is_loopback_host(smtp_host) {
            push(
                at("tls"),
                format!(
                    "`none` is only allowed for a loopback server (localhost, 127.0.0.1, ::1), \
                     got host {smtp_host:?}"
                ),
            );
        }
        if *smtp_port == Some(0) {
            push(at("smtp_port"), "must be in 1–65535".into());
        }
        if let Some(pem) = ca_certificate {
            if *tls == EmailTls::None {
                push(
                    at("ca_certificate"),
                    "needs tls `starttls` or `implicit`".into(),
                );
            } else if !pem.contains("-----BEGIN CERTIFICATE-----") || pem.len() > 64 * 1024 {
                push(
                    at("ca_certificate"),
                    "must be one or more PEM certificates (-----BEGIN CERTIFICATE-----), at most 64 KiB"
                        .into(),
                );
            }
        }
        match (username, password) {
            (Some(_), None) => push(at("password"), "must be set with username".into()),
            (None, Some(_)) => push(at("username"), "must be set with password".into()),
            (Some(u), Some(_)) if u.is_empty() => push(at("username"), "must not be empty".into()),
            _ => {}
        }
        if !looks_like_address(from) {
            push(
                at("from"),
                format!("must be an e-mail address, got {from:?}"),
            );
        }
        if to.is_empty() {
            push(at("to"), "must name at least one recipient".into());
        } else if to.len() > MAX_RECIPIENTS {
            push(
                at("to"),
                format!(
                    "must have at most {MAX_RECIPIENTS} recipients, got {}",
                    to.len()
                ),
            );
        }
        for (i, address) in to.iter().enumerate() {
            if !looks_like_address(address) {
                push(
                    at(&format!("to[{i}]")),
                    format!("must be an e-mail address, got {address:?}"),
                );
            }
        }
    }
}

fn check_headers(
    headers: &BTreeMap<String, String>,
    at: &dyn Fn(&str) -> String,
    errors: &mut Vec<FieldError>,
) {
    for (name, value) in headers {
        let field = at(&format!("headers.{name}"));
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            errors.push(FieldError {
                field,
                reason: "is not a valid header name".into(),
            });
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            errors.push(FieldError {
                field,
                reason: "is set by the channel and cannot be configured".into(),
            });
        } else if value.contains(['\r', '\n', '\0']) {
            errors.push(FieldError {
                field,
                reason: "value must not contain line breaks".into(),
            });
        } else if let Err(reason) = check_header_secrets(name, value) {
            errors.push(FieldError { field, reason });
        }
    }
}

/// Secret references inside a header value must be well-formed, and a header that carries a
/// credential must take it from one: a literal value would be stored, exported and shown.
fn check_header_secrets(name: &str, value: &str) -> Result<(), String> {
    let mut rest = value;
    let mut references = 0;
    while let Some(start) = rest.find("${secret:") {
        let candidate = &rest[start..];
        let end = candidate.find('}').map_or(candidate.len(), |i| i + 1);
        if SecretRef(candidate[..end].to_owned()).name().is_none() {
            return Err(
                "value holds a malformed secret reference; expected `${secret:NAME}` \
                        (NAME: 1–64 of A-Z, a-z, 0-9, '_' or '-')"
                    .into(),
            );
        }
        references += 1;
        rest = &candidate[end..];
    }
    if references == 0 && is_credential_header(name) {
        return Err(
            "carries a credential, so its value must hold a `${secret:NAME}` reference (for \
             example `Bearer ${secret:HOOK_TOKEN}`); secret values are never stored in specs"
                .into(),
        );
    }
    Ok(())
}

/// Header names that carry credentials.
fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "cookie"
        || [
            "auth", "token", "secret", "password", "passwd", "api-key", "apikey", "api_key",
        ]
        .iter()
        .any(|word| name.contains(word))
        || name.ends_with("-key")
        || name.ends_with("_key")
}

/// Query parameter names that carry credentials.
fn is_credential_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('-', "_");
    [
        "token",
        "key",
        "code",
        "sig",
        "signature",
        "secret",
        "password",
        "pass",
        "pwd",
        "auth",
        "apikey",
    ]
    .contains(&name.as_str())
        || ["_token", "_key", "_secret", "_password", "_signature"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// A channel URL is stored, exported and shown as written, so it must not carry a credential:
/// no `user:password@`, no credential-like query parameter, and no URL that is itself the
/// credential (a Slack or Discord incoming webhook), which belongs in a `${secret:NAME}`
/// reference.
fn check_no_credentials(url: &str) -> Result<(), String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Ok(());
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(
            "must not embed credentials (`user:password@`); secret values are never stored in \
             specs: send them in a header holding a `${secret:NAME}` reference"
                .into(),
        );
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(host, _)| host)
        .to_ascii_lowercase();
    let path = tail.split(['?', '#']).next().unwrap_or_default();
    if host == "hooks.slack.com"
        || (matches!(host.as_str(), "discord.com" | "discordapp.com")
            && path.starts_with("/api/webhooks/"))
    {
        return Err(format!(
            "is an incoming-webhook URL of {host}, which is itself a secret: use a `slack` \
             channel whose `url` is a `${{secret:NAME}}` reference"
        ));
    }
    let query = tail
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or_default())
        .unwrap_or_default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let name = pair.split('=').next().unwrap_or_default();
        if is_credential_parameter(name) {
            return Err(format!(
                "must not carry a credential in query parameter `{name}`; secret values are \
                 never stored in specs: send it in a header holding a `${{secret:NAME}}` \
                 reference"
            ));
        }
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A plausible `local@domain` (optionally `Name <local@domain>`); the sender parses it fully.
fn looks_like_address(s: &str) -> bool {
    let address = match (s.rfind('<'), s.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => s,
    };
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !address.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}
