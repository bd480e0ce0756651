//! Parsing and checking of request parameters, shared by REST and GraphQL so both APIs accept
//! the same values and reject bad ones with the same message naming the parameter.

use std::time::Duration;

use vigil_schema::{AlertState, Outcome, Severity, Timestamp};

use crate::config::LimitsConfig;
use crate::{Error, Result};

/// A half-open time range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive start.
    pub from: Timestamp,
    /// Exclusive end.
    pub to: Timestamp,
}

impl TimeRange {
    /// Length in milliseconds.
    pub fn millis(&self) -> i64 {
        self.to.as_millis() - self.from.as_millis()
    }
}

/// What a time parameter (`from`, `to`) must look like, as the OpenAPI document declares it:
/// `now`, `now-<duration>` (`now-24h`, `now-1h30m`), integer unix milliseconds or RFC 3339. A
/// value that does not match is a 400; one that matches but names no instant (`2024-02-30…`, a
/// duration past the representable range) a 422.
pub const TIME_PATTERN: &str = concat!(
    r"^(now(-[0-9]{1,12}(ns|us|ms|s|m|h|d|w)( ?[0-9]{1,12}(ns|us|ms|s|m|h|d|w))*)?",
    r"|-?[0-9]{1,16}",
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2}))$"
);

/// What a `cursor` must look like: the lowercase hex this API hands out as `next_cursor`. A
/// value of this shape that this API did not issue is a 422.
pub const CURSOR_PATTERN: &str = "^([0-9a-f]{2})+$";

/// The longest cursor accepted, in characters.
pub const CURSOR_MAX_LENGTH: usize = 4096;

fn time_syntax() -> &'static regex::Regex {
    static RE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(TIME_PATTERN).expect("valid pattern"));
    &RE
}

/// Parses a time: RFC 3339, integer unix milliseconds, `now`, or `now-<duration>` (`now-24h`).
pub fn parse_time(parameter: &str, value: &str, now: Timestamp) -> Result<Timestamp> {
    if !time_syntax().is_match(value) {
        return Err(Error::bad_parameter(
            parameter,
            format!(
                "expected RFC 3339, unix milliseconds, `now` or `now-<duration>`, got {value:?}"
            ),
        ));
    }
    if value == "now" {
        return Ok(now);
    }
    if let Some(ago) = value.strip_prefix("now-") {
        let ago = humantime::parse_duration(ago).map_err(|e| {
            Error::invalid_parameter(parameter, format!("invalid duration in {value:?}: {e}"))
        })?;
        let ms = i64::try_from(ago.as_millis()).unwrap_or(i64::MAX);
        return Ok(now.saturating_add_millis(-ms));
    }
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(Timestamp::from_millis(ms));
    }
    Timestamp::parse_rfc3339(value).map_err(|_| {
        Error::invalid_parameter(
            parameter,
            format!("{value:?} is not a date and time (RFC 3339) that exists"),
        )
    })
}

/// Builds `[from, to)`: `to` defaults to now, `from` to `to - default_span`; `to` must be after
/// `from`.
pub fn time_range(
    from: Option<&str>,
    to: Option<&str>,
    default_span: Duration,
    now: Timestamp,
) -> Result<TimeRange> {
    let to = match to {
        Some(v) => parse_time("to", v, now)?,
        None => now,
    };
    let from = match from {
        Some(v) => parse_time("from", v, now)?,
        None => to.saturating_add_millis(-i64::try_from(default_span.as_millis()).unwrap_or(0)),
    };
    if to <= from {
        return Err(Error::invalid_parameter(
            "to",
            format!("must be after `from` ({from}), got {to}"),
        ));
    }
    Ok(TimeRange { from, to })
}

/// Which window table a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// `windows_1m`.
    Minute,
    /// `windows_1h`.
    Hour,
}

impl Resolution {
    /// The table holding windows of this length.
    pub fn table(self) -> &'static str {
        match self {
            Resolution::Minute => vigil_schema::table::WINDOWS_1M,
            Resolution::Hour => vigil_schema::table::WINDOWS_1H,
        }
    }

    /// `1m` or `1h`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Minute => "1m",
            Resolution::Hour => "1h",
        }
    }
}

