//! Transition summaries: the rule's template rendered with the schema's grammar
//! ([`parse_summary`]), or a default per kind with human units
//! (`checkout-api eu-west: p99 1.2s above 800ms for 5m`).
//!
//! `{{value}}` and `{{threshold}}` are written in the kind's human unit; `{{region}}` is empty
//! for a quorum alert (its default summary lists the regions firing); `{{labels.NAME}}` is
//! empty when the rule has no such label.

use std::fmt::{self, Write as _};

use vigil_schema::event::parse_summary;
use vigil_schema::{AlertState, AlertTransition, Severity, StatusClass, SummarySegment, Timestamp};

use super::check::Tagged;
use super::id::transition_id;
use super::rules::{Check, Rule};

/// Checks a summary template: every placeholder known, every `{{` closed. An empty template
/// is valid (the default summary is used). The same check as [`vigil_schema::RuleSpec::validate`]
/// makes of the `summary` field.
pub fn validate_template(template: &str) -> Result<(), String> {
    parse_summary(template).map(|_| ())
}

/// What a summary is rendered from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) rule: &'a Rule,
    pub(crate) monitor: &'a str,
    /// The region, or the regions firing for a quorum alert.
    pub(crate) region: &'a str,
    pub(crate) quorum: bool,
    pub(crate) state: AlertState,
    pub(crate) value: f64,
    pub(crate) threshold: f64,
    pub(crate) severity: Severity,
}

/// The summary of a transition: the rule's template, or the default of its kind.
pub(crate) fn render(ctx: &Context<'_>) -> String {
    let template = &ctx.rule.spec.summary;
    let mut s = String::with_capacity(template.len().max(48) + 32);
    let segments = match parse_summary(template) {
        Ok(segments) if !segments.is_empty() => segments,
        _ => {
            // Writing into a `String` cannot fail.
            default_summary(ctx, &mut s).unwrap_or_default();
            return s;
        }
    };
    for segment in segments {
        match segment {
            SummarySegment::Text(t) => s.push_str(t),
            SummarySegment::Monitor => s.push_str(ctx.monitor),
            SummarySegment::Region if !ctx.quorum => s.push_str(ctx.region),
            SummarySegment::Region => {}
            SummarySegment::Rule => s.push_str(&ctx.rule.spec.id),
            SummarySegment::Kind => s.push_str(ctx.rule.kind.as_str()),
            SummarySegment::Value => push(&mut s, Value(ctx, ctx.value)),
            SummarySegment::Threshold => push(&mut s, Value(ctx, ctx.threshold)),
            SummarySegment::State => s.push_str(ctx.state.as_str()),
            SummarySegment::Severity => s.push_str(ctx.severity.as_str()),
            SummarySegment::Label(name) => {
                if let Some(v) = ctx.rule.spec.labels.get(name) {
                    s.push_str(v);
                }
            }
        }
    }
    s
}

/// Appends `value` (writing into a `String` cannot fail).
fn push(s: &mut String, value: impl fmt::Display) {
    write!(s, "{value}").unwrap_or_default();
}

/// A value of the rule's kind, in its human unit.
struct Value<'a>(&'a Context<'a>, f64);

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Value(ctx, v) = *self;
        if ctx.quorum {
            return Decimals(v, 0).fmt(f);
        }
        match ctx.rule.check {
            Check::Consecutive { .. } => Decimals(v, 0).fmt(f),
            Check::Latency { .. } => HumanUs(v).fmt(f),
            Check::Availability { .. } | Check::Status { .. } => Percent(v).fmt(f),
            Check::Anomaly { .. } => Decimals(v, 2).fmt(f),
            Check::Certificate { .. } | Check::NoData { .. } => HumanSecs(v).fmt(f),
            Check::Burn { .. } => write!(f, "{}x", Decimals(v, 2)),
        }
    }
}

