//! The e-mail channel: one message per notification over SMTP, with plain-text and HTML
//! alternatives.
//!
//! The subject is the title. The plain part lists each alert's text and link; the HTML part the
//! same in a simple layout coloured by state, where the `text` template may use HTML markup and
//! every value is HTML-escaped. The `Message-ID` is derived from the idempotency key, so a
//! retried message is recognisable as the same one. TLS is rustls: STARTTLS is required when
//! configured (never silently skipped), implicit TLS connects with TLS, and `none` is only
//! accepted for loopback servers (checked by the spec).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use vigil_schema::{ChannelKind, ChannelSpec, EmailTls};

use super::{Context, alert_url, text, title};
use crate::delivery::Answer;
use crate::group::Notification;
use crate::template::{Escape, escaped};
use crate::{Error, Result, secret};

/// A built message and where it goes.
pub struct Mail {
    /// The message.
    pub message: Message,
    host: String,
    port: u16,
    tls: EmailTls,
    ca_certificate: Option<String>,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish_non_exhaustive()
    }
}

/// The plain-text body.
pub fn plain(spec: &ChannelSpec, n: &Notification, ctx: &Context<'_>) -> String {
    let count = n.alerts.len();
    let mut out = title(spec, n, ctx, Escape::Plain);
    for alert in &n.alerts {
        out.push_str("\n\n");
        out.push_str(&text(spec, alert, count, ctx, Escape::Plain));
        let url = alert_url(ctx.external_url, alert);
        if !url.is_empty() {
            out.push('\n');
            out.push_str(&url);
        }
    }
    out.push('\n');
    out
}

/// The HTML body.
pub fn html(spec: &ChannelSpec, n: &Notification, ctx: &Context<'_>) -> String {
    let count = n.alerts.len();
    let mut out = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<h2>{}</h2>\n",
        escaped(&title(spec, n, ctx, Escape::Plain), Escape::Html)
    );
    for alert in &n.alerts {
        out.push_str(&format!(
            "<div style=\"border-left:4px solid {};padding:4px 8px;margin:8px 0\">\
             <div style=\"white-space:pre-wrap\">{}</div>",
            super::slack::colour(alert),
            text(spec, alert, count, ctx, Escape::Html)
        ));
        let url = alert_url(ctx.external_url, alert);
        if !url.is_empty() {
            out.push_str(&format!(
                "<a href=\"{}\">Open in Vigil</a>",
                escaped(&url, Escape::Html)
            ));
        }
        out.push_str("</div>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// The message for a notification.
pub fn mail(spec: &ChannelSpec, n: &Notification, ctx: &Context<'_>) -> Result<Mail> {
    let ChannelKind::Email {
        smtp_host,
        smtp_port,
        tls,
        ca_certificate,
        username,
        password,
        from,
        to,
    } = &spec.kind
    else {
        return Err(Error::Config(format!("channel {} is not email", spec.id)));
    };
    let mailbox = |field: &str, value: &str| {
        value
            .parse::<Mailbox>()
            .map_err(|e| Error::Email(format!("{field} {value:?}: {e}")))
    };
    let subject: String = title(spec, n, ctx, Escape::Plain)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let date = UNIX_EPOCH + Duration::from_millis(u64::try_from(ctx.now.as_millis()).unwrap_or(0));
    let mut builder = Message::builder()
        .from(mailbox("from", from)?)
        .subject(subject)
        .message_id(Some(format!("<{}@vigil.notify>", n.idempotency_key)))
        .date(date.max(SystemTime::UNIX_EPOCH));
    for address in to {
        builder = builder.to(mailbox("to", address)?);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(
            plain(spec, n, ctx),
            html(spec, n, ctx),
        ))
        .map_err(|e| Error::Email(e.to_string()))?;
    let credentials = match (username, password) {
        (Some(user), Some(password)) => {
            Some((user.clone(), secret::resolve(ctx.secrets, password)?))
        }
        _ => None,
    };
    Ok(Mail {
        message,
        host: smtp_host.clone(),
        port: smtp_port.unwrap_or(tls.default_port()),
        tls: *tls,
        ca_certificate: ca_certificate.clone(),
        credentials,
    })
}

impl Mail {
    /// How the connection is secured: the public roots, plus the channel's own CA if it has
    /// one. The server's name is checked against its certificate in both TLS modes.
    fn tls_parameters(&self) -> std::result::Result<Tls, String> {
        if self.tls == EmailTls::None {
            return Ok(Tls::None);
        }
        let mut params = TlsParameters::builder(self.host.clone());
        if let Some(pem) = &self.ca_certificate {
            let cert = Certificate::from_pem(pem.as_bytes())
                .map_err(|e| format!("ca_certificate: {e}"))?;
            params = params.add_root_certificate(cert);
        }
        let params = params.build_rustls().map_err(|e| e.to_string())?;
        Ok(match self.tls {
            EmailTls::Implicit => Tls::Wrapper(params),
            _ => Tls::Required(params),
        })
    }

    /// Hands the message to the server; every SMTP exchange gives up after `timeout`.
    pub async fn send(self, timeout: Duration) -> Answer {
        let tls = match self.tls_parameters() {
            Ok(tls) => tls,
            Err(e) => return Answer::Permanent(format!("smtp: {e}")),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, password)) = self.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        match builder.build().send(self.message).await {
            Ok(response) if response.is_positive() => Answer::Accepted,
            Ok(response) => Answer::Transient(format!("smtp: answered {}", response.code())),
            Err(e) if e.is_permanent() => Answer::Permanent(format!("smtp: {e}")),
            Err(e) => Answer::Transient(format!("smtp: {e}")),
        }
    }
}

#[cfg(test)]
mod tests;
