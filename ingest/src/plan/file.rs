//! The monitors file: `monitors:` and `alerts:` sections (and the notification sections,
//! [`super::notify`]), parsed and validated as a whole so every problem is reported at once
//! with its path, and written back by `vigil export`.
//!
//! Alert conditions are written as one-key maps (`condition: {latency_percentile: {…}}`), the
//! same shape as the JSON the API takes.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_norway::Value;
use serde_norway::with::singleton_map_recursive;
use vigil_schema::{
    ChannelSpec, EgressPolicy, FieldError, MaintenanceSpec, MonitorSpec, RouteSpec, RuleCondition,
    RuleSpec, SilenceSpec, StatusPageSpec,
};

use crate::monitors::Spec;
use crate::probe::condition::{Condition, Extractor};
use crate::{Error, Result};

/// The document a monitors file holds. A section the file does not have is `None`, and
/// `vigil apply` leaves its topic alone, even with `--prune`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MonitorsFile {
    /// The monitors, in file order.
    pub monitors: Option<Vec<MonitorSpec>>,
    /// The alert rules, in file order.
    pub alerts: Option<Vec<RuleSpec>>,
    /// The notification channels, in file order.
    pub channels: Option<Vec<ChannelSpec>>,
    /// The root of the routing tree.
    pub routes: Option<RouteSpec>,
    /// The silences, in file order.
    pub silences: Option<Vec<SilenceSpec>>,
    /// The maintenance windows, in file order.
    pub maintenance: Option<Vec<MaintenanceSpec>>,
    /// The public status pages, in file order.
    pub status_pages: Option<Vec<StatusPageSpec>>,
}

/// The top-level keys of a monitors file.
const SECTIONS: [&str; 7] = [
    "monitors",
    "alerts",
    "channels",
    "routes",
    "silences",
    "maintenance",
    "status_pages",
];

/// Parses and validates a monitors file. `path` only names the file in errors.
pub fn parse_file(path: &str, text: &str) -> Result<MonitorsFile> {
    let invalid = |problems: Vec<String>| Error::InvalidMonitors {
        path: path.to_owned(),
        problems,
    };
    let document: Value = serde_norway::from_str(text).map_err(|e| invalid(vec![e.to_string()]))?;
    if SECTIONS.iter().all(|key| document.get(key).is_none()) {
        return Err(invalid(vec![
            "monitors: required, a list of monitors (or `alerts:`, a list of alert rules)"
                .to_owned(),
        ]));
    }
    if let Some(mapping) = document.as_mapping() {
        for key in mapping.keys() {
            if !key.as_str().is_some_and(|k| SECTIONS.contains(&k)) {
                return Err(invalid(vec![format!(
                    "{}: unknown top-level key, expected `monitors`, `alerts`, `channels`, \
                     `routes`, `silences`, `maintenance` or `status_pages`",
                    key.as_str().unwrap_or("<non-string key>")
                )]));
            }
        }
    }
    let mut problems = Vec::new();
    let monitors = section(
        &document,
        "monitors",
        &mut problems,
        |item| serde_norway::from_value::<MonitorSpec>(item).map_err(|e| (None, e)),
        |spec: &MonitorSpec, at, problems| {
            check(spec.validate(), at, problems);
            for (j, condition) in spec.assertions.iter().enumerate() {
                if let Err(e) = Condition::parse(condition) {
                    problems.push(format!("{at}.assertions[{j}]: {e}"));
                }
            }
            for (i, step) in spec.steps.iter().enumerate() {
                for (j, condition) in step.assertions.iter().enumerate() {
                    if let Err(e) = Condition::parse(condition) {
                        problems.push(format!("{at}.steps[{i}].assertions[{j}]: {e}"));
                    }
                }
                for (name, extract) in &step.extract {
                    if let Err(e) = Extractor::compile(extract) {
                        problems.push(format!("{at}.steps[{i}].extract.{name}: {e}"));
                    }
                }
            }
        },
    );
    let alerts = section(
        &document,
        "alerts",
        &mut problems,
        decode_rule,
        |spec: &RuleSpec, at, problems| check(spec.validate(), at, problems),
    );
    let notify = super::notify::parse(&document, &mut problems);
    if problems.is_empty() {
        Ok(MonitorsFile {
            monitors,
            alerts,
            channels: notify.channels,
            routes: notify.routes,
            silences: notify.silences,
            maintenance: notify.maintenance,
            status_pages: notify.status_pages,
        })
    } else {
        Err(invalid(problems))
    }
}

