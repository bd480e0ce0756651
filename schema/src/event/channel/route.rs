//! [`RouteSpec`]: the routing tree, with Alertmanager's semantics.
//!
//! An alert enters at the root, which matches every alert. At each node the children are tried
//! in order, depth first: the alert goes to the first child that matches (and to the following
//! ones too while the matched child has `continue: true`); when no child matches, the node
//! itself takes the alert. A child inherits `group_by`, `group_wait`, `group_interval` and
//! `repeat_interval` from its parent unless it sets them; `receiver` and `escalate` belong to
//! the node that names them. The root's defaults are [`DEFAULT_GROUP_WAIT`],
//! [`DEFAULT_GROUP_INTERVAL`], [`DEFAULT_REPEAT_INTERVAL`], and an empty `group_by` (all of a
//! route's alerts in one group; `[...]` groups by every label, one group per alert).
//!
//! The tree is configuration like channels: one record on the compacted `vigil.routes` topic,
//! keyed [`ROUTES_KEY`](crate::topic::ROUTES_KEY) (a tombstone removes the tree).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::matcher::Matcher;
use crate::event::monitor::{FieldError, check_slug};

/// Wait before the first notification of a new group, so alerts firing together arrive in one.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// Wait between notifications of a group whose alerts changed.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
/// Wait before a group that still fires is notified again unchanged.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// One node of the routing tree.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RouteSpec {
    /// Channels (ids) notified of the alerts this node takes.
    #[serde(default)]
    pub receiver: Vec<String>,
    /// Conditions an alert must meet to enter this node (all of them); none on the root.
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// After this node matched, keep trying its next siblings.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    /// Labels whose values split alerts into groups; inherited when absent.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// Inherited when absent; see [`DEFAULT_GROUP_WAIT`].
    #[serde(default, with = "humantime_serde")]
    pub group_wait: Option<Duration>,
    /// Inherited when absent; see [`DEFAULT_GROUP_INTERVAL`].
    #[serde(default, with = "humantime_serde")]
    pub group_interval: Option<Duration>,
    /// Inherited when absent; see [`DEFAULT_REPEAT_INTERVAL`].
    #[serde(default, with = "humantime_serde")]
    pub repeat_interval: Option<Duration>,
    /// Who else is notified when an alert of this node fires unacknowledged for a while.
    #[serde(default)]
    pub escalate: Option<Escalation>,
    /// Child routes, tried in order.
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
}

/// Escalation of alerts left firing and unacknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// How long an alert fires unacknowledged before it escalates.
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    /// Channels (ids) notified then.
    pub to: Vec<String>,
}

/// Deepest routing tree.
const MAX_DEPTH: usize = 16;
/// Most matchers of one node.
const MAX_MATCHERS: usize = 32;
/// Longest group wait.
const MAX_GROUP_WAIT: Duration = Duration::from_secs(3600);
/// Shortest group interval.
const MIN_GROUP_INTERVAL: Duration = Duration::from_secs(1);
/// Longest group interval, repeat interval and escalation delay.
const MAX_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