fn default_summary(ctx: &Context<'_>, s: &mut String) -> fmt::Result {
    let value = Value(ctx, ctx.value);
    let threshold = Value(ctx, ctx.threshold);
    let active = ctx.state != AlertState::Ok;
    let span = |ms: i64| HumanSecs(ms as f64 / 1000.0);
    s.push_str(ctx.monitor);
    if !ctx.quorum && !ctx.region.is_empty() {
        s.push(' ');
        s.push_str(ctx.region);
    }
    s.push_str(": ");
    let body = if ctx.quorum {
        if active {
            write!(
                s,
                "{} firing in {value} regions ({}), quorum {threshold}",
                ctx.rule.name(),
                ctx.region
            )
        } else {
            write!(
                s,
                "{} firing in {value} regions, below quorum {threshold}",
                ctx.rule.name()
            )
        }
    } else {
        match &ctx.rule.check {
            Check::Consecutive { .. } if active => write!(s, "{value} failed checks in a row"),
            Check::Consecutive { .. } => {
                write!(s, "recovered, {value} successful checks in a row")
            }
            Check::Latency {
                percentile,
                span_ms,
                ..
            } => {
                let p = Decimals(*percentile, 3);
                if active {
                    write!(s, "p{p} {value} above {threshold} for {}", span(*span_ms))
                } else {
                    write!(s, "p{p} {value} back below {threshold}")
                }
            }
            Check::Availability { span_ms, .. } if active => write!(
                s,
                "availability {value} below {threshold} for {}",
                span(*span_ms)
            ),
            Check::Availability { .. } => {
                write!(s, "availability {value} back above {threshold}")
            }
            Check::Status { class, span_ms, .. } => {
                let class = status_label(*class);
                if active {
                    write!(
                        s,
                        "{class} share {value} above {threshold} for {}",
                        span(*span_ms)
                    )
                } else {
                    write!(s, "{class} share {value} back below {threshold}")
                }
            }
            Check::Anomaly { .. } if active => {
                write!(s, "anomaly score {value} above {threshold}")
            }
            Check::Anomaly { .. } => write!(s, "anomaly score {value} back below {threshold}"),
            Check::Certificate { .. } if ctx.value < 0.0 => {
                write!(s, "certificate expired {} ago", HumanSecs(-ctx.value))
            }
            Check::Certificate { .. } if active => {
                write!(s, "certificate expires in {value}, within {threshold}")
            }
            Check::Certificate { .. } => {
                write!(s, "certificate expires in {value}, beyond {threshold}")
            }
            Check::Burn { .. } if active => {
                write!(s, "error budget burning at {value}, above {threshold}")
            }
            Check::Burn { .. } => {
                write!(s, "error budget burn rate {value}, back below {threshold}")
            }
            Check::NoData { .. } if active => write!(s, "no results for {value}"),
            Check::NoData { .. } => write!(s, "results again after {value}"),
        }
    };
    body?;
    if ctx.state == AlertState::Pending {
        s.push_str(" (pending)");
    }
    Ok(())
}

fn status_label(class: StatusClass) -> &'static str {
    match class {
        StatusClass::Informational => "1xx",
        StatusClass::Success => "2xx",
        StatusClass::Redirection => "3xx",
        StatusClass::ClientError => "4xx",
        StatusClass::ServerError => "5xx",
        StatusClass::AnyError => "4xx+5xx",
    }
}

/// A fixed-size buffer to format a number into before trimming it.
struct Buf {
    bytes: [u8; 48],
    len: usize,
}

impl fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `v` with at most `n` decimals, trailing zeros dropped (`16.67`, `5`, never `-0`).
struct Decimals(f64, usize);

impl fmt::Display for Decimals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Decimals(v, n) = *self;
        if !v.is_finite() {
            return write!(f, "{v}");
        }
        let trim = |s: &str, f: &mut fmt::Formatter<'_>| {
            let s = if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.')
            } else {
                s
            };
            f.write_str(if s == "-0" { "0" } else { s })
        };
        let mut buf = Buf {
            bytes: [0; 48],
            len: 0,
        };
        if write!(buf, "{v:.n$}").is_ok()
            && let Some(s) = buf.bytes.get(..buf.len)
            && let Ok(s) = std::str::from_utf8(s)
        {
            return trim(s, f);
        }
        trim(&format!("{v:.n$}"), f)
    }
}

