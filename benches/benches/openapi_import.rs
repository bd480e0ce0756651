//! OpenAPI import of a large real document: GitHub's official description (about 13 MB, 800
//! paths), from text to validated monitors, the way `vigil import openapi` does it (parse,
//! convert, bundle and compile every response schema, validate every monitor).
//!
//! `VIGIL_GITHUB_OPENAPI=…/api.github.com.json cargo bench -p vigil-benches --bench openapi_import`
//! (`scripts/test` provisions the file, from the `@octokit/openapi` npm package).

use std::time::Instant;

use vigil_ingest::import::{ImportOptions, import_openapi};

fn main() {
    let Ok(path) = std::env::var("VIGIL_GITHUB_OPENAPI") else {
        eprintln!(
            "set VIGIL_GITHUB_OPENAPI to GitHub's OpenAPI description (api.github.com.json of \
             the @octokit/openapi npm package; scripts/test provisions it)"
        );
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let options = ImportOptions {
        params: [
            ("owner", "octocat"),
            ("repo", "Hello-World"),
            ("org", "github"),
            ("username", "octocat"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        ..ImportOptions::default()
    };
    let mut times = Vec::new();
    let mut monitors = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let import = import_openapi(&text, &options).unwrap_or_else(|e| panic!("{e}"));
        times.push(started.elapsed());
        monitors = import.monitors.len();
    }
    times.sort();
    println!(
        "openapi import, {} MB, {monitors} monitors: median {:.0} ms, best {:.0} ms (5 runs)",
        text.len() / 1_000_000,
        times[2].as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0
    );
}
