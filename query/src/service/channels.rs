//! Notification channels and the routing tree: read from their views, written through the
//! compacted channels and routes topics (a channel's tombstone deletes it; the tree is one
//! record keyed `root`). Writes answer once the service's own view shows them. Every spec is
//! checked with the notification stage's own checks ([`vigil_notify::check`]): templates,
//! e-mail addresses, regular expressions, receivers that exist; problems are 422s naming the
//! field. Specs hold secrets only as `${secret:NAME}` references (a literal secret is a 422),
//! so what is stored and returned never holds a secret's value.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use vigil_notify::check;
use vigil_schema::topic::ROUTES_KEY;
use vigil_schema::{ChannelSpec, FieldError, MaintenanceSpec, RouteSpec, SilenceSpec, TopicNames};

use crate::model::{Channel, ChannelPage, Route};
use crate::params;
use crate::service::Service;
use crate::view::{Spec, SpecView};
use crate::{Error, Result};

/// The notification configuration views: channels, the routing tree, silences and
/// maintenance windows (the last two read from the one silences topic); and the status pages,
/// which show the maintenance windows.
#[derive(Debug)]
pub struct NotifyViews {
    /// Channels by id.
    pub channels: Arc<SpecView<ChannelSpec>>,
    /// The routing tree, under [`ROUTES_KEY`].
    pub routes: Arc<SpecView<RouteSpec>>,
    /// Silences by id.
    pub silences: Arc<SpecView<SilenceSpec>>,
    /// Maintenance windows by id.
    pub maintenance: Arc<SpecView<MaintenanceSpec>>,
    /// Status pages by id.
    pub status_pages: Arc<SpecView<vigil_schema::StatusPageSpec>>,
    started: AtomicBool,
}

impl Default for NotifyViews {
    fn default() -> Self {
        Self::new()
    }
}

impl NotifyViews {
    /// Empty views, not following any topic yet (changes go nowhere: there is no subscription
    /// on them).
    pub fn new() -> Self {
        Self {
            channels: SpecView::new(broadcast::channel(16).0),
            routes: SpecView::new(broadcast::channel(16).0),
            silences: SpecView::new(broadcast::channel(16).0),
            maintenance: SpecView::new(broadcast::channel(16).0),
            status_pages: SpecView::new(broadcast::channel(16).0),
            started: AtomicBool::new(false),
        }
    }

