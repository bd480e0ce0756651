use std::collections::BTreeMap;
use std::time::Duration;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::Timestamp;
use crate::event::*;

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (0i64..4_102_444_800_000).prop_map(Timestamp)
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _./:{}$-]{0,24}"
}

fn finite() -> impl Strategy<Value = f64> {
    -1e12f64..1e12
}

fn assertions(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<AssertionResult>> {
    vec(
        (text(), any::<bool>(), option::of(text())).prop_map(|(condition, passed, actual)| {
            AssertionResult {
                condition,
                passed,
                actual,
            }
        }),
        len,
    )
}

fn step() -> impl Strategy<Value = StepResult> {
    (
        (text(), text(), text(), option::of(100u16..600)),
        prop::sample::select(Outcome::ALL.to_vec()),
        option::of(text()),
        (option::of(any::<u64>()), any::<u64>()),
        option::of(any::<u64>()),
        assertions(0..3),
    )
        .prop_map(
            |((name, method, url, status), outcome, error, (connect, total), size, asserts)| {
                StepResult {
                    name,
                    method,
                    url,
                    status_code: status,
                    outcome,
                    error,
                    timings: Timings {
                        connect_us: connect,
                        total_us: total,
                        ..Timings::default()
                    },
                    response_size: size,
                    assertions: asserts,
                }
            },
        )
}

fn probe() -> impl Strategy<Value = ProbeResult> {
    (probe_without_steps(), vec(step(), 0..3)).prop_map(|(mut probe, steps)| {
        probe.steps = steps;
        probe
    })
}

fn probe_without_steps() -> impl Strategy<Value = ProbeResult> {
    (
        (
            any::<u128>(),
            text(),
            text(),
            text(),
            timestamp(),
            timestamp(),
            text(),
            text(),
        ),
        (
            option::of(100u16..600),
            prop::sample::select(Outcome::ALL.to_vec()),
            option::of(text()),
            (
                option::of(any::<u64>()),
                option::of(any::<u64>()),
                option::of(any::<u64>()),
                option::of(any::<u64>()),
                any::<u64>(),
            ),
            option::of(any::<u64>()),
            assertions(0..4),
            option::of(timestamp()),
        ),
    )
        .prop_map(
            |((id, monitor, region, agent, sched, at, method, url), rest)| {
                let (
                    status,
                    outcome,
                    error,
                    (dns, connect, tls, ttfb, total),
                    size,
                    asserts,
                    cert,
                ) = rest;
                ProbeResult {
                    event_id: Uuid::from_u128(id),
                    monitor_id: monitor,
                    region,
                    agent,
                    scheduled_at: sched,
                    event_time: at,
                    method,
                    url,
                    status_code: status,
                    outcome,
                    error,
                    timings: Timings {
                        dns_us: dns,
                        connect_us: connect,
                        tls_us: tls,
                        ttfb_us: ttfb,
                        total_us: total,
                    },
                    response_size: size,
                    assertions: asserts,
                    tls_cert_expiry: cert,
                    steps: Vec::new(),
                }
            },
        )
}

proptest! {
    /// A version 1 probe result (before `steps`) still decodes, with no steps.
    #[test]
    fn version_1_probe_results_decode(probe in probe_without_steps()) {
        let current = encode(&probe).unwrap();
        // Version 1 is the same layout without the trailing `steps` (an empty list: one 0).
        prop_assert_eq!(current[2], 2);
        prop_assert_eq!(current.last(), Some(&0));
        let mut v1 = current[..current.len() - 1].to_vec();
        v1[2] = 1;
        prop_assert_eq!(decode::<ProbeResult>(&v1).unwrap(), probe);
    }
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        Just(Auth::None),
        (text(), text()).prop_map(|(username, password)| Auth::Basic { username, password }),
        text().prop_map(|token| Auth::Bearer { token }),
        (text(), text(), any::<bool>()).prop_map(|(name, value, q)| Auth::ApiKey {
            name,
            value,
            location: if q {
                ApiKeyLocation::Query
            } else {
                ApiKeyLocation::Header
            },
        }),
        (text(), text(), text(), vec(text(), 0..3)).prop_map(
            |(token_url, client_id, client_secret, scopes)| Auth::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scopes
            }
        ),
    ]
}

