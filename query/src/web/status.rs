//! Public status pages, `GET /status/{id}`: no key, server-rendered HTML readable without
//! JavaScript, built from a [`StatusPageSpec`] and what ClickHouse holds of its monitors.
//!
//! Only the names the spec gives reach the page: no monitor id, URL, header, error text or
//! alert message. Each page is rendered at most once per [`FRESH`] and kept in memory, served
//! with a strong ETag (304 on `If-None-Match`) and `Cache-Control: public`, so a burst of
//! visitors costs one set of queries. Every statement is bounded by the spec's limits (at most
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
//! - **Maintenance**: windows whose `monitor` matchers select a component's monitor, in force
//!   now or starting within 14 days.

pub(crate) mod data;
pub(crate) mod render;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::web::assets::{cached, etag_of};

/// How long a rendered page is served before it is rendered again.
pub(crate) const FRESH: Duration = Duration::from_secs(15);

/// What browsers and caches may do with a page.
const CACHE: &str = "public, max-age=15, stale-while-revalidate=30";

/// Rendered pages by id.
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    pages: Mutex<HashMap<String, Rendered>>,
    /// One render at a time: concurrent first visitors wait for it instead of all querying.
    rendering: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Rendered {
    at: Instant,
    html: Arc<str>,
    etag: Arc<str>,
}

impl PageCache {
    fn fresh(&self, id: &str) -> Option<Rendered> {
        let pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pages.get(id).filter(|r| r.at.elapsed() < FRESH).cloned()
    }

    fn store(&self, id: &str, html: String) -> Rendered {
        let rendered = Rendered {
            at: Instant::now(),
            etag: etag_of(html.as_bytes()).into(),
            html: html.into(),
        };
        let mut pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded by the number of pages configured: ids come from the view, not the request.
        pages.insert(id.to_owned(), rendered.clone());
        rendered
    }
}

/// `GET /status/{id}`.
pub(crate) async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: HeaderMap,
) -> Response {
    let service = &state.service;
    let Some(spec) = service.notify_views().status_pages.get(&id) else {
        return (
            StatusCode::NOT_FOUND,
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            axum::response::Html(render::not_found()),
        )
            .into_response();
    };
    let cache = &state.status_pages;
    let rendered = match cache.fresh(&id) {
        Some(r) => r,
        None => {
            let _one = cache.rendering.lock().await;
            match cache.fresh(&id) {
                Some(r) => r,
                None => match data::load(service, &spec).await {
                    Ok(data) => cache.store(&id, render::page(&data)),
                    Err(e) => {
                        tracing::warn!(page = %id, error = %e, "status page could not be built");
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [
                                (axum::http::header::CACHE_CONTROL, "no-store"),
                                (axum::http::header::RETRY_AFTER, "15"),
                            ],
                            axum::response::Html(render::unavailable(&spec.title)),
                        )
                            .into_response();
                    }
                },
            }
        }
    };
    cached(
        &request,
        "text/html; charset=utf-8",
        rendered.html.to_string(),
        &rendered.etag,
        CACHE,
    )
}
