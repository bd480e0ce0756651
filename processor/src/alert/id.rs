//! Deterministic transition ids, and the changelog's keys and values.
//!
//! A transition id is a UUIDv5 (SHA-1, RFC 9562) in a fixed namespace over
//! `rule ␟ monitor ␟ region ␟ from ␟ to ␟ at_ms` (␟ = U+001F, region empty for a quorum
//! alert): the same transition computed again, by a replay or after a restart, gets the same
//! id on every run and platform, so consumers of `vigil.alerts` can drop duplicates.
//!
//! Changelog keys use the same separator: `s␟monitor␟region` holds a snapshot of a series (its
//! recent windows, sample times and the state of every rule on it), `d␟monitor␟region␟i` the
//! `i`-th window evaluated since (see `changelog.rs`), `q␟monitor` the quorum alerts of a
//! monitor. Ids and regions are slugs, so they never contain it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_schema::AlertState;

/// A sequence serialized from an iterator (cloned to serialize, so it can be read again): for
/// stored forms computed from another layout in memory.
pub(crate) struct Seq<I>(pub(crate) I);

impl<I: ExactSizeIterator + Clone> Serialize for Seq<I>
where
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}

/// The namespace of transition ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x3c1b_8f0e_6a4d_4e27_9b52_d1f0_a7c6_e913);

pub(crate) const SEP: char = '\u{1f}';

/// First byte of every changelog value: the encoding (postcard) and its layout version.
pub(crate) const FORMAT: u8 = 2;
/// The previous layout: series snapshots without their sequence number, the rest unchanged.
pub(crate) const FORMAT_1: u8 = 1;

/// The id of a transition.
pub(crate) fn transition_id(
    rule: &str,
    monitor: &str,
    region: Option<&str>,
    from: AlertState,
    to: AlertState,
    at_ms: i64,
) -> Uuid {
    // `Uuid::new_v5` over the same name, hashed in pieces by a SHA-1 that uses the CPU's
    // SHA instructions where it has them (ids are computed for every transition).
    use sha1::Digest as _;
    let mut sep = [0u8; 4];
    let sep = SEP.encode_utf8(&mut sep).as_bytes();
    let mut hash = sha1::Sha1::new();
    hash.update(NAMESPACE.as_bytes());
    for part in [
        rule,
        monitor,
        region.unwrap_or(""),
        from.as_str(),
        to.as_str(),
    ] {
        hash.update(part.as_bytes());
        hash.update(sep);
    }
    hash.update(itoa::Buffer::new().format(at_ms).as_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// The changelog key of a series.
pub(crate) fn series_key(monitor: &str, region: &str) -> String {
    format!("s{SEP}{monitor}{SEP}{region}")
}

/// The changelog key of a monitor's quorum alerts.
pub(crate) fn monitor_key(monitor: &str) -> String {
    format!("q{SEP}{monitor}")
}

/// What a changelog key names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Key<'a> {
    Series(&'a str, &'a str),
    Delta(&'a str, &'a str),
    Monitor(&'a str),
}

/// Parses a changelog key.
pub(crate) fn parse_key(key: &str) -> Option<Key<'_>> {
    let mut parts = key.split(SEP);
    let key = match (parts.next()?, parts.next()?, parts.next()) {
        ("s", monitor, Some(region)) => Key::Series(monitor, region),
        ("d", monitor, Some(region)) => {
            // The delta's index is in its value; the key only keeps deltas apart.
            parts.next()?.parse::<u32>().ok()?;
            Key::Delta(monitor, region)
        }
        ("q", monitor, None) => Key::Monitor(monitor),
        _ => return None,
    };
    parts.next().is_none().then_some(key)
}

/// A changelog value: the format byte, then postcard (`None` if it cannot be encoded).
pub(crate) fn encode<T: Serialize>(state: &T) -> Option<Vec<u8>> {
    encode_sized(state, 64)
}

/// [`encode`] into a buffer of `capacity` bytes to start with.
pub(crate) fn encode_sized<T: Serialize>(state: &T, capacity: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(capacity.max(1));
    buf.push(FORMAT);
    postcard::to_extend(state, buf).ok()
}

/// Reads a changelog value of a type whose layout is the same in every format.
pub(crate) fn decode<'a, T: Deserialize<'a>>(value: &'a [u8]) -> Result<T, String> {
    match value.split_first() {
        Some((&(FORMAT | FORMAT_1), rest)) => {
            postcard::from_bytes(rest).map_err(|e| format!("cannot decode alert state: {e}"))
        }
        Some((v, _)) => Err(format!("unknown alert state format {v}")),
        None => Err("empty alert state".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The same ids as `Uuid::new_v5` over the joined name.
        #[test]
        fn ids_are_uuid_v5_of_the_name(
            rule in "[a-z0-9-]{0,70}",
            monitor in "[a-z0-9-]{0,70}",
            region in proptest::option::of("[a-z0-9-]{0,20}"),
            at_ms in proptest::num::i64::ANY,
        ) {
            let (from, to) = (AlertState::Firing, AlertState::Ok);
            let name = format!(
                "{rule}{SEP}{monitor}{SEP}{}{SEP}{}{SEP}{}{SEP}{at_ms}",
                region.as_deref().unwrap_or(""),
                from.as_str(),
                to.as_str()
            );
            proptest::prop_assert_eq!(
                transition_id(&rule, &monitor, region.as_deref(), from, to, at_ms),
                Uuid::new_v5(&NAMESPACE, name.as_bytes())
            );
        }
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let id = transition_id(
            "r",
            "m",
            Some("eu"),
            AlertState::Ok,
            AlertState::Firing,
            60_000,
        );
        // Pinned: a change here changes every id and breaks deduplication across versions.
        assert_eq!(id.to_string(), "a85c4d8a-66df-53d8-a6b9-c95d64d07097");
        assert_eq!(id.get_version_num(), 5);
        assert_ne!(
            id,
            transition_id("r", "m", None, AlertState::Ok, AlertState::Firing, 60_000)
        );
        assert_ne!(
            id,
            transition_id(
                "r",
                "m",
                Some("eu"),
                AlertState::Ok,
                AlertState::Pending,
                60_000
            )
        );
    }

    #[test]
    fn keys_round_trip() {
        assert_eq!(
            parse_key(&series_key("m", "eu")),
            Some(Key::Series("m", "eu"))
        );
        assert_eq!(parse_key(&monitor_key("m")), Some(Key::Monitor("m")));
        assert_eq!(
            parse_key(&super::super::changelog::delta_key("m", "eu", 7)),
            Some(Key::Delta("m", "eu"))
        );
        assert_eq!(parse_key("d\u{1f}m\u{1f}eu\u{1f}x"), None);
        assert_eq!(parse_key("x"), None);
        assert_eq!(parse_key("s\u{1f}m"), None);
        assert_eq!(parse_key("s\u{1f}m\u{1f}r\u{1f}extra"), None);
    }
}
