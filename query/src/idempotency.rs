//! `Idempotency-Key` on REST writes (`POST` under `/api/v1`).
//!
//! A client retrying a write it is unsure about sends the same `Idempotency-Key` (1–255
//! printable ASCII characters) with the same request: the first response is replayed
//! (`Idempotent-Replayed: true`) instead of writing again. The same key with another method,
//! path or body is a `422`; while the first request with a key is still running, a second one
//! is a `409`. Keys are scoped to the caller's credentials (a hash of its `Authorization`
//! header), remembered for [`TTL`], at most [`CAPACITY`] of them per service instance (the
//! oldest are forgotten first), and only for responses that are not server errors (a `5xx` may be
//! retried with the same key). They live in the instance's memory: a retry must reach the same
//! instance, or come within the write's own idempotence (ids chosen by the client).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use ring::digest;

use vigil_schema::FieldError;

use crate::Error;
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a key is remembered.
pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// Most keys remembered per instance.
pub const CAPACITY: usize = 100_000;
/// Largest response body kept for a replay; a larger one is answered once and its key
/// forgotten.
const MAX_STORED_BODY: usize = 1 << 20;

#[derive(Debug, Clone)]
enum Slot {
    /// The first request with the key is running.
    Running { fingerprint: [u8; 32] },
    /// Its response.
    Done {
        fingerprint: [u8; 32],
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
}

impl Slot {
    fn fingerprint(&self) -> &[u8; 32] {
        match self {
            Slot::Running { fingerprint } | Slot::Done { fingerprint, .. } => fingerprint,
        }
    }
}

/// The remembered keys of one service instance.
#[derive(Debug, Default)]
pub struct Store {
    slots: DashMap<[u8; 32], (Instant, Slot)>,
    /// Keys by age, for expiry and the capacity bound.
    order: Mutex<VecDeque<(Instant, [u8; 32])>>,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl Store {
    /// Forgets keys older than [`TTL`] and, beyond [`CAPACITY`], the oldest.
    fn sweep(&self, now: Instant) {
        let Ok(mut order) = self.order.lock() else {
            return;
        };
        while let Some(&(at, key)) = order.front() {
            if now.duration_since(at) < TTL && order.len() <= CAPACITY {
                break;
            }
            order.pop_front();
            self.slots.remove_if(&key, |_, (stored, _)| *stored == at);
        }
    }

    fn remember(&self, key: [u8; 32], at: Instant) {
        if let Ok(mut order) = self.order.lock() {
            order.push_back((at, key));
        }
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

fn valid_key(value: &HeaderValue) -> Option<&str> {
    let key = value.to_str().ok()?;
    (!key.is_empty() && key.len() <= 255 && key.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .then_some(key)
}

/// The middleware.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.uri().path().starts_with("/api/v1/") {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    // Only for authenticated callers: anyone else gets the route's 401 (or 403), never an
    // answer about keys and bodies seen before.
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if state.auth.enabled() && state.auth.authenticate(authorization).is_err() {
        return next.run(request).await;
    }
    let Some(key) = valid_key(value).map(str::to_owned) else {
        return Error::BadParameter {
            parameter: "Idempotency-Key".into(),
            reason: "must be 1–255 printable ASCII characters".into(),
        }
        .into_response();
    };
    let caller = request
        .headers()
        .get(header::AUTHORIZATION)
        .map_or(&b""[..], HeaderValue::as_bytes);
    let scoped = sha256(&[caller, key.as_bytes()]);
    let key = key.as_str();
    let (parts, body) = request.into_parts();
    let limit = state.config.http.max_body_bytes;
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let fingerprint = sha256(&[
        parts.method.as_str().as_bytes(),
        parts.uri.path().as_bytes(),
        parts.uri.query().unwrap_or_default().as_bytes(),
        &body,
    ]);
    let store = &state.idempotency;
    let now = Instant::now();
    store.sweep(now);
    match store.slots.entry(scoped) {
        Entry::Occupied(slot) => {
            let (_, slot) = slot.get();
            if slot.fingerprint() != &fingerprint {
                return Error::InvalidSpec {
                    kind: "request",
                    errors: vec![FieldError {
                        field: "Idempotency-Key".into(),
                        reason: "was used with another request; a new request needs a new key"
                            .into(),
                    }],
                }
                .into_response();
            }
            return match slot {
                Slot::Running { .. } => Error::Conflict {
                    kind: "request with this Idempotency-Key",
                    id: key.to_owned(),
                }
                .into_response(),
                Slot::Done {
                    status,
                    headers,
                    body,
                    ..
                } => {
                    let mut response = (*status, body.clone()).into_response();
                    response.headers_mut().extend(headers.clone());
                    response.headers_mut().insert(
                        HeaderName::from_static(REPLAYED),
                        HeaderValue::from_static("true"),
                    );
                    response
                }
            };
        }
        Entry::Vacant(slot) => {
            slot.insert((now, Slot::Running { fingerprint }));
        }
    }
    store.remember(scoped, now);
    // Forgets the key unless a response is stored: a failed, oversized or abandoned request
    // (the client went away and the future was dropped) may be retried with the same key.
    let guard = Forget {
        store,
        key: scoped,
        armed: true,
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if response.status().is_server_error() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "response body failed").into_response();
    };
    if body.len() > MAX_STORED_BODY {
        return Response::from_parts(parts, Body::from(body));
    }
    let mut headers = HeaderMap::new();
    for name in [header::CONTENT_TYPE, header::LOCATION, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            headers.insert(name, v.clone());
        }
    }
    let mut guard = guard;
    guard.armed = false;
    store.slots.insert(
        scoped,
        (
            now,
            Slot::Done {
                fingerprint,
                status: parts.status,
                headers,
                body: body.clone(),
            },
        ),
    );
    Response::from_parts(parts, Body::from(body))
}

/// Removes a key still marked running when dropped armed.
struct Forget<'a> {
    store: &'a Store,
    key: [u8; 32],
    armed: bool,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.store.slots.remove_if(&self.key, |_, (_, slot)| {
                matches!(slot, Slot::Running { .. })
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_request_frees_its_key_and_a_finished_one_keeps_it() {
        let store = Store::default();
        let running = |k: u8| {
            store.slots.insert(
                [k; 32],
                (
                    Instant::now(),
                    Slot::Running {
                        fingerprint: [0; 32],
                    },
                ),
            );
        };
        running(1);
        drop(Forget {
            store: &store,
            key: [1; 32],
            armed: true,
        });
        assert!(store.is_empty(), "the dropped request's key is free again");
        running(2);
        drop(Forget {
            store: &store,
            key: [2; 32],
            armed: false,
        });
        assert_eq!(store.len(), 1);
        assert!(valid_key(&HeaderValue::from_static("order-42")).is_some());
        assert!(valid_key(&HeaderValue::from_static("two words")).is_none());
    }
}
