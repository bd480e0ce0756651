//! Transition summaries: the rule's template rendered with the schema's grammar
//! ([`parse_summary`]), or a default per kind with human units
//! (`checkout-api eu-west: p99 1.2s above 800ms for 5m`).
//!
//! `{{value}}` and `{{threshold}}` are written in the kind's human unit; `{{region}}` is empty
//! for a quorum alert (its default summary lists the regions firing); `{{labels.NAME}}` is
//! empty when the rule has no such label.

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
    let segments = match parse_summary(template) {
        Ok(segments) if !segments.is_empty() => segments,
        _ => return default_summary(ctx),
    };
    let mut s = String::with_capacity(template.len() + 32);
    for segment in segments {
        match segment {
            SummarySegment::Text(t) => s.push_str(t),
            SummarySegment::Monitor => s.push_str(ctx.monitor),
            SummarySegment::Region if !ctx.quorum => s.push_str(ctx.region),
            SummarySegment::Region => {}
            SummarySegment::Rule => s.push_str(&ctx.rule.spec.id),
            SummarySegment::Kind => s.push_str(ctx.rule.kind.as_str()),
            SummarySegment::Value => s.push_str(&format_value(ctx, ctx.value)),
            SummarySegment::Threshold => s.push_str(&format_value(ctx, ctx.threshold)),
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

fn format_value(ctx: &Context<'_>, v: f64) -> String {
    if ctx.quorum {
        return decimals(v, 0);
    }
    match ctx.rule.check {
        Check::Consecutive { .. } => decimals(v, 0),
        Check::Latency { .. } => human_us(v),
        Check::Availability { .. } | Check::Status { .. } => percent(v),
        Check::Anomaly { .. } => decimals(v, 2),
        Check::Certificate { .. } | Check::NoData { .. } => human_secs(v),
        Check::Burn { .. } => format!("{}x", decimals(v, 2)),
    }
}

fn default_summary(ctx: &Context<'_>) -> String {
    let value = format_value(ctx, ctx.value);
    let threshold = format_value(ctx, ctx.threshold);
    let active = ctx.state != AlertState::Ok;
    let span = |ms: i64| human_secs(ms as f64 / 1000.0);
    let body = if ctx.quorum {
        if active {
            format!(
                "{} firing in {value} regions ({}), quorum {threshold}",
                ctx.rule.name(),
                ctx.region
            )
        } else {
            format!(
                "{} firing in {value} regions, below quorum {threshold}",
                ctx.rule.name()
            )
        }
    } else {
        match &ctx.rule.check {
            Check::Consecutive { .. } if active => format!("{value} failed checks in a row"),
            Check::Consecutive { .. } => format!("recovered, {value} successful checks in a row"),
            Check::Latency {
                percentile,
                span_ms,
                ..
            } => {
                let p = decimals(*percentile, 3);
                if active {
                    format!("p{p} {value} above {threshold} for {}", span(*span_ms))
                } else {
                    format!("p{p} {value} back below {threshold}")
                }
            }
            Check::Availability { span_ms, .. } if active => {
                format!(
                    "availability {value} below {threshold} for {}",
                    span(*span_ms)
                )
            }
            Check::Availability { .. } => format!("availability {value} back above {threshold}"),
            Check::Status { class, span_ms, .. } => {
                let class = status_label(*class);
                if active {
                    format!(
                        "{class} share {value} above {threshold} for {}",
                        span(*span_ms)
                    )
                } else {
                    format!("{class} share {value} back below {threshold}")
                }
            }
            Check::Anomaly { .. } if active => format!("anomaly score {value} above {threshold}"),
            Check::Anomaly { .. } => format!("anomaly score {value} back below {threshold}"),
            Check::Certificate { .. } if ctx.value < 0.0 => {
                format!("certificate expired {} ago", human_secs(-ctx.value))
            }
            Check::Certificate { .. } if active => {
                format!("certificate expires in {value}, within {threshold}")
            }
            Check::Certificate { .. } => {
                format!("certificate expires in {value}, beyond {threshold}")
            }
            Check::Burn { .. } if active => {
                format!("error budget burning at {value}, above {threshold}")
            }
            Check::Burn { .. } => format!("error budget burn rate {value}, back below {threshold}"),
            Check::NoData { .. } if active => format!("no results for {value}"),
            Check::NoData { .. } => format!("results again after {value}"),
        }
    };
    let subject = if ctx.quorum || ctx.region.is_empty() {
        ctx.monitor.to_owned()
    } else {
        format!("{} {}", ctx.monitor, ctx.region)
    };
    let pending = if ctx.state == AlertState::Pending {
        " (pending)"
    } else {
        ""
    };
    format!("{subject}: {body}{pending}")
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

/// `v` with at most `n` decimals, trailing zeros dropped.
fn decimals(v: f64, n: usize) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let s = format!("{v:.n$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    if s == "-0" { "0".to_owned() } else { s }
}

fn percent(ratio: f64) -> String {
    format!("{}%", decimals(ratio * 100.0, 2))
}

/// A duration in µs: `850µs`, `1.5ms`, `800ms`, then as [`human_secs`].
fn human_us(us: f64) -> String {
    let a = us.abs();
    if a < 1_000.0 {
        format!("{}µs", decimals(us, 0))
    } else if a < 1_000_000.0 {
        let ms = us / 1_000.0;
        format!("{}ms", decimals(ms, if ms.abs() < 10.0 { 1 } else { 0 }))
    } else {
        human_secs(us / 1_000_000.0)
    }
}

/// A duration in seconds in its largest unit with one decimal: `1.2s`, `5m`, `1.5h`, `30d`.
fn human_secs(s: f64) -> String {
    if s < 0.0 {
        return format!("-{}", human_secs(-s));
    }
    let (v, unit) = match s {
        s if s < 1.0 => return format!("{}ms", decimals(s * 1_000.0, 0)),
        s if s < 60.0 => (s, "s"),
        s if s < 3_600.0 => (s / 60.0, "m"),
        s if s < 86_400.0 => (s / 3_600.0, "h"),
        s => (s / 86_400.0, "d"),
    };
    format!("{}{unit}", decimals(v, 1))
}

/// The transition of a change of `rule` on (monitor, region), `region` being `None` for a
/// quorum alert (then `region_text` lists the regions firing).
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
