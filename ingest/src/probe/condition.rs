//! The assertion language, as Gatus users know it: `[STATUS] == 200`, `[BODY].data[0].id == 7`,
//! `len([BODY].items) > 0`, `[HEADER].content-type == pat(*json*)`,
//! `[CERTIFICATE_EXPIRATION] > 48h`, `[STATUS] == any(200, 204)`, plus JSONPath on the body
//! (`$.a.b[0] == x`).
//!
//! Conditions are parsed once ([`Condition::parse`], also used to validate monitors files) and
//! evaluated on every check against a [`Response`]. Each evaluation records the condition as
//! written, whether it held, and the value its left-hand side resolved to.
//!
//! Semantics: `==`/`!=` compare numerically when both sides are numbers and as text otherwise;
//! `<`, `<=`, `>`, `>=` need numbers (durations for `[CERTIFICATE_EXPIRATION]`, written `48h` or
//! as milliseconds). `[RESPONSE_TIME]` is in milliseconds. A left-hand side that does not resolve
//! (no such JSON field, no certificate) fails every operator.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use http::HeaderMap;
use vigil_schema::AssertionResult;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    text: String,
    function: Function,
    placeholder: Placeholder,
    op: Op,
    rhs: Rhs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    None,
    Len,
    Has,
}

#[derive(Debug, Clone, PartialEq)]
enum Placeholder {
    Status,
    ResponseTime,
    CertificateExpiration,
    Connected,
    Body(Vec<PathStep>),
    Header(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathStep {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Rhs {
    Literal(String),
    Pattern(String),
    Any(Vec<String>),
}

/// Why a condition does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// What a check observed, for conditions to look at.
#[derive(Debug)]
pub struct Response<'a> {
    /// Status code, if a response arrived.
    pub status: Option<u16>,
    /// Time the check took so far.
    pub response_time: Duration,
    /// Response headers.
    pub headers: &'a HeaderMap,
    /// The body read (up to the cap).
    pub body: &'a [u8],
    /// Time until the peer certificate expires (negative: expired), for HTTPS.
    pub certificate_expires_in_ms: Option<i64>,
    /// Whether a connection was established.
    pub connected: bool,
    json: OnceLock<Option<serde_json::Value>>,
}

impl<'a> Response<'a> {
    /// Bundles what a check observed.
    pub fn new(
        status: Option<u16>,
        response_time: Duration,
        headers: &'a HeaderMap,
        body: &'a [u8],
        certificate_expires_in_ms: Option<i64>,
    ) -> Self {
        Self {
            status,
            response_time,
            headers,
            body,
            certificate_expires_in_ms,
            connected: status.is_some(),
            json: OnceLock::new(),
        }
    }

    fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).ok())
            .as_ref()
    }
}

/// A resolved left-hand side.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(f64),
    Text(String),
    /// Milliseconds.
    Duration(i64),
}

impl Value {
    fn render(&self) -> String {
        match self {
            Value::Number(n) => format_number(*n),
            Value::Text(s) => s.clone(),
            Value::Duration(ms) => {
                let abs = Duration::from_secs(ms.unsigned_abs() / 1000);
                let sign = if *ms < 0 { "-" } else { "" };
                format!("{sign}{}", humantime::format_duration(abs))
            }
        }
    }

    fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Text(s) => s.trim().parse().ok(),
            Value::Duration(ms) => Some(*ms as f64),
        }
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

