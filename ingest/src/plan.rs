//! Monitors as code: `vigil apply -f monitors.yaml` and `vigil export`.
//!
//! A monitors file is `monitors: [MonitorSpec, …]`. [`parse_monitors`] validates all of it and
//! reports every problem with its path (`monitors[3].interval: must be ≥ 1s, got 0s`).
//! [`Plan::new`] diffs the file against the [`MonitorView`](crate::MonitorView) read from the
//! monitors topic; the plan prints like `terraform plan`, and [`Plan::apply`] writes the
//! difference as spec events and tombstones, returning once Kafka acknowledged each one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use vigil_schema::MonitorSpec;

use crate::probe::condition::Condition;
use crate::{Error, KafkaConnection, Result};

/// The document a monitors file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorsFile {
    /// The monitors, in file order.
    pub monitors: Vec<MonitorSpec>,
}

/// Parses and validates a monitors file. `path` only names the file in errors.
pub fn parse_monitors(path: &str, text: &str) -> Result<Vec<MonitorSpec>> {
    let invalid = |problems: Vec<String>| Error::InvalidMonitors {
        path: path.to_owned(),
        problems,
    };
    let document: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| invalid(vec![e.to_string()]))?;
    let Some(items) = document.get("monitors").and_then(|m| m.as_sequence()) else {
        return Err(invalid(vec![
            "monitors: required, a list of monitors".to_owned(),
        ]));
    };
    if let Some(mapping) = document.as_mapping() {
        for key in mapping.keys() {
            if key.as_str() != Some("monitors") {
                return Err(invalid(vec![format!(
                    "{}: unknown top-level key, expected only `monitors`",
                    key.as_str().unwrap_or("<non-string key>")
                )]));
            }
        }
    }
    let mut problems = Vec::new();
    let mut specs = Vec::with_capacity(items.len());
    let mut first_index: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("monitors[{i}]");
        let spec: MonitorSpec = match serde_norway::from_value(item.clone()) {
            Ok(spec) => spec,
            Err(e) => {
                problems.push(format!("{at}: {e}"));
                continue;
            }
        };
        if let Err(errors) = spec.validate() {
            problems.extend(errors.into_iter().map(|e| e.within(&at).to_string()));
        }
        for (j, condition) in spec.assertions.iter().enumerate() {
            if let Err(e) = Condition::parse(condition) {
                problems.push(format!("{at}.assertions[{j}]: {e}"));
            }
        }
        if let Some(first) = first_index.get(&spec.id) {
            problems.push(format!(
                "{at}.id: duplicate id {:?}, first used by monitors[{first}]",
                spec.id
            ));
        } else {
            first_index.insert(spec.id.clone(), i);
        }
        specs.push(spec);
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(invalid(problems))
    }
}

/// Writes monitors as a monitors file, sorted by id.
pub fn export_yaml(monitors: &[Arc<MonitorSpec>]) -> Result<String> {
    let mut monitors: Vec<MonitorSpec> = monitors.iter().map(|m| (**m).clone()).collect();
    monitors.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(serde_norway::to_string(&MonitorsFile { monitors })?)
}

/// One change a plan makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A monitor that does not exist yet.
    Create(MonitorSpec),
    /// A monitor whose spec differs; `fields` lists what changes.
    Update {
        /// The new spec.
        spec: MonitorSpec,
        /// Changed fields, in field order.
        fields: Vec<FieldChange>,
    },
    /// A monitor absent from the file, removed because of `--prune`.
    Delete(String),
}

