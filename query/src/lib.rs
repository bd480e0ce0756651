//! Vigil's query layer: REST with an OpenAPI document and GraphQL with subscriptions, over the
//! window and probe tables in ClickHouse and the live topics.
//!
//! # Layout
//! (Modules are added as the service is built.)
