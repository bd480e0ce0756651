//! Channels disabled by a `410 Gone`, and the alert each one raises.
//!
//! A receiver that answers 410 is gone for good: its channel is disabled (nothing more is sent
//! to it, its pending retries are dropped), and the notifier raises an alert of its own,
//! rule [`RULE_ID`] on monitor `channel:<id>` (kind `channel_disabled`, severity critical,
//! labels `channel` and `channel_kind`). It goes on the alerts topic and into the `alerts`
//! table like any other, so the routes bring it to the other channels and the alerts API lists
//! it as active. The channel is enabled again, and the alert resolved, when its spec changes
//! (a fixed URL, a new secret reference) or it is deleted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_schema::{AlertKind, AlertState, AlertTransition, ChannelSpec, Severity, Timestamp};

/// The rule id of the alert a disabled channel raises (no rule can have it: rule ids have no
/// dots).
pub const RULE_ID: &str = "vigil.channel-disabled";

/// A disabled channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct Disabled {
    /// The receiver's answer.
    pub reason: String,
    /// When it was disabled.
    pub since: Timestamp,
    /// Its spec then; `None` for a channel disabled before specs were kept (taken from the
    /// catalog at the next review).
    pub spec: Option<ChannelSpec>,
}

/// What the changelog holds: the reason alone (older states) or everything.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Full {
        reason: String,
        since: Timestamp,
        spec: Option<Box<ChannelSpec>>,
    },
    Reason(String),
}

impl From<Stored> for Disabled {
    fn from(s: Stored) -> Self {
        match s {
            Stored::Full {
                reason,
                since,
                spec,
            } => Self {
                reason,
                since,
                spec: spec.map(|s| *s),
            },
            Stored::Reason(reason) => Self {
                reason,
                since: Timestamp(0),
                spec: None,
            },
        }
    }
}

/// The disabled channels, by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DisabledChannels(BTreeMap<String, Disabled>);

impl DisabledChannels {
    /// Whether `channel` is disabled.
    pub fn contains(&self, channel: &str) -> bool {
        self.0.contains_key(channel)
    }

    /// Number of disabled channels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no channel is disabled.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Disables `spec`'s channel; the firing transition of its alert, or `None` when it was
    /// disabled already.
    pub fn disable(
        &mut self,
        spec: &ChannelSpec,
        reason: String,
        now: Timestamp,
    ) -> Option<AlertTransition> {
        if self.0.contains_key(&spec.id) {
            return None;
        }
        let message = format!(
            "Channel {} ({}) answered 410 Gone and is disabled until its spec changes: {reason}",
            spec.display_name(),
            spec.kind.as_str()
        );
        let t = transition(spec, AlertState::Firing, now, now, message);
        self.0.insert(
            spec.id.clone(),
            Disabled {
                reason,
                since: now,
                spec: Some(spec.clone()),
            },
        );
        Some(t)
    }

    /// Enables again every channel whose spec changed or that was deleted; the resolving
    /// transitions of their alerts.
    pub fn review(
        &mut self,
        channels: &BTreeMap<String, ChannelSpec>,
        now: Timestamp,
    ) -> Vec<AlertTransition> {
        let mut resolved = Vec::new();
        self.0.retain(|id, d| {
            let current = channels.get(id);
            match (&d.spec, current) {
                (None, Some(spec)) => {
                    d.spec = Some(spec.clone());
                    true
                }
                (Some(was), Some(spec)) if was == spec => true,
                (was, current) => {
                    let Some(spec) = current.or(was.as_ref()) else {
                        return false;
                    };
                    let how = if current.is_some() {
                        "its spec changed"
                    } else {
                        "it was deleted"
                    };
                    let message =
                        format!("Channel {} is enabled again: {how}", spec.display_name());
                    resolved.push(transition(spec, AlertState::Ok, d.since, now, message));
                    false
                }
            }
        });
        resolved
    }
}

