//! Monitors discovered from an OpenAPI document: `vigil import openapi`, and
//! `POST /api/v1/import/openapi` of the query API.
//!
//! [`import_openapi`] reads OpenAPI 3.0, 3.1 or Swagger 2.0 (JSON or YAML, local `$ref`s
//! anywhere in the document) and makes one monitor per safe operation: a `GET` or `HEAD` whose
//! required parameters all have a value (an example, a default, or one given in
//! [`ImportOptions::params`]). Each monitor is named after its `operationId`, tagged with the
//! operation's tags, authenticated through the document's security schemes bound to named
//! secrets, and asserts what the documented success response promises:
//! - its status (`[STATUS] == 200`; a redirect-only operation is not followed and expects its
//!   `3xx`);
//! - its content type (`[HEADER].content-type == pat(application/json*)`), the one the monitor
//!   asks for with `Accept`;
//! - for JSON bodies, `[BODY] matches schema` against the response schema, converted to a
//!   self-contained JSON Schema 2020-12 (see [`schema`]).
//!
//! Operations left out are listed with the reason ([`Skipped`]); a document that cannot be read
//! is an [`ImportError`] naming the JSON pointer of the problem.

mod document;
mod operation;
mod schema;
mod security;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use vigil_schema::MonitorSpec;

pub use document::{Document, MAX_DOCUMENT, Version};
pub use schema::MAX_SCHEMA_BYTES;
pub use security::DEFAULT_SECRET_PREFIX;

use self::operation::{Operation, Skip};
use self::schema::Schemas;

/// Most monitors one import makes.
pub const MAX_MONITORS: usize = 5_000;

/// What to import, and the monitors' settings.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The API's base URL, instead of the document's `servers` (`host`/`basePath` in 2.0).
    pub base_url: Option<String>,
    /// Where the document was read from: relative server URLs resolve against it.
    pub source_url: Option<url::Url>,
    /// Only operations with one of these tags (empty: all).
    pub include_tags: Vec<String>,
    /// Not operations with any of these tags.
    pub exclude_tags: Vec<String>,
    /// Only operations whose path matches one of these globs (`/pets*`; `*` matches anything,
    /// `/` included; empty: all).
    pub include_paths: Vec<String>,
    /// Not operations whose path matches any of these globs.
    pub exclude_paths: Vec<String>,
    /// Values of parameters by name (`owner` → `octocat`), for any operation that has them.
    pub params: BTreeMap<String, String>,
    /// Secret names of security schemes (`api_key` → `petstore-key`); by default a scheme's
    /// secret is named after the scheme.
    pub secrets: BTreeMap<String, String>,
    /// Prefix of the monitors' ids (`petstore-`).
    pub id_prefix: String,
    /// Tags added to every monitor.
    pub tags: Vec<String>,
    /// Interval of every monitor (default 60 s).
    pub interval: Option<Duration>,
    /// Timeout of every monitor (default 10 s).
    pub timeout: Option<Duration>,
    /// Regions of every monitor (empty: every region).
    pub regions: Vec<String>,
}

/// What an import produced.
#[derive(Debug, Clone, Serialize)]
pub struct Import {
    /// The document's `info.title`.
    pub title: String,
    /// The format and version (`OpenAPI 3.0.3`, `Swagger 2.0`).
    pub format: String,
    /// The monitors, in path order.
    pub monitors: Vec<MonitorSpec>,
    /// Safe operations that got no monitor, and why.
    pub skipped: Vec<Skipped>,
    /// Operations left out by the include and exclude options.
    pub excluded: usize,
    /// Things a user should know (a response schema too large to embed, …).
    pub warnings: Vec<String>,
}

/// A safe operation that got no monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Its `operationId` (or `GET /path` without one).
    pub operation: String,
    /// `GET` or `HEAD`.
    pub method: String,
    /// The path template.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// A document that cannot be imported: where (a JSON pointer into it) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportError {
    /// JSON pointer of the problem (`/paths/~1pets/get/responses`; empty: the document).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl ImportError {
    pub(crate) fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "at {}: {}", self.pointer, self.message)
        }
    }
}

impl std::error::Error for ImportError {}

/// The methods imported, and their names in a path item.
const SAFE: [(&str, vigil_schema::HttpMethod); 2] = [
    ("get", vigil_schema::HttpMethod::Get),
    ("head", vigil_schema::HttpMethod::Head),
];

/// Imports the document `text` (JSON or YAML).
pub fn import_openapi(text: &str, options: &ImportOptions) -> Result<Import, ImportError> {
    import_document(&Document::parse(text)?, options)
}

/// Imports a parsed document.
pub fn import_document(doc: &Document, options: &ImportOptions) -> Result<Import, ImportError> {
    check_options(options)?;
    let title = doc
        .get("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("API")
        .to_owned();
    let format = match doc.version {
        Version::Swagger2 => format!("Swagger {}", doc.version_text),
        _ => format!("OpenAPI {}", doc.version_text),
    };
    let mut import = Import {
        title,
        format,
        monitors: Vec::new(),
        skipped: Vec::new(),
        excluded: 0,
        warnings: Vec::new(),
    };
    let mut schemas = Schemas::new(doc);
    let mut used: HashSet<String> = HashSet::new();
    let paths = doc.object("/paths")?;
    for (path, item) in paths {
        let item_at = format!("/paths/{}", document::escape(path));
        let (item, item_at) = doc.deref(item, &item_at)?;
        if !item.is_object() {
            return Err(ImportError::new(item_at, "must be a path item (an object)"));
        }
        for (key, method) in SAFE {
            let Some(raw) = item.get(key) else { continue };
            let at = format!("{item_at}/{key}");
            let op = Operation::read(doc, path, method, raw, item, &at)?;
            if !op.selected(options) {
                import.excluded += 1;
                continue;
            }
            match op.monitor(doc, &mut schemas, options) {
                Ok((mut spec, warnings)) => {
                    let (base, mut n) = (spec.id.clone(), 2);
                    while !used.insert(spec.id.clone()) {
                        spec.id = operation::unique_id(&base, n);
                        n += 1;
                    }
                    import.warnings.extend(warnings);
                    import.monitors.push(spec);
                }
                Err(Skip::Because(reason)) => import.skipped.push(Skipped {
                    operation: op.display_name(),
                    method: method.to_string(),
                    path: path.clone(),
                    reason,
                }),
                Err(Skip::Invalid(e)) => return Err(e),
            }
            if import.monitors.len() > MAX_MONITORS {
                return Err(ImportError::new(
                    "/paths",
                    format!(
                        "more than {MAX_MONITORS} operations to import; narrow it with include \
                         or exclude options"
                    ),
                ));
            }
        }
    }
    Ok(import)
}

fn check_options(options: &ImportOptions) -> Result<(), ImportError> {
    if let Some(base) = &options.base_url {
        let url = url::Url::parse(base)
            .map_err(|e| ImportError::new("", format!("base URL {base:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ImportError::new(
                "",
                format!("base URL {base:?}: must be http:// or https://"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
