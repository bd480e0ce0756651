//! Vigil's ingest service: probe runners that check HTTP APIs on schedules, the ingestion API
//! for external probe agents, and the idempotent Kafka producer that writes every
//! [`vigil_schema::ProbeResult`] to the probes topic.
//!
//! # Layout
//! (Modules are added as the service is built.)
