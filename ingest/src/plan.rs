//! Monitors, alert rules and the notification configuration as code: `vigil apply -f
//! monitors.yaml` and `vigil export`.
//!
//! A monitors file holds `monitors: [MonitorSpec, …]` and/or `alerts: [RuleSpec, …]`, and the
//! notification sections `channels:`, `routes:`, `silences:` and `maintenance:` (planned by
//! [`NotifyPlan`] through [`FilePlan::with_notify`]) ([`parse_file`] validates all of it and reports every problem with its path, like
//! `monitors[3].interval: must be ≥ 1s, got 0s` or `alerts[0].for: must be ≤ 24h, got 2d`);
//! [`check_egress`] then holds its monitors to the operator's egress policy, which only the
//! caller knows.
//! [`Plan::new`] diffs one section against the view read from its topic; [`FilePlan`] holds the
//! plans of the sections the file has, prints like `terraform plan`, and [`FilePlan::apply`]
//! writes the difference as spec events and tombstones, returning once Kafka acknowledged each
//! one. A section the file does not have is left alone, even with `--prune`.

mod file;
mod notify;
mod print;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use vigil_schema::{MonitorSpec, RuleSpec};

pub use file::{MonitorsFile, check_egress, export_all, export_yaml, parse_file, parse_monitors};
pub use notify::{NotifyCurrent, NotifyPlan};

use crate::monitors::Spec;
use crate::{Error, KafkaConnection, Result};

/// One change a plan makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<S = MonitorSpec> {
    /// A spec that does not exist yet.
    Create(S),
    /// A spec that differs; `fields` lists what changes.
    Update {
        /// The new spec.
        spec: S,
        /// Changed fields, in field order.
        fields: Vec<FieldChange>,
    },
    /// A spec absent from the file, removed because of `--prune`.
    Delete(String),
}

impl<S: Spec> Change<S> {
    /// The id of the spec the change is about.
    pub fn id(&self) -> &str {
        match self {
            Change::Create(spec) | Change::Update { spec, .. } => spec.id(),
            Change::Delete(id) => id,
        }
    }
}

/// A field that an update changes, rendered as YAML-ish values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// Field name.
    pub field: String,
    /// Value before.
    pub before: String,
    /// Value after.
    pub after: String,
}

/// What `apply` would do to one topic (monitors by default, or alert rules).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<S = MonitorSpec> {
    /// Changes sorted by id.
    pub changes: Vec<Change<S>>,
    /// Specs in the file that already match.
    pub unchanged: usize,
}

impl<S> Default for Plan<S> {
    fn default() -> Self {
        Self {
            changes: Vec::new(),
            unchanged: 0,
        }
    }
}

impl<S: Spec + Serialize> Plan<S> {
    /// Diffs the desired specs against the current ones. Specs absent from the file are
    /// deleted only when `prune` is set.
    pub fn new(current: &[Arc<S>], desired: &[S], prune: bool) -> Self {
        let current: BTreeMap<&str, &S> = current.iter().map(|s| (s.id(), &**s)).collect();
        let mut plan = Plan::default();
        for spec in desired {
            match current.get(spec.id()) {
                None => plan.changes.push(Change::Create(spec.clone())),
                Some(&old) if old == spec => plan.unchanged += 1,
                Some(&old) => plan.changes.push(Change::Update {
                    spec: spec.clone(),
                    fields: diff_fields(old, spec),
                }),
            }
        }
        if prune {
            let wanted: HashSet<&str> = desired.iter().map(Spec::id).collect();
            for id in current.keys().filter(|id| !wanted.contains(*id)) {
                plan.changes.push(Change::Delete((*id).to_owned()));
            }
        }
        plan.changes.sort_by(|a, b| a.id().cmp(b.id()));
        plan
    }

    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Writes every change to the spec's topic (specs, or tombstones for deletes) and waits for
    /// Kafka to acknowledge each one.
    pub async fn apply(&self, kafka: &KafkaConnection, timeout: Duration) -> Result<()> {
        self.send(&producer(kafka, timeout)?, kafka).await
    }