impl Change {
    /// The monitor the change is about.
    pub fn id(&self) -> &str {
        match self {
            Change::Create(spec) | Change::Update { spec, .. } => &spec.id,
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

/// What `apply` would do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Changes sorted by monitor id.
    pub changes: Vec<Change>,
    /// Monitors in the file that already match.
    pub unchanged: usize,
}

impl Plan {
    /// Diffs the desired monitors against the current ones. Monitors absent from the file are
    /// deleted only when `prune` is set.
    pub fn new(current: &[Arc<MonitorSpec>], desired: &[MonitorSpec], prune: bool) -> Self {
        let current: BTreeMap<&str, &MonitorSpec> =
            current.iter().map(|m| (m.id.as_str(), &**m)).collect();
        let mut plan = Plan::default();
        for spec in desired {
            match current.get(spec.id.as_str()) {
                None => plan.changes.push(Change::Create(spec.clone())),
                Some(&old) if old == spec => plan.unchanged += 1,
                Some(&old) => plan.changes.push(Change::Update {
                    spec: spec.clone(),
                    fields: diff_fields(old, spec),
                }),
            }
        }
        if prune {
            let wanted: std::collections::HashSet<&str> =
                desired.iter().map(|s| s.id.as_str()).collect();
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

    /// Writes every change to the monitors topic (specs, or tombstones for deletes) and waits for
    /// Kafka to acknowledge each one.
    pub async fn apply(&self, kafka: &KafkaConnection, timeout: Duration) -> Result<()> {
        let producer: FutureProducer = kafka
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", timeout.as_millis().to_string())
            .create()?;
        let topic = &kafka.topics.monitors;
        let mut pending = Vec::with_capacity(self.changes.len());
        for change in &self.changes {
            let payload = match change {
                Change::Create(spec) | Change::Update { spec, .. } => {
                    Some(vigil_schema::encode(spec)?)
                }
                Change::Delete(_) => None,
            };
            let id = change.id().to_owned();
            let mut record = FutureRecord::<str, [u8]>::to(topic).key(&id);
            if let Some(payload) = &payload {
                record = record.payload(payload);
            }
            let delivery = producer
                .send_result(record)
                .map_err(|(e, _)| Error::WriteMonitor {
                    id: id.clone(),
                    topic: topic.clone(),
                    reason: e.to_string(),
                })?;
            pending.push((id, delivery));
        }
        for (id, delivery) in pending {
            let failed = |reason: String| Error::WriteMonitor {
                id: id.clone(),
                topic: topic.clone(),
                reason,
            };
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(failed(e.to_string())),
                Err(_) => return Err(failed("the producer was dropped".into())),
            }
        }
        Ok(())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mut create, mut update, mut delete) = (0, 0, 0);
        for change in &self.changes {
            match change {
                Change::Create(spec) => {
                    create += 1;
                    writeln!(f, "+ create {}", spec.id)?;
                }
                Change::Update { spec, fields } => {
                    update += 1;
                    writeln!(f, "~ update {}", spec.id)?;
                    for c in fields {
                        writeln!(f, "    {}: {} -> {}", c.field, c.before, c.after)?;
                    }
                }
                Change::Delete(id) => {
                    delete += 1;
                    writeln!(f, "- delete {id}")?;
                }
            }
        }
        if self.changes.is_empty() {
            writeln!(f, "No changes. {} monitor(s) up to date.", self.unchanged)
        } else {
            writeln!(
                f,
                "Plan: {create} to create, {update} to update, {delete} to delete, {} unchanged.",
                self.unchanged
            )
        }
    }
}

/// Fields that differ, compared through their serialized form; auth values are secrets and are
/// shown only by their type.
fn diff_fields(old: &MonitorSpec, new: &MonitorSpec) -> Vec<FieldChange> {
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
    let order: std::collections::BTreeSet<String> = a.keys().chain(b.keys()).cloned().collect();
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
"#;

    #[test]
    fn parses_a_valid_file() {
        let specs = parse_monitors("m.yaml", FILE).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].interval, Duration::from_secs(30));
        assert_eq!(specs[1].url, "https://orders.example.com/${ENV}/health");
    }

    #[test]
    fn every_problem_names_its_field() {
        let text = r#"
monitors:
  - { id: a, name: A, url: "http://a/" }
  - { id: b, name: B, url: "http://b/", interval: 0s }
  - { id: a, name: A2, url: "ftp://a/" }
  - { id: c, name: C, url: "http://c/", colour: red }
  - { id: d, name: D, url: "http://d/", assertions: ["[STATUS] =! 200"] }
"#;
        let Err(Error::InvalidMonitors { path, problems }) = parse_monitors("m.yaml", text) else {
            panic!("expected invalid monitors");
        };
        assert_eq!(path, "m.yaml");
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert_eq!(problems[0], "monitors[1].interval: must be ≥ 1s, got 0s");
        assert_eq!(
            problems[1],
            "monitors[2].url: must start with http:// or https://, got \"ftp://a/\""
        );
        assert_eq!(
            problems[2],
            "monitors[2].id: duplicate id \"a\", first used by monitors[0]"
        );
        assert!(
            problems[3].starts_with("monitors[3]: unknown field `colour`"),
            "{}",
            problems[3]
        );
        assert!(
            problems[4].starts_with("monitors[4].assertions[0]: "),
            "{}",
            problems[4]
        );
        let err = parse_monitors("m.yaml", "monitor: []")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "m.yaml is invalid:\nmonitors: required, a list of monitors"
        );
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

        let same: Vec<Arc<MonitorSpec>> = desired.iter().cloned().map(Arc::new).collect();
        let none = Plan::new(&same, &desired, true);
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
    fn the_example_file_is_valid() {
        let text = include_str!("../examples/monitors.yaml");
        let specs = parse_monitors("examples/monitors.yaml", text).unwrap();
        let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["checkout-api", "orders-search", "legacy-admin"]);
        assert_eq!(specs[1].headers["X-Tenant"], "${ORDERS_TENANT}");
        assert!(!specs[2].tls_verify && !specs[2].follow_redirects);
    }

    #[test]
    fn export_round_trips() {
        let desired = parse_monitors("m.yaml", FILE).unwrap();
        let specs: Vec<Arc<MonitorSpec>> = desired.iter().rev().cloned().map(Arc::new).collect();
        let yaml = export_yaml(&specs).unwrap();
        assert_eq!(parse_monitors("export", &yaml).unwrap(), desired);
    }
}
