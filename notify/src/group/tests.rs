use std::collections::HashMap;

use vigil_schema::{RouteSpec, SilenceSpec};

use super::*;
use crate::alert::tests::{fire, resolve};

/// A routing tree, channels, suppressions and the state, with time in seconds.
struct World {
    router: Router,
    channels: BTreeMap<String, ChannelSpec>,
    suppressor: Suppressor,
    state: State,
}

fn at(seconds: i64) -> Timestamp {
    Timestamp(seconds * 1000)
}

impl World {
    fn new(routes: serde_json::Value) -> Self {
        let spec: RouteSpec = serde_json::from_value(routes).unwrap();
        let channels = ["ops", "chat", "lead", "quiet", "off"]
            .into_iter()
            .map(|id| {
                let spec: ChannelSpec = serde_json::from_value(serde_json::json!({
                    "id": id, "kind": {"console": {}},
                    "send_resolved": id != "quiet", "enabled": id != "off",
                }))
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

    fn observe(&mut self, t: &AlertTransition, now: i64) {
        let inputs = Inputs {
            router: &self.router,
            channels: &self.channels,
            suppressor: &self.suppressor,
        };
        self.state.observe(&inputs, t, at(now));
    }

    fn notifications(&mut self, now: i64) -> Vec<Notification> {
        let inputs = Inputs {
            router: &self.router,
            channels: &self.channels,
            suppressor: &self.suppressor,
        };
        self.state.tick(&inputs, at(now))
    }

    /// `channel reason [firing] [resolved]` per notification.
    fn tick(&mut self, now: i64) -> Vec<String> {
        self.notifications(now).iter().map(summary).collect()
    }

    fn wakeup(&self) -> Option<i64> {
        self.state.next_wakeup().map(|t| t.as_millis() / 1000)
    }

    /// Ticks at every wakeup before `until` and expects nothing.
    fn quiet_until(&mut self, until: i64) {
        while let Some(w) = self.wakeup().filter(|w| *w < until) {
            assert_eq!(self.tick(w), Vec::<String>::new(), "at {w}s");
        }
    }
}

fn keys<'a>(alerts: impl Iterator<Item = &'a Alert>) -> String {
    alerts
        .map(|a| a.key.monitor().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

fn summary(n: &Notification) -> String {
    format!(
        "{} {} [{}] [{}]",
        n.channel_id,
        n.reason.as_str(),
        keys(n.firing()),
        keys(n.resolved())
    )
}

fn by_rule() -> serde_json::Value {
    serde_json::json!({"receiver": ["ops"], "group_by": ["rule"]})
}

#[test]
fn group_wait_then_group_interval_then_repeat_interval() {
    let mut w = World::new(by_rule());
    w.observe(&fire("p99", "a", None, 0), 0);
    assert_eq!(w.wakeup(), Some(30), "group_wait");
    assert_eq!(w.tick(29), Vec::<String>::new());
    let first = w.notifications(30);
    assert_eq!(
        first.iter().map(summary).collect::<Vec<_>>(),
        ["ops new [a] []"]
    );
    assert_eq!(first[0].group_key, "root:{rule=\"p99\"}");
    assert_eq!(first[0].at, at(30));
    assert_eq!(
        w.wakeup(),
        Some(330),
        "group_interval after the first flush"
    );

    w.observe(&fire("p99", "b", None, 60), 60);
    assert_eq!(
        w.tick(329),
        Vec::<String>::new(),
        "b waits for the group's interval"
    );
    let update = w.notifications(330);
    assert_eq!(
        update.iter().map(summary).collect::<Vec<_>>(),
        ["ops new [a,b] []"]
    );

    // Unchanged and still firing: quiet until repeat_interval (4h) after the last send.
    w.quiet_until(330 + 4 * 3600);
    assert_eq!(w.wakeup(), Some(330 + 4 * 3600));
    let repeat = w.notifications(330 + 4 * 3600);
    assert_eq!(
        repeat.iter().map(summary).collect::<Vec<_>>(),
        ["ops repeat [a,b] []"]
    );
    assert_eq!(repeat[0].transition_ids(), update[0].transition_ids());
    assert_ne!(
        repeat[0].idempotency_key, update[0].idempotency_key,
        "a reminder is a new message"
    );
    assert_eq!(
        update[0].idempotency_key,
        crate::delivery::idempotency_key("ops", &update[0].transition_ids(), 0)
    );
}

#[test]
fn resolves_flush_at_the_next_interval_and_empty_groups_go() {
    let mut w = World::new(by_rule());
    let (a, b) = (fire("p99", "a", None, 0), fire("p99", "b", None, 0));
    w.observe(&a, 0);
    w.observe(&b, 0);
    assert_eq!(w.tick(30), ["ops new [a,b] []"]);
    w.observe(&resolve(&a, 100), 100);
    assert_eq!(w.tick(329), Vec::<String>::new());
    assert_eq!(w.tick(330), ["ops resolved [b] [a]"]);
    w.observe(&resolve(&b, 400), 400);
    assert_eq!(w.tick(630), ["ops resolved [] [b]"]);
    assert_eq!(w.state.group_count(), 0);
    assert_eq!(w.wakeup(), None);
    assert!(w.state.owed_resolves(&AlertKey::of(&a)).is_empty());
}

#[test]
fn a_resolve_before_the_first_flush_sends_nothing() {
    let mut w = World::new(by_rule());
    let a = fire("p99", "a", None, 0);
    w.observe(&a, 0);
    w.observe(&resolve(&a, 10), 10);
    assert_eq!(w.tick(30), Vec::<String>::new());
    assert_eq!(w.state.group_count(), 0);
}

#[test]
fn send_resolved_false_and_disabled_channels() {
    let mut w = World::new(serde_json::json!({"receiver": ["quiet", "off", "ops"]}));
    let a = fire("p99", "a", None, 0);
    w.observe(&a, 0);
    assert_eq!(
        w.tick(30),
        ["ops new [a] []", "quiet new [a] []"],
        "off is disabled"
    );
    w.observe(&resolve(&a, 100), 100);
    assert_eq!(w.tick(330), ["ops resolved [] [a]"]);
    assert!(w.state.owed_resolves(&AlertKey::of(&a)).is_empty());
}

fn silence(monitors: &str, from: i64, to: i64) -> SilenceSpec {
    serde_json::from_value(serde_json::json!({
        "id": "deploy", "matchers": [format!("monitor=~{monitors}")], "author": "ana",
        "starts_at": at(from), "ends_at": at(to),
    }))
    .unwrap()
}

#[test]
fn a_silence_suppresses_new_firings_but_never_the_resolve_of_a_notified_one() {
    let mut w = World::new(by_rule());
    let (a, b, c) = (
        fire("p99", "a", None, 0),
        fire("p99", "b", None, 50),
        fire("p99", "c", None, 60),
    );
    w.observe(&a, 0);
    assert_eq!(w.tick(30), ["ops new [a] []"]);
    w.suppressor.add_silence(&silence("a|b", 40, 3600)).unwrap();
    w.observe(&b, 50);
    assert_eq!(
        w.tick(330),
        Vec::<String>::new(),
        "b is silenced, a left out"
    );
    w.observe(&resolve(&a, 400), 400);
    assert_eq!(w.tick(630), ["ops resolved [] [a]"], "inside the silence");
    w.observe(&resolve(&b, 700), 700);
    w.observe(&c, 700);
    assert_eq!(
        w.tick(930),
        ["ops new [c] []"],
        "b was never sent: nothing to resolve"
    );
}

#[test]
fn firings_silenced_until_the_silence_ends_are_sent_then() {
    let mut w = World::new(by_rule());
    w.suppressor.add_silence(&silence("a", 0, 1000)).unwrap();
    w.observe(&fire("p99", "a", None, 0), 0);
    w.quiet_until(1000);
    assert_eq!(w.wakeup(), Some(1230));
    assert_eq!(w.tick(1230), ["ops new [a] []"]);
}

#[test]
fn a_maintenance_window_holds_back_firings_but_not_resolves() {
    let mut w = World::new(by_rule());
    let a = fire("p99", "a", None, 0);
    w.observe(&a, 0);
    assert_eq!(w.tick(30), ["ops new [a] []"]);
    let window: vigil_schema::MaintenanceSpec = serde_json::from_value(serde_json::json!({
        "id": "db-move", "matchers": ["rule=p99"],
        "schedule": {"one_off": {"starts_at": at(100), "ends_at": at(2000)}},
    }))
    .unwrap();
    w.suppressor.add_maintenance(&window).unwrap();
    w.observe(&fire("p99", "b", None, 200), 200);
    w.observe(&resolve(&a, 200), 200);
    assert_eq!(
        w.tick(330),
        ["ops resolved [] [a]"],
        "b waits for the window's end"
    );
    w.quiet_until(2000);
    assert_eq!(w.wakeup(), Some(2130));
    assert_eq!(w.tick(2130), ["ops new [b] []"]);
}

#[test]
fn the_resolve_is_owed_across_a_restart_and_a_route_change() {
    let mut w = World::new(by_rule());
    let a = fire("p99", "a", None, 0);
    w.observe(&a, 0);
    assert_eq!(w.tick(30), ["ops new [a] []"]);
    let saved = serde_json::to_string(&w.state).unwrap();

    // Restart with routes that no longer send anything to `ops`, and a silence on `a`.
    let mut w = World::new(serde_json::json!({"receiver": ["chat"], "group_by": ["monitor"]}));
    w.state = serde_json::from_str(&saved).unwrap();
    w.suppressor.add_silence(&silence("a", 0, 99_999)).unwrap();
    assert_eq!(w.state.owed_resolves(&AlertKey::of(&a)), ["ops"]);
    w.observe(&resolve(&a, 100), 100);
    assert_eq!(
        w.tick(330),
        ["ops resolved [] [a]"],
        "chat was never sent the firing"
    );
    assert_eq!(w.state.group_count(), 0);

    // Even when the group itself is gone, the owed resolve finds its way.
    let mut w = World::new(by_rule());
    let mut restored: State = serde_json::from_str(&saved).unwrap();
    restored.groups.clear();
    w.state = restored;
    w.observe(&resolve(&a, 100), 100);
    assert_eq!(w.wakeup(), Some(130), "a new group waits group_wait");
    assert_eq!(w.tick(130), ["ops resolved [] [a]"]);
}

#[test]
fn dependencies_suppress_children_while_a_parent_fires() {
    let mut w = World::new(serde_json::json!({"receiver": ["ops"], "group_by": ["monitor"]}));
    w.suppressor
        .set_parents(HashMap::from([("api".to_owned(), vec!["db".to_owned()])]));
    let (db, api) = (fire("down", "db", None, 0), fire("down", "api", None, 0));
    w.observe(&db, 0);
    w.observe(&api, 0);
    assert_eq!(w.tick(30), ["ops new [db] []"]);
    w.observe(&resolve(&api, 100), 100);
    assert_eq!(w.tick(330), Vec::<String>::new(), "api was never sent");
    // With the parent resolved, a new firing of the child is sent.
    w.observe(&resolve(&db, 400), 400);
    let api_again = fire("down", "api", None, 500);
    w.observe(&api_again, 500);
    assert_eq!(w.wakeup(), Some(530));
    assert_eq!(w.tick(530), ["ops new [api] []"]);
    assert_eq!(w.tick(630), ["ops resolved [] [db]"]);
}

#[test]
fn escalation_after_the_delay_unless_acknowledged() {
    let mut w = World::new(serde_json::json!({
        "receiver": ["ops"],
        "escalate": {"after": "15m", "to": ["lead"]},
    }));
    let (a, b) = (fire("p99", "a", None, 0), fire("p99", "b", None, 0));
    w.observe(&a, 0);
    w.observe(&b, 0);
    assert_eq!(w.tick(30), ["ops new [a,b] []"]);
    assert!(w.state.acknowledge(&AlertKey::of(&b)));
    assert!(
        !w.state
            .acknowledge(&AlertKey::of(&fire("p99", "zz", None, 0)))
    );
    w.quiet_until(900);
    assert_eq!(
        w.wakeup(),
        Some(900),
        "the escalation is due before the next flush"
    );
    assert_eq!(w.tick(900), ["lead escalation [a] []"]);
    assert_eq!(w.tick(930), Vec::<String>::new(), "escalates once");
    w.observe(&resolve(&a, 1000), 1000);
    assert_eq!(
        w.tick(1230),
        ["lead resolved [] [a]", "ops resolved [b] [a]"],
        "the escalation target is owed the resolve too"
    );
}

#[test]
fn a_new_firing_after_a_resolve_is_not_acknowledged() {
    let mut w = World::new(serde_json::json!({
        "receiver": ["ops"], "escalate": {"after": "10m", "to": ["lead"]},
    }));
    let a = fire("p99", "a", None, 0);
    w.observe(&a, 0);
    assert!(w.state.acknowledge(&AlertKey::of(&a)));
    assert_eq!(w.tick(30), ["ops new [a] []"]);
    w.observe(&resolve(&a, 60), 60);
    w.observe(&fire("p99", "a", None, 120), 120);
    w.quiet_until(720);
    assert_eq!(w.tick(720), ["lead escalation [a] []"]);
}

#[test]
fn routes_with_continue_notify_each_of_their_channels() {
    let mut w = World::new(serde_json::json!({
        "receiver": ["ops"],
        "routes": [
            {"matchers": ["severity=critical"], "receiver": ["lead"], "group_wait": "10s",
             "continue": true},
            {"matchers": ["team=payments"], "receiver": ["chat"]},
        ],
    }));
    w.observe(&fire("p99", "a", None, 0), 0);
    assert_eq!(w.tick(10), ["lead new [a] []"]);
    assert_eq!(w.tick(30), ["chat new [a] []"]);
}

#[test]
fn duplicates_and_stale_transitions_are_ignored() {
    let mut w = World::new(by_rule());
    let a = fire("p99", "a", None, 0);
    w.observe(&a, 0);
    w.observe(&a, 5);
    assert_eq!(w.tick(30), ["ops new [a] []"]);
    w.observe(&resolve(&a, 100), 100);
    w.observe(&a, 110);
    assert_eq!(
        w.tick(330),
        ["ops resolved [] [a]"],
        "the old firing does not revive it"
    );
}

#[test]
fn the_same_inputs_give_the_same_notifications() {
    let run = || {
        let mut w = World::new(by_rule());
        let a = fire("p99", "a", None, 0);
        w.observe(&a, 0);
        let mut out = w.notifications(30);
        w.observe(&resolve(&a, 100), 100);
        out.extend(w.notifications(330));
        out
    };
    let (first, second) = (run(), run());
    assert_eq!(first.len(), 2);
    assert_eq!(first, second);
    assert_ne!(first[0].idempotency_key, first[1].idempotency_key);
}