impl Condition {
    /// Parses a condition.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let err = |m: String| Err(ParseError(m));
        let (lhs, op, rhs) = split_operator(text).ok_or_else(|| {
            ParseError(format!(
                "expected `<left> <op> <right>` with one of ==, !=, <, <=, >, >=, got {text:?}"
            ))
        })?;
        let (lhs, rhs) = (lhs.trim(), rhs.trim());
        let (function, inner) = if let Some(inner) = strip_call(lhs, "len") {
            (Function::Len, inner)
        } else if let Some(inner) = strip_call(lhs, "has") {
            (Function::Has, inner)
        } else {
            (Function::None, lhs)
        };
        let placeholder = parse_placeholder(inner.trim())?;
        let rhs = if let Some(pattern) = strip_call(rhs, "pat") {
            Rhs::Pattern(pattern.trim().to_owned())
        } else if let Some(list) = strip_call(rhs, "any") {
            Rhs::Any(
                list.split(',')
                    .map(|v| unquote(v.trim()).to_owned())
                    .collect(),
            )
        } else if rhs.is_empty() {
            return err(format!("missing right-hand side in {text:?}"));
        } else {
            Rhs::Literal(unquote(rhs).to_owned())
        };
        if matches!(rhs, Rhs::Pattern(_) | Rhs::Any(_)) && !matches!(op, Op::Eq | Op::Ne) {
            return err(format!(
                "pat() and any() only work with == and !=, in {text:?}"
            ));
        }
        if let (Placeholder::CertificateExpiration, Rhs::Literal(v)) = (&placeholder, &rhs)
            && function == Function::None
            && parse_duration_ms(v).is_none()
        {
            return err(format!(
                "[CERTIFICATE_EXPIRATION] compares with a duration (`48h`), got {v:?}"
            ));
        }
        if function == Function::Has
            && !matches!(&rhs, Rhs::Literal(v) if v == "true" || v == "false")
        {
            return err(format!("has() compares with true or false, in {text:?}"));
        }
        if let Rhs::Literal(v) = &rhs
            && !matches!(op, Op::Eq | Op::Ne)
        {
            let numeric = v.parse::<f64>().is_ok()
                || (placeholder == Placeholder::CertificateExpiration
                    && parse_duration_ms(v).is_some());
            if !numeric {
                return err(format!(
                    "ordering operators need a number on the right, got {v:?}"
                ));
            }
        }
        Ok(Self {
            text: text.to_owned(),
            function,
            placeholder,
            op,
            rhs,
        })
    }

    /// The condition as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this condition looks at the status code (then it decides about the status
    /// instead of the default "≥ 400 fails").
    pub fn checks_status(&self) -> bool {
        self.placeholder == Placeholder::Status
    }

    /// Evaluates the condition.
    pub fn evaluate(&self, response: &Response<'_>) -> AssertionResult {
        let actual = self.resolve(response);
        let passed = actual.as_ref().is_some_and(|a| self.holds(a));
        AssertionResult {
            condition: self.text.clone(),
            passed,
            actual: actual.map(|a| a.render()),
        }
    }

    fn resolve(&self, r: &Response<'_>) -> Option<Value> {
        match self.function {
            Function::Has => Some(Value::Text(
                self.resolve_placeholder(r).is_some().to_string(),
            )),
            Function::Len => match &self.placeholder {
                Placeholder::Body(path) if path.is_empty() => {
                    Some(Value::Number(r.body.len() as f64))
                }
                Placeholder::Body(path) => {
                    let v = walk(r.json()?, path)?;
                    let n = match v {
                        serde_json::Value::Array(a) => a.len(),
                        serde_json::Value::Object(o) => o.len(),
                        serde_json::Value::String(s) => s.chars().count(),
                        other => other.to_string().chars().count(),
                    };
                    Some(Value::Number(n as f64))
                }
                _ => {
                    let v = self.resolve_placeholder(r)?;
                    Some(Value::Number(v.render().chars().count() as f64))
                }
            },
            Function::None => self.resolve_placeholder(r),
        }
    }

    fn resolve_placeholder(&self, r: &Response<'_>) -> Option<Value> {
        match &self.placeholder {
            Placeholder::Status => r.status.map(|s| Value::Number(f64::from(s))),
            Placeholder::ResponseTime => Some(Value::Number(r.response_time.as_millis() as f64)),
            Placeholder::CertificateExpiration => r.certificate_expires_in_ms.map(Value::Duration),
            Placeholder::Connected => Some(Value::Text(r.connected.to_string())),
            Placeholder::Header(name) => r
                .headers
                .get(name.as_str())
                .map(|v| Value::Text(String::from_utf8_lossy(v.as_bytes()).into_owned())),
            Placeholder::Body(path) if path.is_empty() => {
                Some(Value::Text(String::from_utf8_lossy(r.body).into_owned()))
            }
            Placeholder::Body(path) => Some(match walk(r.json()?, path)? {
                serde_json::Value::Number(n) => Value::Number(n.as_f64()?),
                serde_json::Value::String(s) => Value::Text(s.clone()),
                other => Value::Text(other.to_string()),
            }),
        }
    }

    fn holds(&self, actual: &Value) -> bool {
        let equal = |expected: &str| -> bool {
            match (actual, expected) {
                (Value::Duration(ms), e) => parse_duration_ms(e) == Some(*ms),
                (a, e) => match (a.as_number(), e.trim().parse::<f64>().ok()) {
                    (Some(x), Some(y)) => x == y,
                    _ => a.render() == e,
                },
            }
        };
        let matched = match &self.rhs {
            Rhs::Pattern(p) => glob(p, &actual.render()),
            Rhs::Any(values) => values.iter().any(|v| equal(v)),
            Rhs::Literal(v) => match self.op {
                Op::Eq | Op::Ne => equal(v),
                ordering => {
                    let expected = match actual {
                        Value::Duration(_) => parse_duration_ms(v).map(|ms| ms as f64),
                        _ => v.parse::<f64>().ok(),
                    };
                    let (Some(a), Some(e)) = (actual.as_number(), expected) else {
                        return false;
                    };
                    return match ordering {
                        Op::Lt => a < e,
                        Op::Le => a <= e,
                        Op::Gt => a > e,
                        _ => a >= e,
                    };
                }
            },
        };
        if self.op == Op::Ne { !matched } else { matched }
    }
}