fn monitor() -> impl Strategy<Value = MonitorSpec> {
    (
        (
            text(),
            text(),
            vec(text(), 0..3),
            text(),
            btree_map(text(), text(), 0..3),
        ),
        (
            option::of(text()),
            auth(),
            1u64..86_400_000,
            1u64..300_000,
            vec(text(), 0..3),
        ),
        (any::<[bool; 4]>(), vec(text(), 0..3), 0usize..7),
    )
        .prop_map(|(a, b, c)| {
            let (id, name, tags, url, headers) = a;
            let (body, auth, interval, timeout, regions) = b;
            let (
                [
                    follow_redirects,
                    tls_verify,
                    enabled,
                    allow_insecure_redirects,
                ],
                assertions,
                method,
            ) = c;
            let methods = [
                HttpMethod::Get,
                HttpMethod::Head,
                HttpMethod::Post,
                HttpMethod::Put,
                HttpMethod::Patch,
                HttpMethod::Delete,
                HttpMethod::Options,
            ];
            MonitorSpec {
                id,
                name,
                tags,
                url,
                method: methods[method],
                headers,
                body,
                auth,
                interval: Duration::from_millis(interval),
                timeout: Duration::from_millis(timeout),
                regions,
                follow_redirects,
                allow_insecure_redirects,
                tls_verify,
                assertions,
                enabled,
                depends_on: Vec::new(),
                steps: Vec::new(),
                body_schema: None,
            }
        })
        .prop_flat_map(|spec| {
            (vec(step_spec(), 0..3), option::of(body_schema())).prop_map(
                move |(steps, body_schema)| MonitorSpec {
                    steps,
                    body_schema,
                    ..spec.clone()
                },
            )
        })
}

/// A small JSON Schema: an object whose required field has a type, maybe with a bound.
fn body_schema() -> impl Strategy<Value = serde_json::Value> {
    ("[a-z]{1,8}", 0usize..4, option::of(-1000i64..1000)).prop_map(|(field, ty, minimum)| {
        let ty = ["string", "integer", "number", "boolean"][ty];
        let mut property = serde_json::json!({ "type": ty });
        if let Some(minimum) = minimum {
            property["minimum"] = minimum.into();
        }
        serde_json::json!({
            "type": "object",
            "required": [field],
            "properties": { field.clone(): property },
        })
    })
}

fn step_spec() -> impl Strategy<Value = StepSpec> {
    (
        (text(), text(), btree_map(text(), text(), 0..2)),
        (option::of(text()), vec(text(), 0..2)),
        btree_map(
            text(),
            prop_oneof![
                text().prop_map(Extract::Placeholder),
                (text(), text()).prop_map(|(from, regex)| Extract::Regex { from, regex }),
            ],
            0..3,
        ),
    )
        .prop_map(
            |((name, url, headers), (body, assertions), extract)| StepSpec {
                name,
                method: HttpMethod::Post,
                url,
                headers,
                body,
                assertions,
                extract,
            },
        )
}

