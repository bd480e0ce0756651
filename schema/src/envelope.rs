//! The envelope every Kafka value is wrapped in.
//!
//! ```text
//! byte 0   magic 0xC5 (never the first byte of JSON or UTF-8 text)
//! byte 1   event kind (1 probe result, 2 monitor spec, 3 window summary, 4 alert transition,
//!          5 rule spec, 6 channel spec, 7 silence spec, 8 delivery, 9 maintenance spec,
//!          10 route spec, 11 notify command)
//! byte 2   schema version of that kind
//! byte 3   codec (0 postcard, 1 JSON)
//! byte 4.. payload
//! ```
//!
//! Hot events (probe results, windows) use postcard, a compact binary serde format; monitor
//! specs use JSON so the compacted topic stays readable with generic tools. The version byte lets
//! a reader keep decoding events written by older producers: when a kind's layout changes, its
//! [`Event::VERSION`] goes up and [`Event::decode_legacy`] learns the old layout.
//!
//! For hand-written events (tests, `kafka-console-producer`), a value that is a bare JSON object
//! (`{…}`) is decoded as the current version of the expected kind.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    AlertTransition, ChannelSpec, Delivery, Error, MaintenanceSpec, MonitorSpec, ProbeResult,
    RouteSpec, RuleSpec, SilenceSpec, WindowSummary,
};

/// First byte of every enveloped value.
pub const MAGIC: u8 = 0xC5;
/// Length of the envelope header.
pub const HEADER_LEN: usize = 4;

/// Kinds of event, as tagged in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EventKind {
    /// [`ProbeResult`].
    ProbeResult = 1,
    /// [`MonitorSpec`].
    MonitorSpec = 2,
    /// [`WindowSummary`].
    WindowSummary = 3,
    /// [`AlertTransition`].
    AlertTransition = 4,
    /// [`RuleSpec`].
    RuleSpec = 5,
    /// [`ChannelSpec`].
    ChannelSpec = 6,
    /// [`SilenceSpec`].
    SilenceSpec = 7,
    /// [`Delivery`].
    Delivery = 8,
    /// [`MaintenanceSpec`].
    MaintenanceSpec = 9,
    /// [`RouteSpec`] (the root of the routing tree).
    RouteSpec = 10,
    /// [`NotifyCommand`](crate::NotifyCommand).
    NotifyCommand = 11,
    /// [`AuditEvent`](crate::AuditEvent).
    AuditEvent = 12,
    /// [`SealedSecret`](crate::vault::SealedSecret).
    SealedSecret = 13,
    /// [`ApiKeyRecord`](crate::ApiKeyRecord).
    ApiKey = 14,
    /// [`ApiKeyUsage`](crate::ApiKeyUsage).
    ApiKeyUsage = 15,
}

impl EventKind {
    /// The kind's name, as used in error messages and headers.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::ProbeResult => "probe result",
            EventKind::MonitorSpec => "monitor spec",
            EventKind::WindowSummary => "window summary",
            EventKind::AlertTransition => "alert transition",
            EventKind::RuleSpec => "rule spec",
            EventKind::ChannelSpec => "channel spec",
            EventKind::SilenceSpec => "silence spec",
            EventKind::Delivery => "delivery",
            EventKind::MaintenanceSpec => "maintenance spec",
            EventKind::RouteSpec => "route spec",
            EventKind::NotifyCommand => "notify command",
            EventKind::AuditEvent => "audit event",
            EventKind::SealedSecret => "sealed secret",
            EventKind::ApiKey => "api key",
            EventKind::ApiKeyUsage => "api key usage",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Payload encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Codec {
    /// postcard: compact, fast, not self-describing.
    Postcard = 0,
    /// JSON.
    Json = 1,
}

impl Codec {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Codec::Postcard),
            1 => Some(Codec::Json),
            _ => None,
        }
    }
}

/// An event type that travels in the envelope.
pub trait Event: Serialize + DeserializeOwned {
    /// The kind tag.
    const KIND: EventKind;
    /// The current schema version.
    const VERSION: u8;
    /// The codec new events are written with.
    const CODEC: Codec;

    /// Decodes a payload written with an older schema version. No kind has an older version yet.
    fn decode_legacy(version: u8, _codec: Codec, _payload: &[u8]) -> Result<Self, DecodeError> {
        Err(DecodeError::UnsupportedVersion {
            kind: Self::KIND,
            version,
        })
    }
}

impl Event for ProbeResult {
    const KIND: EventKind = EventKind::ProbeResult;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Postcard;
}

impl Event for MonitorSpec {
    const KIND: EventKind = EventKind::MonitorSpec;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Json;
}

impl Event for WindowSummary {
    const KIND: EventKind = EventKind::WindowSummary;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Postcard;
}

impl Event for AlertTransition {
    const KIND: EventKind = EventKind::AlertTransition;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Json;
}

impl Event for RuleSpec {
    const KIND: EventKind = EventKind::RuleSpec;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Json;
}

impl Event for ChannelSpec {
    const KIND: EventKind = EventKind::ChannelSpec;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Json;
}

