//! How a [`FilePlan`] prints, like `terraform plan`: the change lines of every section the
//! file has (`+ create alert down`, `~ update routes`, `- delete channel legacy`), then one
//! summary line, per section when there are several.

use std::fmt;

use serde::Serialize;
use vigil_schema::TopicNames;

use super::{FilePlan, Plan};
use crate::monitors::Spec;

/// One section of a [`FilePlan`], as printed.
pub(super) struct Section<'a> {
    /// Its name in a plan's summary (`alert rules`).
    pub(super) title: &'static str,
    /// What its count of unchanged specs is of (`alert rule(s)`).
    pub(super) unit: &'static str,
    /// What names a spec in a change line (`alert ` + id, or `routes` alone).
    pub(super) label: &'static str,
    pub(super) show_id: bool,
    pub(super) plan: &'a dyn Printed,
}

/// What printing needs of a [`Plan`], whatever its spec.
pub(super) trait Printed {
    fn write_changes(&self, f: &mut fmt::Formatter<'_>, label: &str, show_id: bool) -> fmt::Result;
    fn counts(&self) -> String;
    fn unchanged(&self) -> usize;
    fn len(&self) -> usize;
    fn topic<'t>(&self, topics: &'t TopicNames) -> &'t str;
}

impl<S: Spec + Serialize> Printed for Plan<S> {
    fn write_changes(&self, f: &mut fmt::Formatter<'_>, label: &str, show_id: bool) -> fmt::Result {
        Plan::write_changes(self, f, label, show_id)
    }

    fn counts(&self) -> String {
        Plan::counts(self)
    }

    fn unchanged(&self) -> usize {
        self.unchanged
    }

    fn len(&self) -> usize {
        self.changes.len()
    }

    fn topic<'t>(&self, topics: &'t TopicNames) -> &'t str {
        S::topic(topics)
    }
}

impl FilePlan {
    /// The sections the file has, in the order they are printed and written.
    pub(super) fn sections(&self) -> Vec<Section<'_>> {
        fn section<'a, S: Spec + Serialize>(
            plan: &'a Option<Plan<S>>,
            (title, unit, label, show_id): (&'static str, &'static str, &'static str, bool),
        ) -> Option<Section<'a>> {
            plan.as_ref().map(|plan| Section {
                title,
                unit,
                label,
                show_id,
                plan: plan as &dyn Printed,
            })
        }
        let n = &self.notify;
        [
            section(&self.monitors, ("monitors", "monitor(s)", "", true)),
            section(
                &self.rules,
                ("alert rules", "alert rule(s)", "alert ", true),
            ),
            section(&n.channels, ("channels", "channel(s)", "channel ", true)),
            section(&n.routes, ("routes", "routing tree(s)", "routes", false)),
            section(&n.silences, ("silences", "silence(s)", "silence ", true)),
            section(
                &n.maintenance,
                (
                    "maintenance windows",
                    "maintenance window(s)",
                    "maintenance ",
                    true,
                ),
            ),
            section(
                &n.status_pages,
                ("status pages", "status page(s)", "status page ", true),
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl fmt::Display for FilePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sections = self.sections();
        for s in &sections {
            s.plan.write_changes(f, s.label, s.show_id)?;
        }
        if self.is_empty() {
            let parts: Vec<String> = sections
                .iter()
                .map(|s| format!("{} {}", s.plan.unchanged(), s.unit))
                .collect();
            let listed = match parts.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("{} and {last}", rest.join(", "))
                }
                _ => parts.concat(),
            };
            return writeln!(f, "No changes. {listed} up to date.");
        }
        match sections.as_slice() {
            [] => Ok(()),
            [only] => writeln!(f, "Plan: {}.", only.plan.counts()),
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .map(|s| format!("{} {}", s.title, s.plan.counts()))
                    .collect();
                writeln!(f, "Plan: {}.", parts.join("; "))
            }
        }
    }
}
