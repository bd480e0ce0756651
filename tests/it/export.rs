//! Streamed exports over a real HTTP connection: both export endpoints, CSV and NDJSON, with
//! and without gzip, read to the end by a client that checks the chunked framing (hyper under
//! reqwest fails on a malformed or truncated chunk). A stream polled after its end used to
//! panic in the server under the compression layer; a panic on any server thread now aborts
//! the test run (see `common::fail_on_background_panics`), so this test fails on it.

use std::io::Read;
use std::time::Duration;

use flate2::read::GzDecoder;
use uuid::Uuid;
use vigil_processor::sink::Sink;
use vigil_processor::{Config, Pipeline};
use vigil_schema::{Outcome, ProbeResult, Timestamp, Timings, encode};

const MINUTE: i64 = 60_000;

fn event(n: u64, t_ms: i64) -> ProbeResult {
    ProbeResult {
        event_id: Uuid::from_u128(u128::from(n) + 1),
        monitor_id: "api".into(),
        region: "eu".into(),
        agent: "it".into(),
        scheduled_at: Timestamp::from_millis(t_ms),
        event_time: Timestamp::from_millis(t_ms),
        method: "GET".into(),
        url: "https://example.com/".into(),
        status_code: Some(200),
        outcome: Outcome::Ok,
        error: None,
        timings: Timings {
            total_us: 10_000 + n * 10,
            ..Timings::default()
        },
        response_size: None,
        assertions: vec![],
        tls_cert_expiry: None,
        steps: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_end_cleanly_with_and_without_gzip() {
    crate::common::init_logs();
    let s = crate::query::stack("export_stream").await;
    s.create("api", &[]).await;
    // 30 one-minute windows written by the real pipeline and sink.
    let t0 = (Timestamp::now().as_millis() / MINUTE - 40) * MINUTE;
    let mut pipeline = Pipeline::new(Config::default());
    for n in 0..300u64 {
        let e = event(n, t0 + (n as i64) * 6_000);
        let payload = encode(&e).unwrap();
        pipeline.process(
            0,
            n as i64,
            Some(b"api"),
            Some(&payload),
            Timestamp::now().as_millis(),
        );
    }
    pipeline.finish();
    let output = pipeline.take_output();
    assert_eq!(output.windows.len(), 30);
    Sink::new(s.db.client.clone())
        .write_windows(&output.windows)
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = vigil_query::router(s.state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let range = format!("from={}&to={}", t0, t0 + 40 * MINUTE);
    for path in [
        format!("/api/v1/monitors/api/export?{range}&format=csv"),
        format!("/api/v1/monitors/api/export?{range}&format=ndjson"),
        format!("/api/v1/export?{range}&format=csv"),
        format!("/api/v1/export?{range}"),
    ] {
        for gzip in [false, true] {
            let mut request = client.get(format!("http://{addr}{path}"));
            if gzip {
                request = request.header("accept-encoding", "gzip");
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let encoding = response
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(
                response
                    .headers()
                    .get("transfer-encoding")
                    .map(|v| v.to_str().unwrap()),
                Some("chunked"),
                "{path}"
            );
            // Reading to the end fails on a malformed or unterminated chunked body.
            let bytes = response.bytes().await.unwrap();
            let text = if gzip {
                assert_eq!(encoding.as_deref(), Some("gzip"), "{path}");
                let mut text = String::new();
                GzDecoder::new(&bytes[..])
                    .read_to_string(&mut text)
                    .unwrap();
                text
            } else {
                assert_eq!(encoding, None, "{path}");
                String::from_utf8(bytes.to_vec()).unwrap()
            };
            let lines = text.lines().count();
            let header = usize::from(path.contains("format=csv"));
            assert_eq!(lines, 30 + header, "{path} gzip={gzip}: {text}");
        }
    }
    server.abort();
    s.finish().await;
}