impl RouteSpec {
    /// Checks the whole tree and returns all problems found, each naming its field
    /// (`routes[1].routes[0].group_interval`). Whether receivers name existing channels is
    /// checked by the notification stage, which knows the channels.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if !self.matchers.is_empty() {
            errors.push(FieldError::new(
                "matchers",
                "must be empty on the root route, which takes every alert",
            ));
        }
        if self.continue_ {
            errors.push(FieldError::new(
                "continue",
                "must be false on the root route",
            ));
        }
        self.check(
            "",
            1,
            Effective {
                group_interval: DEFAULT_GROUP_INTERVAL,
                repeat_interval: DEFAULT_REPEAT_INTERVAL,
            },
            &mut errors,
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn check(&self, path: &str, depth: usize, parent: Effective, errors: &mut Vec<FieldError>) {
        let mut push = |field: &str, reason: String| {
            errors.push(FieldError::new(format!("{path}{field}"), reason));
        };
        for (i, receiver) in self.receiver.iter().enumerate() {
            if let Err(reason) = check_slug(receiver) {
                push(&format!("receiver[{i}]"), reason);
            }
        }
        if self.matchers.len() > MAX_MATCHERS {
            push(
                "matchers",
                format!("must have at most {MAX_MATCHERS} matchers"),
            );
        }
        for (i, label) in self.group_by.iter().flatten().enumerate() {
            let valid = label == "..."
                || (!label.is_empty()
                    && label.len() <= 64
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            if !valid {
                push(
                    &format!("group_by[{i}]"),
                    format!("must be a label name or `...`, got {label:?}"),
                );
            }
        }
        if let Some(by) = &self.group_by
            && by.len() > 1
            && by.iter().any(|l| l == "...")
        {
            push("group_by", "`...` must be the only entry".into());
        }
        if let Some(wait) = self.group_wait
            && wait > MAX_GROUP_WAIT
        {
            push(
                "group_wait",
                format!("must be ≤ 1h, got {}", show_duration(wait)),
            );
        }
        for (field, value) in [
            ("group_interval", self.group_interval),
            ("repeat_interval", self.repeat_interval),
        ] {
            match value {
                Some(v) if v < MIN_GROUP_INTERVAL => {
                    push(field, format!("must be ≥ 1s, got {}", show_duration(v)));
                }
                Some(v) if v > MAX_INTERVAL => {
                    push(field, format!("must be ≤ 7d, got {}", show_duration(v)));
                }
                _ => {}
            }
        }
        let here = Effective {
            group_interval: self.group_interval.unwrap_or(parent.group_interval),
            repeat_interval: self.repeat_interval.unwrap_or(parent.repeat_interval),
        };
        if here.repeat_interval < here.group_interval {
            push(
                "repeat_interval",
                format!(
                    "must be ≥ group_interval ({}), got {}",
                    show_duration(here.group_interval),
                    show_duration(here.repeat_interval)
                ),
            );
        }
        if let Some(escalate) = &self.escalate {
            if escalate.after.is_zero() || escalate.after > MAX_INTERVAL {
                push(
                    "escalate.after",
                    format!("must be in (0s, 7d], got {}", show_duration(escalate.after)),
                );
            }
            if escalate.to.is_empty() {
                push("escalate.to", "must name at least one channel".into());
            }
            for (i, to) in escalate.to.iter().enumerate() {
                if let Err(reason) = check_slug(to) {
                    push(&format!("escalate.to[{i}]"), reason);
                }
            }
        }
        if depth >= MAX_DEPTH && !self.routes.is_empty() {
            push(
                "routes",
                format!("the tree must be at most {MAX_DEPTH} levels deep"),
            );
            return;
        }
        for (i, child) in self.routes.iter().enumerate() {
            child.check(&format!("{path}routes[{i}]."), depth + 1, here, errors);
        }
    }

    /// Every channel id the tree names (receivers and escalation targets), with its field.
    pub fn channel_refs(&self) -> Vec<(String, &str)> {
        let mut refs = Vec::new();
        self.collect_refs("", &mut refs);
        refs
    }

    fn collect_refs<'a>(&'a self, path: &str, refs: &mut Vec<(String, &'a str)>) {
        for (i, r) in self.receiver.iter().enumerate() {
            refs.push((format!("{path}receiver[{i}]"), r.as_str()));
        }
        for (i, r) in self.escalate.iter().flat_map(|e| &e.to).enumerate() {
            refs.push((format!("{path}escalate.to[{i}]"), r.as_str()));
        }
        for (i, child) in self.routes.iter().enumerate() {
            child.collect_refs(&format!("{path}routes[{i}]."), refs);
        }
    }
}

fn show_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Intervals in force at a node, for checks that compare them.
#[derive(Debug, Clone, Copy)]
struct Effective {
    group_interval: Duration,
    repeat_interval: Duration,
}

#[cfg(test)]
mod tests {
    use super::super::tests::from_yaml;
    use super::*;

    const TREE: &str = r#"
receiver: [ops-mail]
group_by: [rule]
routes:
  - matchers: ["severity=critical"]
    receiver: [pager]
    group_wait: 10s
    escalate: { after: 15m, to: [ops-lead] }
    continue: true
  - matchers: ["team=~web|mobile", "region!=test"]
    receiver: [web-chat]
    group_by: [rule, monitor]
    routes:
      - matchers: ["monitor=checkout"]
        receiver: [checkout-chat]
        repeat_interval: 1h
"#;

    fn messages(spec: &RouteSpec) -> Vec<String> {
        spec.validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_valid_tree() {
        let tree: RouteSpec = from_yaml(TREE);
        assert_eq!(tree.validate(), Ok(()));
        assert!(tree.routes[0].continue_);
        assert_eq!(tree.routes[0].group_wait, Some(Duration::from_secs(10)));
        assert_eq!(
            tree.routes[1].group_wait, None,
            "inherited, resolved by the notifier"
        );
        assert_eq!(
            tree.routes[0].escalate,
            Some(Escalation {
                after: Duration::from_secs(900),
                to: vec!["ops-lead".into()]
            })
        );
        let refs: Vec<String> = tree
            .channel_refs()
            .iter()
            .map(|(f, id)| format!("{f}={id}"))
            .collect();
        assert_eq!(
            refs,
            [
                "receiver[0]=ops-mail",
                "routes[0].receiver[0]=pager",
                "routes[0].escalate.to[0]=ops-lead",
                "routes[1].receiver[0]=web-chat",
                "routes[1].routes[0].receiver[0]=checkout-chat",
            ]
        );
        let json = serde_json::to_value(&tree).unwrap();
        assert_eq!(json["routes"][0]["continue"], true);
        assert_eq!(serde_json::from_value::<RouteSpec>(json).unwrap(), tree);
    }

    #[test]
    fn validation_names_nested_fields() {
        let tree: RouteSpec = from_yaml(
            r#"
matchers: ["a=b"]
repeat_interval: 1m
routes:
  - receiver: [Pager]
    group_by: [rule, "..."]
    group_wait: 2h
    routes:
      - group_interval: 0s
        escalate: { after: 0s, to: [] }
"#,
        );
        assert_eq!(
            messages(&tree),
            [
                "matchers: must be empty on the root route, which takes every alert",
                "repeat_interval: must be ≥ group_interval (5m), got 1m",
                "routes[0].receiver[0]: must be 1–64 characters of a-z, 0-9, '-' or '_', \
                 starting with a letter or digit, got \"Pager\"",
                "routes[0].group_by: `...` must be the only entry",
                "routes[0].group_wait: must be ≤ 1h, got 2h",
                "routes[0].repeat_interval: must be ≥ group_interval (5m), got 1m",
                "routes[0].routes[0].group_interval: must be ≥ 1s, got 0s",
                "routes[0].routes[0].escalate.after: must be in (0s, 7d], got 0s",
                "routes[0].routes[0].escalate.to: must name at least one channel",
            ]
        );
    }

    #[test]
    fn depth_is_bounded() {
        let mut tree = RouteSpec::default();
        for _ in 0..MAX_DEPTH {
            tree = RouteSpec {
                routes: vec![tree],
                ..RouteSpec::default()
            };
        }
        let got = messages(&tree);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].ends_with("routes: the tree must be at most 16 levels deep"),
            "{got:?}"
        );
    }
}
