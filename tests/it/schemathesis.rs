//! Schemathesis, an independent OpenAPI fuzzer, against `vigil up --demo` with every check on:
//! the API must honour its own document (statuses, media types, response schemas, headers,
//! schema-valid data never refused as malformed, schema-violating data never accepted, deleted
//! resources gone, authentication never ignored), with zero failures. `scripts/test` installs the
//! pinned version and sets `VIGIL_SCHEMATHESIS`; the configuration is
//! `tests/it/schemathesis/schemathesis.toml`.

use std::time::Duration;

use crate::common::{TestDb, unique_name};
use crate::e2e::{Up, banner_field};

/// Examples per operation and phase; the run takes a minute or two.
const EXAMPLES: &str = "25";

#[tokio::test]
async fn the_api_honours_its_openapi_document() {
    let schemathesis = std::env::var("VIGIL_SCHEMATHESIS").expect(
        "VIGIL_SCHEMATHESIS names the schemathesis executable; scripts/test installs it \
         (scripts/requirements-schemathesis.txt)",
    );
    let prefix = unique_name("it", "st");
    let db = TestDb::new("schemathesis").await;
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).unwrap();
    // Rate limits off: the fuzzer sends thousands of requests with one key.
    let limits = "[query.rate-limit]\nper-key = 0\nper-key-burst = 0\nper-address = 0\n\
                  per-address-burst = 0\n";
    let mut up = Up::start_with(&dir, &prefix, &db.name, limits).await;
    let banner = up.banner(Duration::from_secs(120)).await;
    let key = banner_field(&banner, "API key").to_owned();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/schemathesis/schemathesis.toml"
    );
    // A fixed seed keeps CI reproducible; VIGIL_SCHEMATHESIS_SEED explores others.
    let seed = std::env::var("VIGIL_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261202".into());
    let out = tokio::process::Command::new(&schemathesis)
        .current_dir(&dir)
        .args(["--config-file", config, "--no-color", "run"])
        .arg(format!("http://{}/api/v1/openapi.json", up.query))
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .args([
            "--checks",
            "all",
            "--max-examples",
            EXAMPLES,
            // One worker: CPython 3.11 can fail compiling in two threads at once
            // ("AST constructor recursion depth mismatch"), a runtime error of the fuzzer.
            "--workers",
            "1",
        ])
        .args(["--seed", &seed, "--request-timeout", "30"])
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed ({}):\n{report}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        up.logs()
    );
    assert!(report.contains(" passed"), "{report}");
    let log = std::fs::read_to_string(&up.stderr).unwrap_or_default();
    assert!(
        !log.contains("panicked"),
        "a panic in vigil:\n{}",
        up.logs()
    );
    drop(up);
    db.drop_database().await;
}
