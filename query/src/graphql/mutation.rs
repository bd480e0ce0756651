//! GraphQL writes: monitor create, replace, delete, enable/disable, and alert rule create,
//! replace, delete (each answers once the service's own view shows the write), rule
//! backtests (nothing is written), and OpenAPI imports.

use async_graphql::{Context, Json, Object, Result};

use crate::auth::Role;
use crate::graphql::{Gql, authorized};
use crate::model::{BacktestReport, Monitor, OpenApiImport, Rule};

/// Root of writes.
#[derive(Debug, Default)]
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Creates a monitor from a spec (the REST body's shape). Codes: `INVALID_SPEC`, `CONFLICT`.
    async fn create_monitor(
        &self,
        ctx: &Context<'_>,
        spec: Json<serde_json::Value>,
    ) -> Result<Monitor> {
        let service = authorized(ctx, Role::Editor)?;
        service.create_monitor(spec.0).await.gql()
    }

    /// Replaces monitor `id`'s spec. Codes: `NOT_FOUND`, `INVALID_SPEC`.
    async fn update_monitor(
        &self,
        ctx: &Context<'_>,
        id: String,
        spec: Json<serde_json::Value>,
    ) -> Result<Monitor> {
        let service = authorized(ctx, Role::Editor)?;
        service.update_monitor(&id, spec.0).await.gql()
    }

    /// Changes the fields of monitor `id` that `patch` names, a JSON merge patch (RFC 7396:
    /// `null` removes a field); the rest of the spec is kept. Codes: `NOT_FOUND`, `BAD_REQUEST`,
    /// `INVALID_SPEC`.
    async fn patch_monitor(
        &self,
        ctx: &Context<'_>,
        id: String,
        patch: Json<serde_json::Value>,
    ) -> Result<Monitor> {
        let service = authorized(ctx, Role::Editor)?;
        service.patch_monitor(&id, &patch.0).await.gql()
    }

    /// Deletes monitor `id`; true when done. Code: `NOT_FOUND`.
    async fn delete_monitor(&self, ctx: &Context<'_>, id: String) -> Result<bool> {
        let service = authorized(ctx, Role::Editor)?;
        service.delete_monitor(&id).await.gql()?;
        Ok(true)
    }

    /// Enables or disables monitor `id`. Code: `NOT_FOUND`.
    async fn set_monitor_enabled(
        &self,
        ctx: &Context<'_>,
        id: String,
        enabled: bool,
    ) -> Result<Monitor> {
        let service = authorized(ctx, Role::Editor)?;
        service.set_enabled(&id, enabled).await.gql()
    }

    /// Creates an alert rule from a spec (the REST body's shape; validated the same way).
    /// Codes: `INVALID_SPEC` (with `fieldErrors`), `CONFLICT`.
    async fn create_rule(&self, ctx: &Context<'_>, spec: Json<serde_json::Value>) -> Result<Rule> {
        let service = authorized(ctx, Role::Editor)?;
        service.create_rule(spec.0).await.gql()
    }

    /// Replaces alert rule `id`'s spec. Codes: `NOT_FOUND`, `INVALID_SPEC`.
    async fn update_rule(
        &self,
        ctx: &Context<'_>,
        id: String,
        spec: Json<serde_json::Value>,
    ) -> Result<Rule> {
        let service = authorized(ctx, Role::Editor)?;
        service.update_rule(&id, spec.0).await.gql()
    }

    /// Deletes alert rule `id`; true when done. Code: `NOT_FOUND`.
    async fn delete_rule(&self, ctx: &Context<'_>, id: String) -> Result<bool> {
        let service = authorized(ctx, Role::Editor)?;
        service.delete_rule(&id).await.gql()?;
        Ok(true)
    }

    /// Backtests alert rules over the probes topic: `input` is the REST body of
    /// `POST /api/v1/rules/backtest` (`{rules: [...], from, to, default_rule, max_transitions}`,
    /// at most 7 days). Codes: `INVALID_SPEC` (`fieldErrors` name `rules[i].field`),
    /// `BAD_REQUEST` (`parameter`: `from`, `to`, `max_transitions`), `BUSY` (another backtest
    /// runs; `retryAfter` seconds), `TIMEOUT`.
    async fn backtest_rules(
        &self,
        ctx: &Context<'_>,
        input: Json<serde_json::Value>,
    ) -> Result<BacktestReport> {
        let service = authorized(ctx, Role::Editor)?;
        service.backtest(input.0).await.gql()
    }

    /// Imports monitors from an OpenAPI 3.0/3.1 or Swagger 2.0 document: `input` is the REST
    /// body of `POST /api/v1/import/openapi` (`{document, base_url, include_tags, exclude_tags,
    /// include_paths, exclude_paths, params, secrets, id_prefix, tags, interval, timeout,
    /// regions, apply}`). Answers the monitors, the skipped operations and the plan; with
    /// `apply: true` writes the plan's creates and updates. A document larger than the GraphQL
    /// body limit goes through the REST route. Codes: `INVALID_SPEC` (`fieldErrors` name
    /// `document/<JSON pointer>` or the option), `BAD_REQUEST`.
    async fn import_openapi(
        &self,
        ctx: &Context<'_>,
        input: Json<serde_json::Value>,
    ) -> Result<OpenApiImport> {
        let service = authorized(ctx, Role::Editor)?;
        service.import_openapi(input.0).await.gql()
    }
}
