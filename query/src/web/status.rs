//! Public status pages, `GET /status/{id}`: no key, server-rendered HTML readable without
//! JavaScript, built from a [`StatusPageSpec`] and what ClickHouse holds of its monitors.
//!
//! Only the names the spec gives reach the page: no monitor id, URL, header, error text or
//! alert message. Each page is rendered at most once per [`FRESH`] and kept in memory, served
//! with a strong ETag (304 on `If-None-Match`) and `Cache-Control: public`, so a burst of
//! visitors costs one set of queries. While a page renders, or after a render failed or took
//! over 10 seconds, visitors get its last render (a 503 page when there is none yet). Every statement is bounded by the spec's limits (at most
//! [`vigil_schema::MAX_STATUS_COMPONENTS`] monitors), never by the data.
//!
//! - **Current state** of a component: under maintenance when a window covers it now; a major
//!   outage when a critical alert of its monitor fires or its latest window in every region
//!   failed every check; degraded when another alert fires or a latest window had failures;
//!   operational otherwise; no data without a window in the last 15 minutes.
//! - **Uptime bars**: one per UTC day over 90 days, `ok / checks` from the hourly rollups.
//! - **Response time**: hourly p95 over the last 24 hours (regions weighted by checks).
//! - **Incidents**: the firing periods of alerts on the page's monitors over 90 days, periods of
//!   one component that overlap merged, the worst severity kept.
//! - **Maintenance**: windows whose matchers are all on `monitor` and select a component's
//!   monitor, in force now or starting within 14 days, shown without their name.

pub(crate) mod data;
pub(crate) mod render;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::state::AppState;
use crate::web::assets::{cached, etag_of};

/// How long a rendered page is served before it is rendered again.
pub(crate) const FRESH: Duration = Duration::from_secs(15);

/// What browsers and caches may do with a page.
const CACHE: &str = "public, max-age=15, stale-while-revalidate=30";

/// How long one render may take; past it the page is unavailable (or its last render is
/// served) and the next visitor after [`FRESH`] tries again.
const RENDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Rendered pages by id.
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    pages: Mutex<HashMap<String, Rendered>>,
    /// When the last render of a page failed, so visitors do not retry it more than once per
    /// [`FRESH`].
    failed: Mutex<HashMap<String, Instant>>,
    /// One render at a time: while it runs, visitors get the last render (or wait for it when
    /// there is none), so a burst of anonymous visitors costs one set of queries.
    rendering: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Rendered {
    at: Instant,
    html: Arc<str>,
    etag: Arc<str>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PageCache {
    fn last(&self, id: &str) -> Option<Rendered> {
        lock(&self.pages).get(id).cloned()
    }

    fn store(&self, id: &str, html: String) -> Rendered {
        let rendered = Rendered {
            at: Instant::now(),
            etag: etag_of(html.as_bytes()).into(),
            html: html.into(),
        };
        // Bounded by the number of pages configured: ids come from the view, not the request.
        lock(&self.pages).insert(id.to_owned(), rendered.clone());
        lock(&self.failed).remove(id);
        rendered
    }

    fn failed_recently(&self, id: &str) -> bool {
        lock(&self.failed)
            .get(id)
            .is_some_and(|at| at.elapsed() < FRESH)
    }

    fn fail(&self, id: &str) {
        lock(&self.failed).insert(id.to_owned(), Instant::now());
    }
}

/// `GET /status/{id}`.
pub(crate) async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: HeaderMap,
) -> Response {
    let Some(spec) = state.service.notify_views().status_pages.get(&id) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-store")],
            Html(render::not_found()),
        )
            .into_response();
    };
    let cache = &state.status_pages;
    let serve = |r: &Rendered| {
        cached(
            &request,
            "text/html; charset=utf-8",
            r.html.to_string(),
            &r.etag,
            CACHE,
        )
    };
    let last = cache.last(&id);
    if let Some(r) = last.as_ref().filter(|r| r.at.elapsed() < FRESH) {
        return serve(r);
    }
    let title = spec.title.clone();
    let unavailable = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::RETRY_AFTER, "15"),
            ],
            Html(render::unavailable(&title)),
        )
            .into_response()
    };
    let _rendering = match &last {
        // Someone is rendering it: the last render will do meanwhile.
        Some(stale) => match cache.rendering.try_lock() {
            Ok(guard) => guard,
            Err(_) => return serve(stale),
        },
        None => match tokio::time::timeout(RENDER_TIMEOUT, cache.rendering.lock()).await {
            Ok(guard) => guard,
            Err(_) => return unavailable(),
        },
    };
    if let Some(r) = cache.last(&id).filter(|r| r.at.elapsed() < FRESH) {
        return serve(&r);
    }
    if cache.failed_recently(&id) {
        return last.as_ref().map_or_else(unavailable, serve);
    }
    // In a task of its own, so a visitor who leaves does not cancel the render.
    let service = state.service.clone();
    let task = tokio::spawn(async move {
        tokio::time::timeout(RENDER_TIMEOUT, data::load(&service, &spec)).await
    });
    match task.await {
        Ok(Ok(Ok(data))) => serve(&cache.store(&id, render::page(&data))),
        outcome => {
            let why = match outcome {
                Ok(Ok(Err(e))) => e.to_string(),
                Ok(Err(_)) => format!("took over {RENDER_TIMEOUT:?}"),
                _ => "the render task failed".to_owned(),
            };
            tracing::warn!(page = %id, error = %why, "status page could not be built");
            cache.fail(&id);
            last.as_ref().map_or_else(unavailable, serve)
        }
    }
}
