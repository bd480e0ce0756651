//! The assertion language, as Gatus users know it: `[STATUS] == 200`, `[BODY].data[0].id == 7`,
//! `len([BODY].items) > 0`, `[HEADER].content-type == pat(*json*)`,
//! `[CERTIFICATE_EXPIRATION] > 48h`, `[STATUS] == any(200, 204)`,
//! `[RESPONSE_TIME] < 1s`, `[BODY].used == [BODY].limit`, plus JSONPath on the body
//! (`$.a.b[0] == x`).
//!
//! Conditions are parsed once ([`Condition::parse`], also used to validate monitors files) and
//! evaluated on every check against a [`Response`]. Each evaluation records the condition as
//! written, whether it held, and the value its placeholder resolved to.
//!
//! # Semantics (Gatus's, where they overlap)
//! - Either side is a placeholder (`[STATUS]`, `[RESPONSE_TIME]` in ms, `[BODY]` with a path,
//!   `[HEADER].name`, `[CERTIFICATE_EXPIRATION]` in ms, `[CONNECTED]`, `[DNS_RCODE]`, `[IP]`;
//!   names in any case), a placeholder inside `len()` or `has()`, a literal, `pat(glob)` or
//!   `any(a, b, …)`; at least one side is a placeholder.
//! - `==`/`!=`: `pat()` and `any()` on either side; otherwise numbers compare as numbers
//!   (`0x1F`, `0o17`, `0b101` included) and everything else as text.
//! - `<`, `<=`, `>`, `>=` compare numbers; a duration (`1s`, `48h`, `1h30m`) counts as its
//!   milliseconds, so `[RESPONSE_TIME] < 1s` and `[CERTIFICATE_EXPIRATION] > 48h` work.
//! - `len()` of a JSON array or object is its number of elements, of anything else the length
//!   of its text; `has()` is whether the placeholder resolves.
//! - No certificate: `[CERTIFICATE_EXPIRATION]` is 0.
//!
//! `[BODY] matches schema` validates the body, parsed as JSON, against the monitor's
//! `body_schema` ([`Condition::bind_schema`]); a failure records the first violation.
//!
//! Where Vigil differs on purpose: a placeholder that does not resolve (no such JSON field or
//! header, no response) fails every operator, where Gatus compares the text
//! `… (INVALID)`; an unknown placeholder (`[STAUS]`), a condition without any placeholder, and an
//! ordering operator against text are errors when the monitor is applied rather than
//! conditions that always or never hold; numbers keep their fractions (`0.5 < 0.7` holds,
//! where Gatus truncates both to 0).

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use http::HeaderMap;
use vigil_schema::AssertionResult;

pub use self::extract::Extractor;
use self::parse::{parse_duration_ms, parse_number, parse_operand, split_operator};
use self::path::{PathStep, walk};
use self::schema::SchemaMatch;
use crate::glob::glob;

mod extract;
mod parse;
mod path;
mod schema;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    text: String,
    left: Operand,
    op: Op,
    right: Operand,
    /// `Some` for `[BODY] matches schema`.
    schema: Option<SchemaMatch>,
}

/// One side of a condition.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// A placeholder, maybe inside `len()` or `has()`.
    Placeholder(Function, Placeholder),
    Literal(String),
    Pattern(String),
    Any(Vec<String>),
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
    /// The DNS response code (`NOERROR`, `NXDOMAIN`, …) of a DNS check.
    DnsRcode,
    /// The address the check connected to.
    Ip,
    Body(Vec<PathStep>),
    /// A JSONPath (RFC 9535) with wildcards, filters, slices or descendants: a list of nodes.
    BodyQuery(Box<serde_json_path::JsonPath>),
    Header(String),
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

/// Why a condition does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }
}

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
    /// The response code of a DNS check (`NOERROR`, `NXDOMAIN`, …).
    pub dns_rcode: Option<String>,
    /// The address connected to (or, for DNS, the resolver's).
    pub ip: Option<std::net::IpAddr>,
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
            dns_rcode: None,
            ip: None,
            json: OnceLock::new(),
        }
    }

    /// A check that never got a connection: every placeholder but `[CONNECTED]` (false),
    /// `[RESPONSE_TIME]` and `[CERTIFICATE_EXPIRATION]` (0) is missing.
    pub fn unconnected(response_time: Duration, headers: &'a HeaderMap) -> Self {
        let mut r = Self::new(None, response_time, headers, b"", None);
        r.connected = false;
        r
    }

    fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).ok())
            .as_ref()
    }
}

