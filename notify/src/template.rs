//! Message templates: literal text with `{{field}}` placeholders and `{{#if …}}` sections.
//!
//! ```text
//! {{#if resolved}}[RESOLVED]{{else}}[FIRING:{{count}}]{{/if}} {{rule}} on {{monitor}}
//! ```
//!
//! Fields, all of one alert (for a channel's `title`, the notification's first firing alert,
//! else its first):
//!
//! | field | value |
//! | --- | --- |
//! | `monitor`, `region`, `rule`, `kind` | the alert's ids (`region` empty for a quorum alert) |
//! | `state` | `firing` or `resolved` |
//! | `severity` | `info`, `warning` or `critical` |
//! | `value`, `threshold` | the numbers of the latest transition |
//! | `summary` | the rule's rendered summary |
//! | `at` | the latest transition's time, RFC 3339 |
//! | `labels.NAME` | the label `NAME` (empty when absent) |
//! | `count` | alerts in the notification |
//! | `url` | the alert in Vigil |
//!
//! Sections: `{{#if resolved}}…{{/if}}` and `{{#if firing}}…{{/if}}`, each with an optional
//! `{{else}}`, nested up to 8 deep. Whitespace inside braces is ignored; a single `{` or `}` is
//! text. Nothing else exists: no expressions, no loops, no code, so a template can be validated
//! completely when it is applied ([`Template::parse`] rejects unknown fields).
//!
//! Rendering escapes the *values* for the target ([`Escape`]): inside a JSON string (webhook
//! bodies), HTML text (e-mail), Slack mrkdwn. The template's own text is the author's and is
//! copied as written.

use crate::alert::Alert;

/// Default title.
pub const DEFAULT_TITLE: &str =
    "{{#if resolved}}[RESOLVED]{{else}}[FIRING:{{count}}]{{/if}} {{rule}} on {{monitor}}";
/// Default text, rendered once per alert.
pub const DEFAULT_TEXT: &str =
    "{{summary}} ({{severity}}, {{#if resolved}}resolved{{else}}firing since{{/if}} {{at}})";

/// The fields templates may use, as shown in errors.
const FIELDS: &str = "monitor, region, rule, kind, state, severity, value, threshold, summary, \
                      at, labels.NAME, count, url";
/// Deepest nesting of sections.
const MAX_DEPTH: usize = 8;

/// A parsed template (the default one renders nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Field(Field),
    If {
        resolved: bool,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Monitor,
    Region,
    Rule,
    Kind,
    State,
    Severity,
    Value,
    Threshold,
    Summary,
    At,
    Label(String),
    Count,
    Url,
}

/// How substituted values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As they are (plain-text e-mail, console, PagerDuty summaries).
    Plain,
    /// For the inside of a JSON string literal.
    Json,
    /// For HTML text and attribute values.
    Html,
    /// For Slack mrkdwn (`&`, `<`, `>`).
    Slack,
}

/// What a template is rendered with.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// The alert whose fields are used.
    pub alert: &'a Alert,
    /// Alerts in the notification.
    pub count: usize,
    /// Whether `state` is `resolved` (for a title: the notification has no firing alert).
    pub resolved: bool,
    /// The alert in Vigil.
    pub url: &'a str,
}

/// A token of the source.
enum Tag<'a> {
    Text(&'a str),
    Open(bool),
    Else,
    Close,
    Field(Field),
}

impl Template {
    /// Parses a template; the error says which placeholder is unknown or which section is
    /// unbalanced.
    pub fn parse(source: &str) -> Result<Self, String> {
        let tags = tokenize(source)?;
        let mut tags = tags.into_iter();
        let (nodes, end) = parse_nodes(&mut tags, 0)?;
        match end {
            None => Ok(Self { nodes }),
            Some(End::Else) => Err("`{{else}}` outside of an `{{#if}}` section".into()),
            Some(End::Close) => Err("`{{/if}}` without an `{{#if}}`".into()),
        }
    }