impl Event for SilenceSpec {
    const KIND: EventKind = EventKind::SilenceSpec;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Json;
}

impl Event for Delivery {
    const KIND: EventKind = EventKind::Delivery;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Json;
}

impl Event for MaintenanceSpec {
    const KIND: EventKind = EventKind::MaintenanceSpec;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Json;
}

impl Event for RouteSpec {
    const KIND: EventKind = EventKind::RouteSpec;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Json;
}

impl Event for crate::NotifyCommand {
    const KIND: EventKind = EventKind::NotifyCommand;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Json;
}

impl Event for crate::AuditEvent {
    const KIND: EventKind = EventKind::AuditEvent;
    const VERSION: u8 = 1;
    const CODEC: Codec = Codec::Json;
}

/// Why a value could not be decoded. Cheap to build: undecodable events are routine input
/// (they go to the dead-letter topic with this as the reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The value is empty (a tombstone where an event was expected).
    #[error("empty value")]
    Empty,
    /// The value is shorter than the envelope header.
    #[error("truncated envelope header ({0} bytes)")]
    Truncated(usize),
    /// The value is neither an envelope nor a JSON object.
    #[error("not a vigil envelope (first byte {0:#04x})")]
    BadMagic(u8),
    /// The envelope holds another kind of event.
    #[error("expected a {expected} event, found kind {found}")]
    WrongKind {
        /// What the reader expected.
        expected: EventKind,
        /// The kind byte found.
        found: u8,
    },
    /// The version is newer than this build, or older than it still reads.
    #[error("unsupported {kind} schema version {version}")]
    UnsupportedVersion {
        /// The kind.
        kind: EventKind,
        /// The version byte found.
        version: u8,
    },
    /// The codec byte is unknown.
    #[error("unknown codec {0}")]
    UnknownCodec(u8),
    /// The payload does not match the schema.
    #[error("invalid {kind} payload: {reason}")]
    Payload {
        /// The kind.
        kind: EventKind,
        /// What the decoder said.
        reason: String,
    },
}

/// Encodes an event in its envelope.
pub fn encode<E: Event>(event: &E) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::with_capacity(256);
    encode_into(event, &mut buf)?;
    Ok(buf)
}

/// Appends an enveloped event to `buf` (reuse one buffer on hot paths).
pub fn encode_into<E: Event>(event: &E, buf: &mut Vec<u8>) -> Result<(), Error> {
    buf.extend_from_slice(&[MAGIC, E::KIND as u8, E::VERSION, E::CODEC as u8]);
    let encode_error = |reason: String| Error::Encode {
        kind: E::KIND.as_str(),
        reason,
    };
    match E::CODEC {
        Codec::Postcard => postcard::to_io(event, &mut *buf)
            .map(drop)
            .map_err(|e| encode_error(e.to_string())),
        Codec::Json => {
            serde_json::to_writer(&mut *buf, event).map_err(|e| encode_error(e.to_string()))
        }
    }
}

/// Decodes an enveloped event, or a bare JSON object of the current version.
pub fn decode<E: Event>(bytes: &[u8]) -> Result<E, DecodeError> {
    let Some(&first) = bytes.first() else {
        return Err(DecodeError::Empty);
    };
    if first == b'{' {
        return decode_payload(Codec::Json, bytes);
    }
    if first != MAGIC {
        return Err(DecodeError::BadMagic(first));
    }
    let Some((&[_, kind, version, codec], payload)) = bytes.split_first_chunk::<HEADER_LEN>()
    else {
        return Err(DecodeError::Truncated(bytes.len()));
    };
    if kind != E::KIND as u8 {
        return Err(DecodeError::WrongKind {
            expected: E::KIND,
            found: kind,
        });
    }
    let codec = Codec::from_byte(codec).ok_or(DecodeError::UnknownCodec(codec))?;
    if version == E::VERSION {
        decode_payload(codec, payload)
    } else {
        E::decode_legacy(version, codec, payload)
    }
}

fn decode_payload<E: Event>(codec: Codec, payload: &[u8]) -> Result<E, DecodeError> {
    let payload_error = |reason: String| DecodeError::Payload {
        kind: E::KIND,
        reason,
    };
    match codec {
        Codec::Postcard => match postcard::take_from_bytes(payload) {
            Ok((event, [])) => Ok(event),
            Ok((_, rest)) => Err(payload_error(format!("{} trailing bytes", rest.len()))),
            Err(e) => Err(payload_error(e.to_string())),
        },
        Codec::Json => serde_json::from_slice(payload).map_err(|e| payload_error(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
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

    fn probe() -> impl Strategy<Value = ProbeResult> {
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
                vec((text(), any::<bool>(), option::of(text())), 0..4),
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
                        assertions: asserts
                            .into_iter()
                            .map(|(condition, passed, actual)| AssertionResult {
                                condition,
                                passed,
                                actual,
                            })
                            .collect(),
                        tls_cert_expiry: cert,
                    }
                },
            )
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
                }
            })
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
}
