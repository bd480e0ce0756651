//! The web face's files, embedded in the binary: the dashboard's HTML, JavaScript and CSS, the
//! status pages' stylesheet, and GraphiQL with React (vendored under `web/vendor/`, with their
//! licences). Every file is served with its SHA-256 as a strong ETag and revalidated, so a new
//! build is picked up at once and an unchanged file costs a 304.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug)]
pub(crate) struct Asset {
    /// Its path under `/ui/assets/`.
    pub path: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The bytes.
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file under `/ui/assets/`.
pub(crate) static ASSETS: &[Asset] = &[
    asset!("app.js", "dashboard/app.js", JS),
    asset!("gql.js", "dashboard/gql.js", JS),
    asset!("dom.js", "dashboard/dom.js", JS),
    asset!("chart.js", "dashboard/chart.js", JS),
    asset!("overview.js", "dashboard/overview.js", JS),
    asset!("monitor.js", "dashboard/monitor.js", JS),
    asset!("app.css", "dashboard/app.css", CSS),
    asset!("favicon.svg", "dashboard/favicon.svg", "image/svg+xml"),
    asset!("status.css", "status/status.css", CSS),
    asset!("graphiql/init.js", "graphiql/init.js", JS),
    asset!(
        "graphiql/graphiql.min.js",
        "vendor/graphiql/graphiql.min.js",
        JS
    ),
    asset!(
        "graphiql/graphiql.min.css",
        "vendor/graphiql/graphiql.min.css",
        CSS
    ),
    asset!(
        "graphiql/react.production.min.js",
        "vendor/graphiql/react.production.min.js",
        JS
    ),
    asset!(
        "graphiql/react-dom.production.min.js",
        "vendor/graphiql/react-dom.production.min.js",
        JS
    ),
];

/// The dashboard's page (every route of the dashboard is drawn by its script).
pub(crate) static DASHBOARD_HTML: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../web/dashboard/index.html"
));

/// The GraphiQL page.
pub(crate) static GRAPHIQL_HTML: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../web/graphiql/index.html"
));

/// A strong ETag of `bytes`: its SHA-256, quoted.
pub(crate) fn etag_of(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!("\"{}\"", hex::encode(&digest.as_ref()[..16]))
}

static ETAGS: LazyLock<HashMap<&'static str, String>> =
    LazyLock::new(|| ASSETS.iter().map(|a| (a.path, etag_of(a.bytes))).collect());

/// Whether the request's `If-None-Match` names `etag` (or `*`).
pub(crate) fn not_modified(request: &HeaderMap, etag: &str) -> bool {
    request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        })
}

/// `bytes` as `content_type` with its ETag and `cache`, or 304 when the client has it.
pub(crate) fn cached(
    request: &HeaderMap,
    content_type: &'static str,
    bytes: impl Into<axum::body::Body>,
    etag: &str,
    cache: &'static str,
) -> Response {
    let etag_value = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\""));
    let headers = [
        (header::ETAG, etag_value),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
    ];
    if not_modified(request, etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (
        headers,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        bytes.into(),
    )
        .into_response()
}

/// The embedded file at `path`, if there is one.
pub(crate) fn serve(request: &HeaderMap, path: &str) -> Option<Response> {
    let asset = ASSETS.iter().find(|a| a.path == path)?;
    let etag = ETAGS.get(asset.path)?;
    Some(cached(
        request,
        asset.content_type,
        asset.bytes,
        etag,
        "public, max-age=300, must-revalidate",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_there_and_tagged() {
        for asset in ASSETS {
            assert!(!asset.bytes.is_empty(), "{}", asset.path);
            assert_eq!(ETAGS[asset.path].len(), 34, "{}", asset.path);
        }
        assert!(!DASHBOARD_HTML.is_empty() && !GRAPHIQL_HTML.is_empty());
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_are_understood() {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, "\"a\", W/\"b\"".parse().unwrap());
        assert!(not_modified(&headers, "\"b\""));
        assert!(not_modified(&headers, "\"a\""));
        assert!(!not_modified(&headers, "\"c\""));
        assert!(!not_modified(&HeaderMap::new(), "\"a\""));
    }

    #[test]
    fn no_asset_fetches_from_another_origin() {
        for asset in ASSETS
            .iter()
            .filter(|a| !a.path.starts_with("graphiql/graphiql.min"))
        {
            let text = String::from_utf8_lossy(asset.bytes);
            for cdn in ["unpkg.com", "jsdelivr", "cdnjs", "googleapis"] {
                assert!(!text.contains(cdn), "{} names {cdn}", asset.path);
            }
        }
    }
}
