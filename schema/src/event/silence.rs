//! [`SilenceSpec`] and [`MaintenanceSpec`]: when new firings are not notified.
//!
//! Both travel on the compacted `vigil.silences` topic (key = id, tombstone = deleted; the two
//! kinds share the key space and are told apart by the envelope's kind byte). A silence is a
//! one-off window created by a person; a maintenance window is planned, once or on a cron
//! schedule in a time zone. Either suppresses *new firings* of the alerts its matchers select,
//! never resolves: a firing that was notified is always followed by its resolve.
//!
//! [`validate`](SilenceSpec::validate) checks the structure; the notification stage parses the
//! cron expression and the time zone and compiles the regular expressions.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::channel::Matcher;
use super::monitor::{FieldError, check_slug};
use crate::Timestamp;

/// A one-off silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SilenceSpec {
    /// Stable identifier, a slug; the Kafka key.
    pub id: String,
    /// Alerts silenced: those meeting every matcher.
    pub matchers: Vec<Matcher>,
    /// Start of the silence.
    pub starts_at: Timestamp,
    /// End of the silence (exclusive).
    pub ends_at: Timestamp,
    /// Who created it.
    pub author: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// A planned maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MaintenanceSpec {
    /// Stable identifier, a slug; the Kafka key.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Alerts covered: those meeting every matcher.
    pub matchers: Vec<Matcher>,
    /// When it is in force.
    pub schedule: MaintenanceSchedule,
}

/// When a maintenance window is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MaintenanceSchedule {
    /// Once, from `starts_at` to `ends_at` (exclusive).
    OneOff {
        /// Start.
        starts_at: Timestamp,
        /// End (exclusive).
        ends_at: Timestamp,
    },
    /// From every start of a cron schedule, for `duration`.
    Recurring {
        /// Five-field cron expression (minute hour day-of-month month day-of-week), read in
        /// `time_zone`: `0 2 * * SUN` is every Sunday at 02:00 local time, across DST changes.
        cron: String,
        /// How long each window lasts.
        #[serde(with = "humantime_serde")]
        duration: Duration,
        /// IANA time zone (`Europe/Berlin`); default `UTC`.
        #[serde(default = "utc")]
        time_zone: String,
    },
}

fn utc() -> String {
    "UTC".to_owned()
}

/// Most matchers.
const MAX_MATCHERS: usize = 32;
/// Longest comment, name or author, in bytes.
const MAX_TEXT: usize = 1000;
/// Longest recurring window.
const MAX_DURATION: Duration = Duration::from_secs(7 * 86_400);

fn check_matchers(matchers: &[Matcher], errors: &mut Vec<FieldError>) {
    if matchers.is_empty() {
        errors.push(FieldError::new(
            "matchers",
            "must have at least one matcher (a silence of everything is not allowed)",
        ));
    } else if matchers.len() > MAX_MATCHERS {
        errors.push(FieldError::new(
            "matchers",
            format!("must have at most {MAX_MATCHERS} matchers"),
        ));
    }
}

/// The instants a window may start or end at: years 0000 to 9999, those RFC 3339 can write.
pub const WINDOW_RANGE_MS: std::ops::RangeInclusive<i64> =
    -62_167_219_200_000..=253_402_300_799_999;

fn check_window(starts_at: Timestamp, ends_at: Timestamp, at: &str, errors: &mut Vec<FieldError>) {
    for (name, t) in [("starts_at", starts_at), ("ends_at", ends_at)] {
        if !WINDOW_RANGE_MS.contains(&t.as_millis()) {
            errors.push(FieldError::new(
                format!("{at}{name}"),
                "must be between the years 0000 and 9999",
            ));
        }
    }
    if ends_at <= starts_at {
        errors.push(FieldError::new(
            format!("{at}ends_at"),
            format!("must be after starts_at ({starts_at}), got {ends_at}"),
        ));
    }
}

fn finish(errors: Vec<FieldError>) -> Result<(), Vec<FieldError>> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