    async fn send(&self, producer: &FutureProducer, kafka: &KafkaConnection) -> Result<()> {
        let topic = S::topic(&kafka.topics);
        let failed = |id: &str, reason: String| Error::WriteSpec {
            kind: S::NOUN,
            id: id.to_owned(),
            topic: topic.to_owned(),
            reason,
        };
        let mut pending = Vec::with_capacity(self.changes.len());
        for change in &self.changes {
            let payload = match change {
                Change::Create(spec) | Change::Update { spec, .. } => {
                    Some(vigil_schema::encode(spec)?)
                }
                Change::Delete(_) => None,
            };
            let id = change.id();
            let mut record = FutureRecord::<str, [u8]>::to(topic).key(id);
            if let Some(payload) = &payload {
                record = record.payload(payload);
            }
            let delivery = producer
                .send_result(record)
                .map_err(|(e, _)| failed(id, e.to_string()))?;
            pending.push((id, delivery));
        }
        for (id, delivery) in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(failed(id, e.to_string())),
                Err(_) => return Err(failed(id, "the producer was dropped".into())),
            }
        }
        Ok(())
    }

    /// Writes one line per change (`+ create {label}{id}`, …) with the changed fields of
    /// updates; without `show_id`, the label alone names the spec (`~ update routes`).
    fn write_changes(&self, f: &mut fmt::Formatter<'_>, label: &str, show_id: bool) -> fmt::Result {
        let name = |id: &str| {
            if show_id {
                format!("{label}{id}")
            } else {
                label.to_owned()
            }
        };
        for change in &self.changes {
            match change {
                Change::Create(spec) => writeln!(f, "+ create {}", name(spec.id()))?,
                Change::Update { spec, fields } => {
                    writeln!(f, "~ update {}", name(spec.id()))?;
                    for c in fields {
                        writeln!(f, "    {}: {} -> {}", c.field, c.before, c.after)?;
                    }
                }
                Change::Delete(id) => writeln!(f, "- delete {}", name(id))?,
            }
        }
        Ok(())
    }

    /// `{create} to create, {update} to update, {delete} to delete, {unchanged} unchanged`.
    fn counts(&self) -> String {
        let (mut create, mut update, mut delete) = (0, 0, 0);
        for change in &self.changes {
            match change {
                Change::Create(_) => create += 1,
                Change::Update { .. } => update += 1,
                Change::Delete(_) => delete += 1,
            }
        }
        format!(
            "{create} to create, {update} to update, {delete} to delete, {} unchanged",
            self.unchanged
        )
    }
}

impl fmt::Display for Plan<MonitorSpec> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        FilePlan {
            monitors: Some(self.clone()),
            ..FilePlan::default()
        }
        .fmt(f)
    }
}

fn producer(kafka: &KafkaConnection, timeout: Duration) -> Result<FutureProducer> {
    Ok(kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", timeout.as_millis().to_string())
        .create()?)
}

/// What `apply` would do to every section a monitors file has.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FilePlan {
    /// The monitors, when the file has a `monitors:` section.
    pub monitors: Option<Plan<MonitorSpec>>,
    /// The alert rules, when the file has an `alerts:` section.
    pub rules: Option<Plan<RuleSpec>>,
    /// The notification sections, once [`FilePlan::with_notify`] planned them.
    pub notify: NotifyPlan,
}

impl FilePlan {
    /// Diffs the `monitors:` and `alerts:` sections of `file` against the current specs of
    /// their topics ([`FilePlan::with_notify`] adds the notification sections).
    pub fn new(
        file: &MonitorsFile,
        monitors: &[Arc<MonitorSpec>],
        rules: &[Arc<RuleSpec>],
        prune: bool,
    ) -> Self {
        Self {
            monitors: file
                .monitors
                .as_ref()
                .map(|m| Plan::new(monitors, m, prune)),
            rules: file.alerts.as_ref().map(|r| Plan::new(rules, r, prune)),
            notify: NotifyPlan::default(),
        }
    }

    /// Adds the plans of the notification sections `file` has, diffed against `current`.
    /// Problems only the topics reveal (a routing tree naming a channel that would not exist,
    /// an id the other of silences and maintenance windows holds) fail like an invalid file.
    pub fn with_notify(
        mut self,
        path: &str,
        file: &MonitorsFile,
        current: &NotifyCurrent,
        prune: bool,
    ) -> Result<Self> {
        self.notify =
            NotifyPlan::new(file, current, prune).map_err(|problems| Error::InvalidMonitors {
                path: path.to_owned(),
                problems,
            })?;
        Ok(self)
    }

