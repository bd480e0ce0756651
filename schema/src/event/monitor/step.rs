//! Multi-step API checks: a monitor with `steps` runs them in order, each an HTTP request with
//! its own assertions, and values taken from one response feed later requests as
//! `${steps.STEP.VALUE}` (a login, then a call with its token).
//!
//! `VALUE` is a name the step extracts (`extract:`), or straight from its response: `status`,
//! `body`, `body.PATH` (a path as in `[BODY].PATH`) or `header.NAME`. Only earlier steps can be
//! referenced; the check fails at the first failing step and says which.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    FieldError, HttpMethod, MAX_BODY, MAX_HEADER_NAME, MAX_HEADERS, MAX_ITEMS, MAX_URL, MAX_VALUE,
    check_slug, is_token_byte, too_long, too_many,
};
use crate::egress::{Reference, references};

/// Most steps one monitor may have.
pub const MAX_STEPS: usize = 16;

/// Longest extraction regex.
pub(crate) const MAX_REGEX: usize = 1024;

/// Compiles an extraction regex, its compiled size bounded.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
}

/// Names a step's `extract` may not take: they read the response itself.
const RESERVED: [&str; 3] = ["status", "body", "header"];

/// One request of a multi-step check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct StepSpec {
    /// A slug unique within the monitor; later steps refer to it as `${steps.NAME.…}`.
    pub name: String,
    /// HTTP method.
    #[serde(default)]
    pub method: HttpMethod,
    /// An `http(s)://` URL, or a path (`/login`, `orders?page=1`) resolved against the
    /// monitor's URL.
    pub url: String,
    /// Request headers, added to (and overriding) the monitor's.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// Conditions on this step's response; without any, a status below 400 passes.
    #[serde(default)]
    pub assertions: Vec<String>,
    /// Values later steps may use as `${steps.NAME.KEY}`.
    #[serde(default)]
    pub extract: BTreeMap<String, Extract>,
}

/// Where an extracted value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Extract {
    /// A placeholder, as in conditions: `[BODY].token`, `$.items[0].id`, `[HEADER].location`,
    /// `[STATUS]`, `len([BODY].items)`.
    Placeholder(String),
    /// The first capture group (or, without groups, the match) of `regex` in the placeholder's
    /// value.
    Regex {
        /// The placeholder read.
        from: String,
        /// The regular expression (Rust `regex` syntax).
        regex: String,
    },
}

impl Extract {
    /// The placeholder it reads.
    pub fn from(&self) -> &str {
        match self {
            Extract::Placeholder(from) | Extract::Regex { from, .. } => from,
        }
    }
}

/// Whether `name` may name an extracted value: 1–64 of `A-Z a-z 0-9 _ -`, not a reserved name.
fn check_extract_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("is not a valid name (1–64 of A-Z, a-z, 0-9, '_' or '-')".into());
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "is reserved ({} read the response itself)",
            RESERVED.join(", ")
        ));
    }
    Ok(())
}

/// The scheme of an absolute step URL (`https` in `https://…`); `None` for a relative one
/// (`/users?next=https://…` included).
pub fn step_url_scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once("://")?;
    let mut bytes = scheme.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    valid.then_some(scheme)
}

/// Whether `url` is a step's URL: absolute `http(s)://`, or a reference relative to the
/// monitor's URL.
fn check_step_url(url: &str) -> Result<(), String> {
    if url.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if url.chars().any(char::is_whitespace) {
        return Err(format!("must not contain whitespace, got {url:?}"));
    }
    if url.contains('\\') {
        return Err(format!(
            "must not contain a backslash (URL parsers read it as a slash), got {url:?}"
        ));
    }
    // `http:host/x` or `mailto:x`: a scheme without `//` is not a path either.
    let first = url.split(['/', '?', '#']).next().unwrap_or_default();
    if first.contains(':') && step_url_scheme(url).is_none() && !first.contains("${") {
        return Err(format!(
            "an absolute URL is http://host/… or https://host/…, a relative one a path, got \
             {url:?}"
        ));
    }
    match step_url_scheme(url) {
        Some(scheme)
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            Ok(())
        }
        Some(scheme) => Err(format!(
            "a step is an HTTP request: http:// or https://, or a path, got {scheme}://"
        )),
        None if url.starts_with("//") => Err(format!(
            "a scheme-relative URL would leave the monitor's origin unsaid, got {url:?}"
        )),
        None => Ok(()),
    }
}