/// Ranges up to this long are served from 1-minute windows when the resolution is `auto`.
pub const AUTO_MINUTE_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// Resolves `1m`, `1h` or `auto` (default) for `range`, checking the range is not too long for
/// the resolution.
pub fn resolution(
    value: Option<&str>,
    range: TimeRange,
    limits: &LimitsConfig,
) -> Result<Resolution> {
    let span = Duration::from_millis(u64::try_from(range.millis()).unwrap_or(0));
    let chosen = match value.map(str::trim).unwrap_or("auto") {
        "1m" => Resolution::Minute,
        "1h" => Resolution::Hour,
        "auto" if span <= AUTO_MINUTE_LIMIT => Resolution::Minute,
        "auto" => Resolution::Hour,
        other => {
            return Err(Error::bad_parameter(
                "resolution",
                format!("expected `1m`, `1h` or `auto`, got {other:?}"),
            ));
        }
    };
    let limit = match chosen {
        Resolution::Minute => limits.max_range_1m,
        Resolution::Hour => limits.max_range_1h,
    };
    if span > limit {
        return Err(Error::invalid_parameter(
            "resolution",
            format!(
                "the range of {} is longer than the {} allowed at resolution {}; use a coarser \
                 resolution or a shorter range",
                humantime::format_duration(span),
                humantime::format_duration(limit),
                chosen.as_str()
            ),
        ));
    }
    Ok(chosen)
}

/// Checks a history page size (default and maximum: `limits.max-history-points`).
pub fn history_limit(value: Option<u32>, limits: &LimitsConfig) -> Result<u32> {
    let limit = value.unwrap_or(limits.max_history_points);
    if limit == 0 || limit > limits.max_history_points {
        return Err(Error::bad_parameter(
            "limit",
            format!(
                "expected 1 to {} points per page, got {limit}",
                limits.max_history_points
            ),
        ));
    }
    Ok(limit)
}

/// Checks a page size (default 100).
pub fn page_size(value: Option<u32>, limits: &LimitsConfig) -> Result<u32> {
    let size = value.unwrap_or(100.min(limits.max_page_size));
    if size == 0 || size > limits.max_page_size {
        return Err(Error::bad_parameter(
            "limit",
            format!("must be between 1 and {}, got {size}", limits.max_page_size),
        ));
    }
    Ok(size)
}

/// Parses a `status` filter of configuration (`enabled` or `disabled`; none: both).
pub fn enabled(value: Option<&str>) -> Result<Option<bool>> {
    match value {
        None => Ok(None),
        Some("enabled") => Ok(Some(true)),
        Some("disabled") => Ok(Some(false)),
        Some(other) => Err(Error::bad_parameter(
            "status",
            format!("expected `enabled` or `disabled`, got {other:?}"),
        )),
    }
}

/// An HTTP status filter: an exact code (`503`) or a class (`5xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Exactly this code.
    Exact(u16),
    /// Any code of this class (1–5).
    Class(u16),
}

/// Parses `503` or `5xx`.
pub fn status_filter(value: &str) -> Result<StatusFilter> {
    let v = value.trim();
    let bad = || {
        Error::bad_parameter(
            "status",
            format!("expected a status code (`503`) or class (`5xx`), got {value:?}"),
        )
    };
    if let Some(class) = v.strip_suffix("xx").or_else(|| v.strip_suffix("XX")) {
        let class: u16 = class.parse().map_err(|_| bad())?;
        return if (1..=5).contains(&class) {
            Ok(StatusFilter::Class(class))
        } else {
            Err(bad())
        };
    }
    let code: u16 = v.parse().map_err(|_| bad())?;
    if (100..=599).contains(&code) {
        Ok(StatusFilter::Exact(code))
    } else {
        Err(bad())
    }
}

/// Parses an outcome name (`ok`, `timeout`, …).
pub fn outcome(value: &str) -> Result<OutcomeFilter> {
    let value = value.trim();
    if value == "failed" {
        return Ok(OutcomeFilter::Failed);
    }
    Outcome::ALL
        .into_iter()
        .find(|o| o.as_str() == value)
        .map(OutcomeFilter::Is)
        .ok_or_else(|| {
            let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            Error::bad_parameter(
                "outcome",
                format!(
                    "expected one of {} or failed (every outcome but ok), got {value:?}",
                    names.join(", ")
                ),
            )
        })
}

/// Which checks an outcome filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeFilter {
    /// Those with this outcome.
    Is(Outcome),
    /// Those whose outcome is not `ok`.
    Failed,
}

/// Parses an alert severity filter (`info`, `warning`, `critical`).
pub fn severity(value: &str) -> Result<Severity> {
    match value.trim() {
        "info" => Ok(Severity::Info),
        "warning" => Ok(Severity::Warning),
        "critical" => Ok(Severity::Critical),
        other => Err(Error::bad_parameter(
            "severity",
            format!("expected `info`, `warning` or `critical`, got {other:?}"),
        )),
    }
}

/// Parses an alert state filter (`ok`, `pending`, `firing`).
pub fn alert_state(value: &str) -> Result<AlertState> {
    match value.trim() {
        "ok" => Ok(AlertState::Ok),
        "pending" => Ok(AlertState::Pending),
        "firing" => Ok(AlertState::Firing),
        other => Err(Error::bad_parameter(
            "state",
            format!("expected `ok`, `pending` or `firing`, got {other:?}"),
        )),
    }
}