    /// Number of changes over every section.
    pub fn len(&self) -> usize {
        self.sections().iter().map(|s| s.plan.len()).sum()
    }

    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Topics the plan writes to, with the number of changes of each (silences and
    /// maintenance windows share a topic and are counted together).
    pub fn targets(&self, kafka: &KafkaConnection) -> Vec<(String, usize)> {
        let mut targets: Vec<(String, usize)> = Vec::new();
        for section in self.sections().iter().filter(|s| s.plan.len() > 0) {
            let topic = section.plan.topic(&kafka.topics);
            match targets.iter_mut().find(|(t, _)| t == topic) {
                Some((_, n)) => *n += section.plan.len(),
                None => targets.push((topic.to_owned(), section.plan.len())),
            }
        }
        targets
    }

    /// Writes the changes section by section (monitors, rules, channels, the routing tree,
    /// silences, maintenance windows, status pages) and waits for Kafka to acknowledge each one.
    pub async fn apply(&self, kafka: &KafkaConnection, timeout: Duration) -> Result<()> {
        let producer = producer(kafka, timeout)?;
        if let Some(plan) = &self.monitors {
            plan.send(&producer, kafka).await?;
        }
        if let Some(plan) = &self.rules {
            plan.send(&producer, kafka).await?;
        }
        if let Some(plan) = &self.notify.channels {
            plan.send(&producer, kafka).await?;
        }
        if let Some(plan) = &self.notify.routes {
            plan.send(&producer, kafka).await?;
        }
        if let Some(plan) = &self.notify.silences {
            plan.send(&producer, kafka).await?;
        }
        if let Some(plan) = &self.notify.maintenance {
            plan.send(&producer, kafka).await?;
        }
        if let Some(plan) = &self.notify.status_pages {
            plan.send(&producer, kafka).await?;
        }
        Ok(())
    }
}

/// Fields that differ, compared through their serialized form; auth values are secrets and are
/// shown only by their type.
fn diff_fields<S: Serialize>(old: &S, new: &S) -> Vec<FieldChange> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let show = |field: &str, v: Option<&serde_json::Value>| -> String {
        match v {
            None => "(unset)".to_owned(),
            Some(v) if field == "auth" => match v.get("type") {
                Some(t) => format!("{t} (secrets not shown)"),
                None => "(secrets not shown)".to_owned(),
            },
            Some(v) => v.to_string(),
        }
    };
    let order: BTreeSet<String> = a.keys().chain(b.keys()).cloned().collect();
    order
        .into_iter()
        .filter(|f| a.get(f) != b.get(f))
        .map(|field| FieldChange {
            before: show(&field, a.get(&field)),
            after: show(&field, b.get(&field)),
            field,
        })
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
monitors:
  - id: checkout
    name: Checkout
    url: https://shop.example.com/health
    interval: 30s
    assertions: ["[STATUS] == 200", "[BODY].status == UP"]
  - id: orders
    name: Orders
    url: https://orders.example.com/${ENV}/health
    auth: { type: bearer, token: "${ORDERS_TOKEN}" }
alerts:
  - id: checkout-slow
    monitors: [checkout]
    condition: { latency_percentile: { percentile: 99, above: 800ms } }
    for: 5m
  - id: down
    condition: { consecutive_failures: { failures: 3 } }
    severity: critical
"#;

    fn arcs<S: Clone>(specs: &[S]) -> Vec<Arc<S>> {
        specs.iter().cloned().map(Arc::new).collect()
    }

    #[test]
    fn plan_creates_updates_and_prunes() {
        let desired = parse_monitors("m.yaml", FILE).unwrap();
        let mut old_checkout = desired[0].clone();
        old_checkout.interval = Duration::from_secs(60);
        old_checkout.tags = vec!["shop".into()];
        let legacy = MonitorSpec {
            id: "legacy".into(),
            ..desired[0].clone()
        };
        let current = vec![Arc::new(old_checkout), Arc::new(legacy)];

        let plan = Plan::new(&current, &desired, false);
        assert_eq!(
            plan.to_string(),
            "~ update checkout\n    interval: \"1m\" -> \"30s\"\n    tags: [\"shop\"] -> []\n\
             + create orders\nPlan: 1 to create, 1 to update, 0 to delete, 0 unchanged.\n"
        );
        let pruned = Plan::new(&current, &desired, true);
        assert_eq!(pruned.changes.len(), 3);
        assert_eq!(pruned.changes[1], Change::Delete("legacy".into()));

        let none = Plan::new(&arcs(&desired), &desired, true);
        assert!(none.is_empty());
        assert_eq!(none.to_string(), "No changes. 2 monitor(s) up to date.\n");
    }

