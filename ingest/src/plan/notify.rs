//! The notification sections of a monitors file: `channels:` (a list of channels), `routes:`
//! (the root of the routing tree), `silences:`, `maintenance:` and `status_pages:` (lists), parsed
//! and checked
//! with the notification stage's own checks ([`vigil_notify::check`]: templates, e-mail
//! addresses, regular expressions, cron expressions and time zones), planned against their
//! topics and written back by `vigil export`.
//!
//! Specs only ever hold `${secret:NAME}` references where a secret goes (validation refuses a
//! literal one), so plans and exports show them as written.
//!
//! What needs the topics is checked when planning ([`NotifyPlan::new`]): every channel the
//! routing tree names must exist once the plan is applied (the file's channels, plus the
//! topic's unless `--prune` deletes them), and a silence or maintenance window may not take an
//! id the other kind holds, since both share the silences topic and its key space.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_norway::Value;
use serde_norway::with::singleton_map_recursive;
use vigil_notify::check;
use vigil_schema::{
    ChannelKind, ChannelSpec, MaintenanceSpec, RouteSpec, SilenceSpec, StatusPageSpec,
};

use super::file::{MonitorsFile, check as push_errors, section};
use super::{Change, Plan};

/// The notification sections a file has (`None` for each it lacks).
#[derive(Debug, Default)]
pub(super) struct Sections {
    pub(super) channels: Option<Vec<ChannelSpec>>,
    pub(super) routes: Option<RouteSpec>,
    pub(super) silences: Option<Vec<SilenceSpec>>,
    pub(super) maintenance: Option<Vec<MaintenanceSpec>>,
    pub(super) status_pages: Option<Vec<StatusPageSpec>>,
}