/// Evaluates every condition in order.
pub fn evaluate_all(conditions: &[Condition], response: &Response<'_>) -> Vec<AssertionResult> {
    conditions.iter().map(|c| c.evaluate(response)).collect()
}

fn split_operator(text: &str) -> Option<(&str, Op, &str)> {
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            _ if depth == 0 => {
                let two = text.get(i..i + 2);
                let op = match two {
                    Some("==") => Some((Op::Eq, 2)),
                    Some("!=") => Some((Op::Ne, 2)),
                    Some("<=") => Some((Op::Le, 2)),
                    Some(">=") => Some((Op::Ge, 2)),
                    _ => match bytes[i] {
                        b'<' => Some((Op::Lt, 1)),
                        b'>' => Some((Op::Gt, 1)),
                        _ => None,
                    },
                };
                if let Some((op, len)) = op {
                    return Some((&text[..i], op, &text[i + len..]));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn strip_call<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    s.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

fn parse_placeholder(s: &str) -> Result<Placeholder, ParseError> {
    let fixed = [
        ("[STATUS]", Placeholder::Status),
        ("[RESPONSE_TIME]", Placeholder::ResponseTime),
        (
            "[CERTIFICATE_EXPIRATION]",
            Placeholder::CertificateExpiration,
        ),
        ("[CONNECTED]", Placeholder::Connected),
    ];
    for (name, placeholder) in fixed {
        if s == name {
            return Ok(placeholder);
        }
    }
    if let Some(name) = s.strip_prefix("[HEADER].") {
        if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ParseError(format!("invalid header name {name:?}")));
        }
        return Ok(Placeholder::Header(name.to_ascii_lowercase()));
    }
    if let Some(path) = s.strip_prefix("[BODY]") {
        return parse_path(path).map(Placeholder::Body);
    }
    if let Some(path) = s.strip_prefix('$') {
        return parse_path(path).map(Placeholder::Body);
    }
    Err(ParseError(format!(
        "unknown left-hand side {s:?}; expected [STATUS], [RESPONSE_TIME], [BODY]…, \
         [HEADER].name, [CERTIFICATE_EXPIRATION], [CONNECTED], $.json.path, len(…) or has(…)"
    )))
}

/// `.a.b[0]["c d"]` → steps.
fn parse_path(mut s: &str) -> Result<Vec<PathStep>, ParseError> {
    let original = s;
    let bad = |why: &str| Err(ParseError(format!("invalid path {original:?}: {why}")));
    let mut steps = Vec::new();
    while !s.is_empty() {
        if let Some(rest) = s.strip_prefix('.') {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return bad("empty key");
            }
            steps.push(PathStep::Key(rest[..end].to_owned()));
            s = &rest[end..];
        } else if let Some(rest) = s.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                return bad("unclosed [");
            };
            let inner = rest[..end].trim();
            if let Ok(index) = inner.parse::<usize>() {
                steps.push(PathStep::Index(index));
            } else if inner.len() >= 2
                && ((inner.starts_with('"') && inner.ends_with('"'))
                    || (inner.starts_with('\'') && inner.ends_with('\'')))
            {
                steps.push(PathStep::Key(inner[1..inner.len() - 1].to_owned()));
            } else {
                return bad("brackets hold an index or a quoted key");
            }
            s = &rest[end + 1..];
        } else {
            return bad("expected . or [");
        }
    }
    Ok(steps)
}