    /// Renders the template.
    pub fn render(&self, fields: &Fields<'_>, escape: Escape) -> String {
        let mut out = String::new();
        render_nodes(&self.nodes, fields, escape, &mut out);
        out
    }
}

fn tokenize(source: &str) -> Result<Vec<Tag<'_>>, String> {
    let mut tags = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            tags.push(Tag::Text(&rest[..open]));
        }
        let inner_start = open + 2;
        let Some(len) = rest[inner_start..].find("}}") else {
            let at = source.len() - rest.len() + open;
            return Err(format!("`{{{{` at byte {at} is never closed with `}}}}`"));
        };
        let inner = rest[inner_start..inner_start + len].trim();
        tags.push(tag(inner)?);
        rest = &rest[inner_start + len + 2..];
    }
    if !rest.is_empty() {
        tags.push(Tag::Text(rest));
    }
    Ok(tags)
}

fn tag(inner: &str) -> Result<Tag<'_>, String> {
    if let Some(condition) = inner.strip_prefix("#if") {
        return match condition.trim() {
            "resolved" => Ok(Tag::Open(true)),
            "firing" => Ok(Tag::Open(false)),
            other => Err(format!(
                "unknown condition `{other}` in `{{{{{inner}}}}}`; expected `resolved` or `firing`"
            )),
        };
    }
    Ok(match inner {
        "else" => Tag::Else,
        "/if" => Tag::Close,
        "monitor" => Tag::Field(Field::Monitor),
        "region" => Tag::Field(Field::Region),
        "rule" => Tag::Field(Field::Rule),
        "kind" => Tag::Field(Field::Kind),
        "state" => Tag::Field(Field::State),
        "severity" => Tag::Field(Field::Severity),
        "value" => Tag::Field(Field::Value),
        "threshold" => Tag::Field(Field::Threshold),
        "summary" => Tag::Field(Field::Summary),
        "at" => Tag::Field(Field::At),
        "count" => Tag::Field(Field::Count),
        "url" => Tag::Field(Field::Url),
        _ => match inner.strip_prefix("labels.") {
            Some(name)
                if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                Tag::Field(Field::Label(name.to_owned()))
            }
            _ => {
                return Err(format!(
                    "unknown field `{{{{{inner}}}}}`; expected one of {FIELDS}, or a section \
                     `{{{{#if resolved}}}}`"
                ));
            }
        },
    })
}

/// How a run of nodes ended.
enum End {
    Else,
    Close,
}

fn parse_nodes<'a>(
    tags: &mut impl Iterator<Item = Tag<'a>>,
    depth: usize,
) -> Result<(Vec<Node>, Option<End>), String> {
    let mut nodes = Vec::new();
    while let Some(tag) = tags.next() {
        match tag {
            Tag::Text(t) => nodes.push(Node::Text(t.to_owned())),
            Tag::Field(f) => nodes.push(Node::Field(f)),
            Tag::Else => return Ok((nodes, Some(End::Else))),
            Tag::Close => return Ok((nodes, Some(End::Close))),
            Tag::Open(resolved) => {
                if depth + 1 > MAX_DEPTH {
                    return Err(format!("sections are nested deeper than {MAX_DEPTH}"));
                }
                let (then, end) = parse_nodes(tags, depth + 1)?;
                let otherwise = match end {
                    Some(End::Close) => Vec::new(),
                    Some(End::Else) => match parse_nodes(tags, depth + 1)? {
                        (otherwise, Some(End::Close)) => otherwise,
                        (_, Some(End::Else)) => {
                            return Err("a section has two `{{else}}`s".into());
                        }
                        (_, None) => return Err("`{{#if}}` is never closed with `{{/if}}`".into()),
                    },
                    None => return Err("`{{#if}}` is never closed with `{{/if}}`".into()),
                };
                nodes.push(Node::If {
                    resolved,
                    then,
                    otherwise,
                });
            }
        }
    }
    Ok((nodes, None))
}

