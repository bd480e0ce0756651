//! One operation of the document: its parameters, the URL a monitor calls, and the assertions
//! its documented success response gives.

use std::collections::BTreeMap;

use serde_json::Value;
use vigil_schema::{HttpMethod, MonitorSpec, SCHEMA_CONDITION};

use super::document::{Document, Version, escape};
use super::schema::Schemas;
use super::{ImportError, ImportOptions, security};
use crate::glob::glob;

/// Why an operation gets no monitor.
#[derive(Debug)]
pub(super) enum Skip {
    /// A reason to list (a parameter without a value, an unusable security scheme, …).
    Because(String),
    /// The document is malformed here.
    Invalid(ImportError),
}

impl From<ImportError> for Skip {
    fn from(e: ImportError) -> Self {
        Skip::Invalid(e)
    }
}

/// A parameter as the operation uses it (path-item parameters overridden by the operation's).
#[derive(Debug)]
struct Param {
    name: String,
    location: String,
    required: bool,
    /// Its example or default, if the document gives one.
    example: Option<Value>,
}

/// An operation, read.
pub(super) struct Operation<'d> {
    path: &'d str,
    method: HttpMethod,
    raw: &'d Value,
    item: &'d Value,
    at: String,
    operation_id: Option<String>,
    tags: Vec<String>,
    params: Vec<Param>,
}

impl<'d> Operation<'d> {
    pub(super) fn read(
        doc: &'d Document,
        path: &'d str,
        method: HttpMethod,
        raw: &'d Value,
        item: &'d Value,
        at: &str,
    ) -> Result<Self, ImportError> {
        let (raw, at) = doc.deref(raw, at)?;
        if !raw.is_object() {
            return Err(ImportError::new(at, "must be an operation (an object)"));
        }
        let operation_id = match raw.get("operationId") {
            None => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => {
                return Err(ImportError::new(
                    format!("{at}/operationId"),
                    "must be a string",
                ));
            }
        };
        let tags = match raw.get("tags") {
            None => Vec::new(),
            Some(Value::Array(tags)) => tags
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(_) => {
                return Err(ImportError::new(
                    format!("{at}/tags"),
                    "must be a list of strings",
                ));
            }
        };
        let item_at = at.rsplit_once('/').map_or("", |(p, _)| p).to_owned();
        let mut params: Vec<Param> = Vec::new();
        for (list, list_at) in [(item, item_at), (raw, at.clone())] {
            let Some(list) = list.get("parameters") else {
                continue;
            };
            let list_at = format!("{list_at}/parameters");
            let Value::Array(list) = list else {
                return Err(ImportError::new(list_at, "must be a list of parameters"));
            };
            for (i, p) in list.iter().enumerate() {
                let param = read_param(doc, p, &format!("{list_at}/{i}"))?;
                params.retain(|q| q.name != param.name || q.location != param.location);
                params.push(param);
            }
        }
        Ok(Self {
            path,
            method,
            raw,
            item,
            at,
            operation_id,
            tags,
            params,
        })
    }

    /// The operation as a person names it: its `operationId`, or `GET /path`.
    pub(super) fn display_name(&self) -> String {
        self.operation_id
            .clone()
            .unwrap_or_else(|| format!("{} {}", self.method, self.path))
    }

    /// Whether the include and exclude options keep this operation.
    pub(super) fn selected(&self, options: &ImportOptions) -> bool {
        let tagged = |wanted: &[String]| {
            self.tags
                .iter()
                .any(|t| wanted.iter().any(|w| w.eq_ignore_ascii_case(t)))
        };
        let matched = |patterns: &[String]| patterns.iter().any(|p| glob(p, self.path));
        (options.include_tags.is_empty() || tagged(&options.include_tags))
            && !tagged(&options.exclude_tags)
            && (options.include_paths.is_empty() || matched(&options.include_paths))
            && !matched(&options.exclude_paths)
    }