/// A resolved operand.
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

    /// As a number for `==`: numbers, and text written as one.
    fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Text(s) => parse_number(s),
            Value::Duration(ms) => Some(*ms as f64),
        }
    }

    /// As a number for an ordering: numbers, and text written as a number or a duration (ms).
    fn as_ordered(&self) -> Option<f64> {
        match self {
            Value::Text(s) => parse_number(s).or_else(|| parse_duration_ms(s).map(|ms| ms as f64)),
            other => other.as_number(),
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
        if vigil_schema::is_schema_condition(text) {
            return Ok(Self {
                text: text.to_owned(),
                left: Operand::Placeholder(Function::None, Placeholder::Body(Vec::new())),
                op: Op::Eq,
                right: Operand::Literal("schema".to_owned()),
                schema: Some(SchemaMatch::default()),
            });
        }
        let err = |m: String| Err(ParseError(m));
        let (left, op, right) = split_operator(text).ok_or_else(|| {
            ParseError(format!(
                "expected `<left> <op> <right>` with one of ==, !=, <, <=, >, >=, got {text:?}"
            ))
        })?;
        let (left, right) = (left.trim(), right.trim());
        if left.is_empty() {
            return err(format!("missing left-hand side in {text:?}"));
        }
        if right.is_empty() {
            return err(format!("missing right-hand side in {text:?}"));
        }
        let (left, right) = (parse_operand(left)?, parse_operand(right)?);
        let placeholders = [&left, &right]
            .iter()
            .filter(|o| matches!(o, Operand::Placeholder(..)))
            .count();
        if placeholders == 0 {
            return err(format!(
                "no placeholder in {text:?}; one side is [STATUS], [RESPONSE_TIME], [BODY]…, \
                 [HEADER].name, [CERTIFICATE_EXPIRATION], [CONNECTED], [DNS_RCODE], [IP], $.json.path, len(…) or has(…)"
            ));
        }
        let matcher = |o: &Operand| matches!(o, Operand::Pattern(_) | Operand::Any(_));
        if (matcher(&left) || matcher(&right)) && !matches!(op, Op::Eq | Op::Ne) {
            return err(format!(
                "pat() and any() only work with == and !=, in {text:?}"
            ));
        }
        if matcher(&left) && matcher(&right) {
            return err(format!(
                "pat() or any() compare with a placeholder, in {text:?}"
            ));
        }
        for (this, other) in [(&left, &right), (&right, &left)] {
            let Operand::Placeholder(function, placeholder) = this else {
                continue;
            };
            let Operand::Literal(v) = other else {
                continue;
            };
            if *function == Function::Has && v != "true" && v != "false" {
                return err(format!("has() compares with true or false, in {text:?}"));
            }
            if *function == Function::None
                && *placeholder == Placeholder::CertificateExpiration
                && parse_duration_ms(v).is_none()
            {
                return err(format!(
                    "[CERTIFICATE_EXPIRATION] compares with a duration (`48h`), got {v:?}"
                ));
            }
            if !matches!(op, Op::Eq | Op::Ne)
                && parse_number(v).is_none()
                && parse_duration_ms(v).is_none()
            {
                return err(format!(
                    "ordering operators need a number or a duration, got {v:?}"
                ));
            }
        }
        Ok(Self {
            text: text.to_owned(),
            left,
            op,
            right,
            schema: None,
        })
    }

    /// Whether this is `[BODY] matches schema`, which needs [`Condition::bind_schema`].
    pub fn needs_schema(&self) -> bool {
        self.schema.is_some()
    }

    /// Gives `[BODY] matches schema` the monitor's compiled `body_schema`; other conditions
    /// ignore it.
    pub fn bind_schema(&mut self, validator: std::sync::Arc<jsonschema::Validator>) {
        if let Some(schema) = &mut self.schema {
            schema.bind(validator);
        }
    }

    /// The condition as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this condition looks at the status code (then it decides about the status
    /// instead of the default "≥ 400 fails").
    pub fn checks_status(&self) -> bool {
        [&self.left, &self.right]
            .iter()
            .any(|o| matches!(o, Operand::Placeholder(_, Placeholder::Status)))
    }

    /// Whether this condition looks at `[CONNECTED]` (it can then hold without a connection).
    pub fn checks_connected(&self) -> bool {
        [&self.left, &self.right]
            .iter()
            .any(|o| matches!(o, Operand::Placeholder(_, Placeholder::Connected)))
    }

    /// Whether this condition looks at `[DNS_RCODE]` (a DNS check's response code then does
    /// not fail it by itself).
    pub fn checks_rcode(&self) -> bool {
        [&self.left, &self.right]
            .iter()
            .any(|o| matches!(o, Operand::Placeholder(_, Placeholder::DnsRcode)))
    }

    /// Whether this condition looks at `[BODY]` (a gRPC health check's serving status then
    /// does not fail it by itself).
    pub fn checks_body(&self) -> bool {
        [&self.left, &self.right].iter().any(|o| {
            matches!(
                o,
                Operand::Placeholder(_, Placeholder::Body(_) | Placeholder::BodyQuery(_))
            )
        })
    }

    /// Evaluates the condition.
    pub fn evaluate(&self, response: &Response<'_>) -> AssertionResult {
        if let Some(schema) = &self.schema {
            let (passed, actual) = schema.check(response.json(), response.connected);
            return AssertionResult {
                condition: self.text.clone(),
                passed,
                actual,
            };
        }
        let left = resolve(&self.left, response);
        let right = resolve(&self.right, response);
        // What is reported: the value of the first placeholder.
        let actual = match &self.left {
            Operand::Placeholder(..) => &left,
            _ => &right,
        };
        let passed = match (&left, &right) {
            (Some(l), Some(r)) => self.holds(l, r),
            _ => false,
        };
        AssertionResult {
            condition: self.text.clone(),
            passed,
            actual: actual.as_ref().map(Value::render),
        }
    }

    fn holds(&self, left: &Value, right: &Value) -> bool {
        let matched = match (&self.left, &self.right) {
            (Operand::Pattern(p), _) => glob(p, &right.render()),
            (_, Operand::Pattern(p)) => glob(p, &left.render()),
            (Operand::Any(options), _) => options.iter().any(|o| equal(right, o)),
            (_, Operand::Any(options)) => options.iter().any(|o| equal(left, o)),
            _ => match self.op {
                Op::Eq | Op::Ne => equal_values(left, right),
                ordering => {
                    let (Some(a), Some(b)) = (left.as_ordered(), right.as_ordered()) else {
                        return false;
                    };
                    return match ordering {
                        Op::Lt => a < b,
                        Op::Le => a <= b,
                        Op::Gt => a > b,
                        _ => a >= b,
                    };
                }
            },
        };
        if self.op == Op::Ne { !matched } else { matched }
    }
}

