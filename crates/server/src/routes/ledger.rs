//! The revenue ledger: listing (scope `read`), an order's money (scope `read`) and manual
//! adjustments (scope `admin`). There is no route that edits or deletes a posting: a correction
//! is a new row, and the database refuses anything else.

use crate::auth::{Authorized, scope};
use crate::context;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tally_store::cursor::Page;
use tally_store::ledger::{LedgerEntry, LedgerFilter, NewAdjustment};
use tally_store::reconciliation::OrderView;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_ledger))
        .routes(routes!(add_adjustment))
        .routes(routes!(order_ledger))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    /// Why the correction is needed; kept with the row.
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
    /// Signed minor units. Required unless reversing, where it defaults to the exact opposite
    /// of the reversed posting.
    pub amount_cents: Option<i64>,
    /// ISO 4217 code. Required unless reversing (then the reversed posting's).
    pub currency: Option<String>,
    pub order_id: Option<String>,
    /// The posting this adjustment cancels; a posting can be reversed once.
    pub reverses_id: Option<Uuid>,
    /// When the correction takes effect (default: now).
    #[serde(default, deserialize_with = "tally_core::time::optional_rfc3339")]
    pub occurred_at: Option<DateTime<Utc>>,
}

/// Ledger postings, newest first (scope `read`).
#[utoipa::path(get, path = "/v1/ledger", tag = "ledger", security(("api_key" = ["read"])),
    params(LedgerFilter), responses(
        (status = 200, body = Page<LedgerEntry>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn list_ledger(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    Query(filter): Query<LedgerFilter>,
) -> Result<Json<Page<LedgerEntry>>, ApiError> {
    Ok(Json(state.db.list_ledger(caller.tenant_id, &filter).await?))
}

/// Adds a manual correction or reversal (scope `admin`); existing postings never change.
#[utoipa::path(post, path = "/v1/ledger/adjustments", tag = "ledger", security(("api_key" = ["admin"])),
    request_body = AdjustmentRequest, responses(
        (status = 201, body = LedgerEntry),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "the posting has already been reversed"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn add_adjustment(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Json(body): Json<AdjustmentRequest>,
) -> Result<(StatusCode, Json<LedgerEntry>), ApiError> {
    let entry = state
        .db
        .add_adjustment(
            caller.tenant_id,
            &NewAdjustment {
                amount_cents: body.amount_cents,
                currency: body.currency,
                order_id: body.order_id,
                reason: body.reason,
                reverses_id: body.reverses_id,
                occurred_at: body.occurred_at,
                correlation_id: context::current().correlation_id,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

/// An order's both sides (scope `read`): the conversion events that tracked it, its postings,
/// the net per currency, and its reconciliation status now. 404 only when neither side knows it.
#[utoipa::path(get, path = "/v1/orders/{order_id}", tag = "ledger", security(("api_key" = ["read"])),
    params(("order_id" = String, Path, description = "the merchant's order id")), responses(
        (status = 200, body = OrderView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    ))]
async fn order_ledger(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    Path(order_id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    Ok(Json(
        state.db.order_view(caller.tenant_id, &order_id).await?,
    ))
}