    /// The operation's monitor, and warnings about it.
    pub(super) fn monitor(
        &self,
        doc: &Document,
        schemas: &mut Schemas<'_>,
        options: &ImportOptions,
    ) -> Result<(MonitorSpec, Vec<String>), Skip> {
        if self.raw.get("deprecated") == Some(&Value::Bool(true)) {
            return Err(Skip::Because("the operation is deprecated".into()));
        }
        let mut warnings = Vec::new();
        let success = self.success(doc)?;
        let (url, mut headers) = self.request(doc, options)?;
        let auth = security::auth(doc, self.raw, &self.at, options, &mut headers)?;
        let mut assertions = success.status.clone();
        let mut body_schema = None;
        if let Some(media) = &success.media_type {
            headers.insert("Accept".into(), media.clone());
            let prefix = media.split(';').next().unwrap_or(media).trim();
            assertions.push(format!("[HEADER].content-type == pat({prefix}*)"));
        }
        if let (HttpMethod::Get, Some((schema, at))) = (self.method, success.schema) {
            match schemas.body_schema(schema, &at) {
                Ok(bundled) => {
                    assertions.push(SCHEMA_CONDITION.into());
                    body_schema = Some(bundled);
                }
                Err(reason) => warnings.push(format!(
                    "{}: {reason}; the body is not validated",
                    self.display_name()
                )),
            }
        }
        let name = self.display_name();
        let mut tags: Vec<String> = Vec::new();
        for tag in self
            .tags
            .iter()
            .map(|t| slug(t))
            .chain(options.tags.clone())
        {
            if !tag.is_empty() && !tags.contains(&tag) && tags.len() < 32 {
                tags.push(tag);
            }
        }
        // An operationId without a letter or digit of a-z, 0-9 names nothing: the method and
        // path do.
        let id_source = match &self.operation_id {
            Some(id) if !slug(id).is_empty() => id.clone(),
            _ => format!("{}-{}", self.method.as_str().to_lowercase(), self.path),
        };
        let spec = MonitorSpec {
            id: fit(&slug(&format!("{}{id_source}", options.id_prefix))),
            name: truncate(&name, 200),
            tags,
            url,
            method: self.method,
            headers,
            body: None,
            auth,
            interval: options
                .interval
                .unwrap_or(std::time::Duration::from_secs(60)),
            timeout: options
                .timeout
                .unwrap_or(std::time::Duration::from_secs(10)),
            regions: options.regions.clone(),
            follow_redirects: !success.redirect,
            allow_insecure_redirects: false,
            tls_verify: true,
            assertions,
            enabled: true,
            depends_on: Vec::new(),
            steps: Vec::new(),
            body_schema,
        };
        if let Err(errors) = spec.validate() {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(Skip::Because(format!(
                "its monitor would be invalid: {}",
                errors.join("; ")
            )));
        }
        Ok((spec, warnings))
    }

