//! OpenAPI import: monitors discovered from a document ([`vigil_ingest::import`]), their plan
//! against the monitors view, and, when asked, the plan's creates and updates written like
//! any monitor write (validated, held to the egress policy, answered once visible). Nothing
//! is deleted, and the server never fetches a document from a URL.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use vigil_ingest::import::{Document, ImportOptions};
use vigil_ingest::plan::{Change, Plan};
use vigil_schema::{FieldError, MonitorSpec, validate_egress};

use crate::model::{ImportPlan, Monitor, OpenApiImport, PlannedUpdate, SkippedOperation};
use crate::service::Service;
use crate::{Error, Result};

/// Most entries of each list or map option.
const MAX_OPTIONS: usize = 100;
/// Monitor writes in flight while applying.
const CONCURRENT_WRITES: usize = 16;

/// The request body (see [`crate::model::import::ImportInput`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    document: serde_json::Value,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    include_tags: Vec<String>,
    #[serde(default)]
    exclude_tags: Vec<String>,
    #[serde(default)]
    include_paths: Vec<String>,
    #[serde(default)]
    exclude_paths: Vec<String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    id_prefix: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    apply: bool,
}

impl Service {
    /// Imports the document of `body`; with `apply: true` writes the plan's creates and
    /// updates. A document that cannot be read is a 422 naming `document/<JSON pointer>`.
    pub async fn import_openapi(&self, body: serde_json::Value) -> Result<OpenApiImport> {
        let body: Body = serde_json::from_value(body).map_err(|e| Error::BadBody(e.to_string()))?;
        let apply = body.apply;
        let (document, options) = parse_body(body)?;
        let imported = tokio::task::spawn_blocking(move || {
            let doc = match document {
                serde_json::Value::String(text) => Document::parse(&text),
                other => Document::from_value(other),
            }?;
            vigil_ingest::import::import_document(&doc, &options)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("the import stopped: {e}")))?
        .map_err(|e| invalid(format!("document{}", e.pointer), e.message))?;
        let current = self.inner.view.all();
        let plan = Plan::new(&current, &imported.monitors, false);
        let mut writes: Vec<&MonitorSpec> = Vec::new();
        let mut create = Vec::new();
        let mut update = Vec::new();
        for change in &plan.changes {
            match change {
                Change::Create(spec) => {
                    create.push(spec.id.clone());
                    writes.push(spec);
                }
                Change::Update { spec, fields } => {
                    update.push(PlannedUpdate {
                        id: spec.id.clone(),
                        fields: fields.iter().map(|f| f.field.clone()).collect(),
                    });
                    writes.push(spec);
                }
                Change::Delete(_) => {}
            }
        }
        if apply {
            let mut errors = Vec::new();
            for spec in &writes {
                if let Err(found) = validate_egress(spec, &self.inner.egress) {
                    errors.extend(found.into_iter().map(|e| FieldError {
                        field: format!("monitors.{}.{}", spec.id, e.field),
                        reason: e.reason,
                    }));
                }
            }
            if !errors.is_empty() {
                return Err(Error::InvalidSpec {
                    kind: "monitor",
                    errors,
                });
            }
            let owned: Vec<MonitorSpec> = writes.into_iter().cloned().collect();
            futures::stream::iter(owned)
                .map(|spec| {
                    let service = self.clone();
                    async move { service.write(&spec).await }
                })
                .buffer_unordered(CONCURRENT_WRITES)
                .try_collect::<Vec<()>>()
                .await?;
        }
        Ok(OpenApiImport {
            title: imported.title,
            format: imported.format,
            monitors: imported.monitors.iter().map(Monitor::from).collect(),
            skipped: imported
                .skipped
                .into_iter()
                .map(|s| SkippedOperation {
                    operation: s.operation,
                    method: s.method,
                    path: s.path,
                    reason: s.reason,
                })
                .collect(),
            excluded: u32::try_from(imported.excluded).unwrap_or(u32::MAX),
            warnings: imported.warnings,
            plan: ImportPlan {
                create,
                update,
                unchanged: u32::try_from(plan.unchanged).unwrap_or(u32::MAX),
            },
            applied: apply,
        })
    }
}

fn invalid(field: String, reason: String) -> Error {
    Error::InvalidSpec {
        kind: "OpenAPI import",
        errors: vec![FieldError { field, reason }],
    }
}

/// The document and the options; every bad option is named.
fn parse_body(body: Body) -> Result<(serde_json::Value, ImportOptions)> {
    let mut errors = Vec::new();
    let lists = [
        ("include_tags", body.include_tags.len()),
        ("exclude_tags", body.exclude_tags.len()),
        ("include_paths", body.include_paths.len()),
        ("exclude_paths", body.exclude_paths.len()),
        ("params", body.params.len()),
        ("secrets", body.secrets.len()),
        ("tags", body.tags.len()),
        ("regions", body.regions.len()),
    ];
    for (field, len) in lists {
        if len > MAX_OPTIONS {
            errors.push(FieldError {
                field: field.into(),
                reason: format!("at most {MAX_OPTIONS} entries, got {len}"),
            });
        }
    }
    let mut duration = |field: &str, text: &Option<String>| -> Option<Duration> {
        let text = text.as_deref()?;
        match humantime::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(FieldError {
                    field: field.into(),
                    reason: format!("expected a duration like `30s`, got {text:?}: {e}"),
                });
                None
            }
        }
    };
    let interval = duration("interval", &body.interval);
    let timeout = duration("timeout", &body.timeout);
    if !matches!(
        body.document,
        serde_json::Value::String(_) | serde_json::Value::Object(_)
    ) {
        errors.push(FieldError {
            field: "document".into(),
            reason: "must be the document's text or the JSON document".into(),
        });
    }
    if let Some(base) = &body.base_url
        && !(base.starts_with("http://") || base.starts_with("https://"))
    {
        errors.push(FieldError {
            field: "base_url".into(),
            reason: format!("must be an http:// or https:// URL, got {base:?}"),
        });
    }
    if !errors.is_empty() {
        return Err(Error::InvalidSpec {
            kind: "OpenAPI import",
            errors,
        });
    }
    let options = ImportOptions {
        base_url: body.base_url,
        source_url: None,
        include_tags: body.include_tags,
        exclude_tags: body.exclude_tags,
        include_paths: body.include_paths,
        exclude_paths: body.exclude_paths,
        params: body.params,
        secrets: body.secrets,
        id_prefix: body.id_prefix.unwrap_or_default(),
        tags: body.tags,
        interval,
        timeout,
        regions: body.regions,
    };
    Ok((body.document, options))
}