/// Whether `value` equals the literal `expected`.
fn equal(value: &Value, expected: &str) -> bool {
    equal_values(value, &Value::Text(expected.to_owned()))
}

fn equal_values(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Duration(ms), Value::Text(t)) | (Value::Text(t), Value::Duration(ms)) => {
            parse_duration_ms(t) == Some(*ms)
        }
        _ => match (a.as_number(), b.as_number()) {
            (Some(x), Some(y)) => x == y,
            _ => a.render() == b.render(),
        },
    }
}

/// The value of an operand (`None`: a placeholder that does not resolve).
fn resolve(operand: &Operand, r: &Response<'_>) -> Option<Value> {
    match operand {
        Operand::Placeholder(function, placeholder) => apply(*function, placeholder, r),
        Operand::Literal(v) => Some(Value::Text(v.clone())),
        // Compared in `holds`.
        Operand::Pattern(_) | Operand::Any(_) => Some(Value::Text(String::new())),
    }
}

fn apply(function: Function, placeholder: &Placeholder, r: &Response<'_>) -> Option<Value> {
    match function {
        Function::Has => Some(Value::Text(
            resolve_placeholder(placeholder, r).is_some().to_string(),
        )),
        Function::Len => {
            let n = match placeholder {
                Placeholder::Body(path) => match r.json().and_then(|j| walk(j, path)) {
                    Some(serde_json::Value::Array(a)) => a.len(),
                    Some(serde_json::Value::Object(o)) => o.len(),
                    Some(serde_json::Value::String(s)) => s.chars().count(),
                    Some(other) => other.to_string().chars().count(),
                    None if path.is_empty() => String::from_utf8_lossy(r.body).chars().count(),
                    None => return None,
                },
                Placeholder::BodyQuery(query) => query.query(r.json()?).len(),
                _ => resolve_placeholder(placeholder, r)?
                    .render()
                    .chars()
                    .count(),
            };
            Some(Value::Number(n as f64))
        }
        Function::None => resolve_placeholder(placeholder, r),
    }
}

fn resolve_placeholder(placeholder: &Placeholder, r: &Response<'_>) -> Option<Value> {
    match placeholder {
        Placeholder::Status => r.status.map(|s| Value::Number(f64::from(s))),
        Placeholder::ResponseTime => Some(Value::Number(r.response_time.as_millis() as f64)),
        Placeholder::CertificateExpiration => {
            Some(Value::Duration(r.certificate_expires_in_ms.unwrap_or(0)))
        }
        Placeholder::Connected => Some(Value::Text(r.connected.to_string())),
        Placeholder::DnsRcode => r.dns_rcode.clone().map(Value::Text),
        Placeholder::Ip => r.ip.map(|ip| Value::Text(ip.to_string())),
        Placeholder::Header(name) => r
            .headers
            .get(name.as_str())
            .map(|v| Value::Text(String::from_utf8_lossy(v.as_bytes()).into_owned())),
        Placeholder::Body(path) if path.is_empty() => r
            .connected
            .then(|| Value::Text(String::from_utf8_lossy(r.body).into_owned())),
        Placeholder::Body(path) => json_value(walk(r.json()?, path)?),
        Placeholder::BodyQuery(query) => match query.query(r.json()?).all().as_slice() {
            [] => None,
            [one] => json_value(one),
            many => Some(Value::Text(
                serde_json::Value::Array(many.iter().map(|&v| v.clone()).collect()).to_string(),
            )),
        },
    }
}

/// A JSON value as a condition sees it: numbers as numbers, strings as their text, anything
/// else as its JSON text.
fn json_value(v: &serde_json::Value) -> Option<Value> {
    Some(match v {
        serde_json::Value::Number(n) => Value::Number(n.as_f64()?),
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    })
}

/// Evaluates every condition in order.
pub fn evaluate_all(conditions: &[Condition], response: &Response<'_>) -> Vec<AssertionResult> {
    conditions.iter().map(|c| c.evaluate(response)).collect()
}

#[cfg(test)]
mod tests;
