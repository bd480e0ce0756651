//! GraphQL over the notification configuration, merged into the query and mutation roots:
//! channels, the routing tree, silences and maintenance windows, the delivery log,
//! acknowledgements and redeliveries, with the same service calls, checks and roles as their
//! REST routes (viewers read, editors write). Specs are written as
//! JSON in the REST body's shape; secrets only as `${secret:NAME}` references.

use async_graphql::{Context, Json, Object, Result};

use crate::auth::{Principal, Role};
use crate::graphql::{Gql, authorized};
use crate::model::{
    Channel, ChannelPage, CommandAccepted, DeliveryPage, Maintenance, MaintenancePage, Silence,
    SilencePage,
};
use crate::params;
use crate::service::{
    ChannelFilter, DeliveryQuery, MaintenanceFilter, SilenceFilter, delivery_status,
};

/// The caller's API key name (`anonymous` when authentication is off).
fn author(ctx: &Context<'_>) -> String {
    ctx.data_opt::<Principal>()
        .map_or_else(|| "anonymous".to_owned(), |p| p.name.to_string())
}

/// Reads of the notification configuration.
#[derive(Debug, Default)]
pub struct NotifyQuery;

#[Object]
impl NotifyQuery {
    /// Notification channels ordered by id, filtered by kind (`webhook`, `slack`, …) and
    /// status (`enabled`/`disabled`), paginated with `after` (a `nextCursor`).
    async fn channels(
        &self,
        ctx: &Context<'_>,
        kind: Option<String>,
        status: Option<String>,
        after: Option<String>,
        first: Option<u32>,
    ) -> Result<ChannelPage> {
        let service = authorized(ctx, Role::Viewer)?;
        let filter = ChannelFilter {
            kind,
            status,
            cursor: after,
            limit: first,
        };
        service.list_channels(&filter).gql()
    }

    /// One channel, or null.
    async fn channel(&self, ctx: &Context<'_>, id: String) -> Result<Option<Channel>> {
        let service = authorized(ctx, Role::Viewer)?;
        Ok(service.get_channel(&id).ok())
    }

    /// The routing tree's root as JSON (the body of `GET /api/v1/routes`).
    async fn routes(&self, ctx: &Context<'_>) -> Result<Json<serde_json::Value>> {
        let service = authorized(ctx, Role::Viewer)?;
        Ok(Json(serde_json::to_value(service.get_routes())?))
    }

    /// Silences ordered by id, filtered by state (`pending`/`active`/`expired`), an exact
    /// matcher (`monitor=checkout`) and author, paginated with `after`.
    async fn silences(
        &self,
        ctx: &Context<'_>,
        state: Option<String>,
        matcher: Option<String>,
        author: Option<String>,
        after: Option<String>,
        first: Option<u32>,
    ) -> Result<SilencePage> {
        let service = authorized(ctx, Role::Viewer)?;
        let filter = SilenceFilter {
            state,
            matcher,
            author,
            cursor: after,
            limit: first,
        };
        service.list_silences(&filter).gql()
    }

    /// One silence, or null.
    async fn silence(&self, ctx: &Context<'_>, id: String) -> Result<Option<Silence>> {
        let service = authorized(ctx, Role::Viewer)?;
        Ok(service.get_silence(&id).ok())
    }

    /// Maintenance windows ordered by id, optionally only those in force now (`active`) or
    /// not, paginated with `after`.
    async fn maintenance_windows(
        &self,
        ctx: &Context<'_>,
        active: Option<bool>,
        after: Option<String>,
        first: Option<u32>,
    ) -> Result<MaintenancePage> {
        let service = authorized(ctx, Role::Viewer)?;
        let filter = MaintenanceFilter {
            active: active.map(|a| a.to_string()),
            cursor: after,
            limit: first,
        };
        service.list_maintenance(&filter).gql()
    }

    /// Notification delivery attempts, newest first, filtered by channel, status (`sent`,
    /// `failed`, `retrying`, `gave_up`, `disabled`) and time (`from`/`to` as in REST; default
    /// the last 7 days), paginated with `after` (a `nextCursor`).
    #[allow(clippy::too_many_arguments, reason = "one argument per filter")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        channel: Option<String>,
        status: Option<String>,
        from: Option<String>,
        to: Option<String>,
        after: Option<String>,
        first: Option<u32>,
    ) -> Result<DeliveryPage> {
        let service = authorized(ctx, Role::Viewer)?;
        let q = DeliveryQuery {
            channel_id: channel,
            status: status.as_deref().map(delivery_status).transpose().gql()?,
            range: params::time_range(
                from.as_deref(),
                to.as_deref(),
                7 * crate::rest::DAY,
                service.now(),
            )
            .gql()?,
            cursor: after,
            limit: params::page_size(first, service.limits()).gql()?,
        };
        service.deliveries(&q).await.gql()
    }

    /// One maintenance window, or null.
    async fn maintenance_window(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> Result<Option<Maintenance>> {
        let service = authorized(ctx, Role::Viewer)?;
        Ok(service.get_maintenance(&id).ok())
    }
}

/// Writes of the notification configuration; each answers once the service's own view shows
/// it.
#[derive(Debug, Default)]
pub struct NotifyMutation;

