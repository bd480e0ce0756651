//! Response schemas as self-contained JSON Schema 2020-12, the form a monitor's `body_schema`
//! takes.
//!
//! A schema is converted keyword by keyword (property names are never mistaken for keywords):
//! - every local `$ref` becomes `#/$defs/NAME`, and the definitions it reaches, transitively,
//!   are bundled under `$defs` (so recursive schemas stay finite);
//! - OpenAPI 3.0 and Swagger 2.0 dialects become 2020-12: `nullable: true` (`x-nullable`)
//!   admits `null`, boolean `exclusiveMinimum`/`exclusiveMaximum` become numeric, a
//!   `$ref`'s siblings are ignored as those versions say, `type: file` means any body;
//! - annotations and OpenAPI-only keywords (`description`, `example`, `discriminator`, `xml`,
//!   `readOnly`, `x-…`) are dropped: they assert nothing and would only make monitors larger.
//!
//! Two departures from the letter of OpenAPI 3.0, to spare monitors false alarms: a `nullable`
//! schema with an `enum` admits null even when the enum does not list it (real APIs answer null
//! there), and `discriminator` is dropped (`oneOf`/`anyOf` decide).
//!
//! Converted definitions are cached by their pointer, so a large document converts each once.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use vigil_schema::MAX_BODY_SCHEMA;

use super::ImportError;
use super::document::{Document, Version, escape, local_pointer};

/// Keywords whose value is one subschema.
const ONE: &[&str] = &[
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
    "additionalItems",
];
/// Keywords whose value is a list of subschemas.
const LIST: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to subschemas.
const MAP: &[&str] = &[
    "properties",
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
];
/// Keywords that assert nothing, or mean nothing to a JSON Schema validator.
const DROPPED: &[&str] = &[
    "description",
    "title",
    "example",
    "examples",
    "externalDocs",
    "xml",
    "discriminator",
    "readOnly",
    "writeOnly",
    "deprecated",
    "nullable",
    "x-nullable",
    "$comment",
    "$schema",
    "$id",
    "default",
];

struct Def {
    name: String,
    schema: Value,
    refs: Vec<String>,
}

/// Most bytes of body schemas (as JSON) one import embeds in its monitors, all together; past
/// it, monitors are made without one (and a warning), so a small document whose operations
/// share a huge schema cannot make an import copy and compile it without end.
pub const MAX_SCHEMA_BYTES: usize = 32 * 1024 * 1024;

/// The converter, with its cache of converted definitions and of finished body schemas.
pub(super) struct Schemas<'d> {
    doc: &'d Document,
    defs: HashMap<String, Def>,
    names: HashMap<String, String>,
    taken: HashSet<String>,
    /// Body schemas by what they are (the definition a lone `$ref` names, or their place),
    /// with their size, or why there is none.
    bodies: HashMap<String, Result<(Value, usize), String>>,
    /// Bytes of body schemas handed out so far, and the most there may be.
    spent: usize,
    budget: usize,
}

impl<'d> Schemas<'d> {
    pub(super) fn new(doc: &'d Document) -> Self {
        Self {
            doc,
            defs: HashMap::new(),
            names: HashMap::new(),
            taken: HashSet::new(),
            bodies: HashMap::new(),
            spent: 0,
            budget: MAX_SCHEMA_BYTES,
        }
    }

    /// The same with another budget of body schema bytes.
    #[cfg(test)]
    pub(super) fn with_budget(doc: &'d Document, budget: usize) -> Self {
        Self {
            budget,
            ..Self::new(doc)
        }
    }

