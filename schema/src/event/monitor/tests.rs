//! Monitor spec tests: validation of every field, naming the field; serde round trips.

use super::*;

fn spec() -> MonitorSpec {
    serde_json::from_value(serde_json::json!({
        "id": "checkout-api",
        "name": "Checkout API",
        "url": "https://api.example.com/health",
    }))
    .unwrap()
}

#[test]
fn defaults_are_filled_in() {
    let s = spec();
    assert_eq!(s.method, HttpMethod::Get);
    assert_eq!(s.interval, Duration::from_secs(60));
    assert_eq!(s.timeout, Duration::from_secs(10));
    assert!(s.follow_redirects && s.tls_verify && s.enabled);
    assert_eq!(s.auth, Auth::None);
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn validation_names_every_bad_field() {
    let mut s = spec();
    s.id = "Checkout API".into();
    s.interval = Duration::ZERO;
    s.url = "ftp://x".into();
    s.headers.insert("Bad Header".into(), "v".into());
    let errors = s.validate().unwrap_err();
    let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(rendered.len(), 4, "{rendered:?}");
    assert!(rendered[0].starts_with("id: must be 1–64 characters"));
    assert_eq!(
        rendered[1],
        "url: must start with http://, https://, tcp://, tls://, dns://, ws://, wss://, icmp://, grpc:// or grpcs://, got \"ftp://x\""
    );
    assert_eq!(
        rendered[2],
        "headers.Bad Header: is not a valid header name"
    );
    assert_eq!(rendered[3], "interval: must be ≥ 1s, got 0s");
    assert_eq!(
        errors[3].clone().within("monitors[3]").to_string(),
        "monitors[3].interval: must be ≥ 1s, got 0s"
    );
}

#[test]
fn every_string_and_list_is_bounded() {
    let fields = |s: &MonitorSpec| -> Vec<String> {
        s.validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    };
    let long = |n: usize| "a".repeat(n);
    // At the limits: accepted.
    let mut s = spec();
    s.url = format!("https://x.example/{}", long(MAX_URL - 18));
    s.headers.insert("x-a".into(), long(MAX_VALUE));
    s.body = Some(long(MAX_BODY));
    s.tags = (0..MAX_ITEMS).map(|i| format!("t{i}")).collect();
    s.assertions = vec![format!("[BODY] == {}", long(MAX_VALUE - 10))];
    s.auth = Auth::Bearer {
        token: long(MAX_VALUE),
    };
    assert_eq!((s.url.len(), s.assertions[0].len()), (MAX_URL, MAX_VALUE));
    assert_eq!(s.validate(), Ok(()));
    // One past each: refused, naming the field.
    type Change<'a> = Box<dyn Fn(&mut MonitorSpec) + 'a>;
    let cases: Vec<(&str, Change<'_>)> = vec![
        ("url", Box::new(|s| s.url.push('a'))),
        (
            "headers.x-a",
            Box::new(|s| {
                s.headers.insert("x-a".into(), long(MAX_VALUE + 1));
            }),
        ),
        (
            "headers",
            Box::new(|s| {
                s.headers.insert(long(MAX_HEADER_NAME + 1), "v".into());
            }),
        ),
        (
            "headers",
            Box::new(|s| {
                s.headers = (0..=MAX_HEADERS)
                    .map(|i| (format!("x-{i}"), "v".into()))
                    .collect();
            }),
        ),
        ("body", Box::new(|s| s.body = Some(long(MAX_BODY + 1)))),
        ("tags", Box::new(|s| s.tags.push("one-more".into()))),
        (
            "regions",
            Box::new(|s| {
                s.regions = (0..=MAX_ITEMS).map(|i| format!("r{i}")).collect();
            }),
        ),
        ("assertions[0]", Box::new(|s| s.assertions[0].push('a'))),
        (
            "assertions",
            Box::new(|s| {
                s.assertions = vec!["[STATUS] == 200".into(); MAX_ITEMS + 1];
            }),
        ),
        (
            "auth.token",
            Box::new(|s| {
                s.auth = Auth::Bearer {
                    token: long(MAX_VALUE + 1),
                };
            }),
        ),
        (
            "auth.password",
            Box::new(|s| {
                s.auth = Auth::Basic {
                    username: "u".into(),
                    password: long(MAX_VALUE + 1),
                };
            }),
        ),
        (
            "auth.scopes",
            Box::new(|s| {
                s.auth = Auth::Oauth2ClientCredentials {
                    token_url: "https://x.example/token".into(),
                    client_id: "c".into(),
                    client_secret: "s".into(),
                    scopes: vec!["s".into(); MAX_ITEMS + 1],
                };
            }),
        ),
    ];
    for (field, change) in cases {
        let mut bad = s.clone();
        change(&mut bad);
        assert_eq!(fields(&bad), [field], "{field}");
    }
}

#[test]
fn yaml_with_auth_and_durations() {
    let yaml = r#"
id: orders
name: Orders
url: https://orders.internal/${ENV}/health
method: POST
interval: 15s
timeout: 2s 500ms
regions: [eu-west, us-east]
auth:
  type: api_key
  name: X-Api-Key
  value: ${ORDERS_KEY}
  in: query
assertions:
  - "[STATUS] == 200"
"#;
    let s: MonitorSpec = serde_norway::from_str(yaml).unwrap();
    assert_eq!(s.interval, Duration::from_secs(15));
    assert_eq!(s.timeout, Duration::from_millis(2500));
    assert!(s.runs_in("us-east") && !s.runs_in("ap-south"));
    assert_eq!(
        s.auth,
        Auth::ApiKey {
            name: "X-Api-Key".into(),
            value: "${ORDERS_KEY}".into(),
            location: ApiKeyLocation::Query
        }
    );
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn dependencies_are_slugs_not_itself_and_bounded() {
    let mut s = spec();
    assert!(
        !serde_json::to_string(&s).unwrap().contains("depends_on"),
        "an empty list is not written"
    );
    s.depends_on = vec!["db-main".into(), "checkout-api".into(), "Bad".into()];
    let rendered: Vec<String> = s
        .validate()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(rendered.len(), 2, "{rendered:?}");
    assert_eq!(
        rendered[0],
        "depends_on[1]: a monitor cannot depend on itself"
    );
    assert!(rendered[1].starts_with("depends_on[2]: must be 1–64 characters"));
    s.depends_on = (0..=MAX_DEPENDS_ON).map(|i| format!("m{i}")).collect();
    let errors = s.validate().unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "depends_on: must name at most 32 monitors"
    );
    s.depends_on = vec!["db-main".into()];
    assert_eq!(s.validate(), Ok(()));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["depends_on"], serde_json::json!(["db-main"]));
    assert_eq!(serde_json::from_value::<MonitorSpec>(json).unwrap(), s);
}

