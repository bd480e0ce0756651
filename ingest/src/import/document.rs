//! An OpenAPI document as read: JSON or YAML text as one JSON value, its version, and local
//! `$ref`s resolved by JSON pointer. Every problem names the JSON pointer where it is.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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
            let left = Cell::new(yaml_budget(text.len()));
            Budgeted { left: &left }
                .deserialize(serde_norway::Deserializer::from_str(text))
                .map_err(|e| ImportError::new("", format!("invalid YAML: {e}")))?
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
    Ok(percent_encoding::percent_decode_str(fragment)
        .decode_utf8_lossy()
        .into_owned())
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

/// Most values a YAML document of `len` bytes may read as: an alias repeats what its anchor
/// holds, so a small document could otherwise expand without bound.
fn yaml_budget(len: usize) -> usize {
    len.saturating_mul(4).saturating_add(10_000)
}

/// YAML read straight into JSON, counting every value against a budget: keys as text (YAML's
/// unquoted `200:` is a number), standard tags resolved, others refused.
struct Budgeted<'a> {
    left: &'a Cell<usize>,
}

impl Budgeted<'_> {
    fn count<E: de::Error>(&self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(
                "the document expands to too many values (YAML aliases repeat what they point to)",
            )),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budgeted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.count()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.count()?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.count()?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.count()?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.count()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.count()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.count()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.count()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Budgeted { left: self.left })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.count()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Budgeted { left: self.left })? {
            let key = match key {
                Value::String(s) => s,
                Value::Number(_) | Value::Bool(_) => key.to_string(),
                Value::Null => "null".to_owned(),
                _ => {
                    return Err(de::Error::custom(
                        "a key that is not a string, number or boolean",
                    ));
                }
            };
            let value = map.next_value_seed(Budgeted { left: self.left })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}
