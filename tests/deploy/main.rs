//! The production deployment in `docker/`, checked without a Docker engine: the compose file,
//! the Dockerfile, the ClickHouse users and the Grafana provisioning agree with each other and
//! with Vigil itself, and the committed dashboards are the generated ones.
//!
//! Hermetic (no local stack): `cargo test --test deploy`. The dashboards' SQL is run against the
//! local stack by the integration tests (`tests/it/grafana.rs`).

#![allow(clippy::unwrap_used, reason = "test code")]

mod compose;
mod dashboards;
mod dockerfile;

use std::path::{Path, PathBuf};

/// A path in this checkout.
pub(crate) fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A file of this checkout as text.
pub(crate) fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}