/// Decodes one rule; a condition that does not decode is reported as `condition`'s problem.
fn decode_rule(item: Value) -> Result<RuleSpec, (Option<&'static str>, serde_norway::Error)> {
    let condition = item.get("condition").cloned();
    singleton_map_recursive::deserialize::<RuleSpec, _>(item).map_err(|e| {
        match condition.map(singleton_map_recursive::deserialize::<RuleCondition, _>) {
            Some(Err(condition_error)) => (Some("condition"), condition_error),
            _ => (None, e),
        }
    })
}

/// Parses and validates a monitors file and returns its monitors (none when the file only has
/// alert rules).
pub fn parse_monitors(path: &str, text: &str) -> Result<Vec<MonitorSpec>> {
    parse_file(path, text).map(|file| file.monitors.unwrap_or_default())
}

/// Reads the list under `key`, if the document has one: each item is decoded, validated and
/// checked for a duplicate id; problems are pushed with the item's path (`alerts[2].for`).
pub(super) fn section<S: Spec>(
    document: &Value,
    key: &str,
    problems: &mut Vec<String>,
    decode: impl Fn(Value) -> Result<S, (Option<&'static str>, serde_norway::Error)>,
    validate: impl Fn(&S, &str, &mut Vec<String>),
) -> Option<Vec<S>> {
    let value = document.get(key)?;
    let Some(items) = value.as_sequence() else {
        problems.push(format!("{key}: must be a list"));
        return None;
    };
    let mut specs = Vec::with_capacity(items.len());
    let mut first_index: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{key}[{i}]");
        let spec = match decode(item.clone()) {
            Ok(spec) => spec,
            Err((None, e)) => {
                problems.push(format!("{at}: {e}"));
                continue;
            }
            Err((Some(field), e)) => {
                problems.push(format!("{at}.{field}: {e}"));
                continue;
            }
        };
        validate(&spec, &at, problems);
        if let Some(first) = first_index.get(spec.id()) {
            problems.push(format!(
                "{at}.id: duplicate id {:?}, first used by {key}[{first}]",
                spec.id()
            ));
        } else {
            first_index.insert(spec.id().to_owned(), i);
        }
        specs.push(spec);
    }
    Some(specs)
}

/// Checks the file's monitors against the egress policy ([`vigil_schema::validate_egress`]):
/// literal non-public hosts the allow-list does not cover, and `${…}` references other than
/// secrets and allow-listed variables, every problem with its path (`monitors[2].url: …`).
pub fn check_egress(path: &str, file: &MonitorsFile, policy: &EgressPolicy) -> Result<()> {
    let mut problems = Vec::new();
    for (i, spec) in file.monitors.iter().flatten().enumerate() {
        check(
            vigil_schema::validate_egress(spec, policy),
            &format!("monitors[{i}]"),
            &mut problems,
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidMonitors {
            path: path.to_owned(),
            problems,
        })
    }
}

pub(super) fn check(validated: Result<(), Vec<FieldError>>, at: &str, problems: &mut Vec<String>) {
    if let Err(errors) = validated {
        problems.extend(errors.into_iter().map(|e| e.within(at).to_string()));
    }
}

/// What `vigil export` writes: the sections, each sorted by id.
#[derive(Serialize)]
struct Export<'a> {
    monitors: Vec<&'a MonitorSpec>,
    #[serde(serialize_with = "singleton_map_recursive::serialize")]
    alerts: Vec<&'a RuleSpec>,
    #[serde(flatten)]
    notify: Option<super::notify::Export<'a>>,
}

/// Writes monitors and alert rules as a monitors file, each section sorted by id.
pub fn export_yaml(monitors: &[Arc<MonitorSpec>], rules: &[Arc<RuleSpec>]) -> Result<String> {
    export(monitors, rules, None)
}

/// Writes monitors, alert rules and the notification configuration (channels, the routing
/// tree when there is one, silences, maintenance windows) as a monitors file, each list sorted
/// by id. Secrets appear only as the `${secret:NAME}` references the specs hold.
pub fn export_all(
    monitors: &[Arc<MonitorSpec>],
    rules: &[Arc<RuleSpec>],
    notify: &super::NotifyCurrent,
) -> Result<String> {
    export(monitors, rules, Some(super::notify::Export::new(notify)))
}

