//! Where an operation is served (`servers`, or `host` and `basePath` in Swagger 2.0) and how it
//! authenticates: its security requirement, each scheme bound to a named secret
//! (`${secret:NAME}`), so no credential is ever written into a monitor. A scheme's secret is
//! named `openapi-SCHEME` unless the options name another (`S` below).
//!
//! | scheme | monitor |
//! |---|---|
//! | `http` `bearer` | `auth: bearer`, token `${secret:S}` |
//! | `http` `basic` (2.0 `basic`) | `auth: basic`, `${secret:S-username}` / `${secret:S-password}` |
//! | `apiKey` in header / query | `auth: api_key` (a second one in a header: a header) |
//! | `apiKey` in cookie | a `Cookie` header |
//! | `oauth2` client credentials (2.0 `application`) | `auth: oauth2_client_credentials`, `${secret:S-client-id}` / `${secret:S-client-secret}` |
//!
//! Where an operation accepts several requirements, the first one a probe can satisfy is used
//! (an empty one means none is needed). Other flows (authorization code, OpenID Connect, mutual
//! TLS) need a person or a certificate; an operation that accepts only those is skipped.

use std::collections::BTreeMap;

use serde_json::Value;
use vigil_schema::{ApiKeyLocation, Auth};

use super::document::{Document, Version, escape};
use super::operation::Skip;
use super::{ImportError, ImportOptions};

/// The base URL of an operation.
pub(super) fn base_url(
    doc: &Document,
    op: &Value,
    item: &Value,
    at: &str,
    options: &ImportOptions,
) -> Result<String, Skip> {
    if let Some(base) = &options.base_url {
        return Ok(base.clone());
    }
    let (url, url_at) = if doc.version == Version::Swagger2 {
        swagger_base(doc, op, options)?
    } else {
        let item_at = at.rsplit_once('/').map_or("", |(p, _)| p);
        let declared = [
            (op.get("servers"), format!("{at}/servers")),
            (item.get("servers"), format!("{item_at}/servers")),
            (doc.get("/servers"), "/servers".to_owned()),
        ];
        let found = declared.into_iter().find_map(|(servers, servers_at)| {
            servers
                .and_then(Value::as_array)
                .and_then(|s| s.first())
                .map(|first| (first, format!("{servers_at}/0")))
        });
        match found {
            Some((server, server_at)) => {
                (server_url(server, &server_at)?, format!("{server_at}/url"))
            }
            // No servers: OpenAPI's default is `/`, relative to the document.
            None => ("/".to_owned(), "/servers".to_owned()),
        }
    };
    let resolved = match url::Url::parse(&url) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => match &options.source_url {
            Some(source) => source.join(&url).map_err(|e| {
                Skip::Invalid(ImportError::new(url_at.clone(), format!("{url:?}: {e}")))
            })?,
            None => {
                return Err(Skip::Invalid(ImportError::new(
                    url_at,
                    format!("the server URL {url:?} is relative; give a base URL"),
                )));
            }
        },
        Err(e) => {
            return Err(Skip::Invalid(ImportError::new(
                url_at,
                format!("{url:?}: {e}; give a base URL"),
            )));
        }
    };
    if resolved.as_str().contains("${") {
        return Err(Skip::Invalid(ImportError::new(
            url_at,
            format!(
                "the server URL {url:?} holds `${{`, which a monitor would read as a reference; \
                 give a base URL"
            ),
        )));
    }
    if !matches!(resolved.scheme(), "http" | "https") {
        return Err(Skip::Invalid(ImportError::new(
            url_at,
            format!("the server URL {url:?} is not http(s); give a base URL"),
        )));
    }
    Ok(resolved.to_string())
}

/// A server's URL with its variables at their defaults.
fn server_url(server: &Value, at: &str) -> Result<String, ImportError> {
    let mut url = server
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| ImportError::new(format!("{at}/url"), "must be a string"))?
        .to_owned();
    if let Some(Value::Object(variables)) = server.get("variables") {
        for (name, variable) in variables {
            let default = match variable.get("default") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => {
                    return Err(ImportError::new(
                        format!("{at}/variables/{}/default", escape(name)),
                        "is missing",
                    ));
                }
            };
            url = url.replace(&format!("{{{name}}}"), &default);
        }
    }
    Ok(url)
}

