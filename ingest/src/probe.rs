//! Probe runners: the HTTP checker, the assertion language and the scheduler.
//!
//! - [`http`]: one check over one fresh connection, timed phase by phase.
//! - [`condition`]: Gatus-style assertions evaluated on each response.
//! - [`auth`]: `${ENV_VAR}` expansion and credentials, including the OAuth 2 token cache.
//! - [`runner`]: which monitors this runner owns, and when each one runs.

pub mod auth;
pub mod condition;
pub mod http;
pub mod runner;

pub use self::http::{Assertions, Checker};
pub use runner::{Check, Clock, Runner};