    /// The `body_schema` of a response schema found at `at`: bundled, at most
    /// [`MAX_BODY_SCHEMA`] bytes, compiled once, within the import's [`MAX_SCHEMA_BYTES`]; or
    /// why there is none (naming the JSON pointer of a reference that does not resolve).
    pub(super) fn body_schema(&mut self, schema: &Value, at: &str) -> Result<Value, String> {
        let key = match (schema.get("$ref"), schema.as_object().map(Map::len)) {
            (Some(Value::String(r)), Some(1)) => format!("ref {r}"),
            _ => format!("at {at}"),
        };
        if !self.bodies.contains_key(&key) {
            let made = match self.bundle(schema, at) {
                Ok(bundled) => {
                    let len = serde_json::to_vec(&bundled).map_or(usize::MAX, |v| v.len());
                    if len > MAX_BODY_SCHEMA {
                        Err(format!(
                            "the response schema at {at} is {len} bytes as JSON Schema (at most \
                             {MAX_BODY_SCHEMA})"
                        ))
                    } else {
                        vigil_schema::compile_body_schema(&bundled)
                            .map(|_| (bundled, len))
                            .map_err(|reason| format!("the response schema at {at} {reason}"))
                    }
                }
                Err(e) => Err(format!("the response schema does not convert: {e}")),
            };
            self.bodies.insert(key.clone(), made);
        }
        let (bundled, len) = self.bodies[&key].clone()?;
        if self.spent + len > self.budget {
            return Err(format!(
                "the import's body schemas reached their limit of {} bytes",
                self.budget
            ));
        }
        self.spent += len;
        Ok(bundled)
    }

    /// The schema found at `at`, with every definition it reaches under `$defs`.
    fn bundle(&mut self, schema: &Value, at: &str) -> Result<Value, ImportError> {
        let mut refs = Vec::new();
        let root = self.convert(schema, at, &mut refs)?;
        let mut seen = HashSet::new();
        let mut order = Vec::new();
        while let Some(pointer) = refs.pop() {
            if !seen.insert(pointer.clone()) {
                continue;
            }
            self.define(&pointer)?;
            let def = &self.defs[&pointer];
            refs.extend(def.refs.iter().cloned());
            order.push(pointer);
        }
        if order.is_empty() {
            return Ok(root);
        }
        order.sort_by(|a, b| self.defs[a].name.cmp(&self.defs[b].name));
        let defs: Map<String, Value> = order
            .iter()
            .map(|p| (self.defs[p].name.clone(), self.defs[p].schema.clone()))
            .collect();
        let mut root = match root {
            Value::Object(map) => map,
            other => Map::from_iter([("allOf".to_owned(), Value::Array(vec![other]))]),
        };
        root.insert("$defs".to_owned(), Value::Object(defs));
        Ok(Value::Object(root))
    }

    fn define(&mut self, pointer: &str) -> Result<(), ImportError> {
        if self.defs.contains_key(pointer) {
            return Ok(());
        }
        let doc = self.doc;
        let value = doc.get(pointer).ok_or_else(|| {
            ImportError::new(pointer, "is referenced but the document does not have it")
        })?;
        let mut refs = Vec::new();
        let schema = self.convert(value, pointer, &mut refs)?;
        let name = self.name_of(pointer);
        self.defs
            .insert(pointer.to_owned(), Def { name, schema, refs });
        Ok(())
    }

    /// The `$defs` name of the definition at `pointer`: its last segment, made unique.
    fn name_of(&mut self, pointer: &str) -> String {
        if let Some(name) = self.names.get(pointer) {
            return name.clone();
        }
        let last = pointer.rsplit('/').next().unwrap_or_default();
        let last = last.replace("~1", "/").replace("~0", "~");
        let base: String = last
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let base = if base.is_empty() {
            "schema".into()
        } else {
            base
        };
        let mut name = base.clone();
        let mut n = 2;
        while !self.taken.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.names.insert(pointer.to_owned(), name.clone());
        name
    }