fn window() -> impl Strategy<Value = WindowSummary> {
    (
        (
            text(),
            text(),
            timestamp(),
            timestamp(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        ),
        (
            finite(),
            btree_map(text(), any::<u64>(), 0..4),
            any::<[u64; 5]>(),
        ),
        (any::<u64>(), any::<u64>(), any::<[f64; 12]>(), any::<u64>()),
        (
            finite(),
            vec((any::<i32>(), any::<u64>()), 0..50),
            any::<u64>(),
        ),
        option::of((finite(), finite(), finite(), text())),
    )
        .prop_map(|(a, b, c, d, e)| {
            let (monitor_id, region, window_start, window_end, version, count, ok_count) = a;
            let (availability, errors, [s1, s2, s3, s4, s5]) = b;
            let (total_min_us, total_max_us, f, assertion_failures) = c;
            let (alpha, buckets, zero_count) = d;
            let f = f.map(|x| if x.is_finite() { x } else { 0.0 });
            WindowSummary {
                monitor_id,
                region,
                window_start,
                window_end,
                version,
                count,
                ok_count,
                availability,
                errors,
                status_1xx: s1,
                status_2xx: s2,
                status_3xx: s3,
                status_4xx: s4,
                status_5xx: s5,
                total_min_us,
                total_max_us,
                total_mean_us: f[0],
                p50_us: f[1],
                p75_us: f[2],
                p90_us: f[3],
                p95_us: f[4],
                p99_us: f[5],
                p999_us: f[6],
                dns_mean_us: f[7],
                connect_mean_us: f[8],
                tls_mean_us: f[9],
                ttfb_mean_us: f[10],
                ttfb_p95_us: f[11],
                assertion_failures,
                sketch: SketchData {
                    alpha,
                    keys: buckets.iter().map(|b| b.0).collect(),
                    counts: buckets.iter().map(|b| b.1).collect(),
                    zero_count,
                },
                anomaly: e.map(|(latency, errors, combined, reason)| AnomalyScores {
                    latency,
                    errors,
                    combined,
                    reason,
                }),
            }
        })
}

fn alert() -> impl Strategy<Value = AlertTransition> {
    let mut kinds = AlertKind::ALL.to_vec();
    kinds.push(AlertKind::ChannelDisabled);
    let states = vec![AlertState::Ok, AlertState::Pending, AlertState::Firing];
    (
        (any::<u128>(), text(), text(), option::of(text())),
        (
            prop::sample::select(kinds),
            prop::sample::select(states.clone()),
            prop::sample::select(states),
        ),
        (timestamp(), finite(), finite(), text()),
    )
        .prop_map(
            |((id, rule_id, monitor_id, region), (kind, from, to), rest)| {
                let (at, value, threshold, message) = rest;
                AlertTransition {
                    transition_id: Uuid::from_u128(id),
                    rule_id,
                    monitor_id,
                    region,
                    kind,
                    from,
                    to,
                    at,
                    value,
                    threshold,
                    severity: crate::Severity::Critical,
                    labels: [("team".to_owned(), "payments".to_owned())].into(),
                    message,
                }
            },
        )
}

/// Encoded, decoded, and also decoded from the bare-JSON form.
fn round_trip<E: Event + PartialEq + std::fmt::Debug>(event: &E) -> Result<(), TestCaseError> {
    let bytes = encode(event).unwrap();
    prop_assert_eq!(bytes[0], MAGIC);
    prop_assert_eq!(&decode::<E>(&bytes).unwrap(), event);
    let json = serde_json::to_vec(event).unwrap();
    prop_assert_eq!(&decode::<E>(&json).unwrap(), event);
    Ok(())
}

proptest! {
    #[test]
    fn probe_result_round_trips(event in probe()) { round_trip(&event)?; }

    #[test]
    fn monitor_spec_round_trips(event in monitor()) { round_trip(&event)?; }

    #[test]
    fn window_summary_round_trips(event in window()) { round_trip(&event)?; }

    #[test]
    fn alert_transition_round_trips(event in alert()) { round_trip(&event)?; }

    #[test]
    fn garbage_never_panics(bytes in vec(any::<u8>(), 0..64)) {
        // Only values that start like an envelope or a JSON object can decode at all.
        let plausible = matches!(bytes.first(), Some(&MAGIC | &b'{'));
        prop_assert!(decode::<ProbeResult>(&bytes).is_err() || plausible);
        drop(decode::<MonitorSpec>(&bytes));
    }
}

#[test]
fn notification_events_round_trip_as_json() {
    let channel: ChannelSpec = serde_json::from_value(serde_json::json!({
        "id": "hooks",
        "kind": {"webhook": {"url": "https://x.test/h", "secret": "${secret:HOOK}"}},
        "title": "[{{state}}] {{rule}}",
    }))
    .unwrap();
    let silence: SilenceSpec = serde_json::from_value(serde_json::json!({
        "id": "deploy", "matchers": ["monitor=~checkout-.*", "severity!=info"],
        "starts_at": "2026-03-01T10:00:00Z", "ends_at": "2026-03-01T11:00:00Z",
        "author": "ana", "comment": "release",
    }))
    .unwrap();
    let maintenance: MaintenanceSpec = serde_json::from_value(serde_json::json!({
        "id": "db", "matchers": ["monitor=db"],
        "schedule": {"recurring": {"cron": "0 2 * * SUN", "duration": "2h",
                                   "time_zone": "Europe/Berlin"}},
    }))
    .unwrap();
    let delivery = Delivery {
        delivery_id: Uuid::from_u128(1),
        channel_id: "hooks".into(),
        idempotency_key: Uuid::from_u128(2),
        transition_ids: vec![Uuid::from_u128(3)],
        attempt: 1,
        status: DeliveryStatus::Sent,
        http_status: Some(200),
        latency_ms: 12,
        error: None,
        retry_at: None,
        at: Timestamp(1_700_000_000_000),
    };
    fn check<E: Event + PartialEq + std::fmt::Debug>(event: &E, kind: u8) {
        let bytes = encode(event).unwrap();
        assert_eq!(bytes[..4], [MAGIC, kind, 1, Codec::Json as u8]);
        assert_eq!(bytes[4], b'{', "JSON payload");
        assert_eq!(&decode::<E>(&bytes).unwrap(), event);
        assert_eq!(
            &decode::<E>(&serde_json::to_vec(event).unwrap()).unwrap(),
            event
        );
    }
    check(&channel, 6);
    check(&silence, 7);
    check(&delivery, 8);
    check(&maintenance, 9);
    let routes: RouteSpec = serde_json::from_value(serde_json::json!({
        "receiver": ["hooks"], "group_by": ["rule"],
        "routes": [{"matchers": ["severity=critical"], "receiver": ["pager"],
                    "group_wait": "10s", "continue": true}],
    }))
    .unwrap();
    check(&routes, 10);
    let ack: crate::NotifyCommand = serde_json::from_value(serde_json::json!({"ack": {
        "command_id": "00000000-0000-0000-0000-000000000001", "rule_id": "p99",
        "monitor_id": "checkout", "author": "ops", "at": "2026-03-01T10:00:00Z"}}))
    .unwrap();
    check(&ack, 11);
    // Silences and maintenance windows share a topic: the kind byte tells them apart.
    assert_eq!(
        decode::<SilenceSpec>(&encode(&maintenance).unwrap()),
        Err(DecodeError::WrongKind {
            expected: EventKind::SilenceSpec,
            found: 9
        })
    );
}

#[test]
fn clear_errors_for_bad_values() {
    assert_eq!(decode::<ProbeResult>(b""), Err(DecodeError::Empty));
    assert_eq!(
        decode::<ProbeResult>(b"hello"),
        Err(DecodeError::BadMagic(b'h'))
    );
    assert_eq!(
        decode::<ProbeResult>(&[MAGIC, 1]),
        Err(DecodeError::Truncated(2))
    );
    assert_eq!(
        decode::<ProbeResult>(&[MAGIC, 2, 1, 1]),
        Err(DecodeError::WrongKind {
            expected: EventKind::ProbeResult,
            found: 2
        })
    );
    assert_eq!(
        decode::<ProbeResult>(&[MAGIC, 1, 9, 0]),
        Err(DecodeError::UnsupportedVersion {
            kind: EventKind::ProbeResult,
            version: 9
        })
    );
    assert_eq!(
        decode::<ProbeResult>(&[MAGIC, 1, 1, 7]),
        Err(DecodeError::UnknownCodec(7))
    );
    let err = decode::<ProbeResult>(&[MAGIC, 1, 1, 0, 0xff]).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Payload {
                kind: EventKind::ProbeResult,
                ..
            }
        ),
        "{err}"
    );
    let err = decode::<ProbeResult>(br#"{"event_id": 1}"#).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid probe result payload: "),
        "{err}"
    );
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = encode(&WindowSummary {
        monitor_id: "m".into(),
        region: "r".into(),
        window_start: Timestamp(0),
        window_end: Timestamp(60_000),
        version: 1,
        count: 0,
        ok_count: 0,
        availability: 0.0,
        errors: BTreeMap::new(),
        status_1xx: 0,
        status_2xx: 0,
        status_3xx: 0,
        status_4xx: 0,
        status_5xx: 0,
        total_min_us: 0,
        total_max_us: 0,
        total_mean_us: 0.0,
        p50_us: 0.0,
        p75_us: 0.0,
        p90_us: 0.0,
        p95_us: 0.0,
        p99_us: 0.0,
        p999_us: 0.0,
        dns_mean_us: 0.0,
        connect_mean_us: 0.0,
        tls_mean_us: 0.0,
        ttfb_mean_us: 0.0,
        ttfb_p95_us: 0.0,
        assertion_failures: 0,
        sketch: SketchData::default(),
        anomaly: None,
    })
    .unwrap();
    bytes.push(0);
    let err = decode::<WindowSummary>(&bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid window summary payload: 1 trailing bytes"
    );
}
