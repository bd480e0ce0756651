//! The grouping core: alert transitions in, notifications out, time passed in.
//!
//! [`State::observe`] files each firing or resolve into the groups of the routes it takes
//! (route path + the values of the route's `group_by` labels); [`State::tick`] returns the
//! notifications due at `now`; [`State::next_wakeup`] says when to tick next. Nothing here reads
//! a clock or does I/O, and the whole [`State`] is serde, for the `vigil.notify-state`
//! changelog.
//!
//! Timing (Alertmanager's): a new group waits `group_wait` before its first flush, then flushes
//! every `group_interval` while it has alerts. At a flush each channel of the group is sent a
//! notification when the group has a firing alert the channel was not sent yet, a resolve the
//! channel is owed, or when it still fires and nothing was sent for `repeat_interval`.
//!
//! Suppression (silences, maintenance, dependencies; [`crate::silence`]) is decided per alert at
//! flush time and leaves firing alerts out, nothing more. **A resolve is never suppressed**:
//! every (channel, alert) whose firing was sent is remembered in the state until the resolve is
//! sent there, even when a silence started meanwhile, the routes changed, or the notifier
//! restarted from its changelog. A channel with `send_resolved: false` is not sent resolves; a
//! deleted or disabled channel is sent nothing.
//!
//! Escalation: an alert of a route with `escalate` that fires, unsuppressed and not
//! [acknowledged](State::acknowledge), for `after` since the notifier learnt of it, is sent to
//! the `to` channels at once; from then on those channels follow it like receivers (reminders,
//! resolve).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_schema::{AlertTransition, ChannelSpec, Escalation, Timestamp};

use crate::alert::{self, Alert, AlertKey, Labels};
use crate::route::{GroupSettings, Route, Router};
use crate::silence::Suppressor;
use flush::Flush;

mod flush;
#[cfg(test)]
mod tests;

/// The configuration the core evaluates against (built from the compacted config topics).
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The routing tree.
    pub router: &'a Router,
    /// Every channel by id.
    pub channels: &'a BTreeMap<String, ChannelSpec>,
    /// Silences, maintenance windows and dependencies.
    pub suppressor: &'a Suppressor,
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The group has firing alerts the channel was not sent yet.
    New,
    /// Alerts the channel was sent have resolved.
    Resolved,
    /// Nothing changed, but the group still fires after `repeat_interval`.
    Repeat,
    /// Alerts fired unacknowledged for the route's escalation delay.
    Escalation,
}

impl Reason {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::Resolved => "resolved",
            Reason::Repeat => "repeat",
            Reason::Escalation => "escalation",
        }
    }
}

/// One message for one channel: a group's firing alerts and the resolves owed to the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The channel.
    pub channel_id: String,
    /// The group (`root.1:{monitor="checkout",rule="p99"}`).
    pub group_key: String,
    /// The group's labels.
    pub group_labels: Labels,
    /// Why it is sent.
    pub reason: Reason,
    /// Firing alerts first, then resolved ones, each by key.
    pub alerts: Vec<Alert>,
    /// When it was decided.
    pub at: Timestamp,
    /// Same on every retry and after a restart; see [`idempotency_key`](crate::delivery::idempotency_key).
    pub idempotency_key: Uuid,
}

