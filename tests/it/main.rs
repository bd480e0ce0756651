//! Integration tests against the local stack: a real Kafka-protocol broker and a real ClickHouse
//! engine, started by `scripts/stack up` (endpoints from `VIGIL_KAFKA_BROKERS` and
//! `VIGIL_CLICKHOUSE_URL`, loopback defaults). Each test works in its own database and topics.
//!
//! Run with `cargo test --features integration --test it` (or `scripts/test`).

#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns fail the test on error too"
)]

mod alerts;
mod alerts_api;
mod audit;
mod cli;
mod clickhouse_endpoint;
mod common;
mod e2e;
mod e2e_crash;
mod email;
mod export;
mod grafana;
mod ingest;
mod kafka_topics;
mod migrations;
mod monitors_table;
mod notify;
mod notify_commands;
mod openapi_import;
mod oracle;
mod processor;
mod query;
mod rollup_scale;
mod schemathesis;
mod secrets;
mod seeding;
mod web;
