//! Identity stitching: `POST /v1/identify` (scope `ingest`) links an anonymous id to a user id
//! that no event carries together; `GET /v1/identity/rejected-links` (scope `read`) lists the
//! links the tenant's component cap refused.

use crate::auth::{Authorized, scope};
use crate::context;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::routes::events::{MAX_EVENT_BODY_BYTES, parse_json_body};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_core::event::validate_identify;
use tally_store::identity::{Identify, IdentifyOutcome, RejectedLink};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The most refused links one listing returns.
const MAX_LIMIT: i64 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(identify))
        .routes(routes!(rejected_links))
}

/// The body of `POST /v1/identify`. Members not listed here are refused (`unknown_field`); ids
/// follow the event contract's rules (at most 255 characters, no personal data).
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "a schema only: the body is validated from raw JSON by `validate_identify`, which reports every invalid member at once"
)]
pub struct IdentifyBody {
    #[schema(example = "a-7", min_length = 1, max_length = 255)]
    anonymous_id: String,
    #[schema(example = "customer-1001", min_length = 1, max_length = 255)]
    user_id: String,
    /// Links the session too, when given.
    #[schema(max_length = 255)]
    session_id: Option<String>,
    /// RFC 3339 with an offset; when the shopper was identified (default: now), from 2000 to
    /// at most 5 minutes ahead of the server clock.
    timestamp: Option<DateTime<Utc>>,
}

/// Links `anonymous_id` and `user_id` (and `session_id`) as one shopper. 201 `linked` when new,
/// 200 `known` when an earlier call linked them or they are one shopper already. The next
/// recompute of the link's day folds it and schedules the days whose journeys it changes; stored
/// allocations change only when those recomputes run. Counts as one event against the rate
/// limit.
#[utoipa::path(post, path = "/v1/identify", tag = "identity", security(("api_key" = [])),
    request_body = IdentifyBody,
    responses(
        (status = 201, body = IdentifyOutcome), (status = 200, body = IdentifyOutcome),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")
    ))]
async fn identify(
    State(state): State<AppState>,
    caller: Authorized<scope::Collect>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<IdentifyOutcome>), ApiError> {
    let raw = parse_json_body(&headers, body, MAX_EVENT_BODY_BYTES)?;
    let valid = validate_identify(&raw, Utc::now()).map_err(|errors| {
        ApiError::unprocessable(
            "invalid identify call",
            errors.into_iter().map(Into::into).collect(),
        )
    })?;
    let tenant = state.tenants.get(&state.db, caller.tenant_id).await?;
    tenant.limit.take(1)?;
    let link = Identify {
        anonymous_id: valid.anonymous_id,
        user_id: valid.user_id,
        session_id: valid.session_id,
        occurred_at: valid.occurred_at,
    };
    let correlation_id = context::current().correlation_id;
    let outcome = state
        .db
        .identify(caller.tenant_id, link, &correlation_id)
        .await?;
    let status = match outcome.status {
        "linked" => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    Ok((status, Json(outcome)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RejectedQuery {
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RejectedLinks {
    /// Newest first.
    pub links: Vec<RejectedLink>,
}

/// The links refused because the merged shopper would have had more ids than the tenant's
/// `identity_max_component_ids` (a shared kiosk, a bot). The events that carried them were
/// accepted; only the link was not made. Reported once the recompute that folded them ran.
#[utoipa::path(get, path = "/v1/identity/rejected-links", tag = "identity",
    security(("api_key" = [])), params(RejectedQuery),
    responses(
        (status = 200, body = RejectedLinks),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")
    ))]
async fn rejected_links(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    Query(query): Query<RejectedQuery>,
) -> Result<Json<RejectedLinks>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit must be from 1 to {MAX_LIMIT}"),
        ));
    }
    Ok(Json(RejectedLinks {
        links: state.db.rejected_links(caller.tenant_id, limit).await?,
    }))
}
