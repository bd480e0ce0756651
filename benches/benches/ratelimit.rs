//! The rate limiter's cost: requests/s through the whole query API (real HTTP on loopback,
//! API keys on) with the limiter on at limits far above the load, and with it off, alternating
//! runs (best of each). Goal: on/off ≥ 0.95.
//!
//! `cargo bench -p vigil-benches --bench ratelimit` (env: `VIGIL_BENCH_SECONDS` per run, default
//! 3; `VIGIL_BENCH_CLIENTS`, default 8). Kafka is rdkafka's in-process mock cluster; ClickHouse
//! the local stack's (`VIGIL_CLICKHOUSE_URL`), only for readiness: the route measured
//! (`GET /api/v1/monitors`) reads the in-memory view.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use vigil_benches::env;

use rdkafka::mocking::MockCluster;
use tokio_util::sync::CancellationToken;
use vigil_query::auth::Role;
use vigil_query::config::ApiKeyConfig;
use vigil_query::{AppState, Config};
use vigil_schema::ratelimit::RateLimitConfig;

const KEY: &str = "bench-key-0123456789";

async fn served(
    cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    prefix: &str,
    limits: RateLimitConfig,
    token: &CancellationToken,
) -> String {
    let mut config = Config::default();
    config.kafka.brokers = cluster.bootstrap_servers();
    config.kafka.topic_prefix = prefix.into();
    config.kafka.request_timeout = Duration::from_secs(5);
    config.clickhouse.url =
        std::env::var("VIGIL_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    config.auth.keys = vec![ApiKeyConfig {
        name: "bench".into(),
        key: KEY.into(),
        role: Role::Admin,
        expires: None,
    }];
    config.rate_limit = limits;
    for topic in config.topics().specs() {
        cluster
            .create_topic(&topic.name, topic.partitions, 1)
            .expect("topic");
    }
    let service = vigil_query::connect(&config, token).await.expect("service");
    vigil_query::wait_ready(&service, Duration::from_secs(30))
        .await
        .expect("ready");
    let state = AppState::new(service, config, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/api/v1/monitors",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(vigil_query::serve(listener, state, token.clone()));
    url
}

/// Requests/s of `clients` concurrent keep-alive clients for `seconds`.
async fn load(url: &str, clients: u64, seconds: u64) -> f64 {
    let http = reqwest::Client::new();
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, done) = (http.clone(), url.to_owned(), Arc::clone(&done));
            tokio::spawn(async move {
                while Instant::now() < until {
                    let r = http.get(&url).bearer_auth(KEY).send().await;
                    let ok = r.is_ok_and(|r| r.status().is_success());
                    assert!(ok, "a request failed (limited?)");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client");
    }
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}

#[tokio::main]
async fn main() {
    let seconds = env("VIGIL_BENCH_SECONDS", 3);
    let clients = env("VIGIL_BENCH_CLIENTS", 8);
    let cluster = MockCluster::new(1).expect("mock cluster");
    let token = CancellationToken::new();
    let high = RateLimitConfig {
        per_key: 1_000_000,
        per_key_burst: 1_000_000,
        per_address: 1_000_000,
        per_address_burst: 1_000_000,
    };
    let off = RateLimitConfig::OFF;
    let on_url = served(&cluster, "on", high, &token).await;
    let off_url = served(&cluster, "off", off, &token).await;
    load(&on_url, clients, 1).await;
    load(&off_url, clients, 1).await;
    let (mut on, mut off) = (0f64, 0f64);
    for _ in 0..3 {
        off = off.max(load(&off_url, clients, seconds).await);
        on = on.max(load(&on_url, clients, seconds).await);
    }
    println!("rate limiter, {clients} clients, GET /api/v1/monitors with an API key:");
    println!("  limiter off {off:>10.0} requests/s");
    println!("  limiter on  {on:>10.0} requests/s (limits far above the load)");
    println!("  on/off: {:.3} (goal ≥ 0.95)", on / off);
    token.cancel();
}
