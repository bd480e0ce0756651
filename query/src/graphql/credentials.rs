//! GraphQL over API keys and named secrets, merged into the query and mutation roots, with the
//! same service calls and roles as their REST routes: admins manage keys and set secrets,
//! editors list secret names. A key's value is answered once, by `createApiKey`; a secret's
//! value is never answered.

use async_graphql::{Context, Object, Result};

use crate::auth::Role;
use crate::graphql::{Gql, authorized};
use crate::model::{ApiKey, ApiKeyPage, CreatedApiKey, NewApiKey, Secret, SecretPage};

/// Reads of keys and secrets.
#[derive(Debug, Default)]
pub struct CredentialsQuery;

#[Object]
impl CredentialsQuery {
    /// API keys created through the API or CLI (revoked ones included), ordered by id,
    /// paginated with `after` (a `nextCursor`). Admins only.
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<u32>,
    ) -> Result<ApiKeyPage> {
        let service = authorized(ctx, Role::Admin)?;
        service.list_api_keys(after.as_deref(), first).gql()
    }

    /// One API key (without the key), or null. Admins only.
    async fn api_key(&self, ctx: &Context<'_>, id: String) -> Result<Option<ApiKey>> {
        let service = authorized(ctx, Role::Admin)?;
        Ok(service.api_key(&id).ok())
    }

    /// Named secrets: names and metadata, never values. Editors and admins.
    async fn secrets(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<u32>,
    ) -> Result<SecretPage> {
        let service = authorized(ctx, Role::Editor)?;
        service.list_secrets(after.as_deref(), first).gql()
    }
}

/// Writes of keys and secrets.
#[derive(Debug, Default)]
pub struct CredentialsMutation;

#[Object]
impl CredentialsMutation {
    /// Creates an API key; `key` in the answer is shown this once. Admins only. Codes:
    /// `INVALID_SPEC`.
    async fn create_api_key(&self, ctx: &Context<'_>, input: NewApiKey) -> Result<CreatedApiKey> {
        let service = authorized(ctx, Role::Admin)?;
        service.create_api_key(input).await.gql()
    }

    /// Revokes an API key at once. Admins only. Codes: `NOT_FOUND`.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: String) -> Result<ApiKey> {
        let service = authorized(ctx, Role::Admin)?;
        service.revoke_api_key(&id).await.gql()
    }

    /// Sets a named secret (encrypted before it is stored). Admins only. Codes:
    /// `BAD_PARAMETER` (name), `INVALID_SPEC` (value), `NOT_APPLICABLE` (no key-encryption
    /// key configured).
    async fn set_secret(&self, ctx: &Context<'_>, name: String, value: String) -> Result<Secret> {
        let service = authorized(ctx, Role::Admin)?;
        service.put_secret(&name, &value).await.gql()
    }

    /// Deletes a named secret. Admins only. Codes: `NOT_FOUND`.
    async fn delete_secret(&self, ctx: &Context<'_>, name: String) -> Result<bool> {
        let service = authorized(ctx, Role::Admin)?;
        service.delete_secret(&name).await.gql().map(|()| true)
    }
}
