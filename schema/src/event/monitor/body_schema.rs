//! `body_schema`: the JSON Schema a response body must match where one of the monitor's
//! assertions says `[BODY] matches schema`.
//!
//! The schema is self-contained: its `$ref`s point inside it (`#/$defs/…`), and nothing is
//! fetched to resolve one, so a schema naming a remote document is refused when the monitor is
//! written. Its draft is the one its `$schema` names, 2020-12 without one; `format` is an
//! annotation (not asserted) whatever the draft, as 2020-12 says. `pattern`s run with a backtracking limit, so a
//! hostile pattern fails its check instead of stalling the runner.

use serde_json::Value;

use super::{FieldError, MonitorSpec, too_long};

/// Longest `body_schema`, as compact JSON (bytes).
pub const MAX_BODY_SCHEMA: usize = 512 * 1024;

/// The assertion that validates the body against `body_schema`.
pub const SCHEMA_CONDITION: &str = "[BODY] matches schema";

/// Whether an assertion is `[BODY] matches schema` (placeholder in any case, any spacing).
pub fn is_schema_condition(text: &str) -> bool {
    let mut words = text.split_whitespace();
    matches!(
        (words.next(), words.next(), words.next(), words.next()),
        (Some(body), Some("matches"), Some("schema"), None) if body.eq_ignore_ascii_case("[body]")
    )
}

/// Compiles a body schema into a validator (no remote references, bounded patterns).
pub fn compile_body_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    if !matches!(schema, Value::Object(_) | Value::Bool(_)) {
        return Err("must be a JSON Schema: an object or a boolean".to_owned());
    }
    jsonschema::options()
        .should_validate_formats(false)
        .with_pattern_options(
            jsonschema::PatternOptions::fancy_regex()
                .backtrack_limit(100_000)
                .size_limit(1 << 20),
        )
        .build(schema)
        .map_err(|e| format!("is not a valid JSON Schema: {e}"))
}

/// The errors of a monitor's `body_schema` and of the assertions that use it.
pub(super) fn validate(spec: &MonitorSpec, errors: &mut Vec<FieldError>) {
    if let Some(schema) = &spec.body_schema {
        let len = serde_json::to_vec(schema).map_or(usize::MAX, |v| v.len());
        if len > MAX_BODY_SCHEMA {
            errors.push(too_long("body_schema", len, MAX_BODY_SCHEMA));
        } else if let Err(reason) = compile_body_schema(schema) {
            errors.push(FieldError::new("body_schema", reason));
        }
    }
    for (i, condition) in spec.assertions.iter().enumerate() {
        if is_schema_condition(condition) && spec.body_schema.is_none() {
            errors.push(FieldError::new(
                format!("assertions[{i}]"),
                "`[BODY] matches schema` needs the monitor's `body_schema`",
            ));
        }
    }
    for (i, step) in spec.steps.iter().enumerate() {
        for (j, condition) in step.assertions.iter().enumerate() {
            if is_schema_condition(condition) {
                errors.push(FieldError::new(
                    format!("steps[{i}].assertions[{j}]"),
                    "`[BODY] matches schema` checks a single-request monitor's response \
                     against its `body_schema`; a step cannot use it",
                ));
            }
        }
    }
}