/// Swagger 2.0: `schemes` (https preferred), `host` (or the document's own) and `basePath`.
fn swagger_base(
    doc: &Document,
    op: &Value,
    options: &ImportOptions,
) -> Result<(String, String), Skip> {
    let schemes: Vec<&str> = op
        .get("schemes")
        .or_else(|| doc.get("/schemes"))
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let source = options.source_url.as_ref();
    let scheme = if schemes.contains(&"https") {
        "https"
    } else if let Some(first) = schemes.first() {
        first
    } else {
        source.map_or("https", url::Url::scheme)
    };
    let host = match doc.get("/host").and_then(Value::as_str) {
        Some(host) => host.to_owned(),
        None => match source.and_then(|s| s.host_str().map(|h| (h, s.port()))) {
            Some((h, Some(port))) => format!("{h}:{port}"),
            Some((h, None)) => h.to_owned(),
            None => {
                return Err(Skip::Invalid(ImportError::new(
                    "/host",
                    "is missing, and the document was not read from a URL; give a base URL",
                )));
            }
        },
    };
    let base_path = doc.get("/basePath").and_then(Value::as_str).unwrap_or("/");
    Ok((format!("{scheme}://{host}{base_path}"), "/host".to_owned()))
}

/// The operation's authentication; a second API key header or a cookie goes into `headers`.
pub(super) fn auth(
    doc: &Document,
    op: &Value,
    at: &str,
    options: &ImportOptions,
    headers: &mut BTreeMap<String, String>,
) -> Result<Auth, Skip> {
    let (requirements, req_at) = match op.get("security") {
        Some(r) => (r, format!("{at}/security")),
        None => match doc.get("/security") {
            Some(r) => (r, "/security".to_owned()),
            None => return Ok(Auth::None),
        },
    };
    let Value::Array(alternatives) = requirements else {
        return Err(ImportError::new(req_at, "must be a list of security requirements").into());
    };
    if alternatives.is_empty() {
        return Ok(Auth::None);
    }
    let mut reasons = Vec::new();
    for (i, alternative) in alternatives.iter().enumerate() {
        let Value::Object(schemes) = alternative else {
            return Err(ImportError::new(format!("{req_at}/{i}"), "must be an object").into());
        };
        let mut extra = BTreeMap::new();
        match requirement(doc, schemes, &format!("{req_at}/{i}"), options, &mut extra)? {
            Ok(auth) => {
                for (name, value) in extra {
                    merge_header(headers, name, value);
                }
                return Ok(auth);
            }
            Err(reason) => reasons.push(reason),
        }
    }
    Err(Skip::Because(reasons.join("; or ")))
}