fn walk<'v>(mut value: &'v serde_json::Value, path: &[PathStep]) -> Option<&'v serde_json::Value> {
    for step in path {
        value = match step {
            PathStep::Key(k) => value.as_object()?.get(k)?,
            PathStep::Index(i) => value.as_array()?.get(*i)?,
        };
    }
    Some(value)
}

/// Milliseconds from `48h`, `1h 30m`, or a bare number of milliseconds.
fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    humantime::parse_duration(s)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

/// Glob with `*` (any run of characters) and `?` (one character).
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"status":"UP","data":[{"id":7,"name":"a b"}],"items":[1,2,3],
        "empty":[],"ratio":0.5,"ok":true,"nested":{"k":"v"}}"#;

    fn check(condition: &str, response: &Response<'_>) -> (bool, Option<String>) {
        let result = Condition::parse(condition)
            .unwrap_or_else(|e| panic!("{condition}: {e}"))
            .evaluate(response);
        assert_eq!(result.condition, condition);
        (result.passed, result.actual)
    }

    fn with<R>(f: impl FnOnce(&Response<'_>) -> R) -> R {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            "application/json; charset=utf-8".parse().unwrap(),
        );
        let response = Response::new(
            Some(200),
            Duration::from_millis(123),
            &headers,
            BODY.as_bytes(),
            Some(72 * 3600 * 1000),
        );
        f(&response)
    }

    /// (condition, passes, actual) for every operator and function, each passing and failing.
    const CASES: &[(&str, bool, Option<&str>)] = &[
        ("[STATUS] == 200", true, Some("200")),
        ("[STATUS] == 201", false, Some("200")),
        ("[STATUS] != 500", true, Some("200")),
        ("[STATUS] != 200", false, Some("200")),
        ("[STATUS] < 500", true, Some("200")),
        ("[STATUS] < 200", false, Some("200")),
        ("[STATUS] <= 200", true, Some("200")),
        ("[STATUS] <= 199", false, Some("200")),
        ("[STATUS] > 199", true, Some("200")),
        ("[STATUS] > 200", false, Some("200")),
        ("[STATUS] >= 200", true, Some("200")),
        ("[STATUS] >= 201", false, Some("200")),
        ("[STATUS] == any(201, 200)", true, Some("200")),
        ("[STATUS] == any(201, 204)", false, Some("200")),
        ("[STATUS] != any(500, 503)", true, Some("200")),
        ("[RESPONSE_TIME] < 300", true, Some("123")),
        ("[RESPONSE_TIME] < 100", false, Some("123")),
        ("[BODY].status == UP", true, Some("UP")),
        ("[BODY].status == DOWN", false, Some("UP")),
        ("[BODY].data[0].id == 7", true, Some("7")),
        ("[BODY].data[0].id == 8", false, Some("7")),
        ("[BODY].data[0][\"name\"] == \"a b\"", true, Some("a b")),
        ("[BODY].ratio >= 0.5", true, Some("0.5")),
        ("[BODY].ok == true", true, Some("true")),
        (
            "[BODY].nested == {\"k\":\"v\"}",
            true,
            Some("{\"k\":\"v\"}"),
        ),
        ("[BODY].missing == 1", false, None),
        ("[BODY].data[5].id == 7", false, None),
        ("len([BODY].items) > 0", true, Some("3")),
        ("len([BODY].empty) > 0", false, Some("0")),
        ("len([BODY].status) == 2", true, Some("2")),
        ("has([BODY].nested) == true", true, Some("true")),
        ("has([BODY].errors) == true", false, Some("false")),
        ("has([BODY].errors) == false", true, Some("false")),
        ("[BODY] == pat(*\"UP\"*)", true, None),
        ("[BODY] == pat(*healthy*)", false, None),
        ("[BODY] != pat(*healthy*)", true, None),
        (
            "[HEADER].content-type == pat(*json*)",
            true,
            Some("application/json; charset=utf-8"),
        ),
        (
            "[HEADER].Content-Type == pat(*xml*)",
            false,
            Some("application/json; charset=utf-8"),
        ),
        ("[HEADER].x-missing == a", false, None),
        ("[CERTIFICATE_EXPIRATION] > 48h", true, Some("3days")),
        ("[CERTIFICATE_EXPIRATION] > 96h", false, Some("3days")),
        ("[CERTIFICATE_EXPIRATION] < 259200001", true, Some("3days")),
        ("[CONNECTED] == true", true, Some("true")),
        ("$.status == UP", true, Some("UP")),
        ("$.data[0].id != 7", false, Some("7")),
        ("$.items[2] == 3", true, Some("3")),
    ];

    #[test]
    fn every_operator_passes_and_fails() {
        with(|r| {
            for &(condition, passes, actual) in CASES {
                let (passed, got) = check(condition, r);
                assert_eq!(passed, passes, "{condition}");
                if condition.starts_with("[BODY] ") {
                    assert_eq!(got.as_deref(), Some(BODY), "{condition}");
                } else {
                    assert_eq!(got.as_deref(), actual, "{condition}");
                }
            }
        });
    }

    #[test]
    fn missing_parts_fail() {
        let headers = HeaderMap::new();
        let r = Response::new(None, Duration::ZERO, &headers, b"not json", None);
        assert_eq!(check("[STATUS] == 200", &r), (false, None));
        assert_eq!(check("[CERTIFICATE_EXPIRATION] > 1h", &r), (false, None));
        assert_eq!(check("[BODY].a == 1", &r), (false, None));
        assert_eq!(
            check("[CONNECTED] == false", &r),
            (true, Some("false".into()))
        );
        assert_eq!(check("len([BODY]) == 8", &r), (true, Some("8".into())));
    }

    #[test]
    fn bad_conditions_say_why() {
        let cases = [
            ("[STATUS] 200", "expected `<left> <op> <right>`"),
            ("[STATUS] ==", "missing right-hand side"),
            ("[STAT] == 200", "unknown left-hand side"),
            ("[BODY].a..b == 1", "invalid path"),
            ("[BODY].a[x] == 1", "brackets hold an index"),
            ("[STATUS] < pat(2*)", "only work with == and !="),
            ("[STATUS] < abc", "ordering operators need a number"),
            (
                "[CERTIFICATE_EXPIRATION] > soon",
                "compares with a duration",
            ),
            ("has([BODY].a) == 1", "has() compares with true or false"),
        ];
        for (condition, why) in cases {
            let err = Condition::parse(condition).unwrap_err().to_string();
            assert!(err.contains(why), "{condition}: {err}");
        }
    }

    #[test]
    fn glob_matches() {
        assert!(glob("*json*", "application/json"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*", ""));
        assert!(!glob("*x", "abc"));
        assert!(glob("a*b*c", "aXXbYYc"));
    }

    #[test]
    fn status_conditions_are_recognised() {
        assert!(Condition::parse("[STATUS] < 500").unwrap().checks_status());
        assert!(!Condition::parse("[BODY] == x").unwrap().checks_status());
    }
}
