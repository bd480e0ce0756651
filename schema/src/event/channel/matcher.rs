//! [`Matcher`]: one condition on an alert's labels, in Alertmanager's syntax (`label=value`,
//! `label!=value`, `label=~regex`, `label!~regex`), written as a string in specs.
//!
//! The labels of an alert are `severity`, `monitor`, `region` (absent for a quorum alert),
//! `rule`, `kind` and the rule's own labels. Regular expressions are anchored (they must match
//! the whole value) and are compiled and checked by the notification stage; a missing label
//! matches as the empty string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A condition on one label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Matcher {
    /// The label's name.
    pub label: String,
    /// How the value is compared.
    pub op: MatchOp,
    /// The value, or the regular expression.
    pub value: String,
}

/// Matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: equal.
    Equal,
    /// `!=`: not equal.
    NotEqual,
    /// `=~`: the whole value matches the regular expression.
    Regex,
    /// `!~`: the whole value does not match the regular expression.
    NotRegex,
}

impl MatchOp {
    /// The operator as written.
    pub const fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

impl Matcher {
    /// A matcher from its parts.
    pub fn new(label: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            op,
            value: value.into(),
        }
    }
}

/// What a matcher must look like, as the OpenAPI document states it (an ECMA-262 and Rust
/// `regex` pattern): exactly the strings [`Matcher::from_str`] accepts. A label name, an
/// operator, and a value that is either plain (not starting with `"`) or one double-quoted
/// string with `\\` escapes; spaces around the parts are allowed. After `=` the value may not
/// start with `~` (that is the `=~` operator).
pub const MATCHER_PATTERN: &str = concat!(
    r#"^\s*[A-Za-z_][A-Za-z0-9_-]{0,63}\s*(?:(?:=~|!~|!=)\s*(?:"(?:[^"\\]|\\[\s\S])*"\s*|(?:[^"\s][\s\S]*)?)"#,
    r#"|=(?:"(?:[^"\\]|\\[\s\S])*"\s*|[^"\s~][\s\S]*|\s+(?:"(?:[^"\\]|\\[\s\S])*"\s*|(?:[^"\s][\s\S]*)?)|))$"#
);

/// Label names: a letter or `_`, then letters, digits, `_` or `-` (rule labels are slugs).
fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && name.len() <= 64
}

impl FromStr for Matcher {
    type Err = String;

    /// Parses `label<op>value`; spaces around the parts are ignored and the value may be
    /// double-quoted (`team = "web ops"`, with `\"` and `\\` escapes).
    fn from_str(s: &str) -> Result<Self, String> {
        let at = s.find(['=', '!']).ok_or_else(|| {
            format!("matcher {s:?} has no operator; expected label=value, !=, =~ or !~")
        })?;
        let label = s[..at].trim();
        let rest = &s[at..];
        let (op, value) = [
            MatchOp::Regex,
            MatchOp::NotRegex,
            MatchOp::NotEqual,
            MatchOp::Equal,
        ]
        .into_iter()
        .find_map(|op| rest.strip_prefix(op.as_str()).map(|v| (op, v)))
        .ok_or_else(|| format!("matcher {s:?} has an unknown operator"))?;
        if !is_label_name(label) {
            return Err(format!(
                "matcher {s:?}: label name must be 1–64 of a-z, A-Z, 0-9, '_' or '-', starting \
                 with a letter or '_'"
            ));
        }
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(quoted) => unquote(quoted).ok_or_else(|| {
                format!("matcher {s:?}: quoted value is not closed with '\"' at the end")
            })?,
            None => value.to_owned(),
        };
        Ok(Self::new(label, op, value))
    }
}

/// The value of a quoted string whose opening quote was removed; `None` unless it ends right
/// after its closing quote.
fn unquote(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return chars.as_str().is_empty().then_some(out),
            c => out.push(c),
        }
    }
    None
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = !self.value.is_empty()
            && !self
                .value
                .contains(|c: char| c.is_whitespace() || c == '"' || c == '\\')
            && self.value.trim() == self.value;
        if plain {
            write!(f, "{}{}{}", self.label, self.op.as_str(), self.value)
        } else {
            let escaped = self.value.replace('\\', "\\\\").replace('"', "\\\"");
            write!(f, "{}{}\"{escaped}\"", self.label, self.op.as_str())
        }
    }
}

