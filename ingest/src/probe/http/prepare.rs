//! Preparing a check's request: `${…}` references expanded (secrets, allow-listed
//! environment variables, values of earlier steps), headers and body set, and the monitor's
//! credentials applied (basic, bearer, API key, OAuth 2 client credentials with its token
//! cache).

use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use url::Url;
use vigil_schema::{ApiKeyLocation, Auth, HttpMethod, MonitorSpec, Outcome, SCHEME_LIST};

use super::{Checker, Failure, Phases};
use crate::probe::auth::{self, TokenKey};

/// A request ready to send (secrets expanded).
#[derive(Debug, Clone)]
pub(in crate::probe) struct Prepared {
    pub(in crate::probe) method: http::Method,
    pub(in crate::probe) url: Url,
    pub(in crate::probe) headers: Vec<(HeaderName, HeaderValue)>,
    pub(in crate::probe) body: Option<Bytes>,
    pub(in crate::probe) tls_verify: bool,
    /// Headers not sent on to another origin when following a redirect, besides
    /// `Authorization`, `Proxy-Authorization` and `Cookie`: the API key header and every
    /// header whose configured value holds a `${…}` reference.
    pub(in crate::probe) secret_headers: Vec<HeaderName>,
}

impl Checker {
    /// Expands secrets and applies authentication.
    pub(in crate::probe) async fn prepare(&self, spec: &MonitorSpec) -> Result<Prepared, Failure> {
        self.prepare_url(spec, &spec.url).await
    }

    /// [`Checker::prepare`] with `url` in place of the monitor's (a `grpc://` URL read as the
    /// `http://` one it is carried over).
    pub(in crate::probe) async fn prepare_url(
        &self,
        spec: &MonitorSpec,
        url: &str,
    ) -> Result<Prepared, Failure> {
        let invalid = |m: String| Failure::new(Outcome::InvalidUrl, m);
        let refs = &self.references;
        let expanded = refs.expand(url).map_err(|e| invalid(format!("url: {e}")))?;
        let url = Url::parse(&expanded).map_err(|e| invalid(format!("url: {e}")))?;
        self.prepare_with(spec, url, &|text| refs.expand(text))
            .await
    }

    /// [`Checker::prepare`] for `url` (expanded already), the monitor's headers, body and
    /// credentials expanded by `expand`.
    pub(in crate::probe) async fn prepare_with(
        &self,
        spec: &MonitorSpec,
        mut url: Url,
        expand: &(dyn Fn(&str) -> Result<String, String> + Sync),
    ) -> Result<Prepared, Failure> {
        let invalid = |m: String| Failure::new(Outcome::InvalidUrl, m);
        if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") || url.host().is_none() {
            return Err(invalid(format!(
                "url: only {SCHEME_LIST} URLs with a host are supported, got {}",
                spec.url
            )));
        }
        let mut headers = Vec::with_capacity(spec.headers.len() + 1);
        let mut secret_headers = Vec::new();
        for (name, value) in &spec.headers {
            let expanded = expand(value).map_err(|e| invalid(format!("headers.{name}: {e}")))?;
            let pair = header_pair(name, &expanded).map_err(invalid)?;
            if auth::has_reference(value) {
                secret_headers.push(pair.0.clone());
            }
            headers.push(pair);
        }
        let body = match &spec.body {
            Some(body) => Some(Bytes::from(
                expand(body).map_err(|e| invalid(format!("body: {e}")))?,
            )),
            None => None,
        };
        let expand =
            |field: &str, v: &str| expand(v).map_err(|e| invalid(format!("auth.{field}: {e}")));
        match &spec.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let value = auth::basic(
                    &expand("username", username)?,
                    &expand("password", password)?,
                );
                headers.push(header_pair("authorization", &value).map_err(invalid)?);
            }
            Auth::Bearer { token } => {
                let value = format!("Bearer {}", expand("token", token)?);
                headers.push(header_pair("authorization", &value).map_err(invalid)?);
            }
            Auth::ApiKey {
                name,
                value,
                location,
            } => {
                let value = expand("value", value)?;
                match location {
                    ApiKeyLocation::Header => {
                        let pair = header_pair(name, &value).map_err(invalid)?;
                        secret_headers.push(pair.0.clone());
                        headers.push(pair);
                    }
                    ApiKeyLocation::Query => {
                        url.query_pairs_mut().append_pair(name, &value);
                    }
                }
            }
            Auth::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scopes,
            } => {
                let key = TokenKey {
                    token_url: expand("token_url", token_url)?,
                    client_id: expand("client_id", client_id)?,
                    scopes: scopes.clone(),
                };
                let token = match self.tokens.get(&key, Instant::now()) {
                    Some(token) => token,
                    None => {
                        let secret = expand("client_secret", client_secret)?;
                        self.fetch_token(key, &secret).await?
                    }
                };
                let value = format!("Bearer {token}");
                headers.push(header_pair("authorization", &value).map_err(invalid)?);
            }
        }
        Ok(Prepared {
            method: method(spec.method),
            url,
            headers,
            body,
            tls_verify: spec.tls_verify,
            secret_headers,
        })
    }

    /// Client-credentials grant, over a fresh connection like any check.
    async fn fetch_token(&self, key: TokenKey, secret: &str) -> Result<String, Failure> {
        let in_token_request =
            |f: Failure| Failure::new(f.outcome, format!("oauth2 token request: {}", f.message));
        let url = Url::parse(&key.token_url)
            .map_err(|e| Failure::new(Outcome::InvalidUrl, format!("auth.token_url: {e}")))?;
        let body = auth::token_request_body(&key.client_id, secret, &key.scopes);
        let request = Prepared {
            method: http::Method::POST,
            url,
            headers: vec![
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                ),
                (header::ACCEPT, HeaderValue::from_static("application/json")),
            ],
            body: Some(Bytes::from(body)),
            tls_verify: true,
            secret_headers: Vec::new(),
        };
        let mut phases = Phases::default();
        let exchange = self
            .exchange(&request, &mut phases)
            .await
            .map_err(in_token_request)?;
        if !(200..300).contains(&exchange.status) {
            return Err(Failure::new(
                Outcome::HttpStatus,
                format!("oauth2 token request: http status {}", exchange.status),
            ));
        }
        self.tokens
            .store(key, &exchange.body, Instant::now())
            .map_err(|m| Failure::new(Outcome::Protocol, format!("oauth2 token request: {m}")))
    }
}

fn method(m: HttpMethod) -> http::Method {
    match m {
        HttpMethod::Get => http::Method::GET,
        HttpMethod::Head => http::Method::HEAD,
        HttpMethod::Post => http::Method::POST,
        HttpMethod::Put => http::Method::PUT,
        HttpMethod::Patch => http::Method::PATCH,
        HttpMethod::Delete => http::Method::DELETE,
        HttpMethod::Options => http::Method::OPTIONS,
    }
}

fn header_pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|e| format!("invalid header name {name:?}: {e}"))?;
    let value = HeaderValue::from_str(value)
        .map_err(|e| format!("invalid value for header {name}: {e}"))?;
    Ok((name, value))
}
