//! One tick's work over the groups: flushing due groups to their channels and escalating.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;
use vigil_schema::{ChannelSpec, Timestamp};

use super::{Entry, Group, Inputs, Notification, Progress, Reason, ms};
use crate::alert::{Alert, AlertKey, Labels};
use crate::delivery::idempotency_key;

/// One tick's work over the groups.
pub(super) struct Flush<'a, 'i> {
    pub(super) inputs: &'a Inputs<'i>,
    pub(super) now: Timestamp,
    pub(super) firing_monitors: &'a BTreeSet<String>,
    pub(super) notified: &'a mut BTreeMap<String, BTreeSet<AlertKey>>,
    pub(super) out: Vec<Notification>,
}

impl Flush<'_, '_> {
    fn suppressed(&self, entry: &Entry) -> bool {
        let a = &entry.alert;
        self.inputs
            .suppressor
            .suppression(&a.labels, a.key.monitor(), self.now, self.firing_monitors)
            .is_some()
    }

    fn channel(&self, id: &str) -> Option<&ChannelSpec> {
        self.inputs.channels.get(id).filter(|c| c.enabled)
    }

    pub(super) fn flush(&mut self, key: &str, group: &mut Group) {
        let visible: BTreeSet<AlertKey> = group
            .alerts
            .iter()
            .filter(|(_, e)| e.alert.is_firing() && !self.suppressed(e))
            .map(|(k, _)| k.clone())
            .collect();
        let resolved: Vec<AlertKey> = group
            .alerts
            .iter()
            .filter(|(_, e)| !e.alert.is_firing())
            .map(|(k, _)| k.clone())
            .collect();
        let mut channels: BTreeSet<String> = group.receivers.iter().cloned().collect();
        channels.extend(
            group
                .channels
                .iter()
                .filter(|(_, p)| p.escalation)
                .map(|(c, _)| c.clone()),
        );
        for (channel, keys) in self.notified.iter() {
            if resolved.iter().any(|k| keys.contains(k)) {
                channels.insert(channel.clone());
            }
        }
        for id in channels {
            let send_resolved = self.channel(&id).map(|c| c.send_resolved);
            let owed = self.notified.entry(id.clone()).or_default();
            let resolves: Vec<&AlertKey> = resolved.iter().filter(|k| owed.remove(*k)).collect();
            let progress = group.channels.entry(id.clone()).or_default();
            let Some(send_resolved) = send_resolved else {
                // Deleted or disabled: nothing is sent, so nothing new is owed.
                progress.firing.clear();
                continue;
            };
            let firing: BTreeSet<AlertKey> = if group.receivers.contains(&id) {
                visible.clone()
            } else if progress.escalation {
                visible
                    .iter()
                    .filter(|k| group.alerts.get(*k).is_some_and(|e| e.escalated))
                    .cloned()
                    .collect()
            } else {
                BTreeSet::new()
            };
            let resolves = if send_resolved { resolves } else { Vec::new() };
            let repeat = !firing.is_empty()
                && progress.last_sent.is_some_and(|at| {
                    self.now >= at.saturating_add_millis(ms(group.settings.repeat_interval))
                });
            let reason = if !firing.is_subset(&progress.firing) {
                Reason::New
            } else if !resolves.is_empty() {
                Reason::Resolved
            } else if repeat {
                Reason::Repeat
            } else {
                progress.firing = firing;
                continue;
            };
            let alerts = firing
                .iter()
                .chain(resolves)
                .filter_map(|k| group.alerts.get(k).map(|e| e.alert.clone()))
                .collect();
            owed.extend(firing.iter().cloned());
            progress.firing = firing;
            let n = progress.notify(id, key, &group.labels, reason, alerts, self.now);
            self.out.push(n);
        }
        group.alerts.retain(|_, e| e.alert.is_firing());
        let receivers = &group.receivers;
        group
            .channels
            .retain(|c, p| receivers.contains(c) || (p.escalation && !p.firing.is_empty()));
    }

    pub(super) fn escalate(&mut self, key: &str, group: &mut Group) {
        let Some(escalation) = group.escalate.clone() else {
            return;
        };
        let due: Vec<AlertKey> = group
            .alerts
            .iter()
            .filter(|(_, e)| {
                e.can_escalate()
                    && e.since.saturating_add_millis(ms(escalation.after)) <= self.now
                    && !self.suppressed(e)
            })
            .map(|(k, _)| k.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        for k in &due {
            if let Some(e) = group.alerts.get_mut(k) {
                e.escalated = true;
            }
        }
        let escalated: Vec<&Entry> = group
            .alerts
            .values()
            .filter(|e| e.escalated && e.alert.is_firing() && !self.suppressed(e))
            .collect();
        let keys: BTreeSet<AlertKey> = escalated.iter().map(|e| e.alert.key.clone()).collect();
        let alerts: Vec<Alert> = escalated.iter().map(|e| e.alert.clone()).collect();
        for id in &escalation.to {
            if self.channel(id).is_none() {
                continue;
            }
            let progress = group.channels.entry(id.clone()).or_default();
            progress.escalation = true;
            progress.firing.extend(keys.iter().cloned());
            self.notified
                .entry(id.clone())
                .or_default()
                .extend(keys.iter().cloned());
            let n = progress.notify(
                id.clone(),
                key,
                &group.labels,
                Reason::Escalation,
                alerts.clone(),
                self.now,
            );
            self.out.push(n);
        }
    }
}

impl Progress {
    fn notify(
        &mut self,
        channel_id: String,
        group_key: &str,
        labels: &Labels,
        reason: Reason,
        alerts: Vec<Alert>,
        now: Timestamp,
    ) -> Notification {
        let mut ids: Vec<Uuid> = alerts.iter().map(|a| a.transition.transition_id).collect();
        ids.sort_unstable();
        let base = idempotency_key(&channel_id, &ids, 0);
        if self.last_key == Some(base) {
            self.resends += 1;
        } else {
            self.last_key = Some(base);
            self.resends = 0;
        }
        self.last_sent = Some(now);
        Notification {
            idempotency_key: idempotency_key(&channel_id, &ids, self.resends),
            channel_id,
            group_key: group_key.to_owned(),
            group_labels: labels.clone(),
            reason,
            alerts,
            at: now,
        }
    }
}