/// Checks `steps` (the monitor's URL being `base`): names, URLs, headers, bodies, assertions'
/// sizes, extraction names, and every `${steps.…}` reference naming an earlier step and what
/// it offers. Errors name their field (`steps[1].headers.authorization`).
pub(crate) fn validate_steps(steps: &[StepSpec], base: &str, errors: &mut Vec<FieldError>) {
    if steps.is_empty() {
        return;
    }
    if steps.len() > MAX_STEPS {
        errors.push(too_many("steps", steps.len(), MAX_STEPS));
        return;
    }
    let scheme = base.split_once("://").map_or("", |(s, _)| s);
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        errors.push(FieldError::new(
            "url",
            "a monitor with steps has an http:// or https:// URL, the base of relative step URLs",
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        let at = |field: &str| format!("steps[{i}].{field}");
        if let Err(reason) = check_slug(&step.name) {
            errors.push(FieldError::new(at("name"), reason));
        } else if steps[..i].iter().any(|s| s.name == step.name) {
            errors.push(FieldError::new(
                at("name"),
                format!("another step is already named {:?}", step.name),
            ));
        }
        if step.url.len() > MAX_URL {
            errors.push(too_long(at("url"), step.url.len(), MAX_URL));
        } else if let Err(reason) = check_step_url(&step.url) {
            errors.push(FieldError::new(at("url"), reason));
        }
        if step.headers.len() > MAX_HEADERS {
            errors.push(too_many(at("headers"), step.headers.len(), MAX_HEADERS));
        }
        for (name, value) in step.headers.iter().take(MAX_HEADERS) {
            if name.len() > MAX_HEADER_NAME {
                errors.push(too_long(at("headers"), name.len(), MAX_HEADER_NAME));
            } else if name.is_empty() || !name.bytes().all(is_token_byte) {
                errors.push(FieldError::new(
                    at(&format!("headers.{name}")),
                    "is not a valid header name",
                ));
            } else if value.len() > MAX_VALUE {
                errors.push(too_long(
                    at(&format!("headers.{name}")),
                    value.len(),
                    MAX_VALUE,
                ));
            }
        }
        if let Some(body) = &step.body
            && body.len() > MAX_BODY
        {
            errors.push(too_long(at("body"), body.len(), MAX_BODY));
        }
        if step.assertions.len() > MAX_ITEMS {
            errors.push(too_many(at("assertions"), step.assertions.len(), MAX_ITEMS));
        }
        for (j, condition) in step.assertions.iter().enumerate().take(MAX_ITEMS) {
            if condition.trim().is_empty() {
                errors.push(FieldError::new(
                    at(&format!("assertions[{j}]")),
                    "must not be empty",
                ));
            } else if condition.len() > MAX_VALUE {
                errors.push(too_long(
                    at(&format!("assertions[{j}]")),
                    condition.len(),
                    MAX_VALUE,
                ));
            }
        }
        if step.extract.len() > MAX_ITEMS {
            errors.push(too_many(at("extract"), step.extract.len(), MAX_ITEMS));
        }
        for (name, extract) in step.extract.iter().take(MAX_ITEMS) {
            let field = at(&format!("extract.{name}"));
            if let Err(reason) = check_extract_name(name) {
                errors.push(FieldError::new(field, reason));
            } else if extract.from().trim().is_empty() {
                errors.push(FieldError::new(field, "names no placeholder to read"));
            } else if extract.from().len() > MAX_VALUE {
                errors.push(too_long(field, extract.from().len(), MAX_VALUE));
            } else if let Extract::Regex { regex, .. } = extract {
                if regex.len() > MAX_REGEX {
                    errors.push(too_long(field, regex.len(), MAX_REGEX));
                } else if let Err(e) = compile_regex(regex) {
                    errors.push(FieldError::new(field, format!("invalid regex: {e}")));
                }
            }
        }
        let mut texts = vec![(at("url"), step.url.as_str())];
        texts.extend(
            step.headers
                .iter()
                .map(|(n, v)| (at(&format!("headers.{n}")), v.as_str())),
        );
        if let Some(body) = &step.body {
            texts.push((at("body"), body));
        }
        for (field, text) in texts {
            if let Err(reason) = check_step_references(text, &steps[..i]) {
                errors.push(FieldError::new(field, reason));
            }
        }
    }
}

/// Whether every `${steps.STEP.VALUE}` in `text` names one of `earlier` and a value it offers.
fn check_step_references(text: &str, earlier: &[StepSpec]) -> Result<(), String> {
    // Syntax errors are reported by the egress check, with the other references.
    let Ok(found) = references(text) else {
        return Ok(());
    };
    for reference in found {
        let Reference::Step { step, value } = reference else {
            continue;
        };
        let Some(source) = earlier.iter().find(|s| s.name == step) else {
            return Err(format!(
                "${{steps.{step}.{value}}} names no earlier step (steps run in order; a step \
                 can use the ones before it)"
            ));
        };
        let direct = value == "status"
            || value == "body"
            || value.strip_prefix("body.").is_some_and(|p| !p.is_empty())
            || value.strip_prefix("header.").is_some_and(|h| !h.is_empty());
        if !direct && !source.extract.contains_key(value) {
            return Err(format!(
                "${{steps.{step}.{value}}}: step {step:?} extracts no {value:?} (it offers \
                 status, body, body.PATH, header.NAME{})",
                source
                    .extract
                    .keys()
                    .map(|k| format!(", {k}"))
                    .collect::<String>()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_relative_step_urls() {
        assert_eq!(step_url_scheme("https://a.example/x"), Some("https"));
        assert_eq!(step_url_scheme("HTTP://a.example"), Some("HTTP"));
        assert_eq!(step_url_scheme("/login?next=https://b.example/"), None);
        assert_eq!(step_url_scheme("users/${steps.a.id}"), None);
        assert_eq!(step_url_scheme("${steps.a.next}"), None);
        assert!(check_step_url("/point?to=http://b.example/").is_ok());
        assert!(check_step_url("ftp://a.example/").is_err());
        assert!(check_step_url("//a.example/x").is_err());
        assert!(check_step_url("\\\\127.0.0.1/x").is_err());
        assert!(check_step_url("/\\10.0.0.1/").is_err());
        assert!(check_step_url("http:127.0.0.1/").is_err());
        assert!(check_step_url("orders?at=12:00").is_ok());
        assert!(check_step_url("${steps.a.next}").is_ok());
        assert!(check_step_url("").is_err());
        assert_eq!(check_extract_name("token"), Ok(()));
        assert!(check_extract_name("header").is_err());
        assert!(check_extract_name("a.b").is_err());
    }
}
