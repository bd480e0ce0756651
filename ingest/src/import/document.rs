//! An OpenAPI document as read: JSON or YAML text as one JSON value, its version, and local
//! `$ref`s resolved by JSON pointer. Every problem names the JSON pointer where it is.

use serde_json::{Map, Value};

use super::ImportError;

/// Longest document read (bytes).
pub const MAX_DOCUMENT: usize = 64 * 1024 * 1024;

/// Deepest chain of `$ref`s to `$ref`s followed.
const MAX_REF_CHAIN: usize = 32;

/// Which description format a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Swagger 2.0 (`swagger: "2.0"`).
    Swagger2,
    /// OpenAPI 3.0.x: schemas are an extended subset of JSON Schema draft 4/5.
    OpenApi30,
    /// OpenAPI 3.1.x: schemas are JSON Schema 2020-12.
    OpenApi31,
}

/// A parsed document.
#[derive(Debug)]
pub struct Document {
    pub(super) root: Value,
    pub(super) version: Version,
    /// The version as written (`3.0.3`, `2.0`).
    pub(super) version_text: String,
}

impl Document {
    /// Parses JSON (text starting with `{`) or YAML, and checks what kind of document it is.
    pub fn parse(text: &str) -> Result<Self, ImportError> {
        if text.len() > MAX_DOCUMENT {
            return Err(ImportError::new(
                "",
                format!(
                    "the document is {} bytes; at most {MAX_DOCUMENT} are read",
                    text.len()
                ),
            ));
        }
        let root = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| {
                ImportError::new(
                    "",
                    format!(
                        "invalid JSON at line {}, column {}: {e}",
                        e.line(),
                        e.column()
                    ),
                )
            })?
        } else {
            let yaml: serde_norway::Value = serde_norway::from_str(text)
                .map_err(|e| ImportError::new("", format!("invalid YAML: {e}")))?;
            yaml_to_json(yaml, &mut String::new())?
        };
        Self::from_value(root)
    }

    /// A document already parsed as JSON.
    pub fn from_value(root: Value) -> Result<Self, ImportError> {
        let Value::Object(map) = &root else {
            return Err(ImportError::new("", "the document must be an object"));
        };
        let (version, version_text) = if let Some(v) = map.get("openapi") {
            let text = version_string(v).ok_or_else(|| {
                ImportError::new("/openapi", "must be a version string like \"3.0.3\"")
            })?;
            let version = if text.starts_with("3.0") {
                Version::OpenApi30
            } else if text.starts_with("3.1") || text.starts_with("3.2") {
                Version::OpenApi31
            } else {
                return Err(ImportError::new(
                    "/openapi",
                    format!("OpenAPI {text} is not supported (3.0, 3.1 and Swagger 2.0 are)"),
                ));
            };
            (version, text)
        } else if let Some(v) = map.get("swagger") {
            let text = version_string(v).unwrap_or_default();
            if text != "2.0" {
                return Err(ImportError::new(
                    "/swagger",
                    format!("Swagger {text:?} is not supported (2.0 is)"),
                ));
            }
            (Version::Swagger2, text)
        } else {
            return Err(ImportError::new(
                "",
                "not an OpenAPI document: it has neither `openapi` nor `swagger`",
            ));
        };
        let document = Self {
            root,
            version,
            version_text,
        };
        document.object("/paths")?;
        Ok(document)
    }

    /// The value at `pointer` (RFC 6901), if any.
    pub(super) fn get(&self, pointer: &str) -> Option<&Value> {
        self.root.pointer(pointer)
    }

    /// The object at `pointer`; an error naming it if it is something else or missing.
    pub(super) fn object(&self, pointer: &str) -> Result<&Map<String, Value>, ImportError> {
        match self.get(pointer) {
            Some(Value::Object(map)) => Ok(map),
            Some(_) => Err(ImportError::new(pointer, "must be an object")),
            None => Err(ImportError::new(pointer, "is missing")),
        }
    }

    /// `value` (found at `at`) with `$ref`s followed: the value and the pointer it is at.
    pub(super) fn deref<'a>(
        &'a self,
        mut value: &'a Value,
        at: &str,
    ) -> Result<(&'a Value, String), ImportError> {
        let mut pointer = at.to_owned();
        for _ in 0..MAX_REF_CHAIN {
            let Some(reference) = value.get("$ref") else {
                return Ok((value, pointer));
            };
            let target = local_pointer(reference, &pointer)?;
            value = self.get(&target).ok_or_else(|| {
                ImportError::new(
                    format!("{pointer}/$ref"),
                    format!("points to {target:?}, which the document does not have"),
                )
            })?;
            pointer = target;
        }
        Err(ImportError::new(
            at,
            "`$ref`s refer to each other in a loop",
        ))
    }
}

/// The JSON pointer of a local reference (`#/components/schemas/Pet` → `/components/…`);
/// an error naming where it is written for a reference to another document.
pub(super) fn local_pointer(reference: &Value, at: &str) -> Result<String, ImportError> {
    let at = format!("{at}/$ref");
    let Value::String(text) = reference else {
        return Err(ImportError::new(at, "must be a string"));
    };
    let Some(fragment) = text.strip_prefix('#') else {
        return Err(ImportError::new(
            at,
            format!(
                "{text:?} refers to another document; bundle the description into one file first"
            ),
        ));
    };
    if !fragment.is_empty() && !fragment.starts_with('/') {
        return Err(ImportError::new(
            at,
            format!("{text:?} is not a JSON pointer"),
        ));
    }
    // A fragment is URI-encoded (`#/paths/~1pets%7Bid%7D`).
    Ok(percent_decode(fragment))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes a key for a JSON pointer (`/pets/{id}` → `~1pets~1{id}`).
pub(super) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn version_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        // YAML `openapi: 3.0` reads as a number.
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// YAML as JSON: keys as text (YAML's unquoted `200:` is a number), tags dropped.
fn yaml_to_json(yaml: serde_norway::Value, at: &mut String) -> Result<Value, ImportError> {
    use serde_norway::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                out.push(yaml_to_json(item, at)?);
                at.truncate(len);
            }
            Value::Array(out)
        }
        Y::Mapping(entries) => {
            let mut out = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let key = match key {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_owned(),
                    _ => {
                        return Err(ImportError::new(
                            at.clone(),
                            "has a key that is not a string, number or boolean",
                        ));
                    }
                };
                let len = at.len();
                at.push('/');
                at.push_str(&escape(&key));
                let value = yaml_to_json(value, at)?;
                at.truncate(len);
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value, at)?,
    })
}