    #[test]
    fn auth_changes_hide_secrets() {
        let desired = parse_monitors("m.yaml", FILE).unwrap();
        let mut old = desired[1].clone();
        old.auth = vigil_schema::Auth::Bearer {
            token: "s3cret".into(),
        };
        let plan = Plan::new(&[Arc::new(old)], &desired[1..], false);
        let text = plan.to_string();
        assert!(
            !text.contains("s3cret") && !text.contains("ORDERS_TOKEN"),
            "{text}"
        );
        assert!(
            text.contains("auth: \"bearer\" (secrets not shown) -> \"bearer\" (secrets not shown)"),
            "{text}"
        );
    }

    #[test]
    fn file_plan_covers_monitors_and_alert_rules() {
        let file = parse_file("m.yaml", FILE).unwrap();
        let monitors = arcs(file.monitors.as_deref().unwrap());
        let alerts = file.alerts.clone().unwrap();
        let mut old_slow = alerts[0].clone();
        old_slow.for_ = Duration::from_secs(60);
        let stale = RuleSpec {
            id: "stale".into(),
            ..alerts[1].clone()
        };
        let rules = vec![Arc::new(old_slow), Arc::new(stale)];

        let plan = FilePlan::new(&file, &monitors, &rules, false);
        assert_eq!(plan.len(), 2);
        assert_eq!(
            plan.to_string(),
            "~ update alert checkout-slow\n    for: \"1m\" -> \"5m\"\n+ create alert down\n\
             Plan: monitors 0 to create, 0 to update, 0 to delete, 2 unchanged; \
             alert rules 1 to create, 1 to update, 0 to delete, 0 unchanged.\n"
        );
        let pruned = FilePlan::new(&file, &monitors, &rules, true);
        let rule_plan = pruned.rules.as_ref().unwrap();
        assert_eq!(rule_plan.changes[2], Change::Delete("stale".into()));
        assert!(pruned.to_string().contains("- delete alert stale\n"));

        let same = FilePlan::new(&file, &monitors, &arcs(&alerts), true);
        assert!(same.is_empty());
        assert_eq!(
            same.to_string(),
            "No changes. 2 monitor(s) and 2 alert rule(s) up to date.\n"
        );
    }

    #[test]
    fn a_section_the_file_lacks_is_left_alone_even_with_prune() {
        let file = parse_file("m.yaml", FILE).unwrap();
        let rules = arcs(file.alerts.as_deref().unwrap());
        let monitors = arcs(file.monitors.as_deref().unwrap());

        let monitors_only = parse_file("m.yaml", "monitors: []").unwrap();
        let plan = FilePlan::new(&monitors_only, &monitors, &rules, true);
        assert!(plan.rules.is_none());
        assert_eq!(
            plan.to_string(),
            "- delete checkout\n- delete orders\nPlan: 0 to create, 0 to update, 2 to delete, \
             0 unchanged.\n"
        );

        let alerts_only = parse_file("m.yaml", "alerts: []").unwrap();
        let plan = FilePlan::new(&alerts_only, &monitors, &rules, true);
        assert!(plan.monitors.is_none());
        assert_eq!(
            plan.to_string(),
            "- delete alert checkout-slow\n- delete alert down\nPlan: 0 to create, 0 to update, \
             2 to delete, 0 unchanged.\n"
        );
        let kafka = KafkaConnection {
            brokers: "127.0.0.1:9".into(),
            topics: vigil_schema::TopicNames::with_prefix("p"),
            request_timeout: Duration::from_secs(1),
        };
        assert_eq!(plan.targets(&kafka), [("p.rules".to_owned(), 2)]);
        let without_prune = FilePlan::new(&alerts_only, &monitors, &rules, false);
        assert_eq!(
            without_prune.to_string(),
            "No changes. 0 alert rule(s) up to date.\n"
        );
    }
}
