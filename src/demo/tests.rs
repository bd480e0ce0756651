//! Demo target tests: endpoint latencies and failure rates, the TLS listener, the demo monitors file.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn sample_ms(b: &Behaviour, endpoint: Endpoint, unix_secs: u64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| b.latency(endpoint, unix_secs).as_secs_f64() * 1000.0)
        .collect()
}

#[test]
fn latencies_are_log_normal_around_their_medians() {
    let b = Behaviour::new(7);
    let calm = 10 * 60; // minute 10: not degraded
    let fast = sample_ms(&b, Endpoint::Fast, calm, 20_000);
    let m = median(fast.clone());
    assert!((38.0..42.0).contains(&m), "fast median {m}");
    // Log-normal: the mean sits above the median by exp(σ²/2) = 1.046 for σ = 0.3.
    let mean = fast.iter().sum::<f64>() / fast.len() as f64;
    assert!(
        (1.02..1.08).contains(&(mean / m)),
        "mean/median {}",
        mean / m
    );
    // And the log of the samples has the declared spread.
    let logs: Vec<f64> = fast.iter().map(|x| x.ln()).collect();
    let mu = logs.iter().sum::<f64>() / logs.len() as f64;
    let sd = (logs.iter().map(|l| (l - mu).powi(2)).sum::<f64>() / logs.len() as f64).sqrt();
    assert!((0.28..0.32).contains(&sd), "log sd {sd}");

    let slow = median(sample_ms(&b, Endpoint::Slow, calm, 5_000));
    assert!((330.0..370.0).contains(&slow), "slow median {slow}");
    let all = sample_ms(&b, Endpoint::Slow, calm, 5_000);
    assert!(all.iter().all(|&x| (1.0..=5_000.0).contains(&x)));
}

#[test]
fn degrading_endpoint_slows_down_five_minutes_every_half_hour() {
    let degraded: Vec<u64> = (0..60).filter(|m| degraded_at(m * 60 + 59)).collect();
    assert_eq!(degraded, [0, 1, 2, 3, 4, 30, 31, 32, 33, 34]);
    let b = Behaviour::new(11);
    let bad = median(sample_ms(&b, Endpoint::Degrading, 31 * 60, 5_000));
    let good = median(sample_ms(&b, Endpoint::Degrading, 12 * 60, 5_000));
    assert!((280.0..320.0).contains(&bad), "degraded median {bad}");
    assert!((38.0..42.0).contains(&good), "calm median {good}");
}

#[test]
fn flaky_endpoint_fails_exactly_once_per_block_of_fifty() {
    let b = Behaviour::new(3);
    let outcomes: Vec<bool> = (0..50 * 40).map(|_| b.flaky_fails()).collect();
    for block in outcomes.chunks(50) {
        assert_eq!(block.iter().filter(|&&f| f).count(), 1);
    }
    // The failing position moves around between blocks.
    let positions: std::collections::HashSet<usize> = outcomes
        .chunks(50)
        .map(|block| block.iter().position(|&f| f).unwrap())
        .collect();
    assert!(positions.len() > 10, "{positions:?}");
    // Any 99 consecutive requests contain at least one failure.
    assert!(outcomes.windows(99).all(|w| w.contains(&true)));
}

#[test]
fn monitors_file_is_valid_and_points_at_the_target() {
    let target = DemoTarget {
        http: "http://127.0.0.1:18090".into(),
        https: "https://127.0.0.1:18443".into(),
        dns: "127.0.0.1:18053".into(),
        cert_expires: "2030-01-01".into(),
        webhook_secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
    };
    let yaml = monitors_yaml(&target);
    assert!(!yaml.contains("{{"), "{yaml}");
    let file = vigil_ingest::plan::parse_file("demo", &yaml).unwrap();
    let rules: Vec<&str> = file
        .alerts
        .iter()
        .flatten()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        rules,
        [
            "demo-cert-expiring",
            "demo-flaky-errors",
            "demo-degrading-slow",
            "demo-availability-slo"
        ]
    );
    let specs = file.monitors.unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "demo-fast",
            "demo-slow",
            "demo-flaky",
            "demo-degrading",
            "demo-expiring-cert",
            "demo-tcp",
            "demo-tls-handshake",
            "demo-dns",
            "demo-websocket",
            "demo-icmp",
            "demo-grpc",
            "demo-grpcs",
            "demo-steps"
        ]
    );
    let urls: Vec<&str> = specs.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:18090/api/fast",
            "http://127.0.0.1:18090/api/slow",
            "http://127.0.0.1:18090/api/flaky",
            "http://127.0.0.1:18090/api/degrading",
            "https://127.0.0.1:18443/api/fast",
            "tcp://127.0.0.1:18090",
            "tls://127.0.0.1:18443",
            "dns://127.0.0.1:18053/demo.vigil.test?type=A",
            "ws://127.0.0.1:18090/ws",
            "icmp://127.0.0.1?count=3",
            "grpc://127.0.0.1:18090?service=vigil.demo.Api",
            "grpcs://127.0.0.1:18443",
            "http://127.0.0.1:18090/"
        ]
    );
    assert!(specs.iter().all(|s| s.interval <= Duration::from_secs(5)));
    let demo_only = vigil_schema::EgressPolicy {
        allow: vec![
            "127.0.0.1:18090".parse().unwrap(),
            "127.0.0.1:18443".parse().unwrap(),
            "127.0.0.1:18053".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ],
        env_allow: vec![],
    };
    let file = vigil_ingest::plan::parse_file("demo", &yaml).unwrap();
    vigil_ingest::plan::check_egress("demo", &file, &demo_only).unwrap();
    let strict = vigil_ingest::plan::check_egress("demo", &file, &Default::default());
    assert!(strict.is_err(), "the demo target is loopback");
}

async fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn serves_its_endpoints_and_stops_on_cancel() {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let demo = Demo::bind(any, any, any).await.unwrap();
    let target = demo.target.clone();
    let allow: Vec<String> = demo
        .egress_allow()
        .unwrap()
        .iter()
        .map(|e| e.to_string())
        .collect();
    let listeners = [
        &target.http[7..],
        &target.https[8..],
        target.dns.as_str(),
        "127.0.0.1:0",
    ];
    assert_eq!(allow, listeners);
    let expected = (OffsetDateTime::now_utc() + time::Duration::days(CERT_LIFETIME_DAYS))
        .date()
        .to_string();
    assert_eq!(target.cert_expires, expected);
    let token = CancellationToken::new();
    let server = tokio::spawn(demo.serve(token.clone()));
    let addr = target.http.trim_start_matches("http://");

    let fast = get(addr, "/api/fast").await;
    assert!(fast.starts_with("HTTP/1.1 200 OK"), "{fast}");
    assert!(
        fast.contains(r#""status":"UP","endpoint":"fast""#),
        "{fast}"
    );
    let index = get(addr, "/").await;
    assert!(
        index.contains(r#"["/api/fast","/api/slow","/api/flaky","/api/degrading"]"#),
        "{index}"
    );
    let missing = get(addr, "/api/nope").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let mut failures = 0;
    for _ in 0..50 {
        let r = get(addr, "/api/flaky").await;
        if r.starts_with("HTTP/1.1 503") {
            assert!(r.contains(r#""status":"DOWN""#), "{r}");
            failures += 1;
        } else {
            assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        }
    }
    assert_eq!(failures, 1);

    stop(token, server).await;
}

/// The target describes itself: its OpenAPI document imports into monitors whose every
/// assertion (status, content type, body against the schema) holds on its real responses, and
/// a response that breaks the schema fails with the violation.
#[tokio::test]
async fn its_openapi_document_imports_into_monitors_that_pass() {
    use vigil_ingest::config::CheckerConfig;
    use vigil_ingest::import::{ImportOptions, import_openapi};
    use vigil_ingest::probe::{Assertions, Checker};

    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let demo = Demo::bind(any, any, any).await.unwrap();
    let target = demo.target.clone();
    let token = CancellationToken::new();
    let server = tokio::spawn(demo.serve(token.clone()));
    let addr = target.http.trim_start_matches("http://");
    let response = get(addr, "/openapi.json").await;
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let options = ImportOptions {
        source_url: Some(format!("{}/openapi.json", target.http).parse().unwrap()),
        ..ImportOptions::default()
    };
    let import = import_openapi(body, &options).unwrap();
    assert!(import.skipped.is_empty(), "{:?}", import.skipped);
    let urls: Vec<(&str, &str)> = import
        .monitors
        .iter()
        .map(|m| (m.id.as_str(), m.url.as_str()))
        .collect();
    assert_eq!(
        urls,
        [
            ("listendpoints", format!("{}/", target.http).as_str()),
            ("callendpoint", format!("{}/api/fast", target.http).as_str()),
        ]
    );
    let policy = vigil_schema::EgressPolicy {
        allow: vec!["127.0.0.1".parse().unwrap()],
        env_allow: Vec::new(),
    };
    let checker =
        Checker::new(CheckerConfig::default(), "local".into(), "test".into()).with_policy(policy);
    for spec in &import.monitors {
        let result = checker
            .check(spec, &Assertions::of(spec), vigil_schema::Timestamp::now())
            .await;
        assert_eq!(result.outcome, vigil_schema::Outcome::Ok, "{result:?}");
        let held: Vec<(&str, bool)> = result
            .assertions
            .iter()
            .map(|a| (a.condition.as_str(), a.passed))
            .collect();
        assert_eq!(
            held,
            [
                ("[STATUS] == 200", true),
                ("[HEADER].content-type == pat(application/json*)", true),
                ("[BODY] matches schema", true),
            ],
            "{result:?}"
        );
    }
    // The same schema, held to a response it does not describe.
    let mut strict = import.monitors[1].clone();
    let schema = strict.body_schema.as_mut().unwrap();
    schema["$defs"]["Reply"]["properties"]["latency_ms"]["maximum"] = serde_json::json!(-1);
    let result = checker
        .check(
            &strict,
            &Assertions::of(&strict),
            vigil_schema::Timestamp::now(),
        )
        .await;
    let schema_check = &result.assertions[2];
    assert!(!schema_check.passed, "{result:?}");
    let actual = schema_check.actual.as_deref().unwrap();
    assert!(
        actual.starts_with("/latency_ms: ") && actual.contains("is greater than the maximum of -1"),
        "{actual}"
    );

    stop(token, server).await;
}

/// Cancels a served demo target and waits for it to stop cleanly.
async fn stop(token: CancellationToken, server: tokio::task::JoinHandle<anyhow::Result<()>>) {
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
