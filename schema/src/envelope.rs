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
    /// [`StatusPageSpec`](crate::StatusPageSpec).
    StatusPageSpec = 16,
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
            EventKind::StatusPageSpec => "status page spec",
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
    /// 2: `steps` (multi-step checks) appended.
    const VERSION: u8 = 2;
    const CODEC: Codec = Codec::Postcard;

    fn decode_legacy(version: u8, codec: Codec, payload: &[u8]) -> Result<Self, DecodeError> {
        match version {
            1 => {
                decode_as::<crate::event::ProbeResultV1>(Self::KIND, codec, payload).map(Self::from)
            }
            _ => Err(DecodeError::UnsupportedVersion {
                kind: Self::KIND,
                version,
            }),
        }
    }
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

impl Event for crate::StatusPageSpec {
    const KIND: EventKind = EventKind::StatusPageSpec;
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
    decode_as(E::KIND, codec, payload)
}

/// Decodes `payload` as `T` (the current layout of `kind`, or an older one).
fn decode_as<T: DeserializeOwned>(
    kind: EventKind,
    codec: Codec,
    payload: &[u8],
) -> Result<T, DecodeError> {
    let payload_error = |reason: String| DecodeError::Payload { kind, reason };
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
mod tests;