    /// The URL and the parameter headers of the request.
    fn request(
        &self,
        doc: &Document,
        options: &ImportOptions,
    ) -> Result<(String, BTreeMap<String, String>), Skip> {
        let base = security::base_url(doc, self.raw, self.item, &self.at, options)?;
        let mut path = self.path.to_owned();
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let mut headers = BTreeMap::new();
        let mut cookies = Vec::new();
        for p in &self.params {
            let given = options
                .params
                .get(&p.name)
                .map(|v| Value::String(v.clone()));
            let value = match (given, &p.example) {
                (Some(v), _) => v,
                (None, Some(v)) if p.required => v.clone(),
                (None, _) if p.required || p.location == "path" => {
                    return Err(Skip::Because(format!(
                        "{} parameter `{}` is required and has no example or default; give it a \
                         value (--param {}=VALUE)",
                        p.location, p.name, p.name
                    )));
                }
                // Optional, and not asked for.
                (None, _) => continue,
            };
            // A value the document wrote, not the user: `${…}` in it would be read as a
            // reference (to a secret) by the probe. Query and path values are percent-encoded.
            let written = !options.params.contains_key(&p.name);
            if written
                && matches!(p.location.as_str(), "header" | "cookie")
                && value.to_string().contains("${")
            {
                return Err(Skip::Because(format!(
                    "the example of {} parameter `{}` holds `${{`, which a monitor would read as \
                     a reference; give it a value (--param {}=VALUE)",
                    p.location, p.name, p.name
                )));
            }
            let values = render(&value).ok_or_else(|| {
                Skip::Because(format!(
                    "{} parameter `{}` takes an object, which is not imported; give it a value",
                    p.location, p.name
                ))
            })?;
            match p.location.as_str() {
                "path" => {
                    let encoded: Vec<String> = values
                        .iter()
                        .map(|v| percent_encoding::utf8_percent_encode(v, SEGMENT).to_string())
                        .collect();
                    path = path.replace(&format!("{{{}}}", p.name), &encoded.join(","));
                }
                "query" => {
                    for v in &values {
                        query.append_pair(&p.name, v);
                    }
                }
                "header" => {
                    // OpenAPI ignores these three as parameters.
                    if !["accept", "content-type", "authorization"]
                        .contains(&p.name.to_ascii_lowercase().as_str())
                    {
                        headers.insert(p.name.clone(), values.join(","));
                    }
                }
                "cookie" => cookies.push(format!("{}={}", p.name, values.join(","))),
                other => {
                    return Err(Skip::Because(format!(
                        "{other} parameter `{}` is required: the operation needs a request body",
                        p.name
                    )));
                }
            }
        }
        if path.contains('{') {
            return Err(Skip::Because(format!(
                "the path {:?} has a parameter the operation does not describe",
                self.path
            )));
        }
        if !cookies.is_empty() {
            headers.insert("Cookie".into(), cookies.join("; "));
        }
        let mut url = format!("{}{path}", base.trim_end_matches('/'));
        let query = query.finish();
        if !query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query);
        }
        Ok((url, headers))
    }

    /// The documented success response.
    fn success(&self, doc: &'d Document) -> Result<Success<'d>, ImportError> {
        let at = format!("{}/responses", self.at);
        let responses = match self.raw.get("responses") {
            Some(Value::Object(map)) => map,
            Some(_) => return Err(ImportError::new(at, "must be an object")),
            None => return Err(ImportError::new(at, "is missing")),
        };
        let explicit = |range: std::ops::RangeInclusive<u16>| {
            let mut codes: Vec<u16> = responses
                .keys()
                .filter(|k| k.len() == 3 && k.bytes().all(|b| b.is_ascii_digit()))
                .filter_map(|k| k.parse().ok())
                .filter(|c| range.contains(c))
                .collect();
            codes.sort_unstable();
            codes
        };
        let ok = explicit(200..=299);
        let redirects = explicit(300..=399);
        let (status, code, redirect) = if !ok.is_empty() {
            (status_assertion(&ok), Some(ok[0].to_string()), false)
        } else if responses.contains_key("2XX") || responses.contains_key("2xx") {
            let key = if responses.contains_key("2XX") {
                "2XX"
            } else {
                "2xx"
            };
            (
                vec!["[STATUS] >= 200".into(), "[STATUS] <= 299".into()],
                Some(key.to_owned()),
                false,
            )
        } else if !redirects.is_empty() {
            (
                status_assertion(&redirects),
                Some(redirects[0].to_string()),
                true,
            )
        } else {
            (Vec::new(), None, false)
        };
        let mut success = Success {
            status,
            redirect,
            media_type: None,
            schema: None,
        };
        let Some(code) = code else {
            return Ok(success);
        };
        if code == "204" {
            return Ok(success);
        }
        let response_at = format!("{at}/{code}");
        let (response, response_at) = doc.deref(&responses[&code], &response_at)?;
        if doc.version == Version::Swagger2 {
            let Some(schema) = response.get("schema") else {
                return Ok(success);
            };
            let produces = self
                .raw
                .get("produces")
                .or_else(|| doc.get("/produces"))
                .and_then(Value::as_array);
            let types: Vec<&str> = produces
                .map(|p| p.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let media = pick_media_type(&types).unwrap_or("application/json");
            success.media_type = Some(media.to_owned());
            if is_json(media) {
                success.schema = Some((schema, format!("{response_at}/schema")));
            }
            return Ok(success);
        }
        let Some(Value::Object(content)) = response.get("content") else {
            return Ok(success);
        };
        let types: Vec<&str> = content.keys().map(String::as_str).collect();
        let Some(media) = pick_media_type(&types) else {
            return Ok(success);
        };
        if !media.contains('*') {
            success.media_type = Some(media.to_owned());
        }
        if is_json(media)
            && let Some(schema) = content[media].get("schema")
        {
            let schema_at = format!("{response_at}/content/{}/schema", escape(media));
            success.schema = Some((schema, schema_at));
        }
        Ok(success)
    }
}

/// What the success response promises.
struct Success<'d> {
    status: Vec<String>,
    /// Only redirects are documented: the monitor does not follow them.
    redirect: bool,
    media_type: Option<String>,
    schema: Option<(&'d Value, String)>,
}

fn status_assertion(codes: &[u16]) -> Vec<String> {
    match codes {
        [one] => vec![format!("[STATUS] == {one}")],
        many => {
            let list: Vec<String> = many.iter().map(ToString::to_string).collect();
            vec![format!("[STATUS] == any({})", list.join(", "))]
        }
    }
}

/// The media type a monitor asks for: JSON first, then the first listed.
fn pick_media_type<'a>(types: &[&'a str]) -> Option<&'a str> {
    types
        .iter()
        .find(|t| is_json(t))
        .or_else(|| types.first())
        .copied()
}

