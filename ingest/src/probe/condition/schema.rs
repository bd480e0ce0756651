//! `[BODY] matches schema`: the response body, parsed as JSON, validated against the monitor's
//! `body_schema` by a JSON Schema validator compiled once per spec.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// Longest observed value recorded for a failed match (bytes).
const MAX_ACTUAL: usize = 512;

/// The validator a `[BODY] matches schema` condition uses; `None` until bound to the
/// monitor's schema (a condition parsed alone has none and fails saying so).
#[derive(Clone, Default)]
pub(super) struct SchemaMatch(Option<Arc<jsonschema::Validator>>);

impl SchemaMatch {
    pub(super) fn bind(&mut self, validator: Arc<jsonschema::Validator>) {
        self.0 = Some(validator);
    }

    /// Whether `body` matches, and what was observed: the first violation (with its place in
    /// the body as a JSON pointer) and how many there were, or why the body is not JSON.
    pub(super) fn check(&self, body: Option<&Value>, connected: bool) -> (bool, Option<String>) {
        let Some(validator) = &self.0 else {
            return (false, Some("no body_schema to match".to_owned()));
        };
        let Some(body) = body else {
            let why = if connected {
                "body is not JSON"
            } else {
                "no response"
            };
            return (false, Some(why.to_owned()));
        };
        let mut errors = validator.iter_errors(body);
        let Some(first) = errors.next() else {
            return (true, Some("valid".to_owned()));
        };
        let more = errors.count();
        let place = first.instance_path().as_str();
        let place = if place.is_empty() { "/" } else { place };
        let mut actual = format!("{place}: {first}");
        truncate(&mut actual, MAX_ACTUAL);
        if more > 0 {
            actual.push_str(&format!(" (and {more} more)"));
        }
        (false, Some(actual))
    }
}

impl fmt::Debug for SchemaMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "SchemaMatch(bound)"
        } else {
            "SchemaMatch(unbound)"
        })
    }
}

/// Two conditions are equal as text; the validator is the spec's.
impl PartialEq for SchemaMatch {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
}