impl SilenceSpec {
    /// Checks every field and returns all problems found, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(reason) = check_slug(&self.id) {
            errors.push(FieldError::new("id", reason));
        }
        check_matchers(&self.matchers, &mut errors);
        check_window(self.starts_at, self.ends_at, "", &mut errors);
        if self.author.trim().is_empty() {
            errors.push(FieldError::new("author", "must not be empty"));
        } else if self.author.len() > MAX_TEXT {
            errors.push(FieldError::new(
                "author",
                format!("must be at most {MAX_TEXT} bytes"),
            ));
        }
        if self.comment.len() > MAX_TEXT {
            errors.push(FieldError::new(
                "comment",
                format!("must be at most {MAX_TEXT} bytes"),
            ));
        }
        finish(errors)
    }

    /// Whether the silence is in force at `at`.
    pub fn is_active(&self, at: Timestamp) -> bool {
        self.starts_at <= at && at < self.ends_at
    }

    /// Where the silence stands at `at`.
    pub fn state(&self, at: Timestamp) -> SilenceState {
        if at < self.starts_at {
            SilenceState::Pending
        } else if at < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// The silence expired at `at`: it ends then (one that had not started yet also starts
    /// 1 ms before, so it never comes into force). `None` when it had already ended.
    pub fn expired_at(&self, at: Timestamp) -> Option<SilenceSpec> {
        if self.ends_at <= at {
            return None;
        }
        Some(SilenceSpec {
            starts_at: self.starts_at.min(at.saturating_add_millis(-1)),
            ends_at: at,
            ..self.clone()
        })
    }
}

/// Where a silence stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    /// In force.
    Active,
    /// Ended.
    Expired,
}