    /// Starts following the channels, routes, silences and status pages topics; the tasks stop when `token`
    /// is cancelled.
    pub async fn start(
        &self,
        client: &ClientConfig,
        topics: &TopicNames,
        timeout: Duration,
        token: &CancellationToken,
    ) -> Result<()> {
        self.channels
            .start(client, &topics.channels, timeout, token.child_token())
            .await?;
        self.routes
            .start(client, &topics.routes, timeout, token.child_token())
            .await?;
        self.silences
            .start(client, &topics.silences, timeout, token.child_token())
            .await?;
        self.maintenance
            .start(client, &topics.silences, timeout, token.child_token())
            .await?;
        self.status_pages
            .start(client, &topics.status_pages, timeout, token.child_token())
            .await?;
        self.started.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether every started view has read what its topic held at start-up.
    pub fn is_caught_up(&self) -> bool {
        self.channels.is_caught_up()
            && self.routes.is_caught_up()
            && self.silences.is_caught_up()
            && self.maintenance.is_caught_up()
            && self.status_pages.is_caught_up()
    }

    /// Why the views are not ready, once started; `None` when they are (or were never
    /// started, for a service built without Kafka).
    pub fn not_ready(&self) -> Option<String> {
        (self.started.load(Ordering::Acquire) && !self.is_caught_up())
            .then(|| "the notification configuration views are still catching up".to_owned())
    }
}

/// Filters of the channel list.
#[derive(Debug, Clone, Default)]
pub struct ChannelFilter {
    /// Only channels of this kind (`webhook`, `slack`, …).
    pub kind: Option<String>,
    /// `enabled` or `disabled`.
    pub status: Option<String>,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
}

/// The kinds of channel, as filters name them.
const KINDS: [&str; 6] = [
    "webhook",
    "alertmanager",
    "slack",
    "pagerduty",
    "email",
    "console",
];

/// Sorts `specs` by id, keeps those after the cursor and cuts one page; the cursor of the next
/// page when there is one.
pub(super) fn page<S: Spec>(
    mut specs: Vec<Arc<S>>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<Arc<S>>, Option<String>)> {
    if let Some(c) = cursor {
        let after = params::decode_cursor(c, 1)?.remove(0);
        specs.retain(|s| s.id() > after.as_str());
    }
    specs.sort_by(|a, b| a.id().cmp(b.id()));
    if specs.len() <= limit {
        return Ok((specs, None));
    }
    specs.truncate(limit);
    let next = specs.last().map(|s| params::encode_cursor(&[s.id()]));
    Ok((specs, next))
}

/// One invalid field.
pub(super) fn field_error(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A 422 of a notification spec.
pub(super) fn invalid(kind: &'static str, errors: Vec<FieldError>) -> Error {
    Error::InvalidSpec { kind, errors }
}

/// Decodes a JSON body into a spec; a body of the wrong shape is a 400.
pub(super) fn decode<S: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<S> {
    serde_json::from_value(value).map_err(|e| Error::BadBody(e.to_string()))
}

impl Service {
    /// The notification configuration views.
    pub fn notify_views(&self) -> &NotifyViews {
        &self.inner.notify
    }

    /// Lists channels ordered by id, filtered and paginated by cursor.
    pub fn list_channels(&self, filter: &ChannelFilter) -> Result<ChannelPage> {
        let limit = params::page_size(filter.limit, self.limits())? as usize;
        let enabled = params::enabled(filter.status.as_deref())?;
        if let Some(kind) = filter.kind.as_deref()
            && !KINDS.contains(&kind)
        {
            return Err(Error::bad_parameter(
                "kind",
                format!("expected one of {}, got {kind:?}", KINDS.join(", ")),
            ));
        }
        let channels: Vec<Arc<ChannelSpec>> = self
            .notify_views()
            .channels
            .all()
            .into_iter()
            .filter(|c| filter.kind.as_deref().is_none_or(|k| c.kind.as_str() == k))
            .filter(|c| enabled.is_none_or(|e| c.enabled == e))
            .collect();
        let (items, next_cursor) = page(channels, filter.cursor.as_deref(), limit)?;
        Ok(ChannelPage {
            items: items.iter().map(|c| Channel::from(c.as_ref())).collect(),
            next_cursor,
        })
    }

    /// One channel.
    pub fn get_channel(&self, id: &str) -> Result<Channel> {
        self.channel_spec(id).map(|c| Channel::from(c.as_ref()))
    }

    fn channel_spec(&self, id: &str) -> Result<Arc<ChannelSpec>> {
        self.notify_views()
            .channels
            .get(id)
            .ok_or_else(|| Error::NotFound {
                kind: "channel",
                id: id.to_owned(),
            })
    }

    /// Creates a channel from a JSON spec: 422 if invalid, 409 if the id exists.
    pub async fn create_channel(&self, spec: serde_json::Value) -> Result<Channel> {
        let spec = parse_channel(spec)?;
        if self.notify_views().channels.get(&spec.id).is_some() {
            return Err(Error::Conflict {
                kind: "channel",
                id: spec.id,
            });
        }
        self.write_channel(&spec).await?;
        Ok(Channel::from(&spec))
    }

    /// Replaces channel `id`: 404 if absent, 422 if invalid or the body names another id.
    pub async fn update_channel(&self, id: &str, spec: serde_json::Value) -> Result<Channel> {
        self.channel_spec(id)?;
        let spec = parse_channel(spec)?;
        if spec.id != id {
            return Err(invalid(
                "channel",
                vec![field_error(
                    "id",
                    format!(
                        "must match the channel being replaced ({id:?}), got {:?}",
                        spec.id
                    ),
                )],
            ));
        }
        self.write_channel(&spec).await?;
        Ok(Channel::from(&spec))
    }

    /// Deletes channel `id`: 404 if absent, 409 while the routing tree names it.
    pub async fn delete_channel(&self, id: &str) -> Result<()> {
        self.channel_spec(id)?;
        if let Some(tree) = self.notify_views().routes.get(ROUTES_KEY)
            && let Some((field, _)) = tree.channel_refs().into_iter().find(|(_, c)| *c == id)
        {
            return Err(Error::InUse {
                kind: "channel",
                id: id.to_owned(),
                by: format!("the routing tree names it at {field}; change the routes first"),
            });
        }
        let views = self.notify_views();
        self.produce(&self.inner.topics.channels, &views.channels, id, None)
            .await
    }

    async fn write_channel(&self, spec: &ChannelSpec) -> Result<()> {
        let bytes = vigil_schema::encode(spec)?;
        let views = self.notify_views();
        self.produce(
            &self.inner.topics.channels,
            &views.channels,
            &spec.id,
            Some(&bytes),
        )
        .await?;
        metrics::counter!("vigil_query_channel_writes_total").increment(1);
        Ok(())
    }

    /// The routing tree; a root without receivers when none was written (alerts are then
    /// tracked but notified nowhere).
    pub fn get_routes(&self) -> Route {
        match self.notify_views().routes.get(ROUTES_KEY) {
            Some(tree) => Route::from(tree.as_ref()),
            None => Route::from(&RouteSpec::default()),
        }
    }

    /// Replaces the routing tree: 422 naming every invalid field, including receivers and
    /// escalation targets that name no channel.
    pub async fn update_routes(&self, spec: serde_json::Value) -> Result<Route> {
        let tree: RouteSpec = decode(spec)?;
        let channels: BTreeMap<String, ChannelSpec> = self
            .notify_views()
            .channels
            .all()
            .into_iter()
            .map(|c| (c.id.clone(), (*c).clone()))
            .collect();
        check::routes(&tree, &channels).map_err(|e| invalid("routing tree", e))?;
        let bytes = vigil_schema::encode(&tree)?;
        let views = self.notify_views();
        self.produce(
            &self.inner.topics.routes,
            &views.routes,
            ROUTES_KEY,
            Some(&bytes),
        )
        .await?;
        Ok(Route::from(&tree))
    }
}

/// Parses a channel spec from JSON and checks it: a body of the wrong shape is a 400 (naming
/// `kind` when that is what does not decode), a spec that fails its checks a 422.
pub fn parse_channel(value: serde_json::Value) -> Result<ChannelSpec> {
    let kind = value.get("kind").cloned();
    let spec: ChannelSpec = serde_json::from_value(value).map_err(|e| {
        match kind.map(serde_json::from_value::<vigil_schema::ChannelKind>) {
            Some(Err(kind_error)) => Error::BadBody(format!("kind: {kind_error}")),
            _ => Error::BadBody(e.to_string()),
        }
    })?;
    check::channel(&spec).map_err(|e| invalid("channel", e))?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn problems_are_422_naming_fields_without_secret_values() {
        let err = parse_channel(json!({"id": "Hooks", "kind": {"webhook": {
            "url": "https://x.test/h?token=s3cr3t", "secret": "whsec_c2VjcmV0"}},
            "title": "{{nope}}"}))
        .unwrap_err();
        assert_eq!(
            err.classify().0,
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        );
        let text = err.to_string();
        assert!(
            !text.contains("s3cr3t") && !text.contains("c2VjcmV0"),
            "{text}"
        );
        let Error::InvalidSpec { kind, errors } = err else {
            panic!("expected InvalidSpec")
        };
        assert_eq!(kind, "channel");
        let fields: Vec<&str> = errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["id", "kind.webhook.url", "kind.webhook.secret", "title"]
        );
        let err = parse_channel(json!({"id": "a", "kind": {"teams": {}}})).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid request body: kind: unknown variant `teams`"),
            "{err}"
        );
    }
}