fn render_nodes(nodes: &[Node], f: &Fields<'_>, escape: Escape, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Field(field) => push_escaped(out, &value(field, f), escape),
            Node::If {
                resolved,
                then,
                otherwise,
            } => {
                let branch = if *resolved == f.resolved {
                    then
                } else {
                    otherwise
                };
                render_nodes(branch, f, escape, out);
            }
        }
    }
}

fn value(field: &Field, f: &Fields<'_>) -> String {
    let t = &f.alert.transition;
    match field {
        Field::Monitor => t.monitor_id.clone(),
        Field::Region => t.region.clone().unwrap_or_default(),
        Field::Rule => t.rule_id.clone(),
        Field::Kind => t.kind.as_str().to_owned(),
        Field::State => if f.resolved { "resolved" } else { "firing" }.to_owned(),
        Field::Severity => t.severity.as_str().to_owned(),
        Field::Value => number(t.value),
        Field::Threshold => number(t.threshold),
        Field::Summary => t.message.clone(),
        Field::At => t.at.to_string(),
        Field::Label(name) => f.alert.labels.get(name).cloned().unwrap_or_default(),
        Field::Count => f.count.to_string(),
        Field::Url => f.url.to_owned(),
    }
}

/// A number for people: integers without decimals, others with at most four.
pub fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.is_finite() {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        v.to_string()
    }
}

/// Appends `value` escaped for `escape`.
pub fn push_escaped(out: &mut String, value: &str, escape: Escape) {
    for c in value.chars() {
        match (escape, c) {
            (Escape::Plain, c) => out.push(c),
            (Escape::Json, '"') => out.push_str("\\\""),
            (Escape::Json, '\\') => out.push_str("\\\\"),
            (Escape::Json, '\n') => out.push_str("\\n"),
            (Escape::Json, '\r') => out.push_str("\\r"),
            (Escape::Json, '\t') => out.push_str("\\t"),
            (Escape::Json, c) if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            (Escape::Html | Escape::Slack, '&') => out.push_str("&amp;"),
            (Escape::Html | Escape::Slack, '<') => out.push_str("&lt;"),
            (Escape::Html | Escape::Slack, '>') => out.push_str("&gt;"),
            (Escape::Html, '"') => out.push_str("&quot;"),
            (Escape::Html, '\'') => out.push_str("&#39;"),
            (_, c) => out.push(c),
        }
    }
}

