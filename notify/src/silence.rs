//! Suppression of new firings: silences, maintenance windows and monitor dependencies.
//!
//! The [`Suppressor`] answers one question at flush time: should this firing alert be left out
//! of notifications now? It never applies to resolves: the grouping core always sends the
//! resolve of a firing it sent (see [`crate::group`]).
//!
//! - A silence is in force from `starts_at` to `ends_at` (exclusive).
//! - A one-off maintenance window likewise; a recurring one from every start of its five-field
//!   cron schedule, read in its IANA time zone (so `0 2 * * SUN` stays 02:00 local time across
//!   DST changes; a start inside a skipped hour moves to the first minute after the gap), for
//!   its duration.
//! - A monitor depending on others (`parents`: child → parents) has its firings suppressed
//!   while any alert of a direct parent fires: the parent's alert already explains the outage.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use vigil_schema::{FieldError, MaintenanceSchedule, MaintenanceSpec, SilenceSpec, Timestamp};

use crate::alert::Labels;
use crate::matcher::MatcherSet;

/// Why a firing is not notified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suppression {
    /// A silence (its id) covers it.
    Silence(String),
    /// A maintenance window (its id) is in force.
    Maintenance(String),
    /// A monitor it depends on (its id) has a firing alert.
    Dependency(String),
}

/// Silences, maintenance windows and dependencies, compiled.
#[derive(Debug, Clone, Default)]
pub struct Suppressor {
    silences: Vec<(SilenceSpec, MatcherSet)>,
    maintenance: Vec<(String, MatcherSet, Schedule)>,
    parents: HashMap<String, Vec<String>>,
}

/// When a maintenance window is in force, compiled.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// From `starts_at` to `ends_at` (exclusive).
    OneOff {
        /// Start.
        starts_at: Timestamp,
        /// End.
        ends_at: Timestamp,
    },
    /// From each start of `cron` in `time_zone`, for `duration`.
    Recurring {
        /// The schedule.
        cron: Box<Cron>,
        /// Length of each window.
        duration: Duration,
        /// The zone the schedule is read in.
        time_zone: Tz,
    },
}

impl Schedule {
    /// Compiles a schedule; errors name the field.
    pub fn new(spec: &MaintenanceSchedule) -> Result<Self, Vec<FieldError>> {
        match spec {
            MaintenanceSchedule::OneOff { starts_at, ends_at } => Ok(Schedule::OneOff {
                starts_at: *starts_at,
                ends_at: *ends_at,
            }),
            MaintenanceSchedule::Recurring {
                cron,
                duration,
                time_zone,
            } => {
                let mut errors = Vec::new();
                let parsed = parse_cron(cron).map_err(|reason| {
                    errors.push(FieldError {
                        field: "schedule.recurring.cron".into(),
                        reason,
                    });
                });
                let zone = time_zone.parse::<Tz>().map_err(|_| {
                    errors.push(FieldError {
                        field: "schedule.recurring.time_zone".into(),
                        reason: format!("unknown IANA time zone {time_zone:?}"),
                    });
                });
                match (parsed, zone) {
                    (Ok(cron), Ok(time_zone)) => Ok(Schedule::Recurring {
                        cron: Box::new(cron),
                        duration: *duration,
                        time_zone,
                    }),
                    _ => Err(errors),
                }
            }
        }
    }

    /// The window in force at `at`, else the next one to start after it, as (start, end) in
    /// unix ms; `None` when no window ends after `at`.
    pub fn next_window(&self, at: Timestamp) -> Option<(i64, i64)> {
        match self {
            Schedule::OneOff { starts_at, ends_at } => {
                (at < *ends_at).then(|| (starts_at.as_millis(), ends_at.as_millis()))
            }
            Schedule::Recurring {
                cron,
                duration,
                time_zone,
            } => {
                let local = DateTime::<Utc>::from_timestamp_millis(at.as_millis())?
                    .with_timezone(time_zone);
                let length = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
                if let Ok(start) = cron.find_previous_occurrence(&local, true) {
                    let end = start.timestamp_millis().saturating_add(length);
                    if at.as_millis() < end {
                        return Some((start.timestamp_millis(), end));
                    }
                }
                let start = cron.find_next_occurrence(&local, false).ok()?;
                Some((
                    start.timestamp_millis(),
                    start.timestamp_millis().saturating_add(length),
                ))
            }
        }
    }