impl Notification {
    /// The firing alerts.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.is_firing())
    }

    /// The resolved alerts.
    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| !a.is_firing())
    }

    /// `firing` when any alert fires, else `resolved`.
    pub fn status(&self) -> &'static str {
        if self.firing().next().is_some() {
            "firing"
        } else {
            "resolved"
        }
    }

    /// The transitions carried, sorted.
    pub fn transition_ids(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .alerts
            .iter()
            .map(|a| a.transition.transition_id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The labels every alert has with the same value.
    pub fn common_labels(&self) -> Labels {
        let mut alerts = self.alerts.iter();
        let mut common = alerts.next().map(|a| a.labels.clone()).unwrap_or_default();
        for a in alerts {
            common.retain(|k, v| a.labels.get(k) == Some(v));
        }
        common
    }
}

/// Everything the core remembers between calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Groups by key.
    groups: BTreeMap<String, Group>,
    /// Channel → alerts whose firing was sent there and whose resolve is owed.
    notified: BTreeMap<String, BTreeSet<AlertKey>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Group {
    labels: Labels,
    receivers: Vec<String>,
    settings: GroupSettings,
    escalate: Option<Escalation>,
    alerts: BTreeMap<AlertKey, Entry>,
    next_flush: Timestamp,
    channels: BTreeMap<String, Progress>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    alert: Alert,
    /// When the notifier learnt the alert fires (the escalation clock).
    since: Timestamp,
    acknowledged: bool,
    escalated: bool,
}

/// What a channel was last sent for a group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Progress {
    last_sent: Option<Timestamp>,
    firing: BTreeSet<AlertKey>,
    /// Joined through escalation rather than as a receiver.
    escalation: bool,
    /// Key of the last notification's transitions, and how many times in a row that same set
    /// was sent (reminders get keys of their own).
    last_key: Option<Uuid>,
    resends: u32,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `route:{a="x",b="y"}`.
fn group_key(route: &str, labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{route}:{{{}}}", pairs.join(","))
}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one transition, observed at `now`. Firings enter the groups of their routes;
    /// resolves update every group holding the alert. Duplicates and transitions older than
    /// what a group holds are ignored; other transitions (to or from `pending`) mean nothing
    /// here.
    pub fn observe(&mut self, inputs: &Inputs<'_>, t: &AlertTransition, now: Timestamp) {
        let key = AlertKey::of(t);
        if alert::is_firing(t) {
            let labels = alert::labels(t);
            for route in inputs.router.routes(&labels) {
                let entry = self
                    .group_for(route, &labels, now)
                    .alerts
                    .entry(key.clone());
                match entry {
                    std::collections::btree_map::Entry::Occupied(mut held) => {
                        let held = held.get_mut();
                        if t.transition_id == held.alert.transition.transition_id
                            || t.at < held.alert.transition.at
                        {
                            continue;
                        }
                        if held.alert.is_firing() {
                            held.alert.transition = t.clone();
                            held.alert.labels.clone_from(&labels);
                        } else {
                            *held = Entry::new(t, now);
                        }
                    }
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(Entry::new(t, now));
                    }
                }
            }
        } else if alert::is_resolve(t) {
            let mut held = false;
            for group in self.groups.values_mut() {
                if let Some(entry) = group.alerts.get_mut(&key) {
                    held = true;
                    if entry.alert.is_firing() && t.at >= entry.alert.transition.at {
                        entry.alert.ends_at = Some(t.at);
                        entry.alert.transition = t.clone();
                    }
                }
            }
            let owed = self.notified.values().any(|keys| keys.contains(&key));
            if !held && owed {
                // The firing's group is gone (routes changed, or an older state was restored):
                // file the resolve under today's routes; the flush finds who is owed it.
                let labels = alert::labels(t);
                for route in inputs.router.routes(&labels) {
                    let mut resolved = Entry::new(t, now);
                    resolved.alert.ends_at = Some(t.at);
                    self.group_for(route, &labels, now)
                        .alerts
                        .insert(key.clone(), resolved);
                }
            }
        }
    }

    fn group_for(&mut self, route: &Route, labels: &Labels, now: Timestamp) -> &mut Group {
        let group_labels = route.settings.group_by.group_labels(labels);
        let key = group_key(&route.path, &group_labels);
        let group = self.groups.entry(key).or_insert_with(|| Group {
            labels: group_labels,
            receivers: Vec::new(),
            settings: route.settings.clone(),
            escalate: None,
            alerts: BTreeMap::new(),
            next_flush: now.saturating_add_millis(ms(route.settings.group_wait)),
            channels: BTreeMap::new(),
        });
        group.receivers.clone_from(&route.receivers);
        group.settings.clone_from(&route.settings);
        group.escalate.clone_from(&route.escalate);
        group
    }

    /// The notifications due at `now`, in group order. Call it at [`next_wakeup`] (calling
    /// it more often is harmless).
    ///
    /// [`next_wakeup`]: State::next_wakeup
    pub fn tick(&mut self, inputs: &Inputs<'_>, now: Timestamp) -> Vec<Notification> {
        let firing_monitors: BTreeSet<String> = self
            .groups
            .values()
            .flat_map(|g| g.alerts.values())
            .filter(|e| e.alert.is_firing())
            .map(|e| e.alert.transition.monitor_id.clone())
            .collect();
        let mut ctx = Flush {
            inputs,
            now,
            firing_monitors: &firing_monitors,
            notified: &mut self.notified,
            out: Vec::new(),
        };
        self.groups.retain(|key, group| {
            if group.next_flush <= now {
                ctx.flush(key, group);
                let interval = ms(group.settings.group_interval).max(1);
                let mut next = group.next_flush.as_millis().saturating_add(interval);
                if next <= now.as_millis() {
                    next += (now.as_millis() - next) / interval * interval + interval;
                }
                group.next_flush = Timestamp(next);
            }
            ctx.escalate(key, group);
            !group.alerts.is_empty()
        });
        let out = ctx.out;
        self.notified.retain(|_, keys| !keys.is_empty());
        out
    }

    /// When [`tick`](State::tick) has something to do next: a group flush or an escalation;
    /// `None` when no alert is held.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        self.groups
            .values()
            .flat_map(|g| {
                let escalations = g.escalate.iter().flat_map(|esc| {
                    g.alerts
                        .values()
                        .filter(|e| e.can_escalate())
                        .map(|e| e.since.saturating_add_millis(ms(esc.after)))
                });
                std::iter::once(g.next_flush).chain(escalations)
            })
            .min()
    }

    /// Marks a firing alert acknowledged, which stops its escalation; returns whether it was
    /// held and firing. A new firing of the same alert starts unacknowledged.
    pub fn acknowledge(&mut self, key: &AlertKey) -> bool {
        let mut found = false;
        for group in self.groups.values_mut() {
            if let Some(entry) = group.alerts.get_mut(key)
                && entry.alert.is_firing()
            {
                entry.acknowledged = true;
                found = true;
            }
        }
        found
    }

    /// The keys of the firing alerts held, in order.
    pub fn firing_keys(&self) -> BTreeSet<AlertKey> {
        self.groups
            .values()
            .flat_map(|g| g.alerts.iter())
            .filter(|(_, e)| e.alert.is_firing())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The channels an alert's resolve is owed to (its firing was sent there).
    pub fn owed_resolves(&self, key: &AlertKey) -> Vec<&str> {
        self.notified
            .iter()
            .filter(|(_, keys)| keys.contains(key))
            .map(|(channel, _)| channel.as_str())
            .collect()
    }

    /// Number of groups held.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }
}

impl Entry {
    fn new(t: &AlertTransition, now: Timestamp) -> Self {
        Self {
            alert: Alert::firing(t),
            since: now,
            acknowledged: false,
            escalated: false,
        }
    }

    fn can_escalate(&self) -> bool {
        self.alert.is_firing() && !self.acknowledged && !self.escalated
    }
}
