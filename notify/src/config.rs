//! The notification stage's settings: links, timeouts and the retry policy. The service that
//! wires the Kafka consumer around the core adds its own sections.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::delivery::RetryPolicy;
use crate::{Error, Result};

/// How notifications are rendered and sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Vigil's URL as people reach it, for links in notifications; empty: no links.
    pub external_url: String,
    /// How long one HTTP request or SMTP exchange may take.
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
    /// When failed attempts are retried.
    pub retry: RetryPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            external_url: "http://127.0.0.1:8080".into(),
            send_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

/// Longest send timeout.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

impl Config {
    /// Rejects settings that cannot work.
    pub fn validate(&self) -> Result<()> {
        let url = &self.external_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "external-url must start with http:// or https://, got {url:?}"
            )));
        }
        if self.send_timeout.is_zero() || self.send_timeout > MAX_TIMEOUT {
            return Err(Error::Config(format!(
                "send-timeout must be in (0s, 5m], got {}",
                humantime::format_duration(self.send_timeout)
            )));
        }
        self.retry.validate().map_err(Error::Config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(Config::default().validate().is_ok());
        let config: Config = toml_like(r#"{"external-url": "ftp://x"}"#);
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "invalid configuration: external-url must start with http:// or https://, got \
             \"ftp://x\""
        );
        let config: Config = toml_like(r#"{"send-timeout": "10m", "retry": {"jitter": 0}}"#);
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("send-timeout")
        );
        assert_eq!(
            config.retry.schedule.len(),
            8,
            "unset fields keep their defaults"
        );
        let err = serde_json::from_str::<Config>(r#"{"external_url": "x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `external_url`"),
            "{err}"
        );
    }

    fn toml_like(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }
}
