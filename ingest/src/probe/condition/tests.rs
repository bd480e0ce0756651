//! Condition tests: every operator, and the parts of Gatus's semantics Vigil follows.

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

/// JSONPath queries (RFC 9535): wildcards, filters, slices and descendants select node lists.
const JSONPATH: &[(&str, bool, Option<&str>)] = &[
    ("len($.items[*]) == 3", true, Some("3")),
    ("len([BODY].items[?@ > 1]) == 2", true, Some("2")),
    ("len($.empty[*]) == 0", true, Some("0")),
    ("$.items[?@ > 2] == 3", true, Some("3")),
    ("$.items[1:] == [2,3]", true, Some("[2,3]")),
    ("$.data[?@.id == 7].name == a b", true, Some("a b")),
    ("$.data[?@.id == 8].name == a b", false, None),
    ("$..k == v", true, Some("v")),
    ("$.*.k == v", true, Some("v")),
    ("has($.data[?@.name == 'a b']) == true", true, Some("true")),
    ("has($.data[?@.name == 'z']) == false", true, Some("false")),
    ("$.items[?@ < 3] == pat(*1*)", true, Some("[1,2]")),
];

#[test]
fn jsonpath_queries_select_node_lists() {
    with(|r| {
        for &(condition, passes, actual) in JSONPATH {
            let (passed, got) = check(condition, r);
            assert_eq!((passed, got.as_deref()), (passes, actual), "{condition}");
        }
    });
    let err = Condition::parse("$.items[?@ >] == 1")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("invalid JSONPath"), "{err}");
}

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
    // No certificate counts as 0, as in Gatus.
    assert_eq!(
        check("[CERTIFICATE_EXPIRATION] > 1h", &r),
        (false, Some("0s".into()))
    );
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
        ("[STAT] == 200", "unknown placeholder"),
        ("200 == 200", "no placeholder"),
        ("pat(2*) == any(200)", "no placeholder"),
        ("[BODY].a. == 1", "invalid path"),
        ("[BODY].a[*]. == 1", "invalid JSONPath"),
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

/// Gatus's semantics where they go beyond one placeholder against one literal.
const GATUS: &[(&str, bool, Option<&str>)] = &[
    // Durations in numeric comparisons.
    ("[RESPONSE_TIME] < 1s", true, Some("123")),
    ("[RESPONSE_TIME] > 100ms", true, Some("123")),
    ("[RESPONSE_TIME] < 0.1s", false, Some("123")),
    ("[RESPONSE_TIME] <= 1h30m", true, Some("123")),
    ("[CERTIFICATE_EXPIRATION] > 1.5h", true, Some("3days")),
    // Integers in hex, octal and binary.
    ("[STATUS] == 0xC8", true, Some("200")),
    ("[STATUS] < 0x1F4", true, Some("200")),
    ("[BODY].data[0].id == 0o7", true, Some("7")),
    ("[BODY].data[0].id == 0b111", true, Some("7")),
    ("[BODY].data[0].id != 0b110", true, Some("7")),
    // Functions and literals on the left.
    ("any(200, 429) == [STATUS]", true, Some("200")),
    ("any(201, 429) == [STATUS]", false, Some("200")),
    ("200 == [STATUS]", true, Some("200")),
    ("300 > [RESPONSE_TIME]", true, Some("123")),
    ("100 > [RESPONSE_TIME]", false, Some("123")),
    (
        "pat(*json*) == [HEADER].content-type",
        true,
        Some("application/json; charset=utf-8"),
    ),
    ("UP == [BODY].status", true, Some("UP")),
    // len() of JSON arrays and objects.
    ("len([BODY]) == 7", true, Some("7")),
    ("len([BODY].nested) == 1", true, Some("1")),
    ("len([BODY].data) == 1", true, Some("1")),
    // Placeholders on both sides.
    ("[BODY].data[0].id > [BODY].items[2]", true, Some("7")),
    ("[BODY].items[0] == [BODY].items[1]", false, Some("1")),
    ("[BODY].status == [BODY].status", true, Some("UP")),
    ("len([BODY].items) == [BODY].items[2]", true, Some("3")),
    ("[BODY].missing == [BODY].status", false, None),
    // Names in any case.
    ("[status] == 200", true, Some("200")),
    ("[Response_Time] < 300", true, Some("123")),
    ("[body].status == UP", true, Some("UP")),
    (
        "[header].Content-Type == pat(*json*)",
        true,
        Some("application/json; charset=utf-8"),
    ),
    ("LEN([body].items) == 3", true, Some("3")),
    // JSON written on the right is a literal, not a placeholder.
    ("[BODY].items == [1,2,3]", true, Some("[1,2,3]")),
    ("[BODY].empty == []", true, Some("[]")),
];

#[test]
fn gatus_semantics() {
    with(|r| {
        for &(condition, passes, actual) in GATUS {
            let (passed, got) = check(condition, r);
            assert_eq!((passed, got.as_deref()), (passes, actual), "{condition}");
        }
    });
}

