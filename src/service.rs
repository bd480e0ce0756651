//! What every long-running service of the binary shares: the shutdown token wired to
//! SIGINT/SIGTERM, the Prometheus recorder, and the operations endpoints (`/metrics`,
//! `/healthz`, `/readyz`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A token cancelled by the first SIGINT or SIGTERM; a second signal exits at once.
pub(crate) fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("Shutdown requested; finishing in-flight work (signal again to exit at once).");
        cancel.cancel();
        wait_for_signal().await;
        warn!("Second signal: exiting immediately.");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ctrl_c = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ctrl_c = tokio::signal::ctrl_c().await;
    }
}

/// Buckets of every `*_seconds` histogram: durations render as Prometheus histograms
/// (aggregatable across instances), not summaries.
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide Prometheus recorder (installed on first use), shared by every service the
/// process runs.
pub(crate) fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = match builder.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                &SECONDS_BUCKETS,
            ) {
                Ok(b) => b,
                Err(e) => {
                    warn!(error = %e, "Histogram buckets rejected; durations render as summaries.");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                warn!("A metrics recorder was already installed; /metrics may be empty.");
            }
            handle
        })
        .clone()
}

/// Readiness shared between a service and its `/readyz`: set once started, and red again
/// while the processor reports a write stall (with its cause in the body).
#[derive(Debug, Clone, Default)]
pub(crate) struct Readiness {
    ready: Arc<AtomicBool>,
    health: Option<vigil_processor::Health>,
}

impl Readiness {
    pub(crate) fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Also reports not ready while `health` reports a stall.
    pub(crate) fn with_health(mut self, health: vigil_processor::Health) -> Self {
        self.health = Some(health);
        self
    }

    /// `None` when ready, else why not.
    fn not_ready(&self) -> Option<String> {
        if !self.ready.load(Ordering::Relaxed) {
            return Some("starting".to_owned());
        }
        self.health
            .as_ref()
            .and_then(vigil_processor::Health::stalled)
    }
}

/// `/metrics`, `/healthz` (the process runs) and `/readyz` (the service is ready).
pub(crate) fn ops_router(readiness: Readiness) -> Router {
    async fn metrics_text() -> String {
        metrics().render()
    }
    async fn ready(State(readiness): State<Readiness>) -> (StatusCode, String) {
        match readiness.not_ready() {
            None => (StatusCode::OK, "ready\n".to_owned()),
            Some(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        }
    }
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(readiness)
}

/// Serves the operations endpoints on `addr` until `token` is cancelled.
pub(crate) async fn serve_ops(
    addr: SocketAddr,
    readiness: Readiness,
    token: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (port already in use?)"))?;
    info!(%addr, "Serving /metrics, /healthz and /readyz.");
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, ops_router(readiness))
            .with_graceful_shutdown(token.cancelled_owned())
            .await;
        if let Err(e) = served {
            warn!(error = %e, "Operations endpoint stopped.");
        }
    }))
}