/// A ratio as a percentage (`99.5%`).
struct Percent(f64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", Decimals(self.0 * 100.0, 2))
    }
}

/// Microseconds in the largest unit that keeps them readable (`850µs`, `1.5ms`, `1.2s`).
struct HumanUs(f64);

impl fmt::Display for HumanUs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0;
        let a = us.abs();
        if a < 1_000.0 {
            write!(f, "{}µs", Decimals(us, 0))
        } else if a < 1_000_000.0 {
            let ms = us / 1_000.0;
            write!(f, "{}ms", Decimals(ms, if ms.abs() < 10.0 { 1 } else { 0 }))
        } else {
            HumanSecs(us / 1_000_000.0).fmt(f)
        }
    }
}

/// Seconds in the largest unit that keeps them readable (`250ms`, `5m`, `1.5h`, `30d`).
struct HumanSecs(f64);

impl fmt::Display for HumanSecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s < 0.0 {
            return write!(f, "-{}", HumanSecs(-s));
        }
        let (v, unit) = match s {
            s if s < 1.0 => return write!(f, "{}ms", Decimals(s * 1_000.0, 0)),
            s if s < 60.0 => (s, "s"),
            s if s < 3_600.0 => (s / 60.0, "m"),
            s if s < 86_400.0 => (s / 3_600.0, "h"),
            s => (s / 86_400.0, "d"),
        };
        write!(f, "{}{unit}", Decimals(v, 1))
    }
}

#[cfg(test)]
fn decimals(v: f64, n: usize) -> String {
    Decimals(v, n).to_string()
}

#[cfg(test)]
fn percent(ratio: f64) -> String {
    Percent(ratio).to_string()
}

#[cfg(test)]
fn human_us(us: f64) -> String {
    HumanUs(us).to_string()
}

#[cfg(test)]
fn human_secs(s: f64) -> String {
    HumanSecs(s).to_string()
}

pub(crate) fn transition(
    rule: &Rule,
    monitor: &str,
    region: Option<&str>,
    region_text: &str,
    t: &Tagged,
) -> AlertTransition {
    let c = t.change;
    let message = render(&Context {
        rule,
        monitor,
        region: region_text,
        quorum: region.is_none(),
        state: c.to,
        value: c.value,
        threshold: t.threshold,
        severity: t.severity,
    });
    AlertTransition {
        transition_id: transition_id(&rule.spec.id, monitor, region, c.from, c.to, c.at),
        rule_id: rule.spec.id.clone(),
        monitor_id: monitor.to_owned(),
        region: region.map(str::to_owned),
        kind: rule.kind,
        from: c.from,
        to: c.to,
        at: Timestamp::from_millis(c.at),
        value: c.value,
        threshold: t.threshold,
        severity: t.severity,
        labels: rule.spec.labels.clone(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_validated() {
        assert!(validate_template("").is_ok());
        assert!(validate_template("{{monitor}} {{ region }} {{labels.team}} {x} }}").is_ok());
        let unknown = validate_template("{{monitor}} {{host}}").unwrap_err();
        assert!(unknown.contains("{{host}}"), "{unknown}");
        assert!(validate_template("{{labels.}}").is_err());
        let unclosed = validate_template("ok {{value").unwrap_err();
        assert!(unclosed.contains("byte 3"), "{unclosed}");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_us(850.0), "850µs");
        assert_eq!(human_us(1_500.0), "1.5ms");
        assert_eq!(human_us(800_000.0), "800ms");
        assert_eq!(human_us(1_234_000.0), "1.2s");
        assert_eq!(human_secs(300.0), "5m");
        assert_eq!(human_secs(5_400.0), "1.5h");
        assert_eq!(human_secs(30.0 * 86_400.0), "30d");
        assert_eq!(human_secs(0.25), "250ms");
        assert_eq!(percent(0.995), "99.5%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(decimals(16.666_666, 2), "16.67");
        assert_eq!(decimals(-0.0001, 2), "0");
    }
}