/// One requirement (all its schemes): the auth, or why a probe cannot satisfy it.
fn requirement(
    doc: &Document,
    schemes: &serde_json::Map<String, Value>,
    at: &str,
    options: &ImportOptions,
    headers: &mut BTreeMap<String, String>,
) -> Result<Result<Auth, String>, ImportError> {
    let definitions = if doc.version == Version::Swagger2 {
        "/securityDefinitions".to_owned()
    } else {
        "/components/securitySchemes".to_owned()
    };
    let mut auth = Auth::None;
    // API keys in headers are decided last: the credential slot goes to a scheme that needs
    // it, whatever the order of names, and they become headers.
    let mut header_keys: Vec<(String, String)> = Vec::new();
    for (name, scopes) in schemes {
        let def_at = format!("{definitions}/{}", escape(name));
        let Some(def) = doc.get(&def_at) else {
            return Err(ImportError::new(
                format!("{at}/{}", escape(name)),
                format!("names the security scheme {name:?}, which {definitions} does not define"),
            ));
        };
        let (def, def_at) = doc.deref(def, &def_at)?;
        let secret = secret_name(name, options);
        let field = |key: &str| def.get(key).and_then(Value::as_str).unwrap_or_default();
        let this = match (field("type"), field("scheme").to_ascii_lowercase().as_str()) {
            ("http", "bearer") => Auth::Bearer {
                token: reference(&secret, ""),
            },
            ("http", "basic") | ("basic", _) => Auth::Basic {
                username: reference(&secret, "-username"),
                password: reference(&secret, "-password"),
            },
            ("apiKey", _) => {
                let key = field("name");
                if key.is_empty() {
                    return Err(ImportError::new(
                        format!("{def_at}/name"),
                        "must be a string",
                    ));
                }
                match field("in") {
                    "header" => {
                        header_keys.push((key.to_owned(), reference(&secret, "")));
                        continue;
                    }
                    "query" => Auth::ApiKey {
                        name: key.to_owned(),
                        value: reference(&secret, ""),
                        location: ApiKeyLocation::Query,
                    },
                    "cookie" => {
                        let cookie = format!("{key}={}", reference(&secret, ""));
                        merge_header(headers, "Cookie".into(), cookie);
                        continue;
                    }
                    other => {
                        return Err(ImportError::new(
                            format!("{def_at}/in"),
                            format!("must be header, query or cookie, got {other:?}"),
                        ));
                    }
                }
            }
            ("oauth2", _) => match client_credentials_url(doc, def) {
                Some(token_url) if token_url.contains("${") => {
                    return Ok(Err(format!(
                        "the token URL of {name:?} holds `${{`, which a monitor would read as a \
                         reference"
                    )));
                }
                Some(token_url) => Auth::Oauth2ClientCredentials {
                    token_url: token_url.to_owned(),
                    client_id: reference(&secret, "-client-id"),
                    client_secret: reference(&secret, "-client-secret"),
                    scopes: scopes
                        .as_array()
                        .map(|s| {
                            s.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                },
                None => {
                    return Ok(Err(format!(
                        "needs the OAuth 2 scheme {name:?} without a client-credentials flow, \
                         which takes a person to sign in"
                    )));
                }
            },
            (kind, _) => {
                return Ok(Err(format!(
                    "needs the security scheme {name:?} ({kind}), which a probe cannot use"
                )));
            }
        };
        if auth != Auth::None {
            return Ok(Err(format!(
                "needs two credentials at once ({name:?} and another), which a monitor cannot send"
            )));
        }
        auth = this;
    }
    let mut header_keys = header_keys.into_iter();
    if auth == Auth::None
        && let Some((name, value)) = header_keys.next()
    {
        auth = Auth::ApiKey {
            name,
            value,
            location: ApiKeyLocation::Header,
        };
    }
    headers.extend(header_keys);
    Ok(Ok(auth))
}

fn client_credentials_url<'a>(doc: &Document, def: &'a Value) -> Option<&'a str> {
    if doc.version == Version::Swagger2 {
        return (def.get("flow")?.as_str()? == "application")
            .then(|| def.get("tokenUrl")?.as_str())
            .flatten();
    }
    def.pointer("/flows/clientCredentials/tokenUrl")?.as_str()
}

/// The secret a scheme is bound to: the name given in the options, or `openapi-` and the
/// scheme's name made a valid secret name. A document names its schemes, so without the prefix
/// it could bind a monitor that calls its own server to any stored secret.
fn secret_name(scheme: &str, options: &ImportOptions) -> String {
    if let Some(name) = options.secrets.get(scheme) {
        return name.clone();
    }
    let name: String = scheme
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!("{DEFAULT_SECRET_PREFIX}{name}")
}

/// What a scheme's default secret name starts with.
pub const DEFAULT_SECRET_PREFIX: &str = "openapi-";

fn reference(secret: &str, suffix: &str) -> String {
    format!("${{secret:{secret}{suffix}}}")
}

fn merge_header(headers: &mut BTreeMap<String, String>, name: String, value: String) {
    headers
        .entry(name)
        .and_modify(|v| {
            v.push_str("; ");
            v.push_str(&value);
        })
        .or_insert(value);
}
