//! How long each topic and table keeps what it holds, and what that means for rebuilding.
//!
//! The probes topic is the source of truth: windows, rollups, anomaly scores and alert
//! transitions can be recomputed from it (`vigil replay`, backtests) for as long as it keeps the
//! probe results, and no longer. Derived tables may be kept longer than the topic, as the
//! record of what was computed, but what lies beyond the topic's retention can no longer be
//! rebuilt. Compacted topics (monitors, rules, channels, routes, silences, alert and
//! notification state) keep the latest value of every key for good.
//!
//! Topics get their retention when created, and `vigil migrate` sets it on existing ones;
//! tables get it as their TTL, set by `vigil migrate` too.

use std::time::Duration;

use serde::{Deserialize, Serialize};

const DAY: Duration = Duration::from_secs(86_400);
/// A month and a year as configuration values count them (30.44 and 365.25 days), so the
/// defaults print as `3months` and `2years`.
const MONTH: Duration = Duration::from_secs(2_630_016);
const YEAR: Duration = Duration::from_secs(31_557_600);

/// Retention of every time-bounded topic and table. Tables without a value keep their rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Retention {
    /// `vigil.probes`: how far back windows and alerts can be rebuilt, and backtests reach.
    #[serde(with = "humantime_serde")]
    pub probes_topic: Duration,
    /// `vigil.windows` (live updates and their replay by subscribers).
    #[serde(with = "humantime_serde")]
    pub windows_topic: Duration,
    /// `vigil.alerts`.
    #[serde(with = "humantime_serde")]
    pub alerts_topic: Duration,
    /// `vigil.deadletter`.
    #[serde(with = "humantime_serde")]
    pub deadletter_topic: Duration,
    /// `vigil.deliveries`.
    #[serde(with = "humantime_serde")]
    pub deliveries_topic: Duration,
    /// `vigil.notify-commands`.
    #[serde(with = "humantime_serde")]
    pub notify_commands_topic: Duration,
    /// `vigil.audit`.
    #[serde(with = "humantime_serde")]
    pub audit_topic: Duration,
    /// The raw `probes` table.
    #[serde(with = "humantime_serde")]
    pub probes_table: Duration,
    /// `windows_1m`.
    #[serde(with = "humantime_serde")]
    pub windows_1m: Duration,
    /// `windows_1h`.
    #[serde(with = "humantime_serde")]
    pub windows_1h: Duration,
    /// The `alerts` table (absent: kept).
    #[serde(
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub alerts_table: Option<Duration>,
    /// The `deliveries` table (absent: kept).
    #[serde(
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub deliveries_table: Option<Duration>,
    /// The `audit` table (absent: kept).
    #[serde(
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub audit_table: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            probes_topic: 7 * DAY,
            windows_topic: 3 * DAY,
            alerts_topic: 30 * DAY,
            deadletter_topic: 14 * DAY,
            deliveries_topic: 30 * DAY,
            notify_commands_topic: 7 * DAY,
            audit_topic: 2 * YEAR,
            probes_table: 30 * DAY,
            windows_1m: 3 * MONTH,
            // As the API's longest range.
            windows_1h: 2 * YEAR,
            alerts_table: None,
            deliveries_table: None,
            audit_table: None,
        }
    }
}

/// A retention no deployment should run with: (field, reason).
pub type RetentionError = (&'static str, String);

impl Retention {
    /// Every topic retention (topic name suffix, duration).
    pub fn topics(&self) -> [(&'static str, Duration); 7] {
        [
            ("probes", self.probes_topic),
            ("windows", self.windows_topic),
            ("alerts", self.alerts_topic),
            ("deadletter", self.deadletter_topic),
            ("deliveries", self.deliveries_topic),
            ("notify-commands", self.notify_commands_topic),
            ("audit", self.audit_topic),
        ]
    }

    /// Every table TTL: (table, time column expression, duration or `None` to keep rows).
    pub fn tables(&self) -> [(&'static str, &'static str, Option<Duration>); 6] {
        [
            ("probes", "toDateTime(event_time)", Some(self.probes_table)),
            (
                "windows_1m",
                "toDateTime(window_start)",
                Some(self.windows_1m),
            ),
            (
                "windows_1h",
                "toDateTime(window_start)",
                Some(self.windows_1h),
            ),
            ("alerts", "toDateTime(at)", self.alerts_table),
            ("deliveries", "toDateTime(at)", self.deliveries_table),
            ("audit", "toDateTime(at)", self.audit_table),
        ]
    }

    /// Checks the values and how they combine.
    pub fn validate(&self) -> Result<(), RetentionError> {
        let fields = [
            ("retention.probes-topic", Some(self.probes_topic)),
            ("retention.windows-topic", Some(self.windows_topic)),
            ("retention.alerts-topic", Some(self.alerts_topic)),
            ("retention.deadletter-topic", Some(self.deadletter_topic)),
            ("retention.deliveries-topic", Some(self.deliveries_topic)),
            (
                "retention.notify-commands-topic",
                Some(self.notify_commands_topic),
            ),
            ("retention.audit-topic", Some(self.audit_topic)),
            ("retention.probes-table", Some(self.probes_table)),
            ("retention.windows-1m", Some(self.windows_1m)),
            ("retention.windows-1h", Some(self.windows_1h)),
            ("retention.alerts-table", self.alerts_table),
            ("retention.deliveries-table", self.deliveries_table),
            ("retention.audit-table", self.audit_table),
        ];
        for (field, value) in fields {
            if value.is_some_and(|v| v < Duration::from_secs(3600)) {
                return Err((field, "must be at least 1h".into()));
            }
            // Kafka takes milliseconds as an i64, ClickHouse a number of seconds.
            if value.is_some_and(|v| v > 100 * 365 * DAY) {
                return Err((field, "must be at most 100 years".into()));
            }
        }
        if self.windows_1h < self.windows_1m {
            return Err((
                "retention.windows-1h",
                "must be at least retention.windows-1m (hourly rollups summarize the minutes)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Whether the minute windows outlive what the probes topic can rebuild.
    pub fn windows_outlive_probes(&self) -> bool {
        self.windows_1m > self.probes_topic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_parse_from_toml_like_values() {
        let r = Retention::default();
        assert_eq!(r.validate(), Ok(()));
        assert!(r.windows_outlive_probes());
        let parsed: Retention = serde_json::from_value(serde_json::json!({
            "probes-topic": "30days", "windows-1m": "30days", "audit-table": "2years"
        }))
        .unwrap();
        assert_eq!(parsed.probes_topic, 30 * DAY);
        assert!(!parsed.windows_outlive_probes());
        assert_eq!(parsed.audit_table, Some(Duration::from_secs(63_115_200)));
        assert_eq!(parsed.windows_1h, Duration::from_secs(63_115_200));
        assert!(serde_json::from_value::<Retention>(serde_json::json!({"probes": "1d"})).is_err());
    }

    #[test]
    fn bad_combinations_name_their_field() {
        let short = Retention {
            deadletter_topic: Duration::from_secs(60),
            ..Retention::default()
        };
        assert_eq!(
            short.validate().unwrap_err().0,
            "retention.deadletter-topic"
        );
        let inverted = Retention {
            windows_1h: 30 * DAY,
            ..Retention::default()
        };
        assert_eq!(inverted.validate().unwrap_err().0, "retention.windows-1h");
        let huge = Retention {
            audit_table: Some(1000 * 365 * DAY),
            ..Retention::default()
        };
        assert_eq!(huge.validate().unwrap_err().0, "retention.audit-table");
    }
}
