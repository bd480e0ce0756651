//! The summary template of a rule: literal text with `{{placeholder}}`s, parsed once into
//! [`SummarySegment`]s so validation and rendering agree on what a template means.
//!
//! Whitespace inside the braces is ignored (`{{ monitor }}` is `{{monitor}}`). A single `{` or
//! `}` is literal text; a `{{` without a closing `}}` is an error.

use super::{MAX_SUMMARY, Problems, RuleSpec};

/// One piece of a parsed summary template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummarySegment<'a> {
    /// Literal text, copied as is.
    Text(&'a str),
    /// `{{monitor}}`: the monitor's id.
    Monitor,
    /// `{{region}}`: the region (empty for a quorum alert).
    Region,
    /// `{{rule}}`: the rule's id.
    Rule,
    /// `{{kind}}`: the condition kind (`latency_percentile`, …).
    Kind,
    /// `{{value}}`: the observed value.
    Value,
    /// `{{threshold}}`: the threshold crossed.
    Threshold,
    /// `{{state}}`: the new state (`pending`, `firing`, `ok`).
    State,
    /// `{{severity}}`: the severity.
    Severity,
    /// `{{labels.NAME}}`: the value of the rule's label `NAME`.
    Label(&'a str),
}

/// The placeholders a template may use, as shown in errors.
pub(crate) const PLACEHOLDERS: &str = "{{monitor}}, {{region}}, {{rule}}, {{kind}}, {{value}}, \
     {{threshold}}, {{state}}, {{severity}} or {{labels.NAME}}";

/// Splits a summary template into text and placeholders. The error says which placeholder is
/// unknown or where an unclosed `{{` starts.
pub fn parse_summary(template: &str) -> Result<Vec<SummarySegment<'_>>, String> {
    let mut segments = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            segments.push(SummarySegment::Text(&rest[..open]));
        }
        let inner_start = open + 2;
        let Some(len) = rest[inner_start..].find("}}") else {
            let at = template.len() - rest.len() + open;
            return Err(format!("`{{{{` at byte {at} is never closed with `}}}}`"));
        };
        let inner = &rest[inner_start..inner_start + len];
        segments.push(placeholder(inner.trim()).ok_or_else(|| {
            format!("unknown placeholder {{{{{inner}}}}}; expected {PLACEHOLDERS}")
        })?);
        rest = &rest[inner_start + len + 2..];
    }
    if !rest.is_empty() {
        segments.push(SummarySegment::Text(rest));
    }
    Ok(segments)
}

fn placeholder(name: &str) -> Option<SummarySegment<'_>> {
    Some(match name {
        "monitor" => SummarySegment::Monitor,
        "region" => SummarySegment::Region,
        "rule" => SummarySegment::Rule,
        "kind" => SummarySegment::Kind,
        "value" => SummarySegment::Value,
        "threshold" => SummarySegment::Threshold,
        "state" => SummarySegment::State,
        "severity" => SummarySegment::Severity,
        _ => {
            let label = name.strip_prefix("labels.")?;
            if label.is_empty() || label.contains(char::is_whitespace) {
                return None;
            }
            SummarySegment::Label(label)
        }
    })
}

impl RuleSpec {
    /// Checks the summary's length, its placeholders, and that every `{{labels.NAME}}` names
    /// a label of the rule.
    pub(super) fn check_summary(&self, p: &mut Problems) {
        if self.summary.len() > MAX_SUMMARY {
            p.push(
                "summary",
                format!(
                    "must be at most {MAX_SUMMARY} bytes, got {}",
                    self.summary.len()
                ),
            );
            return;
        }
        match parse_summary(&self.summary) {
            Err(reason) => p.push("summary", reason),
            Ok(segments) => {
                for segment in segments {
                    if let SummarySegment::Label(name) = segment
                        && !self.labels.contains_key(name)
                    {
                        p.push(
                            "summary",
                            format!("{{{{labels.{name}}}}} names no label of this rule"),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::rule::tests::{SLOW, messages, rule};
    use SummarySegment as S;

    #[test]
    fn summary_placeholders_and_length() {
        let mut spec = rule(SLOW);
        spec.summary = "{{monitor}} on {{host}}".into();
        assert_eq!(
            messages(&spec),
            [
                "summary: unknown placeholder {{host}}; expected {{monitor}}, {{region}}, \
                 {{rule}}, {{kind}}, {{value}}, {{threshold}}, {{state}}, {{severity}} or \
                 {{labels.NAME}}"
            ]
        );
        spec.summary = "{{monitor}} is {{value".into();
        assert_eq!(
            messages(&spec),
            ["summary: `{{` at byte 15 is never closed with `}}`"]
        );
        spec.summary = "{{labels.owner}} {{labels.team}}".into();
        assert_eq!(
            messages(&spec),
            ["summary: {{labels.owner}} names no label of this rule"]
        );
        spec.summary = "x".repeat(1001);
        assert_eq!(
            messages(&spec),
            ["summary: must be at most 1000 bytes, got 1001"]
        );
    }

    #[test]
    fn text_and_placeholders() {
        assert_eq!(
            parse_summary(
                "p99 of {{monitor}} in {{ region }} is {{value}}µs {x} }} {{labels.team}}"
            )
            .unwrap(),
            [
                S::Text("p99 of "),
                S::Monitor,
                S::Text(" in "),
                S::Region,
                S::Text(" is "),
                S::Value,
                S::Text("µs {x} }} "),
                S::Label("team"),
            ]
        );
        assert_eq!(parse_summary("").unwrap(), []);
        assert_eq!(
            parse_summary("{{rule}}{{kind}}{{threshold}}{{state}}{{severity}}").unwrap(),
            [S::Rule, S::Kind, S::Threshold, S::State, S::Severity]
        );
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_errors() {
        assert_eq!(
            parse_summary("{{monitor}} {{host}}").unwrap_err(),
            "unknown placeholder {{host}}; expected {{monitor}}, {{region}}, {{rule}}, {{kind}}, \
             {{value}}, {{threshold}}, {{state}}, {{severity}} or {{labels.NAME}}"
        );
        assert!(
            parse_summary("{{labels.}}")
                .unwrap_err()
                .starts_with("unknown placeholder {{labels.}};")
        );
        assert!(
            parse_summary("{{ {{monitor}}")
                .unwrap_err()
                .starts_with("unknown placeholder {{ {{monitor}};")
        );
        assert_eq!(
            parse_summary("{{monitor}} is {{value").unwrap_err(),
            "`{{` at byte 15 is never closed with `}}`"
        );
    }
}
