//! Silences and maintenance windows: read from their views, written through the one compacted
//! silences topic they share (key = id, so ids are unique across both; a maintenance window's
//! tombstone deletes it). A silence is never deleted through the API: expiring it sets its end
//! to now, so expired silences stay listed. Every spec is checked with the notification
//! stage's own checks (regular expressions compiled, cron expressions and time zones read).

use std::sync::Arc;
use std::time::Duration;

use vigil_notify::check;
use vigil_schema::{MaintenanceSpec, Matcher, SilenceSpec, SilenceState, Timestamp};

use super::channels::{decode, field_error, invalid, page};
use crate::model::{Maintenance, MaintenancePage, NewSilence, Silence, SilencePage};
use crate::params;
use crate::service::Service;
use crate::{Error, Result};

/// Filters of the silence list.
#[derive(Debug, Clone, Default)]
pub struct SilenceFilter {
    /// `pending`, `active` or `expired`; none: every silence.
    pub state: Option<String>,
    /// Only silences with this matcher (`monitor=checkout`; compared as parsed).
    pub matcher: Option<String>,
    /// Only silences by this author.
    pub author: Option<String>,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
}

/// Filters of the maintenance window list.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceFilter {
    /// `true`: only windows in force now; `false`: only those that are not.
    pub active: Option<String>,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
}

fn silence_state(value: &str) -> Result<SilenceState> {
    match value.trim() {
        "pending" => Ok(SilenceState::Pending),
        "active" => Ok(SilenceState::Active),
        "expired" => Ok(SilenceState::Expired),
        other => Err(Error::bad_parameter(
            "state",
            format!("expected `pending`, `active` or `expired`, got {other:?}"),
        )),
    }
}

impl Service {
    /// Lists silences ordered by id (new ids sort by creation), filtered and paginated.
    pub fn list_silences(&self, filter: &SilenceFilter) -> Result<SilencePage> {
        let limit = params::page_size(filter.limit, self.limits())? as usize;
        let state = filter.state.as_deref().map(silence_state).transpose()?;
        let matcher = filter
            .matcher
            .as_deref()
            .map(|m| {
                m.parse::<Matcher>()
                    .map_err(|reason| Error::bad_parameter("matcher", reason))
            })
            .transpose()?;
        let now = self.now();
        let silences: Vec<Arc<SilenceSpec>> = self
            .notify_views()
            .silences
            .all()
            .into_iter()
            .filter(|s| state.is_none_or(|state| s.state(now) == state))
            .filter(|s| matcher.as_ref().is_none_or(|m| s.matchers.contains(m)))
            .filter(|s| filter.author.as_ref().is_none_or(|a| s.author == *a))
            .collect();
        let (items, next_cursor) = page(silences, filter.cursor.as_deref(), limit)?;
        Ok(SilencePage {
            items: items.iter().map(|s| Silence::new(s, now)).collect(),
            next_cursor,
        })
    }

    /// One silence.
    pub fn get_silence(&self, id: &str) -> Result<Silence> {
        self.silence_spec(id).map(|s| Silence::new(&s, self.now()))
    }

    fn silence_spec(&self, id: &str) -> Result<Arc<SilenceSpec>> {
        self.notify_views()
            .silences
            .get(id)
            .ok_or_else(|| Error::NotFound {
                kind: "silence",
                id: id.to_owned(),
            })
    }

