//! Notification throughput and latency: 10,000 firing transitions through routing and grouping
//! (grouped by monitor, `group_wait: 0s`) to 100 signed webhook receivers on loopback, with the stage's core
//! ([`State`]) and [`Sender`]. Prints transitions per second from the first observe to the last
//! receipt, and the delay from each transition's observation to its receipt (goal: p99 < 1 s).
//!
//! `cargo bench -p vigil-benches --bench notify` (env: `VIGIL_BENCH_TRANSITIONS` default 10000,
//! `VIGIL_BENCH_RECEIVERS` default 100).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State as Extract};
use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;
use vigil_notify::{Context, Inputs, MemorySecrets, Router, Sender, State, Suppressor};
use vigil_schema::{
    AlertKind, AlertState, AlertTransition, ChannelSpec, RouteSpec, Severity, Timestamp,
};

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Receipt time of every transition id.
type Receipts = Arc<Mutex<BTreeMap<Uuid, Instant>>>;

async fn receive(
    Extract(receipts): Extract<Receipts>,
    Path(_n): Path<u32>,
    body: Bytes,
) -> &'static str {
    let now = Instant::now();
    if let Ok(body) = serde_json::from_slice::<Value>(&body)
        && let Some(alerts) = body["data"]["alerts"].as_array()
    {
        let mut receipts = receipts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for a in alerts {
            if let Some(id) = a["transition_id"].as_str().and_then(|s| s.parse().ok()) {
                receipts.entry(id).or_insert(now);
            }
        }
    }
    "ok"
}

fn transition(n: usize, receivers: usize) -> AlertTransition {
    AlertTransition {
        transition_id: Uuid::from_u128(n as u128 + 1),
        rule_id: "down".into(),
        monitor_id: format!("monitor-{n:05}"),
        region: Some("eu".into()),
        kind: AlertKind::ConsecutiveFailures,
        from: AlertState::Ok,
        to: AlertState::Firing,
        at: Timestamp::now(),
        value: 3.0,
        threshold: 3.0,
        severity: Severity::Critical,
        labels: [("team".to_owned(), format!("t{}", n % receivers))].into(),
        message: format!("monitor-{n:05} failed 3 checks in a row"),
    }
}

#[tokio::main]
async fn main() -> BenchResult {
    let transitions = env("VIGIL_BENCH_TRANSITIONS", 10_000);
    let receivers = env("VIGIL_BENCH_RECEIVERS", 100);
    let receipts: Receipts = Arc::default();
    let app = axum::Router::new()
        .route("/hook/{n}", axum::routing::post(receive))
        .with_state(Arc::clone(&receipts));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    // One channel per receiver, one child route per team.
    let mut channels = BTreeMap::new();
    let mut routes = Vec::new();
    for r in 0..receivers {
        let spec: ChannelSpec = serde_json::from_value(json!({"id": format!("hook-{r}"),
            "kind": {"webhook": {"url": format!("{base}/hook/{r}"), "secret": "${secret:HOOK}"}}}))?;
        channels.insert(spec.id.clone(), spec);
        routes.push(json!({"matchers": [format!("team=t{r}")], "receiver": [format!("hook-{r}")]}));
    }
    let tree: RouteSpec = serde_json::from_value(json!({
        "group_by": ["monitor"], "group_wait": "0s", "group_interval": "1s", "routes": routes}))?;
    let router = Router::new(&tree).map_err(|e| format!("{e:?}"))?;
    let suppressor = Suppressor::new();
    let inputs = Inputs {
        router: &router,
        channels: &channels,
        suppressor: &suppressor,
    };
    let secrets = MemorySecrets::new().with("HOOK", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let sender = Sender::new(Duration::from_secs(10))?;
    let mut state = State::new();

    // Transitions arrive in batches of 100 every 10 ms (10,000 per second); the stage ticks
    // between batches and sends what is due, as the live loop does.
    let started = Instant::now();
    let mut observed: BTreeMap<Uuid, Instant> = BTreeMap::new();
    let all: Vec<AlertTransition> = (0..transitions).map(|n| transition(n, receivers)).collect();
    let mut sent = 0usize;
    for batch in all.chunks(100) {
        for t in batch {
            state.observe(&inputs, t, Timestamp::now());
            observed.insert(t.transition_id, Instant::now());
        }
        let due = state.tick(&inputs, Timestamp::now());
        let ctx = Context {
            external_url: "http://127.0.0.1:8080",
            secrets: &secrets,
            now: Timestamp::now(),
        };
        let sends = due.iter().filter_map(|n| {
            let spec = channels.get(&n.channel_id)?;
            Some(sender.send(spec, n, &ctx))
        });
        sent += join_all(sends).await.len();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The last groups flush on their next interval.
    let deadline = Instant::now() + Duration::from_secs(30);
    while receipts.lock().map_or(0, |r| r.len()) < transitions && Instant::now() < deadline {
        let due = state.tick(&inputs, Timestamp::now());
        let ctx = Context {
            external_url: "http://127.0.0.1:8080",
            secrets: &secrets,
            now: Timestamp::now(),
        };
        let sends = due.iter().filter_map(|n| {
            let spec = channels.get(&n.channel_id)?;
            Some(sender.send(spec, n, &ctx))
        });
        sent += join_all(sends).await.len();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let receipts = receipts.lock().map(|r| r.clone()).unwrap_or_default();
    let last = receipts.values().max().copied().unwrap_or(started);
    let mut delays: Vec<f64> = observed
        .iter()
        .filter_map(|(id, at)| {
            receipts
                .get(id)
                .map(|r| r.duration_since(*at).as_secs_f64())
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    let q = |p: f64| {
        delays
            .get(((delays.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "notify: {transitions} transitions to {receivers} webhook receivers, {} received in {sent} requests",
        receipts.len()
    );
    println!(
        "  throughput {:.0} transitions/s; observe → receipt p50 {:.3} s, p99 {:.3} s, max {:.3} s (goal p99 < 1 s)",
        receipts.len() as f64 / last.duration_since(started).as_secs_f64(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
    Ok(())
}
