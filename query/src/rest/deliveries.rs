//! `/api/v1/deliveries`: every attempt the notification stage made (newest first, filtered,
//! cursor-paginated; viewers read), and redelivery of one (editors): the stage sends that
//! notification once more on its channel, with the same idempotency key.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{DAY, Params, parse_limit};
use crate::Result;
use crate::auth::Role;
use crate::error::Problem;
use crate::model::{CommandAccepted, DeliveryPage};
use crate::params;
use crate::service::{DeliveryQuery, delivery_status};
use crate::state::{AppState, Caller};

/// Filters of `GET /api/v1/deliveries`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only this channel.
    channel: Option<String>,
    /// Only attempts with this status: `sent`, `failed`, `retrying`, `gave_up` or `disabled`.
    #[param(pattern = "^(sent|failed|retrying|gave_up|disabled)$")]
    status: Option<String>,
    /// Start: RFC 3339, unix ms, `now` or `now-<duration>` (default: 7 days before `to`).
    from: Option<String>,
    /// End, exclusive (default: now).
    to: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (1 to `limits.max-page-size`, 1000 by default; default 100).
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// Notification delivery attempts, newest first (by time, then delivery id).
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "deliveries", params(DeliveryParams),
    responses(
        (status = 200, description = "A page of delivery attempts", body = DeliveryPage),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The ClickHouse query failed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(p): Params<DeliveryParams>,
) -> Result<Json<DeliveryPage>> {
    caller.require(Role::Viewer)?;
    let service = &state.service;
    let q = DeliveryQuery {
        channel_id: p.channel,
        status: p.status.as_deref().map(delivery_status).transpose()?,
        range: params::time_range(p.from.as_deref(), p.to.as_deref(), 7 * DAY, service.now())?,
        cursor: p.cursor,
        limit: params::page_size(parse_limit(p.limit.as_deref())?, service.limits())?,
    };
    service.deliveries(&q).await.map(Json)
}

/// Send the notification of a delivery attempt once more, on its channel, with the same
/// idempotency key (the webhook `webhook-id`) and the next attempt number. The notification
/// stage keeps what it sent for 7 days (at most 10,000 notifications); past that the attempt is
/// recorded as `failed` with an error saying so.
#[utoipa::path(post, path = "/api/v1/deliveries/{delivery_id}/redeliver", tag = "deliveries",
    params(("delivery_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "A delivery attempt's id (UUID)")),
    responses(
        (status = 202, description = "The command was written to the notification stage", body = CommandAccepted),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the editor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery attempt", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The lookup or the write failed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(delivery_id): Path<String>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    caller.require(Role::Editor)?;
    let accepted = state.service.redeliver(&delivery_id, &caller.name).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

#[cfg(test)]
mod tests {
    use crate::rest::channels::tests::statuses;

    #[test]
    fn delivery_and_ack_routes_are_documented() {
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        assert_eq!(
            statuses(&doc, "/api/v1/deliveries", "get"),
            ["200", "400", "401", "422", "429", "500", "503"]
        );
        let names: Vec<&str> = doc["paths"]["/api/v1/deliveries"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["channel", "status", "from", "to", "cursor", "limit"]
        );
        assert_eq!(
            statuses(&doc, "/api/v1/deliveries/{delivery_id}/redeliver", "post"),
            // 409 and 422: an Idempotency-Key still running, or used with another request.
            [
                "202", "400", "401", "403", "404", "409", "422", "429", "500", "503"
            ]
        );
        assert_eq!(
            statuses(&doc, "/api/v1/alerts/ack", "post"),
            [
                "202", "400", "401", "403", "404", "409", "413", "422", "429", "500", "503"
            ]
        );
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["AckInput"]["properties"]["comment"]["maxLength"],
            1000
        );
        assert!(schemas["DeliveryAttempt"]["properties"]["idempotency_key"].is_object());
        assert_eq!(
            schemas["Monitor"]["properties"]["depends_on"]["maxItems"],
            32
        );
    }
}