#[Object]
impl NotifyMutation {
    /// Creates a channel from a spec (the REST body's shape). Codes: `INVALID_SPEC` (with
    /// `fieldErrors`), `CONFLICT`.
    async fn create_channel(
        &self,
        ctx: &Context<'_>,
        spec: Json<serde_json::Value>,
    ) -> Result<Channel> {
        let service = authorized(ctx, Role::Editor)?;
        service.create_channel(spec.0).await.gql()
    }

    /// Replaces channel `id`. Codes: `NOT_FOUND`, `INVALID_SPEC`.
    async fn update_channel(
        &self,
        ctx: &Context<'_>,
        id: String,
        spec: Json<serde_json::Value>,
    ) -> Result<Channel> {
        let service = authorized(ctx, Role::Editor)?;
        service.update_channel(&id, spec.0).await.gql()
    }

    /// Deletes channel `id`; true when done. Codes: `NOT_FOUND`, `IN_USE` (the routing tree
    /// names it).
    async fn delete_channel(&self, ctx: &Context<'_>, id: String) -> Result<bool> {
        let service = authorized(ctx, Role::Editor)?;
        service.delete_channel(&id).await.gql()?;
        Ok(true)
    }

    /// Replaces the routing tree (the body of `PUT /api/v1/routes`) and returns it. Code:
    /// `INVALID_SPEC` (receivers naming no channel included).
    async fn update_routes(
        &self,
        ctx: &Context<'_>,
        spec: Json<serde_json::Value>,
    ) -> Result<Json<serde_json::Value>> {
        let service = authorized(ctx, Role::Editor)?;
        let tree = service.update_routes(spec.0).await.gql()?;
        Ok(Json(serde_json::to_value(tree)?))
    }

    /// Creates a silence (`{matchers, starts_at?, ends_at | duration, comment?, id?}`); its
    /// author is the caller's API key name. Codes: `INVALID_SPEC`, `CONFLICT`.
    async fn create_silence(
        &self,
        ctx: &Context<'_>,
        input: Json<serde_json::Value>,
    ) -> Result<Silence> {
        let service = authorized(ctx, Role::Editor)?;
        service.create_silence(input.0, &author(ctx)).await.gql()
    }

    /// Acknowledges a firing alert, which stops its escalation (without `region`: every
    /// region of the rule on the monitor); the author is the caller's API key name. Codes:
    /// `INVALID_SPEC`, `NOT_FOUND` (rule or monitor).
    async fn acknowledge_alert(
        &self,
        ctx: &Context<'_>,
        rule_id: String,
        monitor_id: String,
        region: Option<String>,
        comment: Option<String>,
    ) -> Result<CommandAccepted> {
        let service = authorized(ctx, Role::Editor)?;
        let input = serde_json::json!({
            "rule_id": rule_id, "monitor_id": monitor_id, "region": region,
            "comment": comment.unwrap_or_default(),
        });
        service.acknowledge_alert(input, &author(ctx)).await.gql()
    }

    /// Sends the notification of delivery attempt `deliveryId` once more on its channel, with
    /// the same idempotency key. Codes: `BAD_REQUEST`, `NOT_FOUND`.
    async fn redeliver(&self, ctx: &Context<'_>, delivery_id: String) -> Result<CommandAccepted> {
        let service = authorized(ctx, Role::Editor)?;
        service.redeliver(&delivery_id, &author(ctx)).await.gql()
    }

    /// Ends silence `id` now and returns it (kept, as expired). Code: `NOT_FOUND`.
    async fn expire_silence(&self, ctx: &Context<'_>, id: String) -> Result<Silence> {
        let service = authorized(ctx, Role::Editor)?;
        service.expire_silence(&id).await.gql()
    }

    /// The same as `expireSilence` (a silence is never removed); true when done.
    async fn delete_silence(&self, ctx: &Context<'_>, id: String) -> Result<bool> {
        let service = authorized(ctx, Role::Editor)?;
        service.expire_silence(&id).await.gql()?;
        Ok(true)
    }

    /// Creates a maintenance window (the REST body's shape). Codes: `INVALID_SPEC`,
    /// `CONFLICT`.
    async fn create_maintenance_window(
        &self,
        ctx: &Context<'_>,
        spec: Json<serde_json::Value>,
    ) -> Result<Maintenance> {
        let service = authorized(ctx, Role::Editor)?;
        service.create_maintenance(spec.0).await.gql()
    }

    /// Replaces maintenance window `id`. Codes: `NOT_FOUND`, `INVALID_SPEC`.
    async fn update_maintenance_window(
        &self,
        ctx: &Context<'_>,
        id: String,
        spec: Json<serde_json::Value>,
    ) -> Result<Maintenance> {
        let service = authorized(ctx, Role::Editor)?;
        service.update_maintenance(&id, spec.0).await.gql()
    }

    /// Deletes maintenance window `id`; true when done. Code: `NOT_FOUND`.
    async fn delete_maintenance_window(&self, ctx: &Context<'_>, id: String) -> Result<bool> {
        let service = authorized(ctx, Role::Editor)?;
        service.delete_maintenance(&id).await.gql()?;
        Ok(true)
    }
}
