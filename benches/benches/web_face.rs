//! The web face against a running `vigil up --demo`: the bytes of a first load as a browser
//! asks for them (gzip), for the public status page and for the dashboard, and the server time
//! of `GET /status/demo` measured on loopback: renders from a cold cache, then p50 / p99 of
//! cached answers with one client and with several at once.
//!
//! ```sh
//! scripts/stack up && cargo run --release -- up --demo     # in one terminal
//! cargo bench -p vigil-benches --bench web_face              # in another
//! VIGIL_URL=http://127.0.0.1:8080 VIGIL_BENCH_REQUESTS=5000 VIGIL_BENCH_CLIENTS=8 \
//!     VIGIL_BENCH_COLD=3 cargo bench -p vigil-benches --bench web_face
//! ```

#![allow(clippy::unwrap_used, reason = "bench binary")]

use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes on the wire of `path` when the client accepts gzip.
async fn wire_bytes(http: &reqwest::Client, base: &str, path: &str) -> usize {
    let response = http
        .get(format!("{base}{path}"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.bytes().await.unwrap().len()
}

async fn timed(http: &reqwest::Client, url: &str) -> Duration {
    let started = Instant::now();
    let response = http
        .get(url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.bytes().await.unwrap();
    started.elapsed()
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn show(label: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{label:<34} n={:<6} p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms",
        times.len(),
        quantile(&times, 0.5).as_secs_f64() * 1e3,
        quantile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let base = std::env::var("VIGIL_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let requests = env("VIGIL_BENCH_REQUESTS", 2000);
    let clients = env("VIGIL_BENCH_CLIENTS", 8);
    let cold = env("VIGIL_BENCH_COLD", 2);
    // reqwest is built without its decompression features: sizes are those on the wire.
    let http = reqwest::Client::new();

    let status_files = [
        "/status/demo",
        "/ui/assets/status.css",
        "/ui/assets/favicon.svg",
    ];
    let dashboard_files = [
        "/ui/",
        "/ui/assets/app.css",
        "/ui/assets/favicon.svg",
        "/ui/assets/app.js",
        "/ui/assets/gql.js",
        "/ui/assets/dom.js",
        "/ui/assets/chart.js",
        "/ui/assets/overview.js",
        "/ui/assets/monitor.js",
    ];
    for (name, files) in [
        ("status page", &status_files[..]),
        ("dashboard", &dashboard_files[..]),
    ] {
        let mut total = 0;
        for path in files {
            total += wire_bytes(&http, &base, path).await;
        }
        println!(
            "first load of the {name:<12} {total:>7} bytes over {} files (gzip)",
            files.len()
        );
    }

    let url = format!("{base}/status/demo");
    let mut renders = Vec::new();
    for i in 0..cold {
        if i > 0 {
            // Past the page cache's freshness: the next answer is a new render.
            tokio::time::sleep(Duration::from_secs(16)).await;
        }
        renders.push(timed(&http, &url).await);
    }
    if !renders.is_empty() {
        show("/status/demo rendered (cold)", renders);
    }
    let mut one = Vec::with_capacity(requests);
    for _ in 0..requests {
        one.push(timed(&http, &url).await);
    }
    show("/status/demo cached, 1 client", one);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let mut times = Vec::new();
                for _ in 0..requests / clients {
                    times.push(timed(&http, &url).await);
                }
                times
            })
        })
        .collect();
    let mut many = Vec::new();
    for task in tasks {
        many.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    let n = many.len();
    show(&format!("/status/demo cached, {clients} clients"), many);
    println!(
        "{:<34} {:.0} pages/s",
        "throughput",
        n as f64 / elapsed.as_secs_f64()
    );
}