    fn convert(
        &mut self,
        value: &Value,
        at: &str,
        refs: &mut Vec<String>,
    ) -> Result<Value, ImportError> {
        let map = match value {
            Value::Bool(_) => return Ok(value.clone()),
            Value::Object(map) => map,
            _ => return Err(ImportError::new(at, "must be a schema (an object)")),
        };
        let legacy = self.doc.version != Version::OpenApi31;
        let nullable = legacy
            && [map.get("nullable"), map.get("x-nullable")].contains(&Some(&Value::Bool(true)));
        if let Some(reference) = map.get("$ref") {
            let pointer = local_pointer(reference, at)?;
            if self.doc.get(&pointer).is_none() {
                return Err(ImportError::new(
                    format!("{at}/$ref"),
                    format!("points to {pointer:?}, which the document does not have"),
                ));
            }
            let name = self.name_of(&pointer);
            refs.push(pointer);
            let target = Value::String(format!("#/$defs/{name}"));
            let mut out = Map::from_iter([("$ref".to_owned(), target)]);
            if !legacy {
                // 2020-12: a reference's siblings apply too.
                let rest: Map<String, Value> = map
                    .iter()
                    .filter(|(k, _)| k.as_str() != "$ref")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if let Value::Object(rest) = self.convert(&Value::Object(rest), at, refs)? {
                    out.extend(rest);
                }
            }
            return Ok(null_or(Value::Object(out), nullable));
        }
        let mut out = Map::new();
        for (key, v) in map {
            let here = || format!("{at}/{}", escape(key));
            let k = key.as_str();
            if DROPPED.contains(&k) || k.starts_with("x-") {
                continue;
            }
            let converted = if ONE.contains(&k) {
                self.convert(v, &here(), refs)?
            } else if k == "items" {
                match v {
                    // A draft-4 tuple.
                    Value::Array(items) => {
                        let list = self.convert_list(items, &here(), refs)?;
                        out.insert("prefixItems".to_owned(), list);
                        continue;
                    }
                    _ => self.convert(v, &here(), refs)?,
                }
            } else if LIST.contains(&k) {
                let Value::Array(items) = v else {
                    return Err(ImportError::new(here(), "must be a list of schemas"));
                };
                self.convert_list(items, &here(), refs)?
            } else if MAP.contains(&k) {
                let Value::Object(entries) = v else {
                    return Err(ImportError::new(here(), "must be an object of schemas"));
                };
                let mut converted = Map::new();
                for (name, schema) in entries {
                    let at = format!("{}/{}", here(), escape(name));
                    converted.insert(name.clone(), self.convert(schema, &at, refs)?);
                }
                let k = if k == "definitions" { "$defs" } else { k };
                out.insert(k.to_owned(), Value::Object(converted));
                continue;
            } else if legacy && matches!(k, "exclusiveMinimum" | "exclusiveMaximum") {
                let bound = if k == "exclusiveMinimum" {
                    "minimum"
                } else {
                    "maximum"
                };
                match (v, map.get(bound)) {
                    (Value::Bool(true), Some(limit)) => limit.clone(),
                    (Value::Bool(_), _) => continue,
                    _ => v.clone(),
                }
            } else if legacy && k == "type" && v == "file" {
                continue;
            } else {
                v.clone()
            };
            out.insert(key.clone(), converted);
        }
        if legacy {
            // OpenAPI 3.0: a write-only property is required in requests only.
            let write_only: Vec<&String> = match map.get("properties") {
                Some(Value::Object(properties)) => properties
                    .iter()
                    .filter(|(_, p)| p.get("writeOnly") == Some(&Value::Bool(true)))
                    .map(|(name, _)| name)
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(Value::Array(required)) = out.get_mut("required") {
                required.retain(|r| !write_only.iter().any(|w| r.as_str() == Some(w.as_str())));
            }
            for (exclusive, bound) in [
                ("exclusiveMinimum", "minimum"),
                ("exclusiveMaximum", "maximum"),
            ] {
                if map.get(exclusive) == Some(&Value::Bool(true)) {
                    out.remove(bound);
                }
            }
        }
        if nullable {
            let typed = match out.get_mut("type") {
                Some(Value::String(t)) => {
                    let t = std::mem::take(t);
                    out.insert("type".into(), serde_json::json!([t, "null"]));
                    true
                }
                Some(Value::Array(types)) => {
                    if !types.iter().any(|t| t == "null") {
                        types.push("null".into());
                    }
                    true
                }
                _ => false,
            };
            if let Some(Value::Array(values)) = out.get_mut("enum")
                && !values.contains(&Value::Null)
            {
                values.push(Value::Null);
            }
            if !typed {
                return Ok(null_or(Value::Object(out), true));
            }
        }
        Ok(Value::Object(out))
    }

    fn convert_list(
        &mut self,
        items: &[Value],
        at: &str,
        refs: &mut Vec<String>,
    ) -> Result<Value, ImportError> {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(self.convert(item, &format!("{at}/{i}"), refs)?);
        }
        Ok(Value::Array(out))
    }
}

/// `schema`, or also `null` when `nullable`.
fn null_or(schema: Value, nullable: bool) -> Value {
    if nullable {
        serde_json::json!({ "anyOf": [{ "type": "null" }, schema] })
    } else {
        schema
    }
}