type Decoded<S> = Result<S, (Option<&'static str>, serde_norway::Error)>;

/// Decodes one item; when `field` alone does not decode, the problem is reported as its own.
fn decode<S, F>(item: Value, field: &'static str) -> Decoded<S>
where
    S: serde::de::DeserializeOwned,
    F: serde::de::DeserializeOwned,
{
    let part = item.get(field).cloned();
    singleton_map_recursive::deserialize::<S, _>(item).map_err(|e| {
        match part.map(singleton_map_recursive::deserialize::<F, _>) {
            Some(Err(part_error)) => (Some(field), part_error),
            _ => (None, e),
        }
    })
}

/// Reads and checks the notification sections of `document`; problems are pushed with their
/// path (`channels[1].kind.webhook.url: …`).
pub(super) fn parse(document: &Value, problems: &mut Vec<String>) -> Sections {
    let channels = section(
        document,
        "channels",
        problems,
        |item| decode::<ChannelSpec, ChannelKind>(item, "kind"),
        |spec: &ChannelSpec, at, problems| push_errors(check::channel(spec), at, problems),
    );
    let routes = document.get("routes").and_then(|value| {
        if !value.is_mapping() {
            problems.push("routes: must be a mapping, the root of the routing tree".into());
            return None;
        }
        match singleton_map_recursive::deserialize::<RouteSpec, _>(value.clone()) {
            Ok(tree) => {
                push_errors(
                    vigil_notify::Router::new(&tree).map(drop),
                    "routes",
                    problems,
                );
                Some(tree)
            }
            Err(e) => {
                problems.push(format!("routes: {e}"));
                None
            }
        }
    });
    let silences = section(
        document,
        "silences",
        problems,
        |item| singleton_map_recursive::deserialize(item).map_err(|e| (None, e)),
        |spec: &SilenceSpec, at, problems| push_errors(check::silence(spec), at, problems),
    );
    let maintenance = section(
        document,
        "maintenance",
        problems,
        |item| decode::<MaintenanceSpec, vigil_schema::MaintenanceSchedule>(item, "schedule"),
        |spec: &MaintenanceSpec, at, problems| {
            push_errors(check::maintenance(spec), at, problems);
        },
    );
    if let (Some(silences), Some(windows)) = (&silences, &maintenance) {
        let silence_at: HashMap<&str, usize> = silences
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        for (j, window) in windows.iter().enumerate() {
            if let Some(i) = silence_at.get(window.id.as_str()) {
                problems.push(format!(
                    "maintenance[{j}].id: duplicate id {:?}, first used by silences[{i}] \
                     (silences and maintenance windows share one topic and its ids)",
                    window.id
                ));
            }
        }
    }
    let status_pages = section(
        document,
        "status_pages",
        problems,
        |item| serde_norway::from_value(item).map_err(|e| (None, e)),
        |spec: &StatusPageSpec, at, problems| push_errors(spec.validate(), at, problems),
    );
    Sections {
        channels,
        routes,
        silences,
        maintenance,
        status_pages,
    }
}

/// The notification configuration read from the topics.
#[derive(Debug, Clone, Default)]
pub struct NotifyCurrent {
    /// Every channel.
    pub channels: Vec<Arc<ChannelSpec>>,
    /// The routing tree, if one was written.
    pub routes: Option<Arc<RouteSpec>>,
    /// Every silence, expired ones included.
    pub silences: Vec<Arc<SilenceSpec>>,
    /// Every maintenance window.
    pub maintenance: Vec<Arc<MaintenanceSpec>>,
    /// Every status page.
    pub status_pages: Vec<Arc<StatusPageSpec>>,
}

/// What `apply` would do to the notification topics, one plan per section the file has.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotifyPlan {
    /// The channels, when the file has a `channels:` section.
    pub channels: Option<Plan<ChannelSpec>>,
    /// The routing tree, when the file has a `routes:` section.
    pub routes: Option<Plan<RouteSpec>>,
    /// The silences, when the file has a `silences:` section.
    pub silences: Option<Plan<SilenceSpec>>,
    /// The maintenance windows, when the file has a `maintenance:` section.
    pub maintenance: Option<Plan<MaintenanceSpec>>,
    /// The status pages, when the file has a `status_pages:` section.
    pub status_pages: Option<Plan<StatusPageSpec>>,
}

impl NotifyPlan {
    /// Diffs each notification section of `file` against `current`. Problems that only the
    /// topics reveal are returned one per line, with their path.
    pub fn new(
        file: &MonitorsFile,
        current: &NotifyCurrent,
        prune: bool,
    ) -> Result<Self, Vec<String>> {
        let plan = Self {
            channels: file
                .channels
                .as_ref()
                .map(|c| Plan::new(&current.channels, c, prune)),
            routes: file.routes.as_ref().map(|tree| {
                let current: Vec<Arc<RouteSpec>> = current.routes.iter().cloned().collect();
                Plan::new(&current, std::slice::from_ref(tree), prune)
            }),
            silences: file
                .silences
                .as_ref()
                .map(|s| Plan::new(&current.silences, s, prune)),
            maintenance: file
                .maintenance
                .as_ref()
                .map(|m| Plan::new(&current.maintenance, m, prune)),
            status_pages: file
                .status_pages
                .as_ref()
                .map(|p| Plan::new(&current.status_pages, p, prune)),
        };
        let mut problems = plan.check_receivers(file, current);
        problems.extend(shared_ids(file, current));
        if problems.is_empty() {
            Ok(plan)
        } else {
            Err(problems)
        }
    }

    /// Every channel the routing tree names must exist once the plan is applied.
    fn check_receivers(&self, file: &MonitorsFile, current: &NotifyCurrent) -> Vec<String> {
        let mut channels: BTreeMap<String, ChannelSpec> = current
            .channels
            .iter()
            .map(|c| (c.id.clone(), (**c).clone()))
            .collect();
        let mut deleted = BTreeSet::new();
        for change in self.channels.iter().flat_map(|p| &p.changes) {
            match change {
                Change::Create(spec) | Change::Update { spec, .. } => {
                    channels.insert(spec.id.clone(), spec.clone());
                }
                Change::Delete(id) => {
                    channels.remove(id);
                    deleted.insert(id.as_str());
                }
            }
        }
        let mut problems = Vec::new();
        match (&file.routes, &current.routes) {
            (Some(tree), _) => push_errors(check::routes(tree, &channels), "routes", &mut problems),
            (None, Some(tree)) => {
                for (field, id) in tree.channel_refs() {
                    if deleted.contains(id) {
                        problems.push(format!(
                            "channels: --prune would delete channel {id:?}, which the routing \
                             tree on the topic names at {field}; keep it in `channels:` or \
                             change `routes:`"
                        ));
                    }
                }
            }
            (None, None) => {}
        }
        problems
    }

    /// Number of changes over the notification sections.
    pub fn len(&self) -> usize {
        self.channels.as_ref().map_or(0, |p| p.changes.len())
            + self.routes.as_ref().map_or(0, |p| p.changes.len())
            + self.silences.as_ref().map_or(0, |p| p.changes.len())
            + self.maintenance.as_ref().map_or(0, |p| p.changes.len())
            + self.status_pages.as_ref().map_or(0, |p| p.changes.len())
    }

    /// Whether the notification sections change nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A silence may not take the id of a maintenance window on the topic, nor the reverse: the
/// write would replace the other.
fn shared_ids(file: &MonitorsFile, current: &NotifyCurrent) -> Vec<String> {
    let windows: BTreeSet<&str> = current.maintenance.iter().map(|m| m.id.as_str()).collect();
    let silences: BTreeSet<&str> = current.silences.iter().map(|s| s.id.as_str()).collect();
    let mut problems = Vec::new();
    for (i, s) in file.silences.iter().flatten().enumerate() {
        if windows.contains(s.id.as_str()) {
            problems.push(format!(
                "silences[{i}].id: {:?} is the id of a maintenance window on the topic \
                 (silences and maintenance windows share one topic and its ids)",
                s.id
            ));
        }
    }
    for (i, m) in file.maintenance.iter().flatten().enumerate() {
        if silences.contains(m.id.as_str()) {
            problems.push(format!(
                "maintenance[{i}].id: {:?} is the id of a silence on the topic (silences and \
                 maintenance windows share one topic and its ids)",
                m.id
            ));
        }
    }
    problems
}

/// The notification sections `vigil export` writes after `monitors:` and `alerts:`, each list
/// sorted by id; `routes:` only when a tree was written.
#[derive(Debug, Serialize)]
pub(super) struct Export<'a> {
    #[serde(serialize_with = "singleton_map_recursive::serialize")]
    channels: Vec<&'a ChannelSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    routes: Option<&'a RouteSpec>,
    silences: Vec<&'a SilenceSpec>,
    #[serde(serialize_with = "singleton_map_recursive::serialize")]
    maintenance: Vec<&'a MaintenanceSpec>,
    status_pages: Vec<&'a StatusPageSpec>,
}

impl<'a> Export<'a> {
    pub(super) fn new(current: &'a NotifyCurrent) -> Self {
        fn sorted<S>(specs: &[Arc<S>], id: impl Fn(&S) -> &str) -> Vec<&S> {
            let mut out: Vec<&S> = specs.iter().map(|s| &**s).collect();
            out.sort_by(|a, b| id(a).cmp(id(b)));
            out
        }
        Self {
            channels: sorted(&current.channels, |c| &c.id),
            routes: current.routes.as_deref(),
            silences: sorted(&current.silences, |s| &s.id),
            maintenance: sorted(&current.maintenance, |m| &m.id),
            status_pages: sorted(&current.status_pages, |p| &p.id),
        }
    }
}

#[cfg(test)]
mod tests;