    /// 409 when a silence or a maintenance window holds `id` (they share one key space).
    fn check_free(&self, kind: &'static str, id: &str) -> Result<()> {
        let views = self.notify_views();
        if views.silences.get(id).is_some() || views.maintenance.get(id).is_some() {
            return Err(Error::Conflict {
                kind,
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Creates a silence by `author` (the caller's key name): 422 if invalid, 409 if the id
    /// is taken by a silence or a maintenance window.
    pub async fn create_silence(&self, body: serde_json::Value, author: &str) -> Result<Silence> {
        let new: NewSilence = decode(body)?;
        let spec = build_silence(new, author, self.now())?;
        check::silence(&spec).map_err(|e| invalid("silence", e))?;
        self.check_free("silence", &spec.id)?;
        self.write_silence(&spec).await?;
        Ok(Silence::new(&spec, self.now()))
    }

    /// Ends silence `id` now (404 if absent). A silence that already ended is returned as it
    /// is; one that had not started yet never comes into force.
    pub async fn expire_silence(&self, id: &str) -> Result<Silence> {
        let spec = self.silence_spec(id)?;
        let now = self.now();
        match spec.expired_at(now) {
            None => Ok(Silence::new(&spec, now)),
            Some(ended) => {
                self.write_silence(&ended).await?;
                Ok(Silence::new(&ended, now))
            }
        }
    }

    async fn write_silence(&self, spec: &SilenceSpec) -> Result<()> {
        let bytes = vigil_schema::encode(spec)?;
        let views = self.notify_views();
        self.produce(
            &self.inner.topics.silences,
            &views.silences,
            &spec.id,
            Some(&bytes),
        )
        .await?;
        metrics::counter!("vigil_query_silence_writes_total").increment(1);
        Ok(())
    }

    /// Lists maintenance windows ordered by id, filtered and paginated.
    pub fn list_maintenance(&self, filter: &MaintenanceFilter) -> Result<MaintenancePage> {
        let limit = params::page_size(filter.limit, self.limits())? as usize;
        let active = match filter.active.as_deref().map(str::trim) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(Error::bad_parameter(
                    "active",
                    format!("expected `true` or `false`, got {other:?}"),
                ));
            }
        };
        let now = self.now();
        let windows: Vec<Arc<MaintenanceSpec>> = self
            .notify_views()
            .maintenance
            .all()
            .into_iter()
            .filter(|m| active.is_none_or(|a| Maintenance::new(m, now).active == a))
            .collect();
        let (items, next_cursor) = page(windows, filter.cursor.as_deref(), limit)?;
        Ok(MaintenancePage {
            items: items.iter().map(|m| Maintenance::new(m, now)).collect(),
            next_cursor,
        })
    }

    /// One maintenance window.
    pub fn get_maintenance(&self, id: &str) -> Result<Maintenance> {
        self.maintenance_spec(id)
            .map(|m| Maintenance::new(&m, self.now()))
    }

    fn maintenance_spec(&self, id: &str) -> Result<Arc<MaintenanceSpec>> {
        self.notify_views()
            .maintenance
            .get(id)
            .ok_or_else(|| Error::NotFound {
                kind: "maintenance window",
                id: id.to_owned(),
            })
    }

    /// Creates a maintenance window: 422 if invalid, 409 if the id is taken by a maintenance
    /// window or a silence.
    pub async fn create_maintenance(&self, body: serde_json::Value) -> Result<Maintenance> {
        let spec = parse_maintenance(body)?;
        self.check_free("maintenance window", &spec.id)?;
        self.write_maintenance(&spec).await?;
        Ok(Maintenance::new(&spec, self.now()))
    }

    /// Replaces maintenance window `id`: 404 if absent, 422 if invalid or the body names
    /// another id.
    pub async fn update_maintenance(
        &self,
        id: &str,
        body: serde_json::Value,
    ) -> Result<Maintenance> {
        self.maintenance_spec(id)?;
        let spec = parse_maintenance(body)?;
        if spec.id != id {
            return Err(invalid(
                "maintenance window",
                vec![field_error(
                    "id",
                    format!(
                        "must match the window being replaced ({id:?}), got {:?}",
                        spec.id
                    ),
                )],
            ));
        }
        self.write_maintenance(&spec).await?;
        Ok(Maintenance::new(&spec, self.now()))
    }

    /// Deletes maintenance window `id` (a tombstone).
    pub async fn delete_maintenance(&self, id: &str) -> Result<()> {
        self.maintenance_spec(id)?;
        let views = self.notify_views();
        self.produce(&self.inner.topics.silences, &views.maintenance, id, None)
            .await
    }

    async fn write_maintenance(&self, spec: &MaintenanceSpec) -> Result<()> {
        let bytes = vigil_schema::encode(spec)?;
        let views = self.notify_views();
        self.produce(
            &self.inner.topics.silences,
            &views.maintenance,
            &spec.id,
            Some(&bytes),
        )
        .await
    }
}

/// Parses a maintenance window from JSON (a read-only `active` is ignored) and checks it.
pub fn parse_maintenance(mut value: serde_json::Value) -> Result<MaintenanceSpec> {
    if let Some(object) = value.as_object_mut()
        && object
            .get("active")
            .is_some_and(serde_json::Value::is_boolean)
    {
        object.remove("active");
    }
    let spec: MaintenanceSpec = decode(value)?;
    check::maintenance(&spec).map_err(|e| invalid("maintenance window", e))?;
    Ok(spec)
}

/// The silence a [`NewSilence`] asks for; problems name their field.
fn build_silence(new: NewSilence, author: &str, now: Timestamp) -> Result<SilenceSpec> {
    let mut errors = Vec::new();
    let mut matchers = Vec::with_capacity(new.matchers.len());
    for (i, m) in new.matchers.iter().enumerate() {
        match m.parse::<Matcher>() {
            Ok(m) => matchers.push(m),
            Err(reason) => errors.push(field_error(format!("matchers[{i}]"), reason)),
        }
    }
    let mut time = |field: &str, value: Option<&str>| {
        value.and_then(|v| match Timestamp::parse_rfc3339(v) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(field_error(
                    field,
                    format!("must be an RFC 3339 time, got {v:?}: {e}"),
                ));
                None
            }
        })
    };
    let starts_at = time("starts_at", new.starts_at.as_deref()).unwrap_or(now);
    let ends_at = match (new.ends_at.as_deref(), new.duration.as_deref()) {
        (Some(_), Some(_)) => {
            errors.push(field_error(
                "duration",
                "give either `ends_at` or `duration`, not both",
            ));
            None
        }
        (Some(end), None) => time("ends_at", Some(end)),
        (None, Some(d)) => match humantime::parse_duration(d) {
            Ok(d) => Some(starts_at.saturating_add_millis(millis(d))),
            Err(e) => {
                errors.push(field_error(
                    "duration",
                    format!("must be a duration like `2h`, got {d:?}: {e}"),
                ));
                None
            }
        },
        (None, None) => {
            errors.push(field_error("ends_at", "required, or `duration` instead"));
            None
        }
    };
    match ends_at {
        Some(ends_at) if errors.is_empty() => Ok(SilenceSpec {
            id: new.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            matchers,
            starts_at,
            ends_at,
            author: author.to_owned(),
            comment: new.comment,
        }),
        _ => Err(invalid("silence", errors)),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(err: Error) -> Vec<String> {
        let Error::InvalidSpec { errors, .. } = err else {
            panic!("expected InvalidSpec, got {err}")
        };
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn new_silences_take_their_author_and_name_bad_fields() {
        let now = Timestamp::parse_rfc3339("2026-03-01T10:00:00Z").unwrap();
        let new: NewSilence = serde_json::from_value(json!({
            "matchers": ["monitor=checkout"], "duration": "2h", "comment": "deploy"}))
        .unwrap();
        let spec = build_silence(new, "ops", now).unwrap();
        assert_eq!(spec.author, "ops");
        assert_eq!(spec.starts_at, now);
        assert_eq!(spec.ends_at.to_string(), "2026-03-01T12:00:00Z");
        assert_eq!(check::silence(&spec), Ok(()));
        let bad: NewSilence = serde_json::from_value(json!({
            "matchers": ["monitor", "a=b"], "starts_at": "yesterday",
            "ends_at": "2026-03-01T12:00:00Z", "duration": "2h"}))
        .unwrap();
        assert_eq!(
            fields(build_silence(bad, "ops", now).unwrap_err()),
            ["matchers[0]", "starts_at", "duration"]
        );
        let none = NewSilence {
            matchers: vec!["a=b".into()],
            ..NewSilence::default()
        };
        assert_eq!(
            fields(build_silence(none, "ops", now).unwrap_err()),
            ["ends_at"]
        );
        let err = decode::<NewSilence>(json!({"matchers": [], "author": "me"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `author`"), "{err}");
    }

    #[test]
    fn maintenance_ignores_a_read_only_active() {
        let spec = parse_maintenance(json!({"id": "m", "matchers": ["monitor=db"],
            "schedule": {"recurring": {"cron": "0 2 * * SUN", "duration": "2h"}},
            "active": true}))
        .unwrap();
        assert_eq!(spec.id, "m");
        let err = parse_maintenance(json!({"id": "m", "matchers": ["monitor=db"],
            "schedule": {"recurring": {"cron": "0 2 * * SUN", "duration": "2h",
                                       "time_zone": "Mars/Base"}}}))
        .unwrap_err();
        assert_eq!(fields(err), ["schedule.recurring.time_zone"]);
    }
}
