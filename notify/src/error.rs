//! The crate's error type.

use vigil_schema::FieldError;

/// Errors of the notification stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A spec (channel, route, silence, maintenance window) is invalid.
    #[error("invalid {what}: {}", list(.errors))]
    Invalid {
        /// What was checked (`channel hooks`, `routing tree`).
        what: String,
        /// Every problem, naming its field.
        errors: Vec<FieldError>,
    },
    /// A secret a channel references has no value.
    #[error("secret {0} is not set")]
    MissingSecret(String),
    /// A resolved secret has the wrong form (a webhook secret that is not `whsec_<base64>`).
    #[error("secret {name} is malformed: {reason}")]
    BadSecret {
        /// The secret's name (never its value).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A template failed to render where it passed validation (a webhook body that is not
    /// JSON for this notification).
    #[error("template {field}: {reason}")]
    Template {
        /// The spec field holding the template.
        field: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// An e-mail could not be built.
    #[error("failed to build the e-mail: {0}")]
    Email(String),
    /// A payload could not be serialized.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
