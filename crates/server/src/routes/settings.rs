//! A tenant's settings (currency, time zone, attribution parameters, rate limits): read and
//! changed by the tenant with an `admin` key, or by the operator for any tenant. Both paths share
//! [`read_for`] and [`change_for`]; validation and the recomputes a change implies are in
//! `tally_store::settings`, which the CLI uses too.

use crate::auth::{Authorized, Operator, scope};
use crate::context;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path};
use crate::routes::admin::existing;
use crate::state::AppState;
use axum::extract::State;
use serde_json::Value;
use tally_store::TenantId;
use tally_store::settings::{SettingsChange, SettingsError, SettingsPatch, TenantSettings};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, patch_settings))
        .routes(routes!(get_tenant_settings, patch_tenant_settings))
}

impl From<SettingsError> for ApiError {
    fn from(err: SettingsError) -> Self {
        match err {
            SettingsError::Invalid(errors) => ApiError::unprocessable(
                "invalid settings; nothing was changed",
                errors.into_iter().map(Into::into).collect(),
            ),
            SettingsError::Store(err) => err.into(),
        }
    }
}

async fn read_for(state: &AppState, tenant: TenantId) -> Result<Json<TenantSettings>, ApiError> {
    Ok(Json(state.db.settings(tenant).await?))
}

async fn change_for(
    state: &AppState,
    tenant: TenantId,
    doc: &Value,
) -> Result<Json<SettingsChange>, ApiError> {
    let change = state
        .db
        .change_settings(tenant, doc, &context::current().correlation_id)
        .await?;
    // Ingestion caches the currency and the rate limiter per tenant: drop the entry so this
    // process applies the new values from the next request (others within the cache's TTL).
    state.tenants.forget(tenant).await;
    Ok(Json(change))
}

/// This tenant's settings (scope `admin`).
#[utoipa::path(get, path = "/v1/settings", tag = "settings", security(("api_key" = ["admin"])), responses(
    (status = 200, body = TenantSettings),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json")
))]
async fn get_settings(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
) -> Result<Json<TenantSettings>, ApiError> {
    read_for(&state, caller.tenant_id).await
}

/// Changes this tenant's settings by JSON merge patch (scope `admin`): members present are
/// changed, absent ones kept; unknown members and `null` are refused, each invalid member with
/// its pointer, and then nothing is changed. A change of `lookback_days`,
/// `time_decay_half_life_hours`, `markov_order` or `time_zone` schedules, in the same
/// transaction, a recompute of every day (in the new time zone) that holds a conversion;
/// `recompute.windows` says how many.
#[utoipa::path(patch, path = "/v1/settings", tag = "settings", security(("api_key" = ["admin"])),
    request_body(content((SettingsPatch = "application/merge-patch+json"), (SettingsPatch = "application/json"))),
    responses(
        (status = 200, body = SettingsChange),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn patch_settings(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Json(doc): Json<Value>,
) -> Result<Json<SettingsChange>, ApiError> {
    change_for(&state, caller.tenant_id, &doc).await
}

/// A tenant's settings (operator).
#[utoipa::path(get, path = "/v1/admin/tenants/{tenant_id}/settings", tag = "admin",
    security(("operator_token" = [])), params(("tenant_id" = Uuid, Path)), responses(
    (status = 200, body = TenantSettings),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json")
))]
async fn get_tenant_settings(
    State(state): State<AppState>,
    _op: Operator,
    Path(tenant): Path<Uuid>,
) -> Result<Json<TenantSettings>, ApiError> {
    let tenant = existing(&state, tenant).await?;
    read_for(&state, tenant).await
}

/// Changes a tenant's settings (operator), exactly as `PATCH /v1/settings` does.
#[utoipa::path(patch, path = "/v1/admin/tenants/{tenant_id}/settings", tag = "admin",
    security(("operator_token" = [])), params(("tenant_id" = Uuid, Path)),
    request_body(content((SettingsPatch = "application/merge-patch+json"), (SettingsPatch = "application/json"))),
    responses(
        (status = 200, body = SettingsChange),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn patch_tenant_settings(
    State(state): State<AppState>,
    _op: Operator,
    Path(tenant): Path<Uuid>,
    Json(doc): Json<Value>,
) -> Result<Json<SettingsChange>, ApiError> {
    let tenant = existing(&state, tenant).await?;
    change_for(&state, tenant, &doc).await
}