impl SilenceState {
    /// The state's name (`pending`, `active`, `expired`).
    pub const fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl MaintenanceSpec {
    /// Checks every field and returns all problems found, each naming its field
    /// (`schedule.recurring.cron`).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(reason) = check_slug(&self.id) {
            errors.push(FieldError::new("id", reason));
        }
        if self.name.len() > MAX_TEXT {
            errors.push(FieldError::new(
                "name",
                format!("must be at most {MAX_TEXT} bytes"),
            ));
        }
        check_matchers(&self.matchers, &mut errors);
        match &self.schedule {
            MaintenanceSchedule::OneOff { starts_at, ends_at } => {
                check_window(*starts_at, *ends_at, "schedule.one_off.", &mut errors);
            }
            MaintenanceSchedule::Recurring {
                cron,
                duration,
                time_zone,
            } => {
                let fields = cron.split_whitespace().count();
                if fields != 5 {
                    errors.push(FieldError::new(
                        "schedule.recurring.cron",
                        format!(
                            "must have 5 fields (minute hour day-of-month month day-of-week), \
                             got {fields} in {cron:?}"
                        ),
                    ));
                }
                if duration.is_zero() || *duration > MAX_DURATION {
                    errors.push(FieldError::new(
                        "schedule.recurring.duration",
                        format!(
                            "must be in (0s, 7d], got {}",
                            humantime::format_duration(*duration)
                        ),
                    ));
                }
                if time_zone.is_empty() {
                    errors.push(FieldError::new(
                        "schedule.recurring.time_zone",
                        "must be an IANA time zone name (Europe/Berlin, UTC)",
                    ));
                }
            }
        }
        finish(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::channel::MatchOp;

    fn from_yaml<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
        let value: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
        serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap()
    }

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_silence_is_active_in_its_window() {
        let s: SilenceSpec = from_yaml(
            "{id: deploy, matchers: ['monitor=~checkout-.*'], author: ana, \
             starts_at: '2026-03-01T10:00:00Z', ends_at: '2026-03-01T11:00:00Z'}",
        );
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.matchers[0].op, MatchOp::Regex);
        let ten = Timestamp::parse_rfc3339("2026-03-01T10:00:00Z").unwrap();
        assert!(!s.is_active(ten.saturating_add_millis(-1)));
        assert!(s.is_active(ten));
        assert!(s.is_active(ten.saturating_add_millis(3_599_999)));
        assert!(!s.is_active(ten.saturating_add_millis(3_600_000)));
        assert_eq!(
            s.state(ten.saturating_add_millis(-1)),
            SilenceState::Pending
        );
        assert_eq!(s.state(ten), SilenceState::Active);
        assert_eq!(
            s.state(ten.saturating_add_millis(3_600_000)).as_str(),
            "expired"
        );
    }

    #[test]
    fn expiring_ends_a_silence_now() {
        let s: SilenceSpec = from_yaml(
            "{id: deploy, matchers: ['monitor=a'], author: ana, \
             starts_at: '2026-03-01T10:00:00Z', ends_at: '2026-03-01T11:00:00Z'}",
        );
        let ten = Timestamp::parse_rfc3339("2026-03-01T10:00:00Z").unwrap();
        let half = ten.saturating_add_millis(1_800_000);
        let ended = s.expired_at(half).unwrap();
        assert_eq!((ended.starts_at, ended.ends_at), (ten, half));
        assert_eq!(ended.state(half), SilenceState::Expired);
        assert_eq!(ended.validate(), Ok(()));
        // Not started yet: it never comes into force.
        let early = ten.saturating_add_millis(-60_000);
        let ended = s.expired_at(early).unwrap();
        assert_eq!(
            (ended.starts_at, ended.ends_at),
            (early.saturating_add_millis(-1), early)
        );
        assert_eq!(ended.validate(), Ok(()));
        assert_eq!(s.expired_at(ten.saturating_add_millis(3_600_000)), None);
    }

    #[test]
    fn silence_validation_names_fields() {
        let s: SilenceSpec = from_yaml(
            "{id: X, matchers: [], author: ' ', \
             starts_at: '2026-03-01T10:00:00Z', ends_at: '2026-03-01T10:00:00Z'}",
        );
        let got = messages(s.validate().unwrap_err());
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[0].starts_with("id: "));
        assert_eq!(
            got[1..],
            [
                "matchers: must have at least one matcher (a silence of everything is not \
                 allowed)",
                "ends_at: must be after starts_at (2026-03-01T10:00:00Z), got \
                 2026-03-01T10:00:00Z",
                "author: must not be empty",
            ]
        );
    }

    #[test]
    fn maintenance_schedules() {
        let weekly: MaintenanceSpec = from_yaml(
            "{id: db-weekly, matchers: ['monitor=db'], schedule: {recurring: \
             {cron: '0 2 * * SUN', duration: 2h, time_zone: Europe/Berlin}}}",
        );
        assert_eq!(weekly.validate(), Ok(()));
        let once: MaintenanceSpec = from_yaml(
            "{id: move, matchers: ['region=eu-west'], schedule: {one_off: \
             {starts_at: '2026-05-01T00:00:00Z', ends_at: '2026-05-01T04:00:00Z'}}}",
        );
        assert_eq!(once.validate(), Ok(()));
        let utc: MaintenanceSpec = from_yaml(
            "{id: m, matchers: ['a=b'], schedule: {recurring: {cron: '0 2 * * *', duration: 1h}}}",
        );
        let MaintenanceSchedule::Recurring { time_zone, .. } = &utc.schedule else {
            panic!("recurring")
        };
        assert_eq!(time_zone, "UTC");
        let bad: MaintenanceSpec = from_yaml(
            "{id: m, matchers: ['a=b'], schedule: {recurring: \
             {cron: '0 0 2 * * SUN', duration: 8d, time_zone: ''}}}",
        );
        assert_eq!(
            messages(bad.validate().unwrap_err()),
            [
                "schedule.recurring.cron: must have 5 fields (minute hour day-of-month month \
                 day-of-week), got 6 in \"0 0 2 * * SUN\"",
                "schedule.recurring.duration: must be in (0s, 7d], got 8days",
                "schedule.recurring.time_zone: must be an IANA time zone name (Europe/Berlin, \
                 UTC)",
            ]
        );
        let err = serde_json::from_value::<MaintenanceSpec>(serde_json::json!({
            "id": "m", "matchers": ["a=b"], "schedule": {"weekly": {}}
        }))
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `weekly`"),
            "{err}"
        );
    }
}
