//! Alert rules: read from the rules view, written through the compacted rules topic (a tombstone
//! deletes). Writes answer once the service's own view shows them, so a client reads its own
//! writes. Every spec is validated by [`RuleSpec::validate`]; problems are 422s naming the field.

use std::sync::Arc;

use vigil_schema::{FieldError, RuleSpec};

use crate::model::{Rule, RulePage};
use crate::params::{self, severity};
use crate::service::Service;
use crate::{Error, Result};

/// Filters of the rule list.
#[derive(Debug, Clone, Default)]
pub struct RuleFilter {
    /// Only rules that apply to this monitor: naming it, sharing one of its tags, or applying
    /// to every monitor.
    pub monitor: Option<String>,
    /// Only rules of this severity (`info`, `warning`, `critical`).
    pub severity: Option<String>,
    /// `enabled` or `disabled`.
    pub status: Option<String>,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
}

impl Service {
    /// Lists rules ordered by id, filtered and paginated by cursor.
    pub fn list_rules(&self, filter: &RuleFilter) -> Result<RulePage> {
        let limit = params::page_size(filter.limit, self.limits())? as usize;
        let enabled = params::enabled(filter.status.as_deref())?;
        let severity = filter.severity.as_deref().map(severity).transpose()?;
        let monitor = filter
            .monitor
            .as_deref()
            .map(|id| {
                self.view().get(id).ok_or_else(|| Error::NotFound {
                    kind: "monitor",
                    id: id.to_owned(),
                })
            })
            .transpose()?;
        let after = match &filter.cursor {
            Some(c) => Some(params::decode_cursor(c, 1)?.remove(0)),
            None => None,
        };
        let mut rules: Vec<Arc<RuleSpec>> = self
            .rule_view()
            .all()
            .into_iter()
            .filter(|r| monitor.as_ref().is_none_or(|m| r.applies_to(m)))
            .filter(|r| severity.is_none_or(|s| r.severity == s))
            .filter(|r| enabled.is_none_or(|e| r.enabled == e))
            .filter(|r| after.as_ref().is_none_or(|after| r.id > *after))
            .collect();
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        rules.truncate(limit + 1);
        let next_cursor = if rules.len() > limit {
            rules.truncate(limit);
            rules.last().map(|r| params::encode_cursor(&[&r.id]))
        } else {
            None
        };
        Ok(RulePage {
            items: rules.iter().map(|r| Rule::from(r.as_ref())).collect(),
            next_cursor,
        })
    }

    /// One rule.
    pub fn get_rule(&self, id: &str) -> Result<Rule> {
        self.rule_spec(id).map(|r| Rule::from(r.as_ref()))
    }

    pub(super) fn rule_spec(&self, id: &str) -> Result<Arc<RuleSpec>> {
        self.rule_view().get(id).ok_or_else(|| Error::NotFound {
            kind: "rule",
            id: id.to_owned(),
        })
    }

    /// Creates a rule from a JSON spec: 422 if invalid, 409 if the id exists.
    pub async fn create_rule(&self, spec: serde_json::Value) -> Result<Rule> {
        let spec = parse_rule(spec)?;
        if self.rule_view().get(&spec.id).is_some() {
            return Err(Error::Conflict {
                kind: "rule",
                id: spec.id,
            });
        }
        self.write_rule(&spec).await?;
        Ok(Rule::from(&spec))
    }

    /// Replaces rule `id`: 404 if absent, 422 if invalid or the body names another id.
    pub async fn update_rule(&self, id: &str, spec: serde_json::Value) -> Result<Rule> {
        self.rule_spec(id)?;
        let spec = parse_rule(spec)?;
        if spec.id != id {
            return Err(invalid(vec![FieldError {
                field: "id".into(),
                reason: format!(
                    "must match the rule being replaced ({id:?}), got {:?}",
                    spec.id
                ),
            }]));
        }
        self.write_rule(&spec).await?;
        Ok(Rule::from(&spec))
    }

    /// Deletes rule `id` (a tombstone on the compacted topic).
    pub async fn delete_rule(&self, id: &str) -> Result<()> {
        self.rule_spec(id)?;
        self.produce(&self.inner.topics.rules, &self.inner.rules, id, None)
            .await
    }

    async fn write_rule(&self, spec: &RuleSpec) -> Result<()> {
        let bytes = vigil_schema::encode(spec)?;
        self.produce(
            &self.inner.topics.rules,
            &self.inner.rules,
            &spec.id,
            Some(&bytes),
        )
        .await?;
        metrics::counter!("vigil_query_rule_writes_total").increment(1);
        Ok(())
    }
}

fn invalid(errors: Vec<FieldError>) -> Error {
    Error::InvalidSpec {
        kind: "rule",
        errors,
    }
}

/// Parses a rule spec from JSON and validates it: a body of the wrong shape is a 400, a spec
/// that fails validation a 422 naming every field.
pub fn parse_rule(value: serde_json::Value) -> Result<RuleSpec> {
    let spec: RuleSpec =
        serde_json::from_value(value).map_err(|e| Error::BadBody(e.to_string()))?;
    spec.validate().map_err(invalid)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_problems_are_422_with_fields() {
        let err = parse_rule(serde_json::json!({
            "id": "Bad Id", "condition": {"latency_percentile": {"percentile": 120, "above": "1s"}},
            "quorum": 0,
        }))
        .unwrap_err();
        assert_eq!(
            err.classify().0,
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        );
        let Error::InvalidSpec { kind, errors } = err else {
            panic!("expected InvalidSpec")
        };
        assert_eq!(kind, "rule");
        let fields: Vec<&str> = errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["id", "condition.latency_percentile.percentile", "quorum"]
        );
        let err = parse_rule(serde_json::json!({"id": "a"})).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid request body: missing field `condition`"),
            "{err}"
        );
    }

    #[test]
    fn severities_parse_or_name_the_parameter() {
        assert_eq!(
            severity("critical").unwrap(),
            vigil_schema::Severity::Critical
        );
        let err = severity("page").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid parameter `severity`: expected `info`, `warning` or `critical`, got \"page\""
        );
    }
}
