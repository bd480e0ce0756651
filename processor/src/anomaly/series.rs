//! Reading and writing `timestamp,value` series as CSV, for `vigil anomaly score` and the NAB
//! benchmark: the same [`Detector`](super::Detector) the processor runs, fed from a file.

use std::fmt;

/// One row of a series: the timestamp as written, its unix seconds, and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The timestamp exactly as it appeared in the input.
    pub raw_timestamp: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// The value.
    pub value: f64,
}

/// A malformed input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Parses CSV `timestamp,value` with an optional header line. Timestamps may be
/// `YYYY-MM-DD HH:MM:SS`, RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`), or unix seconds.
/// An empty value is a missing point and is skipped.
pub fn parse_csv(text: &str) -> Result<Vec<Point>, ParseError> {
    let mut points = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let error = |reason: String| ParseError {
            line: i + 1,
            reason,
        };
        let (ts, value) = line
            .split_once(',')
            .ok_or_else(|| error(format!("expected `timestamp,value`, got {line:?}")))?;
        let (ts, value) = (ts.trim().trim_matches('"'), value.trim().trim_matches('"'));
        let Some(timestamp) = parse_timestamp(ts) else {
            if i == 0 {
                continue; // header
            }
            return Err(error(format!("invalid timestamp {ts:?}")));
        };
        if value.is_empty() {
            continue;
        }
        let value: f64 = value
            .parse()
            .map_err(|_| error(format!("invalid value {value:?}")))?;
        points.push(Point {
            raw_timestamp: ts.to_owned(),
            timestamp,
            value,
        });
    }
    Ok(points)
}

/// Unix seconds of `YYYY-MM-DD HH:MM:SS`, RFC 3339, or an integer.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Some(secs);
    }
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let sep = s.as_bytes();
    if sep.len() < 19
        || sep[4] != b'-'
        || sep[7] != b'-'
        || !matches!(sep[10], b' ' | b'T')
        || sep[13] != b':'
        || sep[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, se) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (
                rest.get(1..3)?.parse::<i64>().ok()?,
                rest.get(4..6)?.parse::<i64>().ok()?,
            );
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_accepted_form() {
        assert_eq!(parse_timestamp("2014-04-01 00:00:00"), Some(1_396_310_400));
        assert_eq!(parse_timestamp("2014-04-01T00:00:00Z"), Some(1_396_310_400));
        assert_eq!(
            parse_timestamp("2014-04-01T02:00:00.250+02:00"),
            Some(1_396_310_400)
        );
        assert_eq!(parse_timestamp("1396310400"), Some(1_396_310_400));
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_timestamp("2000-02-29 12:00:00"), Some(951_825_600));
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2014-13-01 00:00:00"), None);
    }

    #[test]
    fn csv_with_header_and_gaps() {
        let points = parse_csv("timestamp,value\n2014-04-01 00:00:00,1.5\n\n2014-04-01 00:05:00,\n2014-04-01 00:10:00,2\n")
            .unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(
            points[1],
            Point {
                raw_timestamp: "2014-04-01 00:10:00".into(),
                timestamp: 1_396_311_000,
                value: 2.0
            }
        );
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err = parse_csv("timestamp,value\n2014-04-01 00:00:00,abc\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: invalid value \"abc\"");
        let err = parse_csv("timestamp,value\nnot a time,1\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: invalid timestamp \"not a time\"");
    }
}
