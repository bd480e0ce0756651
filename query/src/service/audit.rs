//! The audit log: every write through the query API (REST or GraphQL) is an [`AuditEvent`] on
//! the `audit` topic and a row of the `audit` table, listed by admins through
//! `GET /api/v1/audit`.
//!
//! Who wrote is known to the HTTP layer, not to the service: [`scope`] runs each request with
//! its caller's name and request id in a task-local [`Context`], and [`Service::produce`] — the
//! one path every spec write takes — records the spec before and after. The topic is the
//! record (a failed publish fails the request after the write, naming that); the table row is
//! written next, and a failure there is logged and counted
//! (`vigil_query_audit_failures_total`).

use std::future::Future;

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_schema::{AuditAction, AuditEvent, Timestamp};

use crate::model::{AuditPage, AuditRecord};
use crate::params::{self, TimeRange};
use crate::service::{Param, Service};
use crate::{Error, Result};

/// Who is writing, for the audit record.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The API key's name.
    pub actor: String,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
}

tokio::task_local! {
    static CONTEXT: Context;
}

/// Runs `f` with `context` as the author of the writes it makes.
pub async fn scope<F: Future>(context: Context, f: F) -> F::Output {
    CONTEXT.scope(context, f).await
}

fn current() -> Context {
    CONTEXT.try_with(Clone::clone).unwrap_or_else(|_| Context {
        actor: "unknown".into(),
        request_id: None,
    })
}

/// The name of the caller in scope (`unknown` outside a request).
pub(crate) fn actor() -> String {
    current().actor
}

/// One row of `audit`, written and read.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
struct AuditRow {
    #[serde(with = "clickhouse::serde::uuid")]
    audit_id: Uuid,
    at: i64,
    actor: String,
    action: String,
    resource: String,
    resource_id: String,
    before: String,
    after: String,
    request_id: String,
}

impl From<&AuditEvent> for AuditRow {
    fn from(e: &AuditEvent) -> Self {
        let json =
            |v: &Option<serde_json::Value>| v.as_ref().map(ToString::to_string).unwrap_or_default();
        Self {
            audit_id: e.audit_id,
            at: e.at.as_millis(),
            actor: e.actor.clone(),
            action: e.action.as_str().to_owned(),
            resource: e.resource.clone(),
            resource_id: e.resource_id.clone(),
            before: json(&e.before),
            after: json(&e.after),
            request_id: e.request_id.clone().unwrap_or_default(),
        }
    }
}

/// An audit listing request, already parsed.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    /// Only this kind of resource.
    pub resource: Option<String>,
    /// Only writes by this key.
    pub actor: Option<String>,
    /// Writes with `at` in this range.
    pub range: TimeRange,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: u32,
}

fn bad_cursor() -> Error {
    params::unissued_cursor()
}

fn list_parts(q: &AuditQuery) -> Result<(String, Vec<Param>)> {
    let mut sql = String::from(
        "SELECT audit_id, at, actor, action, resource, resource_id, before, after, request_id \
         FROM audit FINAL WHERE at >= fromUnixTimestamp64Milli(toInt64(?)) \
         AND at < fromUnixTimestamp64Milli(toInt64(?))",
    );
    let mut params = vec![
        Param::Int(q.range.from.as_millis()),
        Param::Int(q.range.to.as_millis()),
    ];
    if let Some(resource) = &q.resource {
        sql.push_str(" AND resource = ?");
        params.push(Param::Str(resource.clone()));
    }
    if let Some(actor) = &q.actor {
        sql.push_str(" AND actor = ?");
        params.push(Param::Str(actor.clone()));
    }
    if let Some(cursor) = &q.cursor {
        let parts = params::decode_cursor(cursor, 2)?;
        let ms: i64 = parts[0].parse().map_err(|_| bad_cursor())?;
        let id: Uuid = parts[1].parse().map_err(|_| bad_cursor())?;
        sql.push_str(" AND (at, audit_id) < (fromUnixTimestamp64Milli(toInt64(?)), toUUID(?))");
        params.push(Param::Int(ms));
        params.push(Param::Str(id.to_string()));
    }
    sql.push_str(" ORDER BY at DESC, audit_id DESC LIMIT ?");
    params.push(Param::Int(i64::from(q.limit) + 1));
    Ok((sql, params))
}

fn parse_json(s: &str) -> Option<serde_json::Value> {
    (!s.is_empty())
        .then(|| serde_json::from_str(s).ok())
        .flatten()
}

impl Service {
    /// Records a write of `resource` `id`: the spec before and after, by the caller in scope.
    pub(crate) async fn audit(
        &self,
        resource: &str,
        id: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<()> {
        let context = current();
        let action = match (&before, &after) {
            (None, _) => AuditAction::Create,
            (Some(_), Some(_)) => AuditAction::Update,
            (Some(_), None) => AuditAction::Delete,
        };
        let event = AuditEvent {
            audit_id: Uuid::now_v7(),
            at: Timestamp::now(),
            actor: context.actor,
            action,
            resource: resource.to_owned(),
            resource_id: id.to_owned(),
            before,
            after,
            request_id: context.request_id,
        };
        let bytes = vigil_schema::encode(&event)?;
        let record = rdkafka::producer::FutureRecord::<str, [u8]>::to(&self.inner.topics.audit)
            .key(id)
            .payload(&bytes);
        self.inner
            .producer
            .send(record, rdkafka::util::Timeout::After(self.inner.produce_timeout))
            .await
            .map_err(|(e, _)| {
                tracing::error!(error = %e, resource, id, "The change was written but its audit record was not.");
                Error::Kafka(e)
            })?;
        metrics::counter!("vigil_query_audit_events_total", "resource" => resource.to_owned())
            .increment(1);
        let row = AuditRow::from(&event);
        let table = async {
            let mut insert = self
                .inner
                .clickhouse
                .insert::<AuditRow>("audit")
                .await?
                .with_timeouts(
                    Some(std::time::Duration::from_secs(10)),
                    Some(std::time::Duration::from_secs(30)),
                );
            insert.write(&row).await?;
            insert.end().await
        };
        if let Err(e) = table.await {
            metrics::counter!("vigil_query_audit_failures_total").increment(1);
            tracing::warn!(error = %e, resource, id, "Audit row not written to ClickHouse (the audit topic has it).");
        }
        Ok(())
    }

    /// Audit records, newest first.
    pub async fn audit_log(&self, q: &AuditQuery) -> Result<AuditPage> {
        let (sql, params) = list_parts(q)?;
        let mut rows = self.bound(&sql, params).fetch_all::<AuditRow>().await?;
        let limit = q.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|r| params::encode_cursor(&[&r.at.to_string(), &r.audit_id.to_string()]))
        } else {
            None
        };
        Ok(AuditPage {
            items: rows
                .into_iter()
                .map(|r| AuditRecord {
                    audit_id: r.audit_id.to_string(),
                    at: crate::model::rfc3339(r.at),
                    actor: r.actor,
                    action: r.action,
                    resource: r.resource,
                    resource_id: r.resource_id,
                    before: parse_json(&r.before),
                    after: parse_json(&r.after),
                    request_id: (!r.request_id.is_empty()).then_some(r.request_id),
                })
                .collect(),
            next_cursor,
        })
    }
}
