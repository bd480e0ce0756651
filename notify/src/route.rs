//! The routing tree, compiled: which routes (receivers and group settings) an alert takes.
//!
//! Alertmanager's semantics (see [`RouteSpec`]): depth first from the root, the first matching
//! child wins unless it has `continue`, a node no child takes the alert from keeps it, and
//! children inherit the group settings they do not set. A route is named by its path (`root`,
//! `root.1`, `root.1.0`), which is part of its groups' keys.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_schema::event::{DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT, DEFAULT_REPEAT_INTERVAL};
use vigil_schema::{Escalation, FieldError, RouteSpec};

use crate::alert::Labels;
use crate::matcher::MatcherSet;

/// How a route groups and paces notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSettings {
    /// Labels whose values form the group; see [`GroupBy`].
    pub group_by: GroupBy,
    /// Wait before the first notification of a new group.
    #[serde(with = "humantime_serde")]
    pub group_wait: Duration,
    /// Wait between notifications of a changed group.
    #[serde(with = "humantime_serde")]
    pub group_interval: Duration,
    /// Wait before an unchanged, still firing group is notified again.
    #[serde(with = "humantime_serde")]
    pub repeat_interval: Duration,
}

impl Default for GroupSettings {
    fn default() -> Self {
        Self {
            group_by: GroupBy::Labels(Vec::new()),
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
        }
    }
}

/// What a group is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Alerts with the same values of these labels form a group (none: one group per route).
    Labels(Vec<String>),
    /// `...`: every label, so each alert is its own group.
    All,
}

impl GroupBy {
    fn from_spec(labels: &[String]) -> Self {
        if labels.iter().any(|l| l == "...") {
            GroupBy::All
        } else {
            GroupBy::Labels(labels.to_vec())
        }
    }

    /// The group labels of an alert.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match self {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        }
    }
}

/// The compiled tree.
#[derive(Debug, Clone)]
pub struct Router {
    root: Node,
}

#[derive(Debug, Clone)]
struct Node {
    route: Route,
    matchers: MatcherSet,
    continue_: bool,
    children: Vec<Node>,
}

/// One route an alert takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Its path in the tree (`root.1.0`).
    pub path: String,
    /// Channels notified.
    pub receivers: Vec<String>,
    /// Grouping and pacing, inheritance applied.
    pub settings: GroupSettings,
    /// Escalation of this route's alerts.
    pub escalate: Option<Escalation>,
}

impl Default for Router {
    /// A root without receivers: alerts are tracked but notified nowhere.
    fn default() -> Self {
        Self::new(&RouteSpec::default()).unwrap_or_else(|_| Self {
            root: Node::leaf(GroupSettings::default()),
        })
    }
}

impl Router {
    /// Compiles a tree, checked with [`RouteSpec::validate`] and regular expressions compiled.
    pub fn new(spec: &RouteSpec) -> Result<Self, Vec<FieldError>> {
        spec.validate()?;
        let mut errors = Vec::new();
        let root = Node::compile(spec, "root", "", &GroupSettings::default(), &mut errors);
        if errors.is_empty() {
            Ok(Self { root })
        } else {
            Err(errors)
        }
    }

    /// The routes an alert with these labels takes, in tree order (at least one: the root
    /// takes what no child does).
    pub fn routes(&self, labels: &Labels) -> Vec<&Route> {
        let mut out = Vec::new();
        self.root.collect(labels, &mut out);
        out
    }
}

impl Node {
    fn leaf(settings: GroupSettings) -> Self {
        Self {
            route: Route {
                path: "root".into(),
                receivers: Vec::new(),
                settings,
                escalate: None,
            },
            matchers: MatcherSet::default(),
            continue_: false,
            children: Vec::new(),
        }
    }

    fn compile(
        spec: &RouteSpec,
        path: &str,
        field: &str,
        parent: &GroupSettings,
        errors: &mut Vec<FieldError>,
    ) -> Self {
        let matchers = MatcherSet::compile(&spec.matchers).unwrap_or_else(|(i, reason)| {
            errors.push(FieldError {
                field: format!("{field}matchers[{i}]"),
                reason,
            });
            MatcherSet::default()
        });
        let settings = GroupSettings {
            group_by: spec
                .group_by
                .as_deref()
                .map_or_else(|| parent.group_by.clone(), GroupBy::from_spec),
            group_wait: spec.group_wait.unwrap_or(parent.group_wait),
            group_interval: spec.group_interval.unwrap_or(parent.group_interval),
            repeat_interval: spec.repeat_interval.unwrap_or(parent.repeat_interval),
        };
        let children = spec
            .routes
            .iter()
            .enumerate()
            .map(|(i, child)| {
                Node::compile(
                    child,
                    &format!("{path}.{i}"),
                    &format!("{field}routes[{i}]."),
                    &settings,
                    errors,
                )
            })
            .collect();
        Self {
            route: Route {
                path: path.to_owned(),
                receivers: spec.receiver.clone(),
                settings,
                escalate: spec.escalate.clone(),
            },
            matchers,
            continue_: spec.continue_,
            children,
        }
    }