/// `value` escaped for `escape`.
pub fn escaped(value: &str, escape: Escape) -> String {
    let mut out = String::with_capacity(value.len());
    push_escaped(&mut out, value, escape);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::tests::{fire, resolve};

    fn render(source: &str, alert: &Alert, escape: Escape) -> String {
        Template::parse(source).unwrap().render(
            &Fields {
                alert,
                count: 3,
                resolved: !alert.is_firing(),
                url: "https://vigil.example.com/a?b=1&c=2",
            },
            escape,
        )
    }

    #[test]
    fn every_field() {
        let alert = Alert::firing(&fire("p99", "checkout", Some("eu-west"), 60));
        assert_eq!(
            render(
                "{{monitor}}|{{ region }}|{{rule}}|{{kind}}|{{state}}|{{severity}}|{{value}}|\
                 {{threshold}}|{{summary}}|{{at}}|{{labels.team}}|{{labels.none}}|{{count}}|{{url}}",
                &alert,
                Escape::Plain
            ),
            "checkout|eu-west|p99|latency_percentile|firing|critical|950000|800000|\
             p99 of checkout is 950ms|1970-01-01T00:01:00Z|payments||3|\
             https://vigil.example.com/a?b=1&c=2"
        );
    }

    #[test]
    fn sections_and_defaults() {
        let fired = fire("p99", "checkout", None, 60);
        let firing = Alert::firing(&fired);
        let mut resolved = Alert::firing(&fired);
        resolved.transition = resolve(&fired, 120);
        resolved.ends_at = Some(resolved.transition.at);
        assert_eq!(
            render(DEFAULT_TITLE, &firing, Escape::Plain),
            "[FIRING:3] p99 on checkout"
        );
        assert_eq!(
            render(DEFAULT_TITLE, &resolved, Escape::Plain),
            "[RESOLVED] p99 on checkout"
        );
        assert_eq!(
            render(DEFAULT_TEXT, &resolved, Escape::Plain),
            "p99 of checkout is 500ms (critical, resolved 1970-01-01T00:02:00Z)"
        );
        let nested = "{{#if firing}}F{{#if resolved}}never{{else}}!{{/if}}{{else}}R{{/if}}";
        assert_eq!(render(nested, &firing, Escape::Plain), "F!");
        assert_eq!(render(nested, &resolved, Escape::Plain), "R");
        assert_eq!(render("a { b } {c}", &firing, Escape::Plain), "a { b } {c}");
    }

    #[test]
    fn validation_rejects_unknown_fields_and_unbalanced_sections() {
        for (source, want) in [
            (
                "{{monitr}}",
                "unknown field `{{monitr}}`; expected one of monitor, region",
            ),
            ("{{labels.}}", "unknown field `{{labels.}}`"),
            ("{{labels.a b}}", "unknown field"),
            ("{{#if now}}x{{/if}}", "unknown condition `now`"),
            ("{{#if resolved}}x", "`{{#if}}` is never closed"),
            ("x{{/if}}", "`{{/if}}` without an `{{#if}}`"),
            ("{{else}}", "`{{else}}` outside"),
            (
                "{{#if firing}}a{{else}}b{{else}}c{{/if}}",
                "two `{{else}}`s",
            ),
            ("ab {{monitor", "`{{` at byte 3 is never closed"),
            ("{{exec \"rm -rf /\"}}", "unknown field"),
        ] {
            let err = Template::parse(source).unwrap_err();
            assert!(err.contains(want), "{source}: {err}");
        }
        let deep = "{{#if firing}}".repeat(9) + &"{{/if}}".repeat(9);
        assert!(
            Template::parse(&deep)
                .unwrap_err()
                .contains("deeper than 8")
        );
        let ok = "{{#if firing}}".repeat(8) + &"{{/if}}".repeat(8);
        assert!(Template::parse(&ok).is_ok());
    }

    #[test]
    fn values_are_escaped_per_target_and_text_is_not() {
        let mut t = fire("p99", "checkout", None, 60);
        t.message = "<b>\"5xx\" & 'timeouts'</b>\n\\ \u{1}".into();
        let alert = Alert::firing(&t);
        assert_eq!(
            render("<p>{{summary}}</p>", &alert, Escape::Html),
            "<p>&lt;b&gt;&quot;5xx&quot; &amp; &#39;timeouts&#39;&lt;/b&gt;\n\\ \u{1}</p>"
        );
        assert_eq!(
            render("*{{summary}}* <{{url}}|open>", &alert, Escape::Slack),
            "*&lt;b&gt;\"5xx\" &amp; 'timeouts'&lt;/b&gt;\n\\ \u{1}* \
             <https://vigil.example.com/a?b=1&amp;c=2|open>"
        );
        let json = render(
            r#"{"text": "{{summary}}", "n": {{count}}}"#,
            &alert,
            Escape::Json,
        );
        assert_eq!(
            json,
            r#"{"text": "<b>\"5xx\" & 'timeouts'</b>\n\\ \u0001", "n": 3}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            parsed["text"],
            t.message.as_str(),
            "JSON escaping round-trips"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number(800_000.0), "800000");
        assert_eq!(number(0.99), "0.99");
        assert_eq!(number(0.123_456), "0.1235");
        assert_eq!(number(-2.5), "-2.5");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
