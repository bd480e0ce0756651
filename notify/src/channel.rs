//! Channels: a [`Notification`] becomes the exact wire form of its channel's kind
//! ([`build`], pure), which a [`Sender`] sends, returning the [`SendOutcome`] the retry policy
//! ([`crate::delivery::decide`]) consumes.
//!
//! One module per kind: [`webhook`] (Vigil's JSON, Standard Webhooks signatures),
//! [`alertmanager`] (webhook payload version 4), [`slack`] (incoming webhook), [`pagerduty`]
//! (Events API v2), [`email`] (SMTP, plain text and HTML) and [`console`] (standard output).
//!
//! Texts come from the channel's templates ([`crate::template`]): `title` once per
//! notification (its first firing alert, else its first; `state` is `resolved` when nothing
//! fires), `text` once per alert. The title is plain text everywhere; `text` may carry the
//! target's markup (Slack mrkdwn, HTML in the e-mail's HTML part), with values escaped for it.
//!
//! HTTP requests are POSTs with a timeout and no redirects (a redirect is an answer, not
//! followed); errors never include the URL, which may be a secret (Slack).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_schema::{ChannelKind, ChannelSpec, Timestamp};

use crate::alert::Alert;
use crate::delivery::{Answer, SendOutcome, parse_retry_after};
use crate::group::Notification;
use crate::secret::SecretResolver;
use crate::template::{DEFAULT_TEXT, DEFAULT_TITLE, Escape, Fields, Template};
use crate::{Error, Result};

pub mod alertmanager;
pub mod console;
pub mod email;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

/// Most alerts listed in one payload; the rest are counted as truncated.
pub const MAX_ALERTS: usize = 100;

/// What building a request needs besides the notification.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Vigil's URL as people reach it, for links (`https://vigil.example.com`); empty: no
    /// links.
    pub external_url: &'a str,
    /// Where secret references are resolved.
    pub secrets: &'a dyn SecretResolver,
    /// The time of the attempt (webhook timestamps, e-mail date).
    pub now: Timestamp,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("external_url", &self.external_url)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// One HTTP POST, exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The wire form of a notification.
#[derive(Debug)]
pub enum Wire {
    /// HTTP requests, sent in order (PagerDuty: one per alert).
    Http(Vec<HttpRequest>),
    /// An e-mail and the server to hand it to.
    Email(Box<email::Mail>),
    /// Text for the console.
    Console(String),
}

/// Builds the wire form of `notification` for the channel `spec`.
pub fn build(spec: &ChannelSpec, notification: &Notification, ctx: &Context<'_>) -> Result<Wire> {
    Ok(match &spec.kind {
        ChannelKind::Webhook { .. } => Wire::Http(vec![webhook::request(spec, notification, ctx)?]),
        ChannelKind::Alertmanager { url } => {
            Wire::Http(vec![alertmanager::request(url, notification, ctx)?])
        }
        ChannelKind::Slack { .. } => Wire::Http(vec![slack::request(spec, notification, ctx)?]),
        ChannelKind::Pagerduty { .. } => Wire::Http(pagerduty::requests(spec, notification, ctx)?),
        ChannelKind::Email { .. } => Wire::Email(Box::new(email::mail(spec, notification, ctx)?)),
        ChannelKind::Console {} => Wire::Console(console::line(spec, notification, ctx)),
    })
}

/// The alert in Vigil: `{external_url}/api/v1/alerts?rule=…&monitor=…`; empty without an
/// external URL.
pub fn alert_url(external_url: &str, alert: &Alert) -> String {
    let base = external_url.trim_end_matches('/');
    if base.is_empty() {
        return String::new();
    }
    let t = &alert.transition;
    format!(
        "{base}/api/v1/alerts?rule={}&monitor={}",
        t.rule_id, t.monitor_id
    )
}

fn template(source: Option<&str>, default: &str) -> Template {
    // Specs are validated when applied; a template that fails anyway falls back to the default
    // rather than dropping the notification.
    source
        .and_then(|s| Template::parse(s).ok())
        .or_else(|| Template::parse(default).ok())
        .unwrap_or_default()
}