    /// Whether the window is in force at `at`.
    pub fn is_active(&self, at: Timestamp) -> bool {
        match self {
            Schedule::OneOff { starts_at, ends_at } => *starts_at <= at && at < *ends_at,
            Schedule::Recurring {
                cron,
                duration,
                time_zone,
            } => {
                let Some(now) = DateTime::<Utc>::from_timestamp_millis(at.as_millis()) else {
                    return false;
                };
                let local = now.with_timezone(time_zone);
                // The latest start at or before `at` covers it if any start does.
                match cron.find_previous_occurrence(&local, true) {
                    Ok(start) => {
                        let end = start.timestamp_millis().saturating_add(
                            i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
                        );
                        at.as_millis() < end
                    }
                    Err(_) => false,
                }
            }
        }
    }
}

/// Parses a five-field cron expression (no seconds, no year).
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "must have 5 fields (minute hour day-of-month month day-of-week), got {fields} in \
             {expr:?}"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))
}

impl Suppressor {
    /// Nothing suppressed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a silence; errors name the bad field.
    pub fn add_silence(&mut self, spec: &SilenceSpec) -> Result<(), Vec<FieldError>> {
        spec.validate()?;
        let matchers = compile(&spec.matchers)?;
        self.silences.push((spec.clone(), matchers));
        Ok(())
    }

    /// Adds a maintenance window; errors name the bad field.
    pub fn add_maintenance(&mut self, spec: &MaintenanceSpec) -> Result<(), Vec<FieldError>> {
        spec.validate()?;
        let matchers = compile(&spec.matchers);
        let schedule = Schedule::new(&spec.schedule);
        match (matchers, schedule) {
            (Ok(m), Ok(s)) => {
                self.maintenance.push((spec.id.clone(), m, s));
                Ok(())
            }
            (m, s) => Err(m
                .err()
                .into_iter()
                .flatten()
                .chain(s.err().into_iter().flatten())
                .collect()),
        }
    }

    /// Sets the dependencies: monitor → the monitors it depends on.
    pub fn set_parents(&mut self, parents: HashMap<String, Vec<String>>) {
        self.parents = parents;
    }

    /// Why a firing alert with these labels, of `monitor`, is not notified at `at`, given the
    /// monitors that have a firing alert; `None` when it is notified.
    pub fn suppression(
        &self,
        labels: &Labels,
        monitor: &str,
        at: Timestamp,
        firing_monitors: &BTreeSet<String>,
    ) -> Option<Suppression> {
        if let Some((spec, _)) = self
            .silences
            .iter()
            .find(|(spec, m)| spec.is_active(at) && m.matches(labels))
        {
            return Some(Suppression::Silence(spec.id.clone()));
        }
        if let Some((id, _, _)) = self
            .maintenance
            .iter()
            .find(|(_, m, schedule)| m.matches(labels) && schedule.is_active(at))
        {
            return Some(Suppression::Maintenance(id.clone()));
        }
        self.parents
            .get(monitor)
            .into_iter()
            .flatten()
            .find(|parent| *parent != monitor && firing_monitors.contains(*parent))
            .map(|parent| Suppression::Dependency(parent.clone()))
    }
}