#[test]
fn unknown_fields_are_rejected() {
    let err = serde_json::from_value::<MonitorSpec>(serde_json::json!({
        "id": "a", "name": "a", "url": "http://a", "intervall": "5s"
    }))
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown field `intervall`"),
        "{err}"
    );
}

#[test]
fn body_schema_is_compiled_and_needed_by_its_assertion() {
    let mut s = spec();
    s.assertions = vec!["[body]  matches schema".into()];
    let errors = s.validate().unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "assertions[0]: `[BODY] matches schema` needs the monitor's `body_schema`"
    );

    s.body_schema = Some(serde_json::json!({ "type": "object", "minProperties": "two" }));
    let errors = s.validate().unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "body_schema");
    assert!(
        errors[0].reason.starts_with("is not a valid JSON Schema"),
        "{}",
        errors[0].reason
    );

    // A reference to another document is never fetched.
    s.body_schema = Some(serde_json::json!({ "$ref": "https://example.com/schema.json" }));
    assert_eq!(s.validate().unwrap_err()[0].field, "body_schema");
    s.body_schema = Some(serde_json::json!("object"));
    assert_eq!(
        s.validate().unwrap_err()[0].reason,
        "must be a JSON Schema: an object or a boolean"
    );
    s.body_schema = Some(serde_json::json!({
        "type": "array",
        "items": { "$ref": "#/$defs/pet" },
        "$defs": { "pet": { "type": "object", "required": ["id"] } },
    }));
    assert_eq!(s.validate(), Ok(()));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["body_schema"]["$defs"]["pet"]["required"][0], "id");
    assert_eq!(serde_json::from_value::<MonitorSpec>(json).unwrap(), s);

    let big = "x".repeat(MAX_BODY_SCHEMA);
    s.body_schema = Some(serde_json::json!({ "description": big }));
    assert!(
        s.validate().unwrap_err()[0]
            .to_string()
            .starts_with("body_schema: must be at most 524288 bytes")
    );
}

#[test]
fn the_schema_condition_is_recognised_in_any_spacing_and_case() {
    assert!(is_schema_condition("[BODY] matches schema"));
    assert!(is_schema_condition("  [Body]\tmatches   schema "));
    assert!(!is_schema_condition("[BODY] matches schemas"));
    assert!(!is_schema_condition("[BODY].a matches schema"));
    assert!(!is_schema_condition("[BODY] == schema"));
}

#[test]
fn a_step_cannot_use_the_schema_condition() {
    let s: MonitorSpec = serde_json::from_value(serde_json::json!({
        "id": "flow", "name": "Flow", "url": "https://api.example.com",
        "body_schema": { "type": "object" },
        "steps": [{ "name": "a", "url": "/a", "assertions": ["[BODY] matches schema"] }],
    }))
    .unwrap();
    let errors = s.validate().unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "steps[0].assertions[0]");
}