/// The notification's title, rendered with values escaped for `escape`.
pub fn title(spec: &ChannelSpec, n: &Notification, ctx: &Context<'_>, escape: Escape) -> String {
    let Some(first) = n.firing().next().or_else(|| n.alerts.first()) else {
        return String::new();
    };
    let url = alert_url(ctx.external_url, first);
    template(spec.title.as_deref(), DEFAULT_TITLE).render(
        &Fields {
            alert: first,
            count: n.alerts.len(),
            resolved: n.status() == "resolved",
            url: &url,
        },
        escape,
    )
}

/// One alert's text, rendered with values escaped for `escape`.
pub fn text(
    spec: &ChannelSpec,
    alert: &Alert,
    count: usize,
    ctx: &Context<'_>,
    escape: Escape,
) -> String {
    let url = alert_url(ctx.external_url, alert);
    template(spec.text.as_deref(), DEFAULT_TEXT).render(
        &Fields {
            alert,
            count,
            resolved: !alert.is_firing(),
            url: &url,
        },
        escape,
    )
}

/// `s` cut to at most `max` characters, with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Sends wire forms: HTTP through one client, e-mail over SMTP, console lines to a writer.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    timeout: Duration,
    console: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Longest excerpt of an error response body kept for the log.
const BODY_EXCERPT: usize = 200;

impl Sender {
    /// A sender whose every request (and SMTP exchange) gives up after `timeout`; console
    /// lines go to standard output.
    pub fn new(timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vigil-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("http client: {}", e.without_url())))?;
        Ok(Self {
            http,
            timeout,
            console: Arc::new(Mutex::new(Box::new(std::io::stdout()))),
        })
    }

    /// The same sender writing console lines to `writer`.
    pub fn with_console(mut self, writer: Box<dyn Write + Send>) -> Self {
        self.console = Arc::new(Mutex::new(writer));
        self
    }

    /// Builds and sends `notification` on `spec`. A request that cannot be built (a missing
    /// secret) is a permanent failure.
    pub async fn send(
        &self,
        spec: &ChannelSpec,
        notification: &Notification,
        ctx: &Context<'_>,
    ) -> SendOutcome {
        let started = Instant::now();
        match build(spec, notification, ctx) {
            Ok(wire) => self.send_wire(wire, ctx.now).await,
            Err(e) => SendOutcome {
                answer: Answer::Permanent(e.to_string()),
                latency: started.elapsed(),
            },
        }
    }

    /// Sends a built wire form.
    pub async fn send_wire(&self, wire: Wire, now: Timestamp) -> SendOutcome {
        let started = Instant::now();
        let answer = match wire {
            Wire::Http(requests) => self.send_http(&requests, now).await,
            Wire::Email(mail) => mail.send(self.timeout).await,
            Wire::Console(text) => match self.console.lock() {
                Ok(mut out) => match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                    Ok(()) => Answer::Accepted,
                    Err(e) => Answer::Transient(format!("console: {e}")),
                },
                Err(_) => Answer::Permanent("console writer poisoned".into()),
            },
        };
        SendOutcome {
            answer,
            latency: started.elapsed(),
        }
    }

    /// Sends requests in order, stopping at the first that is not accepted.
    async fn send_http(&self, requests: &[HttpRequest], now: Timestamp) -> Answer {
        let mut last = Answer::Permanent("no request to send".into());
        for request in requests {
            last = self.post(request, now).await;
            let accepted =
                matches!(last, Answer::Http { status, .. } if (200..300).contains(&status));
            if !accepted {
                break;
            }
        }
        last
    }

    async fn post(&self, request: &HttpRequest, now: Timestamp) -> Answer {
        let mut builder = self.http.post(&request.url).body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        match builder.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, now));
                let body = if (200..300).contains(&status) {
                    String::new()
                } else {
                    response
                        .text()
                        .await
                        .map(|b| truncate(b.trim(), BODY_EXCERPT))
                        .unwrap_or_default()
                };
                Answer::Http {
                    status,
                    retry_after,
                    body,
                }
            }
            Err(e) if e.is_builder() => Answer::Permanent(e.without_url().to_string()),
            Err(e) if e.is_timeout() => {
                Answer::Transient(format!("timed out after {:?}", self.timeout))
            }
            Err(e) => Answer::Transient(error_chain(&e.without_url())),
        }
    }
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
pub(crate) mod fixture;
