//! [`StatusPageSpec`]: a public status page (`vigil.status-pages`, compacted, keyed by id).
//!
//! A page shows monitors under the names given here and nothing else of them: no URL, header,
//! error text or id reaches the public page. Components are grouped; each names one monitor.

use serde::{Deserialize, Serialize};

use super::FieldError;

/// Longest title or description, in bytes.
pub const MAX_STATUS_TEXT: usize = 1000;
/// Longest group or component name, in bytes.
pub const MAX_STATUS_NAME: usize = 100;
/// Most groups on one page.
pub const MAX_STATUS_GROUPS: usize = 50;
/// Most components on one page, over all its groups.
pub const MAX_STATUS_COMPONENTS: usize = 200;

/// A public status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct StatusPageSpec {
    /// Stable identifier and the page's path (`/status/<id>`): lower-case letters, digits and
    /// `-`, at most 64 characters.
    pub id: String,
    /// The page's title.
    pub title: String,
    /// A line under the title.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The components, in groups, in the order shown.
    pub groups: Vec<StatusGroup>,
}

/// A group of components on a status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct StatusGroup {
    /// The group's heading.
    pub name: String,
    /// Its components, in the order shown.
    pub components: Vec<StatusComponent>,
}

/// One component: a monitor under a public name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct StatusComponent {
    /// The monitor's id (never shown on the page).
    pub monitor: String,
    /// The name the public sees.
    pub name: String,
}

/// Whether `id` can name a status page: 1 to 64 of `a-z`, `0-9` and `-`, not starting with `-`.
pub fn is_status_page_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl StatusPageSpec {
    /// Every problem with the page, each naming its field (`groups[1].components[0].name`).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if !is_status_page_id(&self.id) {
            errors.push(FieldError::new(
                "id",
                "must be 1 to 64 of a-z, 0-9 and -, not starting with -",
            ));
        }
        let text = |field: &str, value: &str, max: usize, required: bool, errors: &mut Vec<_>| {
            if required && value.trim().is_empty() {
                errors.push(FieldError::new(field, "must not be empty"));
            } else if value.len() > max {
                errors.push(FieldError::new(
                    field,
                    format!("must be at most {max} bytes"),
                ));
            } else if value.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    field,
                    "must not contain control characters",
                ));
            }
        };
        text("title", &self.title, MAX_STATUS_TEXT, true, &mut errors);
        text(
            "description",
            &self.description,
            MAX_STATUS_TEXT,
            false,
            &mut errors,
        );
        if self.groups.is_empty() {
            errors.push(FieldError::new("groups", "must have at least one group"));
        } else if self.groups.len() > MAX_STATUS_GROUPS {
            errors.push(FieldError::new(
                "groups",
                format!("must have at most {MAX_STATUS_GROUPS} groups"),
            ));
        }
        let total: usize = self.groups.iter().map(|g| g.components.len()).sum();
        if total > MAX_STATUS_COMPONENTS {
            errors.push(FieldError::new(
                "groups",
                format!("must have at most {MAX_STATUS_COMPONENTS} components in all, got {total}"),
            ));
        }
        for (i, group) in self.groups.iter().enumerate() {
            let at = format!("groups[{i}]");
            text(
                &format!("{at}.name"),
                &group.name,
                MAX_STATUS_NAME,
                true,
                &mut errors,
            );
            if group.components.is_empty() {
                errors.push(FieldError::new(
                    format!("{at}.components"),
                    "must have at least one component",
                ));
            }
            for (j, c) in group.components.iter().enumerate() {
                let at = format!("{at}.components[{j}]");
                text(
                    &format!("{at}.name"),
                    &c.name,
                    MAX_STATUS_NAME,
                    true,
                    &mut errors,
                );
                if c.monitor.trim().is_empty() {
                    errors.push(FieldError::new(
                        format!("{at}.monitor"),
                        "must name a monitor",
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The monitors the page shows, in page order (a monitor may appear in several groups).
    pub fn monitors(&self) -> impl Iterator<Item = &str> {
        self.groups
            .iter()
            .flat_map(|g| g.components.iter().map(|c| c.monitor.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> StatusPageSpec {
        serde_json::from_value(serde_json::json!({
            "id": "public",
            "title": "Acme status",
            "groups": [{"name": "API", "components": [{"monitor": "api-health", "name": "API"}]}],
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_page_passes_and_lists_its_monitors() {
        let page = page();
        assert_eq!(page.validate(), Ok(()));
        assert_eq!(page.monitors().collect::<Vec<_>>(), ["api-health"]);
    }

    #[test]
    fn every_problem_names_its_field() {
        let mut page = page();
        page.id = "Bad Id".into();
        page.title = " ".into();
        page.groups[0].components[0].name = "a\u{7}".into();
        page.groups.push(StatusGroup {
            name: "x".repeat(MAX_STATUS_NAME + 1),
            components: vec![],
        });
        let fields: Vec<String> = page
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "id",
                "title",
                "groups[0].components[0].name",
                "groups[1].name",
                "groups[1].components"
            ]
        );
    }

    #[test]
    fn ids_are_slugs() {
        for ok in ["a", "status", "acme-2", &"a".repeat(64)] {
            assert!(is_status_page_id(ok), "{ok}");
        }
        for bad in ["", "-a", "A", "a_b", "a/b", "a.b", &"a".repeat(65)] {
            assert!(!is_status_page_id(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_value::<StatusPageSpec>(serde_json::json!({
            "id": "p", "title": "t", "groups": [], "url": "https://x"
        }))
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `url`"), "{err}");
    }
}
