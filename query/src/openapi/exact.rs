//! What the served OpenAPI document states beyond what utoipa derives: the real range of
//! unsigned integers, closed objects (the specs' decoders refuse unknown members), and the
//! syntax of durations, instants and matchers wherever the decoders check it.

/// utoipa declares Rust's `u32` as `format: int32` with `minimum: 0`, which OpenAPI reads as
/// at most 2^31 − 1; states the real range (`format: int64`, `maximum: 4294967295`). Narrower
/// unsigned members (`u16`, `u8`) look the same, so they state their `maximum` themselves.
pub(super) fn unsigned_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let integer = match map.get("type") {
                Some(Value::String(t)) => t == "integer",
                Some(Value::Array(types)) => types.iter().any(|t| t == "integer"),
                _ => false,
            };
            let unsigned = map
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| m >= 0.0);
            if integer && unsigned && map.get("format").is_some_and(|f| f == "int32") {
                map.insert("format".into(), "int64".into());
                map.entry("maximum").or_insert_with(|| u32::MAX.into());
            }
            map.values_mut().for_each(unsigned_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned_integers),
        _ => {}
    }
}

/// Schemas whose objects take members they do not list (async-graphql ignores unknown members
/// of a GraphQL request).
pub(super) const OPEN_SCHEMAS: [&str; 1] = ["GraphQLRequest"];

/// A duration as the specs' decoders read it (humantime): numbers with units, `30s`,
/// `1h 30m`, `3days`.
pub const DURATION_PATTERN: &str = concat!(
    "^[0-9]{1,9} ?(ns|nsec|us|usec|ms|msec|s|sec|secs|second|seconds|m|min|mins|minute|minutes",
    "|h|hr|hrs|hour|hours|d|day|days|w|week|weeks|M|month|months|y|year|years)",
    "( ?[0-9]{1,9} ?(ns|nsec|us|usec|ms|msec|s|sec|secs|second|seconds|m|min|mins|minute|minutes",
    "|h|hr|hrs|hour|hours|d|day|days|w|week|weeks|M|month|months|y|year|years))*$"
);

/// An RFC 3339 instant of a calendar day that exists in every year (February 29 is left out),
/// as the specs' decoders read it.
pub const RFC3339_PATTERN: &str = concat!(
    "^[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)",
    "|02-(0[1-9]|1[0-9]|2[0-8]))T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?",
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
);

/// Members of request and response objects that hold a duration or an instant, by name (a
/// string member of that name; `above` is a number in most conditions and is left alone
/// there).
const DURATION_MEMBERS: [&str; 15] = [
    "for",
    "keep_firing_for",
    "above",
    "recover_below",
    "window",
    "within",
    "period",
    "threshold",
    "long",
    "short",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "after",
    "duration",
];
const INSTANT_MEMBERS: [&str; 2] = ["starts_at", "ends_at"];

/// Whether `schema` is a string (or a string or null).
fn is_string(schema: &serde_json::Value) -> bool {
    match schema.get("type") {
        Some(serde_json::Value::String(t)) => t == "string",
        Some(serde_json::Value::Array(types)) => types.iter().any(|t| t == "string"),
        _ => false,
    }
}

/// States what the decoders check: every object that lists its members is closed
/// (`additionalProperties: false`, as the specs' decoders refuse unknown fields), as is every
/// member-less variant of a one-of (`{"console": {}}`); every `matchers` list states the
/// matcher syntax; durations and instants state theirs.
pub(super) fn exact_objects(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), false.into());
            }
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                for (name, member) in properties.iter_mut() {
                    let pattern = if DURATION_MEMBERS.contains(&name.as_str()) {
                        DURATION_PATTERN
                    } else if INSTANT_MEMBERS.contains(&name.as_str()) {
                        RFC3339_PATTERN
                    } else if name == "matchers" {
                        if let Some(Value::Object(items)) = member.get_mut("items") {
                            items.insert("pattern".into(), vigil_schema::MATCHER_PATTERN.into());
                        }
                        continue;
                    } else {
                        continue;
                    };
                    if is_string(member)
                        && let Value::Object(member) = member
                    {
                        member.insert("pattern".into(), pattern.into());
                    }
                }
            }
            if let Some(Value::Array(variants)) = map.get_mut("oneOf") {
                for variant in variants {
                    let Some(Value::Object(properties)) = variant.get_mut("properties") else {
                        continue;
                    };
                    for body in properties.values_mut() {
                        if let Value::Object(body) = body
                            && body.get("type").is_some_and(|t| t == "object")
                            && !body.contains_key("properties")
                            && !body.contains_key("additionalProperties")
                        {
                            body.insert("additionalProperties".into(), false.into());
                        }
                    }
                }
            }
            map.values_mut().for_each(exact_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(exact_objects),
        _ => {}
    }
}
