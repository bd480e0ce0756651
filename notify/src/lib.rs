//! Vigil's notification stage: alert transitions in, messages to people out.
//!
//! ```text
//! vigil.alerts ──▶ group::State::observe ──▶ route (tree) ──▶ groups (wait, interval, repeat)
//!                                                                 │  tick(now)
//!                        silence: silences, maintenance, dependencies (firings only)
//!                                                                 ▼
//!                 Notification ──▶ channel::build ──▶ Sender ──▶ delivery::decide
//!                                                                 │
//!                         retries (delivery::Retries) ◀───────────┤
//!                                     vigil.deliveries ◀── delivery::record
//! ```
//!
//! The core is pure: it takes transitions, configuration and the time, and returns decisions;
//! its state is serde so a changelog can restore it. The channels build exact wire requests
//! (testable without a network) and one [`channel::Sender`] sends them.
//!
//! # Layout
//! - [`alert`]: alert keys, labels, and the [`Alert`] a notification carries.
//! - [`matcher`]: compiled label matchers (`=`, `!=`, `=~`, `!~`).
//! - [`route`]: the routing tree (Alertmanager semantics) compiled into a [`Router`].
//! - [`group`]: the grouping state machine ([`State`]): group wait/interval, repeats, the
//!   guaranteed resolve, escalation and acknowledgements.
//! - [`silence`]: silences, maintenance windows (cron in a time zone) and dependencies.
//! - [`template`]: the message template language and per-target escaping.
//! - [`delivery`]: idempotency keys, the retry decision, pending retries, delivery events.
//! - [`disabled`]: channels disabled by a `410 Gone` and the alert each raises.
//! - [`channel`]: wire formats and sending, one module per kind.
//! - [`secret`]: resolving `${secret:NAME}` references.
//! - [`catalog`]: channels, routes, silences, maintenance windows and monitor dependencies
//!   followed from their topics.
//! - [`command`]: acknowledgements and redeliveries from `vigil.notify-commands` applied to the
//!   state (pure), and the log of recently sent notifications redeliveries read.
//! - [`stage`]: `vigil notify`, the Kafka shell: consume transitions and commands, send,
//!   record, persist the state to its changelog, then commit.
//! - [`check`]: apply-time validation of channels, routes, silences and maintenance windows.
//! - [`config`]: the stage's settings.
//! - [`error`]: the crate's error type.

pub mod alert;
pub mod catalog;
pub mod channel;
pub mod check;
pub mod command;
pub mod config;
pub mod delivery;
pub mod disabled;
pub mod error;
pub mod group;
pub mod matcher;
pub mod route;
pub mod secret;
pub mod silence;
pub mod stage;
pub mod template;
pub mod vault;

pub use alert::{Alert, AlertKey};
pub use channel::{Context, Sender};
pub use config::Config;
pub use delivery::{Answer, Decision, Retries, RetryPolicy, SendOutcome, decide};
pub use error::{Error, Result};
pub use group::{Inputs, Notification, Reason, State};
pub use route::Router;
pub use secret::{EnvSecrets, MemorySecrets, SecretResolver};
pub use silence::Suppressor;
pub use vault::{SecretStore, VaultConfig};