fn is_json(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or(media).trim();
    essence == "application/json" || essence.ends_with("+json")
}

fn read_param(doc: &Document, raw: &Value, at: &str) -> Result<Param, ImportError> {
    let (p, at) = doc.deref(raw, at)?;
    let text = |key: &str| -> Result<String, ImportError> {
        p.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ImportError::new(format!("{at}/{key}"), "must be a string"))
    };
    let name = text("name")?;
    let location = text("in")?;
    let required = location == "path" || p.get("required") == Some(&Value::Bool(true));
    Ok(Param {
        name,
        location,
        required,
        example: example(doc, p, &at)?,
    })
}

/// A parameter's example or default, where the document gives one.
fn example(doc: &Document, p: &Value, at: &str) -> Result<Option<Value>, ImportError> {
    if let Some(v) = p.get("example").or_else(|| p.get("x-example")) {
        return Ok(Some(v.clone()));
    }
    if let Some(Value::Object(examples)) = p.get("examples")
        && let Some((key, first)) = examples.iter().next()
    {
        let (first, _) = doc.deref(first, &format!("{at}/examples/{}", escape(key)))?;
        if let Some(v) = first.get("value") {
            return Ok(Some(v.clone()));
        }
    }
    let schema = match p.get("schema") {
        Some(s) => Some(doc.deref(s, &format!("{at}/schema"))?.0),
        None => None,
    };
    for source in [schema, Some(p)].into_iter().flatten() {
        if let Some(v) = source.get("example") {
            return Ok(Some(v.clone()));
        }
        if let Some(Value::Array(examples)) = source.get("examples")
            && let Some(v) = examples.first()
        {
            return Ok(Some(v.clone()));
        }
        if let Some(v) = source.get("default") {
            return Ok(Some(v.clone()));
        }
    }
    Ok(None)
}

/// A parameter value as text: scalars, and lists of scalars; `None` for objects.
fn render(value: &Value) -> Option<Vec<String>> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|s| vec![s]),
    }
}

/// What a path segment's value keeps as is: RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A slug for ids and tags: lower case, runs of other characters as `-`.
pub(super) fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    fit(out.trim_matches(|c| c == '-' || c == '_'))
}

/// At most 64 characters: longer ids keep their start and a hash of the whole.
fn fit(id: &str) -> String {
    if id.len() <= 64 {
        return id.to_owned();
    }
    let hash = crate::hash::fnv1a(id.as_bytes()) as u32;
    format!("{}-{hash:08x}", &id[..55].trim_end_matches('-'))
}

/// The `n`th monitor whose id is `id`: `id-n`.
pub(super) fn unique_id(id: &str, n: usize) -> String {
    let suffix = format!("-{n}");
    let keep = id.len().min(64 - suffix.len());
    format!("{}{suffix}", &id[..keep])
}

fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