fn export(
    monitors: &[Arc<MonitorSpec>],
    rules: &[Arc<RuleSpec>],
    notify: Option<super::notify::Export<'_>>,
) -> Result<String> {
    let mut monitors: Vec<&MonitorSpec> = monitors.iter().map(|m| &**m).collect();
    monitors.sort_by(|a, b| a.id.cmp(&b.id));
    let mut alerts: Vec<&RuleSpec> = rules.iter().map(|r| &**r).collect();
    alerts.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(serde_norway::to_string(&Export {
        monitors,
        alerts,
        notify,
    })?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    const ALERTS: &str = r#"
alerts:
  - id: checkout-slow
    name: Checkout p99
    monitors: [checkout]
    regions: [eu-west, us-east]
    condition:
      latency_percentile: { percentile: 99, above: 800ms, window: 10m }
    for: 5m
    quorum: 2
    severity: critical
    summary: "p99 of {{monitor}} is {{value}}µs"
    labels: { team: payments }
  - id: budget
    tags: [public]
    condition:
      burn_rate:
        slo: { latency: { threshold: 300ms } }
        objective: 0.999
  - id: errors
    condition: { status_pattern: { class: 5xx, above: 0.05 } }
    enabled: false
"#;

    fn problems_of(text: &str) -> Vec<String> {
        match parse_file("m.yaml", text) {
            Err(Error::InvalidMonitors { path, problems }) => {
                assert_eq!(path, "m.yaml");
                problems
            }
            other => panic!("expected invalid monitors, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_valid_file() {
        let specs = parse_monitors("m.yaml", FILE).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].interval, Duration::from_secs(30));
        assert_eq!(specs[1].url, "https://orders.example.com/${ENV}/health");
        assert_eq!(parse_file("m.yaml", FILE).unwrap().alerts, None);
    }

    #[test]
    fn parses_alert_rules_beside_monitors() {
        let file = parse_file("m.yaml", &format!("{FILE}{ALERTS}")).unwrap();
        assert_eq!(file.monitors.as_ref().unwrap().len(), 2);
        let alerts = file.alerts.unwrap();
        let ids: Vec<&str> = alerts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["checkout-slow", "budget", "errors"]);
        assert_eq!(alerts[0].for_, Duration::from_secs(300));
        assert_eq!(alerts[0].quorum, Some(2));
        assert!(matches!(
            alerts[1].condition,
            RuleCondition::BurnRate { ref windows, .. } if windows.len() == 3
        ));
        assert!(!alerts[2].enabled);
        // A file may hold only rules; its monitors are then none.
        assert_eq!(parse_monitors("a.yaml", ALERTS).unwrap(), []);
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
        let problems = problems_of(text);
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert_eq!(problems[0], "monitors[1].interval: must be ≥ 1s, got 0s");
        assert_eq!(
            problems[1],
            "monitors[2].url: must start with http://, https://, tcp://, tls://, dns://, ws://, wss://, icmp://, grpc:// or grpcs://, got \"ftp://a/\""
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
            "m.yaml is invalid:\nmonitors: required, a list of monitors (or `alerts:`, a list of \
             alert rules)"
        );
        assert_eq!(
            problems_of("monitors: []\nalert: []"),
            [
                "alert: unknown top-level key, expected `monitors`, `alerts`, `channels`, \
                 `routes`, `silences`, `maintenance` or `status_pages`"
            ]
        );
        assert_eq!(
            problems_of("monitors: []\nalerts: {}"),
            ["alerts: must be a list"]
        );
    }

    #[test]
    fn alert_problems_name_the_rule_by_index() {
        let text = r#"
monitors:
  - { id: a, name: A, url: "http://a/" }
alerts:
  - { id: ok, condition: { no_data: {} } }
  - { id: ok, condition: { no_data: { intervals: 0 } } }
  - id: slow
    condition: { latency_percentile: { percentile: 120, above: 1s } }
    for: 2d
    summary: "{{host}} is slow"
  - { id: x, condition: { latency: { above: 1s } } }
  - { id: y, condition: { anomaly: { above: 0.5 } }, colour: red }
  - { id: Bad Id, monitors: [a, B], condition: { anomaly: { above: 0.5 } } }
"#;
        let problems = problems_of(text);
        assert_eq!(
            problems[..5],
            [
                "alerts[1].condition.no_data.intervals: must be ≥ 1",
                "alerts[1].id: duplicate id \"ok\", first used by alerts[0]",
                "alerts[2].condition.latency_percentile.percentile: must be in (0, 100), got 120",
                "alerts[2].for: must be ≤ 24h, got 2d",
                "alerts[2].summary: unknown placeholder {{host}}; expected {{monitor}}, \
                 {{region}}, {{rule}}, {{kind}}, {{value}}, {{threshold}}, {{state}}, \
                 {{severity}} or {{labels.NAME}}",
            ],
            "{problems:#?}"
        );
        assert!(
            problems[5].starts_with("alerts[3].condition: unknown variant `latency`"),
            "{}",
            problems[5]
        );
        assert!(
            problems[6].starts_with("alerts[4]: unknown field `colour`"),
            "{}",
            problems[6]
        );
        assert!(
            problems[7].starts_with("alerts[5].id: must be 1–64 characters"),
            "{}",
            problems[7]
        );
        assert!(
            problems[8].starts_with("alerts[5].monitors[1]: must be 1–64 characters"),
            "{}",
            problems[8]
        );
        assert_eq!(problems.len(), 9, "{problems:#?}");
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../examples/monitors.yaml");
        let file = parse_file("examples/monitors.yaml", text).unwrap();
        let specs = file.monitors.unwrap();
        let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["checkout-api", "orders-search", "legacy-admin"]);
        assert_eq!(specs[1].headers["X-Tenant"], "${ORDERS_TENANT}");
        assert!(!specs[2].tls_verify && !specs[2].follow_redirects);
        let documented = EgressPolicy {
            allow: vec![],
            env_allow: vec!["ORDERS_TENANT".into()],
        };
        let file = parse_file("examples/monitors.yaml", text).unwrap();
        check_egress("examples/monitors.yaml", &file, &documented).unwrap();
        let alerts = file.alerts.unwrap();
        let ids: Vec<&str> = alerts.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            ["checkout-p99", "checkout-down", "public-availability-slo"]
        );
    }

    #[test]
    fn egress_problems_name_the_monitor_and_field() {
        let text = format!(
            "{FILE}  - id: metadata\n    name: Metadata\n    url: http://169.254.169.254/latest/\n"
        );
        let file = parse_file("m.yaml", &text).unwrap();
        let err = check_egress("m.yaml", &file, &EgressPolicy::default()).unwrap_err();
        let Error::InvalidMonitors { problems, .. } = err else {
            panic!("{err}")
        };
        let fields: Vec<&str> = problems
            .iter()
            .map(|p| p.split(": ").next().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "monitors[1].url",
                "monitors[1].auth.token",
                "monitors[2].url"
            ]
        );
        assert!(
            problems[2].contains("the cloud metadata address"),
            "{problems:?}"
        );
        let operator = EgressPolicy {
            allow: vec!["169.254.169.254:80".parse().unwrap()],
            env_allow: vec!["ENV".into(), "ORDERS_TOKEN".into()],
        };
        check_egress("m.yaml", &file, &operator).unwrap();
    }

    #[test]
    fn export_round_trips() {
        let file = parse_file("m.yaml", &format!("{FILE}{ALERTS}")).unwrap();
        let monitors: Vec<Arc<MonitorSpec>> = file
            .monitors
            .iter()
            .flatten()
            .rev()
            .cloned()
            .map(Arc::new)
            .collect();
        let rules: Vec<Arc<RuleSpec>> = file
            .alerts
            .iter()
            .flatten()
            .cloned()
            .map(Arc::new)
            .collect();
        let yaml = export_yaml(&monitors, &rules).unwrap();
        assert!(yaml.contains("latency_percentile:"), "{yaml}");
        assert!(
            !yaml.contains('!'),
            "conditions are maps, not YAML tags: {yaml}"
        );
        let back = parse_file("export", &yaml).unwrap();
        assert_eq!(back.monitors, file.monitors);
        let mut sorted = file.alerts.unwrap();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(back.alerts, Some(sorted));
        let empty = export_yaml(&[], &[]).unwrap();
        assert_eq!(empty, "monitors: []\nalerts: []\n");
    }
}
