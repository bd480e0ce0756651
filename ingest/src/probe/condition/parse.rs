//! The condition notation read: the operator, each side (placeholder, `len()`/`has()`,
//! literal, `pat()`, `any()`), and numbers and durations as Gatus writes them.

use super::path::body_path;
use super::{Function, Op, Operand, ParseError, Placeholder};

pub(super) fn split_operator(text: &str) -> Option<(&str, Op, &str)> {
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
    let (head, rest) = s.split_at_checked(name.len())?;
    if !head.eq_ignore_ascii_case(name) {
        return None;
    }
    rest.strip_prefix('(')?.strip_suffix(')')
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// One side of a condition.
pub(super) fn parse_operand(s: &str) -> Result<Operand, ParseError> {
    if let Some(pattern) = strip_call(s, "pat") {
        return Ok(Operand::Pattern(pattern.trim().to_owned()));
    }
    if let Some(list) = strip_call(s, "any") {
        let options = list.split(',').map(|v| unquote(v.trim()).to_owned());
        return Ok(Operand::Any(options.collect()));
    }
    for (name, function) in [("len", Function::Len), ("has", Function::Has)] {
        if let Some(inner) = strip_call(s, name) {
            return Ok(Operand::Placeholder(
                function,
                parse_placeholder(inner.trim())?,
            ));
        }
    }
    if looks_like_placeholder(s) || s.starts_with("$.") || s.starts_with("$[") || s == "$" {
        return Ok(Operand::Placeholder(Function::None, parse_placeholder(s)?));
    }
    Ok(Operand::Literal(unquote(s).to_owned()))
}

/// Whether `s` starts with a bracketed name (`[STATUS]`, `[body].a`), rather than, say, a JSON
/// array written as a literal.
fn looks_like_placeholder(s: &str) -> bool {
    let Some((name, _)) = s.strip_prefix('[').and_then(|rest| rest.split_once(']')) else {
        return false;
    };
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
}

/// A placeholder; its name in any case.
fn parse_placeholder(s: &str) -> Result<Placeholder, ParseError> {
    let fixed = [
        ("[STATUS]", Placeholder::Status),
        ("[RESPONSE_TIME]", Placeholder::ResponseTime),
        (
            "[CERTIFICATE_EXPIRATION]",
            Placeholder::CertificateExpiration,
        ),
        ("[CONNECTED]", Placeholder::Connected),
        ("[DNS_RCODE]", Placeholder::DnsRcode),
        ("[IP]", Placeholder::Ip),
    ];
    for (name, placeholder) in fixed {
        if s.eq_ignore_ascii_case(name) {
            return Ok(placeholder);
        }
    }
    let after = |prefix: &str| {
        let (head, rest) = s.split_at_checked(prefix.len())?;
        head.eq_ignore_ascii_case(prefix).then_some(rest)
    };
    if let Some(name) = after("[HEADER].") {
        if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ParseError(format!("invalid header name {name:?}")));
        }
        return Ok(Placeholder::Header(name.to_ascii_lowercase()));
    }
    if let Some(path) = after("[BODY]") {
        return body_path(path);
    }
    if let Some(path) = s.strip_prefix('$') {
        return body_path(path);
    }
    Err(ParseError(format!(
        "unknown placeholder {s:?}; expected [STATUS], [RESPONSE_TIME], [BODY]…, \
         [HEADER].name, [CERTIFICATE_EXPIRATION], [CONNECTED], [DNS_RCODE], [IP], $.json.path, len(…) or has(…)"
    )))
}

/// A number written in decimal (with a fraction or an exponent), or an integer in hex (`0x`),
/// octal (`0o`) or binary (`0b`), with an optional sign.
pub(super) fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let radix = |prefix: [&str; 2], radix: u32| {
        let rest = digits
            .strip_prefix(prefix[0])
            .or_else(|| digits.strip_prefix(prefix[1]))?;
        let rest = rest.replace('_', "");
        i64::from_str_radix(&rest, radix).ok().map(|n| n as f64)
    };
    let n = radix(["0x", "0X"], 16)
        .or_else(|| radix(["0o", "0O"], 8))
        .or_else(|| radix(["0b", "0B"], 2));
    match n {
        Some(n) => Some(if negative { -n } else { n }),
        None => s.parse::<f64>().ok().filter(|n| n.is_finite()),
    }
}

/// Milliseconds from `48h`, `1h30m`, `1h 30m`, `1.5s`, `300ms`, or a bare number of
/// milliseconds.
pub(super) fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let ms = match humantime::parse_duration(s) {
        Ok(d) => i64::try_from(d.as_millis()).ok()?,
        Err(_) => fractional_duration_ms(s)?,
    };
    Some(if negative { -ms } else { ms })
}

/// Durations with fractions, as Go writes them (`1.5h`, `0.5s`): each number and unit.
fn fractional_duration_ms(mut s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !s.is_empty() {
        let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = s[..end].parse().ok()?;
        let rest = &s[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let ms = match &rest[..unit_end] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return None,
        };
        total += n * ms;
        s = &rest[unit_end..];
    }
    Some(total as i64)
}
