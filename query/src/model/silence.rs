//! Silence and maintenance window DTOs. A [`Silence`] serializes like its [`SilenceSpec`] plus
//! its `state`; a [`Maintenance`] window like its [`MaintenanceSpec`] plus whether it is
//! `active` now. Both extras are read-only (an `active` sent back in a body is ignored).
//! [`NewSilence`] is the body that creates a silence: its author is the caller's key name.

use async_graphql::{ComplexObject, Enum, SimpleObject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vigil_schema::{MaintenanceSchedule, MaintenanceSpec, SilenceSpec, Timestamp};

/// Where a silence stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Enum)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    /// In force: new firings of the alerts it matches are not notified.
    Active,
    /// Ended (expired silences are kept and listed with `state=expired`).
    Expired,
}

impl From<vigil_schema::SilenceState> for SilenceState {
    fn from(state: vigil_schema::SilenceState) -> Self {
        match state {
            vigil_schema::SilenceState::Pending => SilenceState::Pending,
            vigil_schema::SilenceState::Active => SilenceState::Active,
            vigil_schema::SilenceState::Expired => SilenceState::Expired,
        }
    }
}

/// A silence: new firings of the alerts meeting every matcher are not notified between
/// `starts_at` and `ends_at` (resolves always are).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct Silence {
    /// Stable identifier, a slug.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub id: String,
    /// Label matchers, all of which an alert must meet (`monitor=checkout`, `region!=eu`,
    /// `rule=~p99-.*`, `team!~web|mobile`).
    pub matchers: Vec<String>,
    /// Start (RFC 3339).
    pub starts_at: String,
    /// End, exclusive (RFC 3339).
    pub ends_at: String,
    /// Who created it: the API key's name.
    pub author: String,
    /// Why.
    pub comment: String,
    /// Where it stands now (read-only).
    #[schema(read_only)]
    pub state: SilenceState,
}

impl Silence {
    /// The DTO of `spec` as seen at `now`.
    pub fn new(spec: &SilenceSpec, now: Timestamp) -> Self {
        Self {
            id: spec.id.clone(),
            matchers: spec.matchers.iter().map(ToString::to_string).collect(),
            starts_at: spec.starts_at.to_string(),
            ends_at: spec.ends_at.to_string(),
            author: spec.author.clone(),
            comment: spec.comment.clone(),
            state: spec.state(now).into(),
        }
    }
}

/// The body that creates a silence. Its author is the name of the caller's API key.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// Stable identifier, a slug; default: a new UUID (time-ordered, so ids sort by creation).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub id: Option<String>,
    /// Label matchers, all of which an alert must meet; 1 to 32.
    #[schema(min_items = 1, max_items = 32, example = json!(["monitor=checkout"]))]
    pub matchers: Vec<String>,
    /// Start (RFC 3339); default: now.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// End (RFC 3339, after `starts_at`). Exactly one of `ends_at` and `duration`.
    #[serde(default)]
    pub ends_at: Option<String>,
    /// Length from `starts_at` (`2h`, `90m`). Exactly one of `ends_at` and `duration`.
    #[serde(default)]
    #[schema(example = "2h")]
    pub duration: Option<String>,
    /// Why (at most 1000 bytes).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub comment: String,
}

/// One page of silences, ordered by id.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct SilencePage {
    /// The silences on this page.
    pub items: Vec<Silence>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A planned maintenance window: new firings of the alerts meeting every matcher are not
/// notified while it is in force (the same shape is accepted when creating or replacing one).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
#[graphql(complex)]
pub struct Maintenance {
    /// Stable identifier, a slug (silences and maintenance windows share their ids).
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub id: String,
    /// Display name.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub name: String,
    /// Label matchers, all of which an alert must meet; 1 to 32.
    #[schema(min_items = 1, max_items = 32)]
    pub matchers: Vec<String>,
    /// When it is in force: exactly one kind.
    #[graphql(skip)]
    pub schedule: Schedule,
    /// Whether it is in force now (read-only; ignored in requests).
    #[serde(default)]
    #[schema(read_only)]
    pub active: bool,
}

#[ComplexObject]
impl Maintenance {
    /// The schedule, as in the REST body.
    #[graphql(name = "schedule")]
    async fn schedule_json(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::to_value(&self.schedule).unwrap_or_default())
    }
}

