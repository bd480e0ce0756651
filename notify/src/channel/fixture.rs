//! A fixed notification for the payload tests of every channel kind.

use uuid::Uuid;
use vigil_schema::{AlertKind, AlertState, AlertTransition, ChannelSpec, Severity, Timestamp};

use crate::alert::{Alert, Labels};
use crate::channel::Context;
use crate::delivery::idempotency_key;
use crate::group::{Notification, Reason};
use crate::secret::MemorySecrets;

/// `whsec_` + base64 of 24 bytes, as Standard Webhooks secrets look.
pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// A second secret, for rotation.
pub(crate) const NEW_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

pub(crate) fn ts(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).unwrap()
}

pub(crate) fn transition() -> AlertTransition {
    AlertTransition {
        transition_id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001),
        rule_id: "checkout-p99".into(),
        monitor_id: "checkout-api".into(),
        region: Some("eu-west".into()),
        kind: AlertKind::LatencyPercentile,
        from: AlertState::Pending,
        to: AlertState::Firing,
        at: ts("2026-03-01T10:00:00Z"),
        value: 950_000.0,
        threshold: 800_000.0,
        severity: Severity::Critical,
        labels: [("team".to_owned(), "payments".to_owned())].into(),
        message: "p99 of checkout-api is 950ms (> 800ms)".into(),
    }
}

/// The resolve of [`transition`].
pub(crate) fn resolve() -> AlertTransition {
    AlertTransition {
        transition_id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0002),
        from: AlertState::Firing,
        to: AlertState::Ok,
        at: ts("2026-03-01T10:20:00Z"),
        value: 420_000.0,
        threshold: 600_000.0,
        message: "p99 of checkout-api is 420ms".into(),
        ..transition()
    }
}

pub(crate) fn notification(channel: &str) -> Notification {
    let alert = Alert::firing(&transition());
    let ids = [alert.transition.transition_id];
    Notification {
        channel_id: channel.into(),
        group_key: "root.0:{rule=\"checkout-p99\"}".into(),
        group_labels: Labels::from([("rule".to_owned(), "checkout-p99".to_owned())]),
        reason: Reason::New,
        alerts: vec![alert],
        at: ts("2026-03-01T10:00:30Z"),
        idempotency_key: idempotency_key(channel, &ids, 0),
    }
}

/// [`notification`] after the alert resolved.
pub(crate) fn resolved(channel: &str) -> Notification {
    let mut n = notification(channel);
    let alert = &mut n.alerts[0];
    alert.transition = resolve();
    alert.ends_at = Some(alert.transition.at);
    n.reason = Reason::Resolved;
    n.at = ts("2026-03-01T10:20:30Z");
    n.idempotency_key = idempotency_key(channel, &[alert.transition.transition_id], 0);
    n
}

pub(crate) fn secrets() -> MemorySecrets {
    MemorySecrets::new()
        .with("HOOK", SECRET)
        .with("HOOK_ROTATING", format!("{NEW_SECRET} {SECRET}"))
        .with("SLACK", "https://hooks.slack.test/services/T0/B0/xyz")
        .with("PD_KEY", "R0UTINGKEY0000000000000000000000")
        .with("TOKEN", "t0k3n")
}

pub(crate) fn context(secrets: &MemorySecrets) -> Context<'_> {
    Context {
        external_url: "https://vigil.example.com/",
        secrets,
        now: ts("2026-03-01T10:00:31Z"),
    }
}

pub(crate) fn channel(json: serde_json::Value) -> ChannelSpec {
    let spec: ChannelSpec = serde_json::from_value(json).unwrap();
    assert_eq!(spec.validate(), Ok(()));
    spec
}
