//! What the notification stage knows of one alert: its [`AlertKey`], its labels, and the
//! [`Alert`] carried by notifications.
//!
//! An alert is one series of one rule: (rule, monitor, region). Its labels, which routes,
//! silences and groups match on, are the rule's own labels plus `severity`, `monitor`,
//! `region` (absent for a quorum alert), `rule` and `kind`; the built-in names win over a rule
//! label of the same name.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use vigil_schema::{AlertState, AlertTransition, Timestamp};

/// An alert's labels.
pub type Labels = BTreeMap<String, String>;

/// Identifies one alert: `rule/monitor` or `rule/monitor/region`. Ids and regions are slugs,
/// so the form is unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertKey(String);

impl AlertKey {
    /// The key of the alert a transition belongs to.
    pub fn of(t: &AlertTransition) -> Self {
        match &t.region {
            Some(region) => Self(format!("{}/{}/{region}", t.rule_id, t.monitor_id)),
            None => Self(format!("{}/{}", t.rule_id, t.monitor_id)),
        }
    }

    /// The key of (rule, monitor, region).
    pub fn new(rule_id: &str, monitor_id: &str, region: Option<&str>) -> Self {
        match region {
            Some(region) => Self(format!("{rule_id}/{monitor_id}/{region}")),
            None => Self(format!("{rule_id}/{monitor_id}")),
        }
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The monitor part.
    pub fn monitor(&self) -> &str {
        self.0.split('/').nth(1).unwrap_or_default()
    }
}

impl fmt::Display for AlertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The labels of a transition's alert.
pub fn labels(t: &AlertTransition) -> Labels {
    let mut labels = t.labels.clone();
    labels.insert("severity".into(), t.severity.as_str().into());
    labels.insert("monitor".into(), t.monitor_id.clone());
    match &t.region {
        Some(region) => labels.insert("region".into(), region.clone()),
        None => labels.remove("region"),
    };
    labels.insert("rule".into(), t.rule_id.clone());
    labels.insert("kind".into(), t.kind.as_str().into());
    labels
}

/// Whether a transition starts a firing (`→ firing`).
pub fn is_firing(t: &AlertTransition) -> bool {
    t.to == AlertState::Firing
}

/// Whether a transition ends a firing (`firing → ok`).
pub fn is_resolve(t: &AlertTransition) -> bool {
    t.from == AlertState::Firing && t.to != AlertState::Firing
}

/// One alert as a notification carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Its key.
    pub key: AlertKey,
    /// Its labels.
    pub labels: Labels,
    /// When it started firing (event time of the firing transition).
    pub starts_at: Timestamp,
    /// When it resolved (event time of the resolve); `None` while it fires.
    pub ends_at: Option<Timestamp>,
    /// The latest transition: the firing, or the resolve.
    pub transition: AlertTransition,
}

impl Alert {
    /// A firing alert from its firing transition.
    pub fn firing(t: &AlertTransition) -> Self {
        Self {
            key: AlertKey::of(t),
            labels: labels(t),
            starts_at: t.at,
            ends_at: None,
            transition: t.clone(),
        }
    }

    /// Whether it still fires.
    pub fn is_firing(&self) -> bool {
        self.ends_at.is_none()
    }

    /// `firing` or `resolved`.
    pub fn status(&self) -> &'static str {
        if self.is_firing() {
            "firing"
        } else {
            "resolved"
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use uuid::Uuid;
    use vigil_schema::{AlertKind, Severity};

    use super::*;

    /// A firing transition of rule `rule` on `monitor` in `region` at `at_s` seconds.
    pub(crate) fn fire(
        rule: &str,
        monitor: &str,
        region: Option<&str>,
        at_s: i64,
    ) -> AlertTransition {
        AlertTransition {
            transition_id: Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("{rule}/{monitor}/{region:?}/fire/{at_s}").as_bytes(),
            ),
            rule_id: rule.into(),
            monitor_id: monitor.into(),
            region: region.map(Into::into),
            kind: AlertKind::LatencyPercentile,
            from: AlertState::Pending,
            to: AlertState::Firing,
            at: Timestamp(at_s * 1000),
            value: 950_000.0,
            threshold: 800_000.0,
            severity: Severity::Critical,
            labels: [("team".to_owned(), "payments".to_owned())].into(),
            message: format!("p99 of {monitor} is 950ms"),
        }
    }

    /// The resolve of `fire(…)` at `at_s` seconds.
    pub(crate) fn resolve(fired: &AlertTransition, at_s: i64) -> AlertTransition {
        AlertTransition {
            transition_id: Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("{}/resolve/{at_s}", fired.transition_id).as_bytes(),
            ),
            from: AlertState::Firing,
            to: AlertState::Ok,
            at: Timestamp(at_s * 1000),
            value: 500_000.0,
            threshold: 600_000.0,
            message: format!("p99 of {} is 500ms", fired.monitor_id),
            ..fired.clone()
        }
    }

    #[test]
    fn keys_and_labels() {
        let t = fire("p99", "checkout", Some("eu-west"), 60);
        assert_eq!(AlertKey::of(&t).as_str(), "p99/checkout/eu-west");
        assert_eq!(AlertKey::of(&t).monitor(), "checkout");
        let mut quorum = t.clone();
        quorum.region = None;
        quorum.labels.insert("region".into(), "spoofed".into());
        quorum.labels.insert("rule".into(), "spoofed".into());
        assert_eq!(AlertKey::of(&quorum).as_str(), "p99/checkout");
        let l = labels(&quorum);
        assert_eq!(
            l.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
            [
                "kind=latency_percentile",
                "monitor=checkout",
                "rule=p99",
                "severity=critical",
                "team=payments"
            ]
        );
        assert!(is_firing(&t) && !is_resolve(&t));
        let r = resolve(&t, 120);
        assert!(is_resolve(&r) && !is_firing(&r));
    }
}
