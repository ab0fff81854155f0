//! The operator's API (`TALLY_ADMIN_TOKEN`): tenants and their keys across the installation.

use crate::auth::Operator;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path};
use crate::routes::keys::{CreateKey, CreatedKey, KeyView, create_for, list_for, revoke_for};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_store::tenants::Tenant;
use tally_store::{KeyId, TenantId};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(list_tenant_keys, create_tenant_key))
        .routes(routes!(revoke_tenant_key))
}

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub tenant_id: Uuid,
    pub name: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            tenant_id: t.tenant_id.0,
            name: t.name,
            status: t.status,
            created_at: t.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
}

/// A new tenant with its first key (all scopes); the secret is shown only here.
#[derive(Serialize, ToSchema)]
pub struct CreatedTenant {
    pub tenant: TenantView,
    pub api_key: CreatedKey,
}

/// Every tenant.
#[utoipa::path(get, path = "/v1/admin/tenants", tag = "admin", security(("operator_token" = [])), responses(
    (status = 200, body = Vec<TenantView>),
    (status = 401, body = Problem, content_type = "application/problem+json")
))]
async fn list_tenants(
    State(state): State<AppState>,
    _op: Operator,
) -> Result<Json<Vec<TenantView>>, ApiError> {
    let tenants = state.db.list_tenants().await?;
    Ok(Json(tenants.into_iter().map(Into::into).collect()))
}

/// Creates a tenant and its first API key.
#[utoipa::path(post, path = "/v1/admin/tenants", tag = "admin", security(("operator_token" = [])),
    request_body = CreateTenant, responses(
    (status = 201, body = CreatedTenant),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")
))]
async fn create_tenant(
    State(state): State<AppState>,
    _op: Operator,
    Json(body): Json<CreateTenant>,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
    let (tenant, key) = state.db.create_tenant(&body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            tenant: tenant.into(),
            api_key: key.into(),
        }),
    ))
}

pub(crate) async fn existing(state: &AppState, tenant: Uuid) -> Result<TenantId, ApiError> {
    let tenant = TenantId(tenant);
    if state.db.tenant_exists(tenant).await? {
        Ok(tenant)
    } else {
        Err(ApiError::not_found("no such tenant"))
    }
}

/// A tenant's keys.
#[utoipa::path(get, path = "/v1/admin/tenants/{tenant_id}/keys", tag = "admin", security(("operator_token" = [])),
    params(("tenant_id" = Uuid, Path)), responses(
    (status = 200, body = Vec<KeyView>),
    (status = 404, body = Problem, content_type = "application/problem+json")
))]
async fn list_tenant_keys(
    State(state): State<AppState>,
    _op: Operator,
    Path(tenant): Path<Uuid>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let tenant = existing(&state, tenant).await?;
    list_for(&state, tenant).await
}

/// Creates a key for a tenant.
#[utoipa::path(post, path = "/v1/admin/tenants/{tenant_id}/keys", tag = "admin", security(("operator_token" = [])),
    params(("tenant_id" = Uuid, Path)), request_body = CreateKey, responses(
    (status = 201, body = CreatedKey),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")
))]
async fn create_tenant_key(
    State(state): State<AppState>,
    _op: Operator,
    Path(tenant): Path<Uuid>,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let tenant = existing(&state, tenant).await?;
    create_for(&state, tenant, body).await
}

/// Revokes a tenant's key.
#[utoipa::path(post, path = "/v1/admin/tenants/{tenant_id}/keys/{key_id}/revoke", tag = "admin",
    security(("operator_token" = [])),
    params(("tenant_id" = Uuid, Path), ("key_id" = Uuid, Path)), responses(
    (status = 200, body = KeyView),
    (status = 404, body = Problem, content_type = "application/problem+json")
))]
async fn revoke_tenant_key(
    State(state): State<AppState>,
    _op: Operator,
    Path((tenant, key)): Path<(Uuid, Uuid)>,
) -> Result<Json<KeyView>, ApiError> {
    let tenant = existing(&state, tenant).await?;
    revoke_for(&state, tenant, KeyId(key)).await
}
