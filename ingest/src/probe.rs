//! Probe runners: the HTTP checker, the egress policy, the assertion language and the
//! scheduler.
//!
//! - [`http`]: one check over one fresh connection, timed phase by phase.
//! - `socket.rs`, `dns.rs`, `icmp.rs`, `grpc.rs`: the other check kinds (TCP, TLS, WebSocket,
//!   DNS, ICMP, gRPC health), chosen by the URL's scheme.
//! - `steps.rs`: multi-step checks, one HTTP request per step, values of one feeding the next.
//! - [`egress`]: where probes may connect; every check kind resolves, vets and connects through
//!   it, and follows redirects by its rules.
//! - [`condition`]: Gatus-style assertions evaluated on each response.
//! - [`auth`]: `${…}` reference expansion (allow-listed environment variables only) and
//!   credentials, including the OAuth 2 token cache.
//! - [`runner`]: which monitors this runner owns, and when each one runs.

pub mod auth;
pub mod condition;
mod dns;
pub mod egress;
mod grpc;
pub mod http;
mod icmp;
pub mod runner;
mod socket;
mod steps;

pub use self::http::{Assertions, Checker};
pub use egress::{Egress, Resolver, SystemResolver};
pub use runner::{Check, Clock, Runner};