#[test]
fn a_check_without_a_connection_still_evaluates() {
    let headers = HeaderMap::new();
    let r = Response::unconnected(Duration::from_millis(40), &headers);
    for (condition, passes, actual) in [
        ("[CONNECTED] == false", true, Some("false")),
        ("[CONNECTED] == true", false, Some("false")),
        ("[STATUS] == 200", false, None),
        ("[STATUS] != 200", false, None),
        ("[BODY].a == 1", false, None),
        ("has([BODY].a) == false", true, Some("false")),
        ("[RESPONSE_TIME] < 1s", true, Some("40")),
        ("[CERTIFICATE_EXPIRATION] == 0", true, Some("0s")),
    ] {
        assert_eq!(
            check(condition, &r),
            (passes, actual.map(String::from)),
            "{condition}"
        );
    }
    assert!(
        Condition::parse("[CONNECTED] == false")
            .unwrap()
            .checks_connected()
    );
    assert!(
        !Condition::parse("[STATUS] == 200")
            .unwrap()
            .checks_connected()
    );
}

#[test]
fn numbers_in_every_notation() {
    for (text, n) in [
        ("0x1F", 31.0),
        ("0X1f", 31.0),
        ("0o17", 15.0),
        ("0b101", 5.0),
        ("-0x10", -16.0),
        ("0x_ff", 255.0),
        ("1e3", 1000.0),
        ("-2.5", -2.5),
        ("+7", 7.0),
    ] {
        assert_eq!(parse_number(text), Some(n), "{text}");
    }
    for text in ["", "0x", "0xZZ", "abc", "inf", "NaN", "1s"] {
        assert_eq!(parse_number(text), None, "{text}");
    }
    for (text, ms) in [
        ("1s", 1_000),
        ("1.5h", 5_400_000),
        ("1h30m", 5_400_000),
        ("1h 30m", 5_400_000),
        ("300ms", 300),
        ("-2s", -2_000),
        ("250", 250),
    ] {
        assert_eq!(parse_duration_ms(text), Some(ms), "{text}");
    }
    for text in ["", "soon", "1x", "1.5"] {
        assert_eq!(parse_duration_ms(text), None, "{text}");
    }
}

fn schema_check(schema: serde_json::Value, body: &str) -> (bool, Option<String>) {
    let spec: vigil_schema::MonitorSpec = serde_json::from_value(serde_json::json!({
        "id": "m", "name": "m", "url": "http://127.0.0.1/",
        "assertions": ["[BODY] matches schema"],
        "body_schema": schema,
    }))
    .unwrap();
    let crate::probe::Assertions(conditions) = crate::probe::Assertions::of(&spec);
    let condition = conditions[0].as_ref().unwrap();
    let headers = HeaderMap::new();
    let response = Response::new(Some(200), Duration::ZERO, &headers, body.as_bytes(), None);
    let result = condition.evaluate(&response);
    (result.passed, result.actual)
}

#[test]
fn body_matches_schema() {
    let pets = serde_json::json!({
        "type": "array",
        "items": { "$ref": "#/$defs/pet" },
        "$defs": {
            "pet": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {
                    "id": { "type": "integer", "format": "int64" },
                    "name": { "type": "string" },
                    "tag": { "type": ["string", "null"] },
                },
            },
        },
    });
    assert_eq!(
        schema_check(pets.clone(), r#"[{"id":1,"name":"rex","tag":null}]"#),
        (true, Some("valid".into()))
    );
    assert_eq!(
        schema_check(
            pets.clone(),
            r#"[{"id":1,"name":"rex"},{"id":"2","name":"tom"},{"id":3}]"#
        ),
        (
            false,
            Some(r#"/1/id: "2" is not of type "integer" (and 1 more)"#.into())
        )
    );
    assert_eq!(
        schema_check(pets.clone(), "<html>"),
        (false, Some("body is not JSON".into()))
    );
    assert_eq!(
        schema_check(pets, r#"{"id":1}"#),
        (false, Some(r#"/: {"id":1} is not of type "array""#.into()))
    );
    // `format` is an annotation, as in 2020-12; a pattern is asserted.
    let formatted = serde_json::json!({
        "type": "object",
        "properties": {
            "at": { "type": "string", "format": "date-time" },
            "sku": { "type": "string", "pattern": "^[A-Z]{3}-\\d+$" },
        },
    });
    assert!(schema_check(formatted.clone(), r#"{"at":"yesterday","sku":"ABC-12"}"#).0);
    assert!(!schema_check(formatted, r#"{"sku":"abc"}"#).0);
}

#[test]
fn the_schema_condition_without_a_schema_fails_with_the_reason() {
    let spec: vigil_schema::MonitorSpec = serde_json::from_value(serde_json::json!({
        "id": "m", "name": "m", "url": "http://127.0.0.1/",
        "assertions": ["[BODY] matches schema", "[STATUS] == 200"],
    }))
    .unwrap();
    let crate::probe::Assertions(conditions) = crate::probe::Assertions::of(&spec);
    assert_eq!(
        conditions[0].as_ref().unwrap_err().to_string(),
        "[BODY] matches schema: needs the monitor's `body_schema`"
    );
    assert!(conditions[1].is_ok());
    // Parsed alone (as a monitors file is checked), it parses and fails unbound.
    let unbound = Condition::parse("[BODY] matches schema").unwrap();
    assert!(unbound.needs_schema() && unbound.checks_body());
    with(|r| {
        assert_eq!(
            unbound.evaluate(r).actual.as_deref(),
            Some("no body_schema to match")
        );
    });
}
