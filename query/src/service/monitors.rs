//! Monitors: read from the monitors view, written through the compacted monitors topic (a
//! tombstone deletes). Writes answer once the service's own view shows them, so a client reads
//! its own writes. Every spec is validated by [`MonitorSpec::validate`], and created or
//! replaced ones also by [`validate_egress`] against the probes' egress policy (no literal
//! non-public host the allow-list does not cover, no `${…}` reference but secrets and
//! allow-listed variables); problems are 422s naming the field.

use std::sync::Arc;

use vigil_schema::{FieldError, MonitorSpec, validate_egress};

use crate::model::{Monitor, MonitorPage};
use crate::params;
use crate::service::Service;
use crate::{Error, Result};

/// Filters of the monitor list.
#[derive(Debug, Clone, Default)]
pub struct MonitorFilter {
    /// Only monitors with this tag.
    pub tag: Option<String>,
    /// Only monitors that run in this region (monitors without regions run everywhere).
    pub region: Option<String>,
    /// `enabled` or `disabled`.
    pub status: Option<String>,
    /// `id` (default), `name`, `-id` or `-name` (descending).
    pub sort: Option<String>,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
}

impl Service {
    /// Lists monitors, filtered, sorted and paginated by cursor.
    pub fn list_monitors(&self, filter: &MonitorFilter) -> Result<MonitorPage> {
        let limit = params::page_size(filter.limit, &self.inner.limits)? as usize;
        let enabled = params::enabled(filter.status.as_deref())?;
        let (by_name, descending) = match filter.sort.as_deref().unwrap_or("id") {
            "id" => (false, false),
            "-id" => (false, true),
            "name" => (true, false),
            "-name" => (true, true),
            other => {
                return Err(Error::bad_parameter(
                    "sort",
                    format!("expected `id`, `name`, `-id` or `-name`, got {other:?}"),
                ));
            }
        };
        let after = match &filter.cursor {
            Some(c) => {
                let parts = params::decode_cursor(c, 2)?;
                Some((parts[0].clone(), parts[1].clone()))
            }
            None => None,
        };
        let key = |m: &MonitorSpec| -> (String, String) {
            let primary = if by_name {
                m.name.clone()
            } else {
                m.id.clone()
            };
            (primary, m.id.clone())
        };
        let mut monitors: Vec<Arc<MonitorSpec>> = self
            .inner
            .view
            .all()
            .into_iter()
            .filter(|m| filter.tag.as_ref().is_none_or(|t| m.tags.contains(t)))
            .filter(|m| filter.region.as_ref().is_none_or(|r| m.runs_in(r)))
            .filter(|m| enabled.is_none_or(|e| m.enabled == e))
            .collect();
        monitors.sort_by_key(|m| key(m));
        if descending {
            monitors.reverse();
        }
        let mut page: Vec<Arc<MonitorSpec>> = monitors
            .into_iter()
            .filter(|m| match &after {
                None => true,
                Some(after) if descending => key(m) < *after,
                Some(after) => key(m) > *after,
            })
            .take(limit + 1)
            .collect();
        let next_cursor = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|m| {
                let (a, b) = key(m);
                params::encode_cursor(&[&a, &b])
            })
        } else {
            None
        };
        Ok(MonitorPage {
            items: page.iter().map(|m| Monitor::from(m.as_ref())).collect(),
            next_cursor,
        })
    }

    /// One monitor.
    pub fn get_monitor(&self, id: &str) -> Result<Monitor> {
        self.spec(id).map(|s| Monitor::from(s.as_ref()))
    }

    pub(super) fn spec(&self, id: &str) -> Result<Arc<MonitorSpec>> {
        self.inner.view.get(id).ok_or_else(|| Error::NotFound {
            kind: "monitor",
            id: id.to_owned(),
        })
    }

    /// Creates a monitor from a JSON spec: 422 if invalid, 409 if the id exists.
    pub async fn create_monitor(&self, spec: serde_json::Value) -> Result<Monitor> {
        let spec = parse_spec(spec)?;
        self.check_egress(&spec)?;
        if self.inner.view.get(&spec.id).is_some() {
            return Err(Error::Conflict {
                kind: "monitor",
                id: spec.id,
            });
        }
        self.write(&spec).await?;
        Ok(Monitor::from(&spec))
    }

    /// Replaces monitor `id`: 404 if absent, 422 if invalid or the body names another id.
    pub async fn update_monitor(&self, id: &str, spec: serde_json::Value) -> Result<Monitor> {
        self.spec(id)?;
        let spec = parse_spec(spec)?;
        self.check_egress(&spec)?;
        if spec.id != id {
            return Err(Error::InvalidSpec {
                kind: "monitor",
                errors: vec![FieldError {
                    field: "id".into(),
                    reason: format!(
                        "must match the monitor being replaced ({id:?}), got {:?}",
                        spec.id
                    ),
                }],
            });
        }
        self.write(&spec).await?;
        Ok(Monitor::from(&spec))
    }

    /// Applies a JSON merge patch (RFC 7396) to monitor `id`'s spec: the fields it names
    /// replace the stored ones (`null` removes a field, back to its default), the rest is kept,
    /// so a client that was never shown a secret does not write it back. The result is
    /// validated like a whole spec; the id cannot change.
    pub async fn patch_monitor(&self, id: &str, patch: &serde_json::Value) -> Result<Monitor> {
        if !patch.is_object() {
            return Err(Error::BadBody(
                "a merge patch must be a JSON object of the fields to change".into(),
            ));
        }
        let stored = self.spec(id)?;
        let mut value = serde_json::to_value(stored.as_ref())?;
        json_patch::merge(&mut value, patch);
        // The patch is well-formed whatever it holds: a spec it makes undecodable is invalid
        // (422, naming the field), not a malformed request.
        if let Err(e) = serde_path_to_error::deserialize::<_, MonitorSpec>(value.clone()) {
            let field = e.path().to_string();
            return Err(Error::InvalidSpec {
                kind: "monitor",
                errors: vec![FieldError {
                    field: if field == "." { String::new() } else { field },
                    reason: e.into_inner().to_string(),
                }],
            });
        }
        self.update_monitor(id, value).await
    }

    /// Enables or disables monitor `id`.
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<Monitor> {
        let mut spec = MonitorSpec::clone(self.spec(id)?.as_ref());
        spec.enabled = enabled;
        self.write(&spec).await?;
        Ok(Monitor::from(&spec))
    }

    /// Deletes monitor `id` (a tombstone on the compacted topic).
    pub async fn delete_monitor(&self, id: &str) -> Result<()> {
        self.spec(id)?;
        self.produce(&self.inner.topics.monitors, &self.inner.view, id, None)
            .await
    }

    fn check_egress(&self, spec: &MonitorSpec) -> Result<()> {
        validate_egress(spec, &self.inner.egress).map_err(|errors| Error::InvalidSpec {
            kind: "monitor",
            errors,
        })
    }

    pub(super) async fn write(&self, spec: &MonitorSpec) -> Result<()> {
        let bytes = vigil_schema::encode(spec)?;
        self.produce(
            &self.inner.topics.monitors,
            &self.inner.view,
            &spec.id,
            Some(&bytes),
        )
        .await?;
        metrics::counter!("vigil_query_monitor_writes_total").increment(1);
        Ok(())
    }
}

/// Parses a monitor spec from JSON and validates it: a body of the wrong shape is a 400, a
/// spec that fails validation a 422 naming every field.
pub fn parse_spec(value: serde_json::Value) -> Result<MonitorSpec> {
    // The error names the field it is about (`interval: invalid value …`).
    let spec: MonitorSpec = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            Error::BadBody(e.into_inner().to_string())
        } else {
            Error::BadBody(format!("{path}: {}", e.into_inner()))
        }
    })?;
    spec.validate().map_err(|errors| Error::InvalidSpec {
        kind: "monitor",
        errors,
    })?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_problems_are_422_with_fields() {
        let err = parse_spec(serde_json::json!({"id": "Bad Id", "name": "x", "url": "ftp://x"}))
            .unwrap_err();
        let Error::InvalidSpec { errors: fields, .. } = err else {
            panic!("expected InvalidSpec")
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["id", "url"]);
        let err = parse_spec(serde_json::json!({"id": "a", "name": "x"})).unwrap_err();
        assert!(err.to_string().contains("missing field `url`"), "{err}");
    }
}