/// When a maintenance window is in force: an object with exactly one of these keys.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Once.
    OneOff {
        /// Start (RFC 3339).
        starts_at: String,
        /// End, exclusive (RFC 3339, after `starts_at`).
        ends_at: String,
    },
    /// From every start of a cron schedule, for `duration`.
    Recurring {
        /// Five-field cron expression (minute hour day-of-month month day-of-week) read in
        /// `time_zone`: `0 2 * * SUN` is every Sunday at 02:00 local time, across DST changes.
        #[schema(example = "0 2 * * SUN")]
        cron: String,
        /// How long each window lasts (> 0s, ≤ 7d).
        #[schema(example = "2h")]
        duration: String,
        /// IANA time zone.
        #[serde(default)]
        #[schema(default = "UTC", example = "Europe/Berlin")]
        time_zone: String,
    },
}

/// One page of maintenance windows, ordered by id.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct MaintenancePage {
    /// The windows on this page.
    pub items: Vec<Maintenance>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl Maintenance {
    /// The DTO of `spec`, with whether it is in force at `now`.
    pub fn new(spec: &MaintenanceSpec, now: Timestamp) -> Self {
        let active = vigil_notify::silence::Schedule::new(&spec.schedule)
            .is_ok_and(|schedule| schedule.is_active(now));
        Self {
            id: spec.id.clone(),
            name: spec.name.clone(),
            matchers: spec.matchers.iter().map(ToString::to_string).collect(),
            schedule: match &spec.schedule {
                MaintenanceSchedule::OneOff { starts_at, ends_at } => Schedule::OneOff {
                    starts_at: starts_at.to_string(),
                    ends_at: ends_at.to_string(),
                },
                MaintenanceSchedule::Recurring {
                    cron,
                    duration,
                    time_zone,
                } => Schedule::Recurring {
                    cron: cron.clone(),
                    duration: humantime::format_duration(*duration).to_string(),
                    time_zone: time_zone.clone(),
                },
            },
            active,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        Timestamp::parse_rfc3339(rfc3339).unwrap()
    }

    #[test]
    fn the_dtos_serialize_like_the_specs_plus_their_state() {
        let silence: SilenceSpec = serde_json::from_value(json!({
            "id": "deploy", "matchers": ["monitor=checkout", "team=\"web ops\""],
            "starts_at": "2026-03-01T10:00:00Z", "ends_at": "2026-03-01T12:00:00.250Z",
            "author": "ops", "comment": "release"}))
        .unwrap();
        let mut dto =
            serde_json::to_value(Silence::new(&silence, at("2026-03-01T11:00:00Z"))).unwrap();
        assert_eq!(dto["state"], "active");
        dto.as_object_mut().unwrap().remove("state");
        assert_eq!(dto, serde_json::to_value(&silence).unwrap());
        for (now, state) in [
            ("2026-03-01T09:00:00Z", SilenceState::Pending),
            ("2026-03-01T12:00:00.250Z", SilenceState::Expired),
        ] {
            assert_eq!(Silence::new(&silence, at(now)).state, state);
        }
        for schedule in [
            json!({"recurring": {"cron": "0 2 * * SUN", "duration": "2h 30m",
                                 "time_zone": "Europe/Berlin"}}),
            json!({"one_off": {"starts_at": "2026-05-01T00:00:00Z",
                               "ends_at": "2026-05-01T04:00:00Z"}}),
        ] {
            let spec: MaintenanceSpec = serde_json::from_value(json!({
                "id": "m", "name": "M", "matchers": ["region=eu-west"], "schedule": schedule}))
            .unwrap();
            let mut dto =
                serde_json::to_value(Maintenance::new(&spec, at("2026-05-01T01:00:00Z"))).unwrap();
            // 01:00 UTC on a Friday: inside the one-off window, outside Sunday's.
            let one_off = matches!(spec.schedule, MaintenanceSchedule::OneOff { .. });
            assert_eq!(dto["active"], one_off);
            dto.as_object_mut().unwrap().remove("active");
            assert_eq!(dto, serde_json::to_value(&spec).unwrap());
        }
    }
}