fn transition(
    spec: &ChannelSpec,
    to: AlertState,
    since: Timestamp,
    at: Timestamp,
    message: String,
) -> AlertTransition {
    let from = if to == AlertState::Firing {
        AlertState::Ok
    } else {
        AlertState::Firing
    };
    let name = format!("{RULE_ID}/{}/{since}/{}", spec.id, to.as_str());
    AlertTransition {
        transition_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()),
        rule_id: RULE_ID.to_owned(),
        monitor_id: format!("channel:{}", spec.id),
        region: None,
        kind: AlertKind::ChannelDisabled,
        from,
        to,
        at,
        value: 410.0,
        threshold: 410.0,
        severity: Severity::Critical,
        labels: [
            ("channel".to_owned(), spec.id.clone()),
            ("channel_kind".to_owned(), spec.kind.as_str().to_owned()),
        ]
        .into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hook(url: &str) -> ChannelSpec {
        serde_json::from_value(json!({"id": "hook", "name": "Ops hook",
            "kind": {"webhook": {"url": url, "secret": "${secret:HOOK}"}}}))
        .unwrap()
    }

    #[test]
    fn a_gone_channel_fires_once_and_resolves_when_its_spec_changes() {
        let mut d = DisabledChannels::default();
        let spec = hook("https://old.example.com/hook");
        let fired = d
            .disable(&spec, "HTTP 410: gone".into(), Timestamp(1_000))
            .unwrap();
        assert_eq!(fired.rule_id, "vigil.channel-disabled");
        assert_eq!(fired.monitor_id, "channel:hook");
        assert_eq!(fired.kind, AlertKind::ChannelDisabled);
        assert_eq!((fired.from, fired.to), (AlertState::Ok, AlertState::Firing));
        assert_eq!(fired.at, Timestamp(1_000));
        assert_eq!(fired.labels["channel_kind"], "webhook");
        assert_eq!(
            fired.message,
            "Channel Ops hook (webhook) answered 410 Gone and is disabled until its spec \
             changes: HTTP 410: gone"
        );
        assert!(d.contains("hook"));
        assert_eq!(d.disable(&spec, "again".into(), Timestamp(2_000)), None);

        let mut channels = BTreeMap::from([("hook".to_owned(), spec.clone())]);
        assert!(d.review(&channels, Timestamp(3_000)).is_empty());
        assert!(d.contains("hook"));

        channels.insert("hook".into(), hook("https://new.example.com/hook"));
        let resolved = d.review(&channels, Timestamp(4_000));
        assert_eq!(resolved.len(), 1);
        let r = &resolved[0];
        assert_eq!((r.from, r.to), (AlertState::Firing, AlertState::Ok));
        assert_eq!(r.at, Timestamp(4_000));
        assert_eq!(r.monitor_id, "channel:hook");
        assert_ne!(r.transition_id, fired.transition_id);
        assert!(!d.contains("hook"));
    }

    #[test]
    fn a_deleted_channel_resolves_and_ids_are_deterministic() {
        let spec = hook("https://x.example.com/hook");
        let mut a = DisabledChannels::default();
        let mut b = DisabledChannels::default();
        let fa = a.disable(&spec, "r".into(), Timestamp(5)).unwrap();
        let fb = b.disable(&spec, "r".into(), Timestamp(5)).unwrap();
        assert_eq!(fa.transition_id, fb.transition_id);
        let resolved = a.review(&BTreeMap::new(), Timestamp(9));
        assert_eq!(resolved.len(), 1);
        assert_eq!(
            resolved[0].message,
            "Channel Ops hook is enabled again: it was deleted"
        );
        assert!(a.is_empty());
    }

    #[test]
    fn states_written_with_reasons_only_still_decode() {
        let old: DisabledChannels =
            serde_json::from_value(json!({"hook": "HTTP 410: gone"})).unwrap();
        assert!(old.contains("hook"));
        let mut old = old;
        let spec = hook("https://x.example.com/hook");
        let channels = BTreeMap::from([("hook".to_owned(), spec.clone())]);
        // The spec is taken as it is now: still disabled.
        assert!(old.review(&channels, Timestamp(1)).is_empty());
        assert!(old.contains("hook"));
        let back: DisabledChannels =
            serde_json::from_value(serde_json::to_value(&old).unwrap()).unwrap();
        assert_eq!(back, old);
    }
}