impl TryFrom<String> for Matcher {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Matcher> for String {
    fn from(m: Matcher) -> String {
        m.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn documented(s: &str) -> bool {
        static RE: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(MATCHER_PATTERN).unwrap());
        RE.is_match(s)
    }

    #[test]
    fn the_documented_pattern_accepts_what_the_parser_accepts() {
        for (s, ok) in [
            ("monitor=checkout", true),
            ("a=", true),
            (" a = b ", true),
            ("a=~x", true),
            ("a=~~x", true),
            ("a= ~x", true),
            ("a=~\"x", false),
            ("a=\"x\"", true),
            ("a=\"x\" ", true),
            ("a=\"x\"y", false),
            ("a=\"x\\\"y\"", true),
            ("a!x", false),
            ("=x", false),
            ("1a=x", false),
            ("", false),
        ] {
            assert_eq!(s.parse::<Matcher>().is_ok(), ok, "parser on {s:?}");
            assert_eq!(documented(s), ok, "pattern on {s:?}");
        }
    }

    proptest! {
        /// Over strings made of the characters that matter, the pattern and the parser agree.
        #[test]
        fn the_pattern_and_the_parser_agree(s in "[a_1=!~\" \\\\x]{0,10}") {
            prop_assert_eq!(documented(&s), s.parse::<Matcher>().is_ok(), "{:?}", s);
        }
    }

    #[test]
    fn every_operator_parses_and_prints_back() {
        for (text, op, label, value) in [
            ("severity=critical", MatchOp::Equal, "severity", "critical"),
            ("region!=eu-west", MatchOp::NotEqual, "region", "eu-west"),
            (
                "monitor=~checkout-.*",
                MatchOp::Regex,
                "monitor",
                "checkout-.*",
            ),
            ("team!~web|mobile", MatchOp::NotRegex, "team", "web|mobile"),
        ] {
            let m: Matcher = text.parse().unwrap();
            assert_eq!(m, Matcher::new(label, op, value));
            assert_eq!(m.to_string(), text);
        }
    }

    #[test]
    fn spaces_and_quotes() {
        let m: Matcher = r#" team = "web \"ops\" \\ x" "#.parse().unwrap();
        assert_eq!(m.value, r#"web "ops" \ x"#);
        assert_eq!(m.to_string(), r#"team="web \"ops\" \\ x""#);
        assert_eq!(m.to_string().parse::<Matcher>().unwrap(), m);
        let empty: Matcher = "region=".parse().unwrap();
        assert_eq!(empty.value, "");
        assert_eq!(empty.to_string(), "region=\"\"");
        assert_eq!(empty.to_string().parse::<Matcher>().unwrap(), empty);
        // `=` inside the value belongs to the value.
        let eq: Matcher = "q=a=b".parse().unwrap();
        assert_eq!((eq.op, eq.value.as_str()), (MatchOp::Equal, "a=b"));
    }

    #[test]
    fn bad_matchers_say_why() {
        for (text, want) in [
            ("severity", "has no operator"),
            ("sev!critical", "unknown operator"),
            ("=x", "label name must be"),
            ("team name=x", "label name must be"),
            ("team=\"open", "quoted value is not closed"),
            ("team=\"a\" b", "quoted value is not closed"),
        ] {
            let err = text.parse::<Matcher>().unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn serde_as_a_string() {
        let m: Vec<Matcher> = serde_json::from_str(r#"["severity=critical","rule=~a|b"]"#).unwrap();
        assert_eq!(m[1].op, MatchOp::Regex);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"["severity=critical","rule=~a|b"]"#
        );
        let err = serde_json::from_str::<Matcher>(r#""nope""#).unwrap_err();
        assert!(err.to_string().contains("has no operator"), "{err}");
    }
}
