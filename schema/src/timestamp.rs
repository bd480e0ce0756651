//! [`Timestamp`]: a point in time with millisecond precision.
//!
//! Stored as signed milliseconds since the unix epoch, which is what ClickHouse's
//! `DateTime64(3)` holds and what window arithmetic wants. Human-readable formats (JSON, YAML)
//! write RFC 3339 (`2026-11-22T07:36:03.125Z`) and accept RFC 3339 or integer milliseconds;
//! binary formats write the integer.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time, truncated to milliseconds.
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// Builds a timestamp from unix milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Unix milliseconds.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Truncates a date-time to milliseconds.
    pub fn from_datetime(dt: OffsetDateTime) -> Self {
        let ms = dt.unix_timestamp_nanos().div_euclid(1_000_000);
        Self(i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX }))
    }

    /// The date-time this timestamp denotes, or `None` outside the representable years.
    pub fn to_datetime(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000).ok()
    }

    /// Parses RFC 3339 (`2026-11-22T07:36:03.125Z`), truncating below milliseconds.
    pub fn parse_rfc3339(s: &str) -> Result<Self, time::error::Parse> {
        OffsetDateTime::parse(s, &Rfc3339).map(Self::from_datetime)
    }

    /// Adds a signed number of milliseconds, saturating.
    pub const fn saturating_add_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime().and_then(|dt| dt.format(&Rfc3339).ok()) {
            Some(s) => f.write_str(&s),
            None => write!(f, "{}ms", self.0),
        }
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(dt: OffsetDateTime) -> Self {
        Self::from_datetime(dt)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            match self.to_datetime().and_then(|dt| dt.format(&Rfc3339).ok()) {
                Some(s) => serializer.serialize_str(&s),
                None => serializer.serialize_i64(self.0),
            }
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;

        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp or integer unix milliseconds")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp)
                    .map_err(|_| E::custom(format!("timestamp {v} ms is out of range")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v)
                    .map_err(|e| E::custom(format!("invalid RFC 3339 timestamp {v:?}: {e}")))
            }
        }

        if deserializer.is_human_readable() {
            deserializer.deserialize_any(TimestampVisitor)
        } else {
            deserializer.deserialize_i64(TimestampVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_rfc3339_with_millis() {
        let ts = Timestamp(1_700_000_000_125);
        assert_eq!(ts.to_string(), "2023-11-14T22:13:20.125Z");
        assert_eq!(
            serde_json::to_string(&ts).unwrap(),
            "\"2023-11-14T22:13:20.125Z\""
        );
    }

    #[test]
    fn accepts_integer_millis_and_offsets() {
        let a: Timestamp = serde_json::from_str("1700000000125").unwrap();
        let b: Timestamp = serde_json::from_str("\"2023-11-14T23:13:20.125+01:00\"").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_garbage_with_reason() {
        let err = serde_json::from_str::<Timestamp>("\"yesterday\"").unwrap_err();
        assert!(
            err.to_string().contains("invalid RFC 3339 timestamp"),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn json_round_trip(ms in -62_135_596_800_000i64..253_402_300_799_999) {
            let ts = Timestamp(ms);
            let json = serde_json::to_string(&ts).unwrap();
            prop_assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), ts);
        }

        #[test]
        fn binary_round_trip(ms in any::<i64>()) {
            let ts = Timestamp(ms);
            let bytes = postcard::to_allocvec(&ts).unwrap();
            prop_assert_eq!(postcard::from_bytes::<Timestamp>(&bytes).unwrap(), ts);
        }
    }
}