    /// Adds the routes under this node (which matched) that take the alert.
    fn collect<'a>(&'a self, labels: &Labels, out: &mut Vec<&'a Route>) {
        let before = out.len();
        for child in &self.children {
            if !child.matchers.matches(labels) {
                continue;
            }
            child.collect(labels, out);
            if !child.continue_ {
                break;
            }
        }
        if out.len() == before {
            out.push(&self.route);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TREE: &str = r#"
receiver: [default-mail]
group_by: [rule]
routes:
  - matchers: ["severity=critical"]
    receiver: [pager]
    group_wait: 10s
    continue: true
  - matchers: ["team=~web|mobile"]
    receiver: [web-chat]
    group_by: [rule, monitor]
    routes:
      - matchers: ["monitor=checkout"]
        receiver: [checkout-chat]
        repeat_interval: 1h
      - matchers: ["region=eu-west"]
        receiver: [eu-chat]
  - matchers: ["team=db"]
    receiver: [db-chat]
    group_by: ["..."]
"#;

    fn router(yaml: &str) -> Router {
        let value: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
        let spec: RouteSpec = serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap();
        Router::new(&spec).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn paths(router: &Router, pairs: &[(&str, &str)]) -> Vec<String> {
        router
            .routes(&labels(pairs))
            .iter()
            .map(|r| format!("{}:{}", r.path, r.receivers.join("+")))
            .collect()
    }

    #[test]
    fn no_match_falls_back_to_the_root() {
        let r = router(TREE);
        assert_eq!(
            paths(&r, &[("severity", "warning"), ("team", "ops")]),
            ["root:default-mail"]
        );
        let root = &r.routes(&labels(&[]))[0].settings;
        assert_eq!(root.group_by, GroupBy::Labels(vec!["rule".into()]));
        assert_eq!(root.group_wait, Duration::from_secs(30));
        assert_eq!(root.group_interval, Duration::from_secs(300));
        assert_eq!(root.repeat_interval, Duration::from_secs(4 * 3600));
    }

    #[test]
    fn continue_lets_the_next_sibling_match_too() {
        let r = router(TREE);
        // Critical + web: the pager route continues, the web route takes it too.
        assert_eq!(
            paths(&r, &[("severity", "critical"), ("team", "web")]),
            ["root.0:pager", "root.1:web-chat"]
        );
        // Critical only: the pager route, and no fallback to the root.
        assert_eq!(paths(&r, &[("severity", "critical")]), ["root.0:pager"]);
    }

    #[test]
    fn nested_routes_first_match_wins_and_settings_inherit() {
        let r = router(TREE);
        let l = [
            ("team", "mobile"),
            ("monitor", "checkout"),
            ("region", "eu-west"),
        ];
        assert_eq!(
            paths(&r, &l),
            ["root.1.0:checkout-chat"],
            "first child wins"
        );
        let route = r.routes(&labels(&l))[0];
        assert_eq!(
            route.settings,
            GroupSettings {
                group_by: GroupBy::Labels(vec!["rule".into(), "monitor".into()]),
                group_wait: Duration::from_secs(30),
                group_interval: Duration::from_secs(300),
                repeat_interval: Duration::from_secs(3600),
            }
        );
        assert_eq!(
            paths(&r, &[("team", "web"), ("region", "eu-west")]),
            ["root.1.1:eu-chat"]
        );
        // A matching parent whose children do not match keeps the alert.
        assert_eq!(
            paths(&r, &[("team", "web"), ("region", "us-east")]),
            ["root.1:web-chat"]
        );
    }

    #[test]
    fn group_labels() {
        let r = router(TREE);
        let l = labels(&[("team", "db"), ("rule", "p99"), ("monitor", "db-1")]);
        let route = r.routes(&l)[0];
        assert_eq!(route.settings.group_by, GroupBy::All);
        assert_eq!(route.settings.group_by.group_labels(&l), l);
        let by_rule = GroupBy::Labels(vec!["rule".into(), "region".into()]);
        assert_eq!(
            by_rule.group_labels(&l),
            labels(&[("rule", "p99")]),
            "missing labels are left out"
        );
    }

    #[test]
    fn bad_regex_is_named() {
        let spec: RouteSpec = serde_json::from_value(serde_json::json!({
            "routes": [{"routes": [{"matchers": ["a=b", "team=~(web"]}]}]
        }))
        .unwrap();
        let errors = Router::new(&spec).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .to_string()
                .starts_with("routes[0].routes[0].matchers[1]: invalid regular expression"),
            "{}",
            errors[0]
        );
        assert_eq!(
            paths(&Router::default(), &[("a", "b")]),
            ["root:"],
            "default: the root alone, notifying nobody"
        );
    }
}