/// Parses an availability target in `(0, 1)` (default 0.999).
pub fn target(value: Option<f64>) -> Result<f64> {
    let target = value.unwrap_or(0.999);
    if target > 0.0 && target < 1.0 {
        Ok(target)
    } else {
        Err(Error::bad_parameter(
            "target",
            format!("must be between 0 and 1 exclusive (0.999 for 99.9%), got {target}"),
        ))
    }
}

/// Hex-encodes a cursor so it is opaque and URL-safe.
pub(crate) fn encode_cursor(parts: &[&str]) -> String {
    parts
        .join("\u{1f}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A cursor of the documented shape that this API did not hand out.
pub(crate) fn unissued_cursor() -> Error {
    Error::invalid_parameter("cursor", "not a cursor returned by this API")
}

/// Decodes a cursor made by [`encode_cursor`] into exactly `n` parts.
pub(crate) fn decode_cursor(value: &str, n: usize) -> Result<Vec<String>> {
    if value.is_empty()
        || value.len() > CURSOR_MAX_LENGTH
        || !value.len().is_multiple_of(2)
        || !value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::bad_parameter(
            "cursor",
            "expected the lowercase hex of a `next_cursor`",
        ));
    }
    let bad = unissued_cursor;
    let bytes = (0..value.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&value[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let parts: Vec<String> = text.split('\u{1f}').map(str::to_owned).collect();
    if parts.len() == n {
        Ok(parts)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    #[test]
    fn times_in_every_accepted_form() {
        assert_eq!(parse_time("from", "now", NOW).unwrap(), NOW);
        assert_eq!(
            parse_time("from", "now-1h", NOW).unwrap(),
            Timestamp::from_millis(1_700_000_000_000 - 3_600_000)
        );
        assert_eq!(
            parse_time("from", "2023-11-14T22:13:20Z", NOW).unwrap(),
            NOW
        );
        assert_eq!(
            parse_time("from", "5", NOW).unwrap(),
            Timestamp::from_millis(5)
        );
        let err = parse_time("from", "yesterday", NOW).unwrap_err();
        assert!(matches!(err, Error::BadParameter { ref parameter, .. } if parameter == "from"));
    }

    #[test]
    fn to_before_from_names_to() {
        let err = time_range(Some("now-1h"), Some("now-2h"), Duration::ZERO, NOW).unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { ref parameter, .. } if parameter == "to"));
        let range = time_range(None, None, Duration::from_secs(60), NOW).unwrap();
        assert_eq!(range.millis(), 60_000);
    }

    #[test]
    fn resolution_auto_and_limits() {
        let limits = LimitsConfig::default();
        let day = time_range(Some("now-24h"), None, Duration::ZERO, NOW).unwrap();
        let week = time_range(Some("now-8d"), None, Duration::ZERO, NOW).unwrap();
        assert_eq!(resolution(None, day, &limits).unwrap(), Resolution::Minute);
        assert_eq!(
            resolution(Some("auto"), week, &limits).unwrap(),
            Resolution::Hour
        );
        let err = resolution(Some("1m"), week, &limits)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid parameter `resolution`: the range of 8days is longer than the 7days allowed \
             at resolution 1m; use a coarser resolution or a shorter range"
        );
        assert!(resolution(Some("5m"), day, &limits).is_err());
    }

    #[test]
    fn filters_and_cursors() {
        assert_eq!(status_filter("5xx").unwrap(), StatusFilter::Class(5));
        assert_eq!(status_filter("503").unwrap(), StatusFilter::Exact(503));
        assert!(status_filter("6xx").is_err() && status_filter("abc").is_err());
        assert_eq!(
            outcome("timeout").unwrap(),
            OutcomeFilter::Is(Outcome::Timeout)
        );
        assert_eq!(outcome(" failed ").unwrap(), OutcomeFilter::Failed);
        assert!(outcome("slow").is_err());
        let c = encode_cursor(&["b", "a-1"]);
        assert_eq!(decode_cursor(&c, 2).unwrap(), ["b", "a-1"]);
        assert!(decode_cursor("zz", 2).is_err() && decode_cursor(&c, 3).is_err());
        assert!(target(Some(1.0)).is_err() && target(None).unwrap() == 0.999);
        assert_eq!(alert_state("firing").unwrap(), AlertState::Firing);
        let err = alert_state("resolved").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid parameter `state`: expected `ok`, `pending` or `firing`, got \"resolved\""
        );
        assert_eq!(severity("info").unwrap(), Severity::Info);
    }
}
