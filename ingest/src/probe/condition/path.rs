//! Paths into a JSON body: Gatus's plain paths (`[BODY].a.b[0]`, `$.a["c d"]`), walked
//! step by step, and JSONPath queries (RFC 9535) for anything richer.

use super::{ParseError, Placeholder};

/// One step of a plain path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PathStep {
    Key(String),
    Index(usize),
}

/// A path into the body: a plain one (`.a.b[0]["c d"]`, keys as written, Gatus's notation), or
/// a JSONPath query (RFC 9535) when it has a wildcard, a filter, a slice or a descendant
/// segment (`*`, `?`, `@`, `:`, `..`).
pub(super) fn body_path(path: &str) -> Result<Placeholder, ParseError> {
    if !path.contains(['*', '?', '@', ':']) && !path.contains("..") {
        return parse_path(path).map(Placeholder::Body);
    }
    serde_json_path::JsonPath::parse(&format!("${path}"))
        .map(|query| Placeholder::BodyQuery(Box::new(query)))
        .map_err(|e| ParseError(format!("invalid JSONPath ${path:?}: {e}")))
}

/// `.a.b[0]["c d"]` → steps.
fn parse_path(mut s: &str) -> Result<Vec<PathStep>, ParseError> {
    let original = s;
    let bad = |why: &str| Err(ParseError(format!("invalid path {original:?}: {why}")));
    let mut steps = Vec::new();
    while !s.is_empty() {
        if let Some(rest) = s.strip_prefix('.') {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return bad("empty key");
            }
            steps.push(PathStep::Key(rest[..end].to_owned()));
            s = &rest[end..];
        } else if let Some(rest) = s.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                return bad("unclosed [");
            };
            let inner = rest[..end].trim();
            if let Ok(index) = inner.parse::<usize>() {
                steps.push(PathStep::Index(index));
            } else if inner.len() >= 2
                && ((inner.starts_with('"') && inner.ends_with('"'))
                    || (inner.starts_with('\'') && inner.ends_with('\'')))
            {
                steps.push(PathStep::Key(inner[1..inner.len() - 1].to_owned()));
            } else {
                return bad("brackets hold an index or a quoted key");
            }
            s = &rest[end + 1..];
        } else {
            return bad("expected . or [");
        }
    }
    Ok(steps)
}

/// The value at `path` in `value`, if there is one.
pub(super) fn walk<'v>(
    mut value: &'v serde_json::Value,
    path: &[PathStep],
) -> Option<&'v serde_json::Value> {
    for step in path {
        value = match step {
            PathStep::Key(k) => value.as_object()?.get(k)?,
            PathStep::Index(i) => value.as_array()?.get(*i)?,
        };
    }
    Some(value)
}
