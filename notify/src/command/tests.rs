use std::collections::BTreeMap;

use vigil_schema::{AlertAck, ChannelSpec, RouteSpec};

use super::*;
use crate::alert::tests::fire;
use crate::group::Inputs;
use crate::route::Router;
use crate::silence::Suppressor;

fn at(seconds: i64) -> Timestamp {
    Timestamp(seconds * 1000)
}

struct World {
    router: Router,
    channels: BTreeMap<String, ChannelSpec>,
    suppressor: Suppressor,
    state: State,
}

impl World {
    fn new() -> Self {
        let spec: RouteSpec = serde_json::from_value(serde_json::json!({
            "receiver": ["first"], "group_by": ["monitor"], "group_wait": "0s",
            "escalate": {"after": "2s", "to": ["second"]},
        }))
        .unwrap();
        let channels = ["first", "second"]
            .into_iter()
            .map(|id| {
                let spec: ChannelSpec =
                    serde_json::from_value(serde_json::json!({"id": id, "kind": {"console": {}}}))
                        .unwrap();
                (id.to_owned(), spec)
            })
            .collect();
        Self {
            router: Router::new(&spec).unwrap(),
            channels,
            suppressor: Suppressor::new(),
            state: State::new(),
        }
    }

    fn observe(&mut self, t: &vigil_schema::AlertTransition, now: i64) {
        let inputs = Inputs {
            router: &self.router,
            channels: &self.channels,
            suppressor: &self.suppressor,
        };
        self.state.observe(&inputs, t, at(now));
    }

    /// The notifications due at `now`.
    fn tick(&mut self, now: i64) -> Vec<Notification> {
        let inputs = Inputs {
            router: &self.router,
            channels: &self.channels,
            suppressor: &self.suppressor,
        };
        self.state.tick(&inputs, at(now))
    }
}

fn ack(rule: &str, monitor: &str, region: Option<&str>) -> NotifyCommand {
    NotifyCommand::Ack(AlertAck {
        command_id: Uuid::from_u128(7),
        rule_id: rule.into(),
        monitor_id: monitor.into(),
        region: region.map(Into::into),
        author: "ops".into(),
        comment: "on it".into(),
        at: at(1),
    })
}

fn redeliver(key: Uuid, channel: &str) -> NotifyCommand {
    NotifyCommand::Redeliver(Redeliver {
        command_id: Uuid::from_u128(9),
        delivery_id: Uuid::from_u128(10),
        idempotency_key: key,
        channel_id: channel.into(),
        author: "ops".into(),
        at: at(1),
    })
}

fn channels(ns: &[Notification]) -> Vec<&str> {
    ns.iter().map(|n| n.channel_id.as_str()).collect()
}

#[test]
fn an_acknowledgement_stops_the_escalation() {
    let mut w = World::new();
    w.observe(&fire("p99", "checkout", Some("eu"), 0), 0);
    w.observe(&fire("p99", "cart", Some("eu"), 0), 0);
    assert_eq!(channels(&w.tick(0)), ["first", "first"]);
    let sent = SentLog::new();
    let effect = apply(
        &mut w.state,
        &sent,
        &ack("p99", "checkout", Some("eu")),
        at(1),
    );
    assert_eq!(
        effect,
        Effect::Acknowledged(vec![AlertKey::new("p99", "checkout", Some("eu"))])
    );
    // cart escalates at 2s; checkout never does.
    let escalated = w.tick(3);
    assert_eq!(channels(&escalated), ["second"]);
    let monitors: Vec<&str> = escalated[0]
        .alerts
        .iter()
        .map(|a| a.key.monitor())
        .collect();
    assert_eq!(monitors, ["cart"]);
    assert!(w.tick(60).iter().all(|n| n.channel_id != "second"));
}

