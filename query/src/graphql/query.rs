//! GraphQL reads: the same operations as the REST `GET` routes.

use async_graphql::{Context, ErrorExtensions, Object, Result};

use crate::auth::Role;
use crate::graphql::{Gql, authorized, can_see_secrets};
use crate::model::{
    ActiveAlertPage, AlertPage, ErrorBudget, History, Monitor, MonitorPage, ProbePage, Rule,
    RulePage, Summary,
};
use crate::params;
use crate::service::{
    ActiveAlertQuery, AlertQuery, BudgetQuery, HistoryPage, HistoryQuery, MonitorFilter,
    ProbeQuery, RuleFilter, Target,
};

const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Root of reads.
#[derive(Debug, Default)]
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// Monitors, filtered by tag, region and status (`enabled`/`disabled`), sorted by `id`
    /// (default), `name`, `-id` or `-name`, paginated with `after` (a `nextCursor`).
    #[allow(clippy::too_many_arguments, reason = "mirrors the REST parameters")]
    async fn monitors(
        &self,
        ctx: &Context<'_>,
        tag: Option<String>,
        region: Option<String>,
        status: Option<String>,
        sort: Option<String>,
        after: Option<String>,
        first: Option<u32>,
    ) -> Result<MonitorPage> {
        let service = authorized(ctx, Role::Viewer)?;
        let filter = MonitorFilter {
            tag,
            region,
            status,
            sort,
            cursor: after,
            limit: first,
        };
        let page = service.list_monitors(&filter).gql()?;
        Ok(if can_see_secrets(ctx) {
            page
        } else {
            page.redacted()
        })
    }

    /// One monitor, or null.
    async fn monitor(&self, ctx: &Context<'_>, id: String) -> Result<Option<Monitor>> {
        let service = authorized(ctx, Role::Viewer)?;
        let monitor = service.get_monitor(&id).ok();
        Ok(if can_see_secrets(ctx) {
            monitor
        } else {
            monitor.map(Monitor::redacted)
        })
    }

    /// Alert rules ordered by id, filtered by the monitor they apply to (`monitorId`: by id, by
    /// one of its tags, or to every monitor), severity (`info`/`warning`/`critical`) and status
    /// (`enabled`/`disabled`), paginated with `after` (a `nextCursor`).
    async fn rules(
        &self,
        ctx: &Context<'_>,
        monitor_id: Option<String>,
        severity: Option<String>,
        status: Option<String>,
        after: Option<String>,
        first: Option<u32>,
    ) -> Result<RulePage> {
        let service = authorized(ctx, Role::Viewer)?;
        let filter = RuleFilter {
            monitor: monitor_id,
            severity,
            status,
            cursor: after,
            limit: first,
        };
        service.list_rules(&filter).gql()
    }

    /// One alert rule, or null.
    async fn rule(&self, ctx: &Context<'_>, id: String) -> Result<Option<Rule>> {
        let service = authorized(ctx, Role::Viewer)?;
        Ok(service.get_rule(&id).ok())
    }

    /// Windows of one monitor (`monitorId`), of a tag, or of every monitor (neither), regions
    /// merged per window unless `region` is given. Times are RFC 3339, unix ms, `now` or
    /// `now-<duration>`; `resolution` is `1m`, `1h` or `auto`. A page holds at most `first`
    /// points (default and maximum `limits.max-history-points`); pass `nextCursor` as `after`
    /// for the next one.
    #[allow(clippy::too_many_arguments, reason = "mirrors the REST parameters")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        monitor_id: Option<String>,
        tag: Option<String>,
        region: Option<String>,
        from: Option<String>,
        to: Option<String>,
        resolution: Option<String>,
        first: Option<u32>,
        after: Option<String>,
    ) -> Result<History> {
        let service = authorized(ctx, Role::Viewer)?;
        let target = match (monitor_id, tag) {
            (Some(_), Some(_)) => {
                return Err(crate::Error::bad_parameter(
                    "tag",
                    "give either `monitorId` or `tag`, not both",
                )
                .extend());
            }
            (Some(id), None) => Target::Monitor(id),
            (None, Some(tag)) => Target::Tag(tag),
            (None, None) => Target::All,
        };
        let range = params::time_range(from.as_deref(), to.as_deref(), DAY, service.now()).gql()?;
        let resolution =
            params::resolution(resolution.as_deref(), range, service.limits()).gql()?;
        let limit = params::history_limit(first, service.limits()).gql()?;
        let q = HistoryQuery {
            target,
            region,
            range,
            resolution,
            page: Some(HistoryPage::new(after.as_deref(), limit).gql()?),
        };
        service.history(&q).await.gql()
    }

    /// Uptime, merged-sketch percentiles and error budget against `target` (default 0.999).
    async fn summary(
        &self,
        ctx: &Context<'_>,
        monitor_id: String,
        from: Option<String>,
        to: Option<String>,
        resolution: Option<String>,
        target: Option<f64>,
    ) -> Result<Summary> {
        let service = authorized(ctx, Role::Viewer)?;
        let range = params::time_range(from.as_deref(), to.as_deref(), DAY, service.now()).gql()?;
        let resolution =
            params::resolution(resolution.as_deref(), range, service.limits()).gql()?;
        let target = params::target(target).gql()?;
        service
            .summary(&monitor_id, range, resolution, target)
            .await
            .gql()
    }

    /// Raw checks, newest first, with their condition results; `outcome` is one outcome or
    /// `failed` (every outcome but `ok`); `status` is a code (`503`) or class (`5xx`).
    #[allow(clippy::too_many_arguments, reason = "mirrors the REST parameters")]
    async fn probes(
        &self,
        ctx: &Context<'_>,
        monitor_id: String,
        from: Option<String>,
        to: Option<String>,
        outcome: Option<String>,
        status: Option<String>,
        region: Option<String>,
        after: Option<String>,
        first: Option<u32>,
    ) -> Result<ProbePage> {
        let service = authorized(ctx, Role::Viewer)?;
        let q = ProbeQuery {
            monitor_id,
            range: params::time_range(from.as_deref(), to.as_deref(), DAY, service.now()).gql()?,
            outcome: outcome.as_deref().map(params::outcome).transpose().gql()?,
            status: status
                .as_deref()
                .map(params::status_filter)
                .transpose()
                .gql()?,
            region,
            cursor: after,
            limit: params::page_size(first, service.limits()).gql()?,
        };
        service.probes(&q).await.gql()
    }

    /// Alert transitions, newest first (default range: the last 7 days), filtered by rule,
    /// monitor, region (`""`: transitions without a region), `state` (the state entered:
    /// `ok`, `pending`, `firing`) and severity (`info`, `warning`, `critical`), paginated with
    /// `after` (a `nextCursor`).
    #[allow(clippy::too_many_arguments, reason = "mirrors the REST parameters")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        rule_id: Option<String>,
        monitor_id: Option<String>,
        region: Option<String>,
        state: Option<String>,
        severity: Option<String>,
        from: Option<String>,
        to: Option<String>,
        after: Option<String>,
        first: Option<u32>,
    ) -> Result<AlertPage> {
        let service = authorized(ctx, Role::Viewer)?;
        let q = AlertQuery {
            rule_id,
            monitor_id,
            region,
            state: state
                .as_deref()
                .map(params::alert_state)
                .transpose()
                .gql()?,
            severity: severity
                .as_deref()
                .map(params::severity)
                .transpose()
                .gql()?,
            range: params::time_range(from.as_deref(), to.as_deref(), 7 * DAY, service.now())
                .gql()?,
            cursor: after,
            limit: params::page_size(first, service.limits()).gql()?,
        };
        service.alerts(&q).await.gql()
    }

    /// Alerts pending or firing now (the latest transition of every rule, monitor and region,
    /// when it does not lead to `ok`), ordered by rule, monitor and region, filtered like
    /// `alerts` (severity: of the latest transition), paginated with `after`.
    #[allow(clippy::too_many_arguments, reason = "mirrors the REST parameters")]
    async fn active_alerts(
        &self,
        ctx: &Context<'_>,
        rule_id: Option<String>,
        monitor_id: Option<String>,
        region: Option<String>,
        severity: Option<String>,
        after: Option<String>,
        first: Option<u32>,
    ) -> Result<ActiveAlertPage> {
        let service = authorized(ctx, Role::Viewer)?;
        let q = ActiveAlertQuery {
            rule_id,
            monitor_id,
            region,
            severity: severity
                .as_deref()
                .map(params::severity)
                .transpose()
                .gql()?,
            cursor: after,
            limit: params::page_size(first, service.limits()).gql()?,
        };
        service.active_alerts(&q).await.gql()
    }

    /// The error budget of burn-rate rule `ruleId` over its SLO period ending now, per monitor
    /// and region it selects (optionally one monitor or region). Codes: `NOT_FOUND` (rule or
    /// monitor), `NOT_APPLICABLE` (not a burn_rate rule), `BAD_REQUEST`.
    async fn error_budget(
        &self,
        ctx: &Context<'_>,
        rule_id: String,
        monitor_id: Option<String>,
        region: Option<String>,
    ) -> Result<ErrorBudget> {
        let service = authorized(ctx, Role::Viewer)?;
        let q = BudgetQuery {
            rule_id,
            monitor_id,
            region,
        };
        service.error_budget(&q).await.gql()
    }
}