fn compile(matchers: &[vigil_schema::Matcher]) -> Result<MatcherSet, Vec<FieldError>> {
    MatcherSet::compile(matchers).map_err(|(i, reason)| {
        vec![FieldError {
            field: format!("matchers[{i}]"),
            reason,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(rfc3339: &str) -> Timestamp {
        Timestamp::parse_rfc3339(rfc3339).unwrap()
    }

    fn maintenance(schedule: serde_json::Value) -> MaintenanceSpec {
        serde_json::from_value(serde_json::json!({
            "id": "db-nightly", "matchers": ["monitor=~db-.*"], "schedule": schedule,
        }))
        .unwrap()
    }

    fn labels(monitor: &str) -> Labels {
        [("monitor".to_owned(), monitor.to_owned())].into()
    }

    #[test]
    fn recurring_windows_follow_local_time_across_dst() {
        // Every day 09:00–10:00 in Berlin. Summer time starts on 2026-03-29 (02:00 → 03:00):
        // before, 09:00 local is 08:00 UTC; after, 07:00 UTC.
        let s = Schedule::new(
            &maintenance(serde_json::json!({"recurring": {
            "cron": "0 9 * * *", "duration": "1h", "time_zone": "Europe/Berlin"}}))
            .schedule,
        )
        .unwrap();
        for (at, active) in [
            ("2026-03-28T07:59:59Z", false),
            ("2026-03-28T08:00:00Z", true),
            ("2026-03-28T08:59:59.999Z", true),
            ("2026-03-28T09:00:00Z", false),
            ("2026-03-30T06:59:59Z", false),
            ("2026-03-30T07:00:00Z", true),
            ("2026-03-30T07:59:59Z", true),
            ("2026-03-30T08:00:00Z", false),
            ("2026-03-30T08:30:00Z", false),
            // Winter time again from 2026-10-25 (03:00 → 02:00).
            ("2026-10-26T07:30:00Z", false),
            ("2026-10-26T08:30:00Z", true),
        ] {
            assert_eq!(s.is_active(ts(at)), active, "{at}");
        }
    }

    #[test]
    fn a_start_in_the_skipped_hour_moves_after_the_gap() {
        // 02:30 does not exist in Berlin on 2026-03-29: the window starts at 03:00 CEST
        // (01:00 UTC) and lasts its full hour.
        let s = Schedule::new(
            &maintenance(serde_json::json!({"recurring": {
            "cron": "30 2 * * *", "duration": "1h", "time_zone": "Europe/Berlin"}}))
            .schedule,
        )
        .unwrap();
        assert!(s.is_active(ts("2026-03-28T01:30:00Z")), "02:30 CET");
        assert!(!s.is_active(ts("2026-03-29T00:59:00Z")));
        assert!(s.is_active(ts("2026-03-29T01:00:00Z")));
        assert!(s.is_active(ts("2026-03-29T01:59:00Z")));
        assert!(!s.is_active(ts("2026-03-29T02:00:00Z")));
        assert!(s.is_active(ts("2026-03-30T00:30:00Z")), "02:30 CEST");
    }

    #[test]
    fn weekdays_and_one_off_windows() {
        let weekly = Schedule::new(
            &maintenance(serde_json::json!({"recurring": {
            "cron": "0 22 * * SUN", "duration": "4h", "time_zone": "UTC"}}))
            .schedule,
        )
        .unwrap();
        // 2026-03-01 is a Sunday; the window spans midnight.
        assert!(weekly.is_active(ts("2026-03-01T23:00:00Z")));
        assert!(weekly.is_active(ts("2026-03-02T01:59:00Z")));
        assert!(!weekly.is_active(ts("2026-03-02T02:00:00Z")));
        assert!(!weekly.is_active(ts("2026-03-03T23:00:00Z")));
        let once = Schedule::new(
            &maintenance(serde_json::json!({"one_off": {
            "starts_at": "2026-05-01T00:00:00Z", "ends_at": "2026-05-01T04:00:00Z"}}))
            .schedule,
        )
        .unwrap();
        assert!(once.is_active(ts("2026-05-01T00:00:00Z")));
        assert!(!once.is_active(ts("2026-05-01T04:00:00Z")));
    }

    #[test]
    fn bad_cron_and_zone_are_named() {
        let mut suppressor = Suppressor::new();
        let errors = suppressor
            .add_maintenance(&maintenance(serde_json::json!({"recurring": {
                "cron": "61 * * * *", "duration": "1h", "time_zone": "Europe/Atlantis"}})))
            .unwrap_err();
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("schedule.recurring.cron: invalid cron expression \"61 * * * *\""),
            "{got:?}"
        );
        assert_eq!(
            got[1],
            "schedule.recurring.time_zone: unknown IANA time zone \"Europe/Atlantis\""
        );
        assert!(parse_cron("0 0 9 * * *").unwrap_err().contains("5 fields"));
    }

    #[test]
    fn silences_maintenance_and_dependencies() {
        let mut s = Suppressor::new();
        let silence: SilenceSpec = serde_json::from_value(serde_json::json!({
            "id": "deploy", "matchers": ["monitor=checkout"], "author": "ana",
            "starts_at": "2026-03-01T10:00:00Z", "ends_at": "2026-03-01T11:00:00Z",
        }))
        .unwrap();
        s.add_silence(&silence).unwrap();
        s.add_maintenance(&maintenance(serde_json::json!({"one_off": {
            "starts_at": "2026-03-01T10:30:00Z", "ends_at": "2026-03-01T12:00:00Z"}})))
            .unwrap();
        s.set_parents([("api".to_owned(), vec!["db-main".to_owned()])].into());
        let none = BTreeSet::new();
        let at = ts("2026-03-01T10:45:00Z");
        assert_eq!(
            s.suppression(&labels("checkout"), "checkout", at, &none),
            Some(Suppression::Silence("deploy".into()))
        );
        assert_eq!(
            s.suppression(&labels("db-main"), "db-main", at, &none),
            Some(Suppression::Maintenance("db-nightly".into()))
        );
        assert_eq!(
            s.suppression(
                &labels("checkout"),
                "checkout",
                ts("2026-03-01T11:00:00Z"),
                &none
            ),
            None
        );
        let db_firing: BTreeSet<String> = ["db-main".to_owned()].into();
        assert_eq!(s.suppression(&labels("api"), "api", at, &none), None);
        assert_eq!(
            s.suppression(&labels("api"), "api", at, &db_firing),
            Some(Suppression::Dependency("db-main".into()))
        );
    }
}