#[test]
fn an_acknowledgement_without_region_covers_every_region_and_unknown_alerts_nothing() {
    let mut w = World::new();
    for region in ["eu", "us"] {
        w.observe(&fire("p99", "checkout", Some(region), 0), 0);
    }
    w.observe(&fire("p99", "checkout-v2", Some("eu"), 0), 0);
    w.observe(&fire("down", "checkout", None, 0), 0);
    let sent = SentLog::new();
    let Effect::Acknowledged(keys) =
        apply(&mut w.state, &sent, &ack("p99", "checkout", None), at(1))
    else {
        panic!("expected an acknowledgement")
    };
    let keys: Vec<&str> = keys.iter().map(AlertKey::as_str).collect();
    assert_eq!(keys, ["p99/checkout/eu", "p99/checkout/us"]);
    assert_eq!(
        apply(&mut w.state, &sent, &ack("p99", "gone", None), at(1)),
        Effect::Acknowledged(Vec::new())
    );
    // checkout-v2 and the regionless `down` alert still escalate.
    let escalated = w.tick(3);
    let mut monitors: Vec<String> = escalated
        .iter()
        .filter(|n| n.channel_id == "second")
        .flat_map(|n| n.alerts.iter().map(|a| a.key.to_string()))
        .collect();
    monitors.sort();
    assert_eq!(monitors, ["down/checkout", "p99/checkout-v2/eu"]);
}

#[test]
fn a_redelivery_resends_the_latest_attempt_once_or_is_a_failed_attempt() {
    let mut w = World::new();
    w.observe(&fire("p99", "checkout", Some("eu"), 0), 0);
    let n = w.tick(0).remove(0);
    let key = n.idempotency_key;
    let mut sent = SentLog::new();
    sent.remember(&n, 1, at(0));
    sent.remember(&n, 3, at(5));
    sent.remember(&n, 2, at(6));
    assert_eq!(
        sent.get(&key).map(|s| s.attempt),
        Some(3),
        "never goes back"
    );

    let effect = apply(&mut w.state, &sent, &redeliver(key, "first"), at(10));
    assert_eq!(
        effect,
        Effect::Resend {
            notification: n.clone(),
            attempt: 4
        }
    );

    let rejected = |effect: Effect| match effect {
        Effect::Rejected(d) => d,
        other => panic!("expected a rejection, got {other:?}"),
    };
    let d = rejected(apply(
        &mut w.state,
        &sent,
        &redeliver(Uuid::from_u128(1), "first"),
        at(10),
    ));
    assert_eq!(
        (
            d.status,
            d.attempt,
            d.channel_id.as_str(),
            d.idempotency_key
        ),
        (DeliveryStatus::Failed, 1, "first", Uuid::from_u128(1))
    );
    assert_eq!(
        d.delivery_id,
        Uuid::new_v5(&Uuid::from_u128(9), b"redeliver")
    );
    assert!(
        d.error
            .as_deref()
            .unwrap()
            .contains("holds no notification with this idempotency key"),
        "{d:?}"
    );
    assert_eq!(d.validate(), Ok(()));
    let d = rejected(apply(
        &mut w.state,
        &sent,
        &redeliver(key, "second"),
        at(10),
    ));
    assert!(
        d.error
            .unwrap()
            .contains("was sent on channel \"first\", not \"second\"")
    );
    let week = 7 * 24 * 3600;
    let d = rejected(apply(
        &mut w.state,
        &sent,
        &redeliver(key, "first"),
        at(week + 6),
    ));
    assert!(d.error.unwrap().contains("older than 7days"));
}

#[test]
fn the_log_is_bounded_by_age_and_count_and_tracks_its_changes() {
    let mut w = World::new();
    let mut log = SentLog::new();
    let mut keys = Vec::new();
    for i in 0..5 {
        w.observe(&fire("p99", &format!("m{i}"), None, i), i);
        for n in w.tick(i).into_iter().filter(|n| n.channel_id == "first") {
            log.remember(&n, 1, at(i));
            keys.push(n.idempotency_key);
        }
    }
    assert_eq!(log.len(), 5);
    assert_eq!(log.changes().len(), 5);
    log.written();
    assert!(log.changes().is_empty());
    // m0 is too old, then m1 is the oldest beyond a limit of 3.
    assert_eq!(log.prune_to(at(20), Duration::from_secs(20), 3), 2);
    assert!(log.get(&keys[0]).is_none() && log.get(&keys[1]).is_none());
    assert!(log.get(&keys[2]).is_some());
    let changes = log.changes();
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|(_, v)| v.is_none()), "tombstones");
    log.written();
    let kept = log.get(&keys[2]).cloned();
    log.restore(keys[2], None);
    assert!(log.get(&keys[2]).is_none());
    log.restore(keys[2], kept);
    assert_eq!(log.len(), 3);
    assert!(log.changes().is_empty(), "restoring is not a change");
    assert_eq!(log.prune(at(20)), 0);
}
