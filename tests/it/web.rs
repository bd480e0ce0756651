//! The web face as a person sees it: `vigil up --demo`, then Debian's Chromium driven by
//! Playwright (`tests/it/web/browser.cjs`) over the status page, the API docs, GraphiQL and the
//! dashboard, offline (any request to another origin fails the run, as does any console
//! error). `scripts/test` installs both and sets `VIGIL_PLAYWRIGHT` (the playwright-core
//! package folder) and `VIGIL_CHROMIUM`; screenshots are kept in `target/test-artefacts/web/`.

use std::time::{Duration, Instant};

use crate::common::{TestDb, unique_name};
use crate::e2e::{Up, banner_field};

#[tokio::test]
async fn a_person_uses_the_status_page_docs_graphiql_and_dashboard_offline() {
    let playwright = std::env::var("VIGIL_PLAYWRIGHT").expect(
        "VIGIL_PLAYWRIGHT names the playwright-core package folder; scripts/test installs it",
    );
    let chromium = std::env::var("VIGIL_CHROMIUM")
        .expect("VIGIL_CHROMIUM names the Chromium executable; scripts/test installs it");
    let prefix = unique_name("it", "web");
    let db = TestDb::new("web").await;
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).unwrap();
    let mut up = Up::start(&dir, &prefix, &db.name).await;
    let banner = up.banner(Duration::from_secs(120)).await;
    let key = banner_field(&banner, "API key").to_owned();
    let base = format!("http://{}", up.query);
    assert_eq!(
        banner_field(&banner, "Dashboard"),
        format!("{base}/ui/  (sign in with the API key below)")
    );
    assert_eq!(
        banner_field(&banner, "Status page"),
        format!("{base}/status/demo  (public, no key)")
    );

    // The status page and the dashboard's charts need a few closed windows.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let summary: serde_json::Value = http
            .get(format!(
                "{base}/api/v1/monitors/demo-flaky/summary?from=now-1h"
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let failed = http
            .get(format!(
                "{base}/api/v1/monitors/demo-flaky/probes?outcome=failed&limit=1"
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        let checks = summary["overall"]["count"].as_u64().unwrap_or(0);
        if checks >= 3 && failed["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no windows or failed checks of demo-flaky yet: {summary} {failed}\n{}",
            up.logs()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts/web");
    std::fs::create_dir_all(&shots).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/web/browser.cjs");
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new("node")
            .arg(script)
            .env("BASE", &base)
            .env("KEY", &key)
            .env("SHOTS", &shots)
            .env("VIGIL_PLAYWRIGHT", &playwright)
            .env("VIGIL_CHROMIUM", &chromium)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser run took over 5 minutes")
    .unwrap();
    assert!(
        out.status.success(),
        "the browser run failed ({}):\n{}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        up.logs()
    );
    for name in [
        "status-page",
        "api-docs",
        "graphiql",
        "dashboard",
        "monitor",
    ] {
        let png = shots.join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000),
            "no screenshot {}",
            png.display()
        );
    }
    let log = std::fs::read_to_string(&up.stderr).unwrap_or_default();
    assert!(
        !log.contains("panicked"),
        "a panic in vigil:\n{}",
        up.logs()
    );
    drop(up);
    db.drop_database().await;
}
