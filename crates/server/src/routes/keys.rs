//! A tenant's own API keys (scope `admin`), and `GET /v1/me` for any valid key.

use crate::auth::{Authorized, Caller, scope};
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_store::tenants::{ApiKeyInfo, NewApiKey, Scope};
use tally_store::{KeyId, TenantId};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// A key as listed; the secret is never shown again after creation.
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub key_id: Uuid,
    pub name: String,
    /// The first characters of the secret, to tell keys apart.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyInfo> for KeyView {
    fn from(k: ApiKeyInfo) -> Self {
        Self {
            key_id: k.key_id.0,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key with its secret: store it now, it is not retrievable later.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: KeyView,
    pub secret: String,
}

impl From<NewApiKey> for CreatedKey {
    fn from(k: NewApiKey) -> Self {
        Self {
            key: k.info.into(),
            secret: k.secret,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[serde(default)]
    pub name: String,
    /// Any of `ingest`, `read`, `admin`.
    #[schema(min_items = 1, inline, schema_with = scope_list)]
    pub scopes: Vec<String>,
}

fn scope_list() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(tally_store::doc::scopes())
        .min_items(Some(1))
        .build()
}

impl CreateKey {
    pub fn parsed_scopes(&self) -> Result<Vec<Scope>, ApiError> {
        if self.scopes.is_empty() {
            return Err(ApiError::unprocessable(
                "a key needs at least one scope",
                vec![crate::error::FieldError {
                    pointer: "/scopes".into(),
                    code: "required".into(),
                    message: "give one or more of ingest, read, admin".into(),
                }],
            ));
        }
        let mut errors = Vec::new();
        let mut scopes = Vec::new();
        for (i, raw) in self.scopes.iter().enumerate() {
            match Scope::parse(raw) {
                Some(s) if !scopes.contains(&s) => scopes.push(s),
                Some(_) => {}
                None => errors.push(crate::error::FieldError {
                    pointer: format!("/scopes/{i}"),
                    code: "invalid_value".into(),
                    message: format!("unknown scope {raw:?}; use ingest, read or admin"),
                }),
            }
        }
        if errors.is_empty() {
            Ok(scopes)
        } else {
            Err(ApiError::unprocessable("invalid scopes", errors))
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    pub scopes: Vec<String>,
}

/// Who this key is: its tenant and scopes.
#[utoipa::path(get, path = "/v1/me", tag = "keys", security(("api_key" = [])), responses(
    (status = 200, body = Me),
    (status = 401, body = Problem, content_type = "application/problem+json")
))]
async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        tenant_id: caller.tenant_id.0,
        key_id: caller.key_id.0,
        scopes: caller
            .scopes
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
    })
}

/// This tenant's keys (scope `admin`).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", security(("api_key" = ["admin"])), responses(
    (status = 200, body = Vec<KeyView>),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json")
))]
async fn list_keys(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    list_for(&state, caller.tenant_id).await
}

/// Creates a key (scope `admin`); several keys may be valid at once, for rotation.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", security(("api_key" = ["admin"])), request_body = CreateKey, responses(
    (status = 201, body = CreatedKey),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")
))]
async fn create_key(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    create_for(&state, caller.tenant_id, body).await
}

/// Revokes a key (scope `admin`); it stops working at once.
#[utoipa::path(post, path = "/v1/keys/{key_id}/revoke", tag = "keys", security(("api_key" = ["admin"])),
    params(("key_id" = Uuid, Path)), responses(
    (status = 200, body = KeyView),
    (status = 404, body = Problem, content_type = "application/problem+json")
))]
async fn revoke_key(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Path(key_id): Path<Uuid>,
) -> Result<Json<KeyView>, ApiError> {
    revoke_for(&state, caller.tenant_id, KeyId(key_id)).await
}

/// Shared by the tenant's own routes and the operator's.
pub async fn list_for(state: &AppState, tenant: TenantId) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = state.db.list_api_keys(tenant).await?;
    Ok(Json(keys.into_iter().map(Into::into).collect()))
}

pub async fn create_for(
    state: &AppState,
    tenant: TenantId,
    body: CreateKey,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let scopes = body.parsed_scopes()?;
    let key = state.db.create_api_key(tenant, &body.name, &scopes).await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

pub async fn revoke_for(
    state: &AppState,
    tenant: TenantId,
    key: KeyId,
) -> Result<Json<KeyView>, ApiError> {
    let revoked = state.db.revoke_api_key(tenant, key).await?;
    state.keys.evict_tenant(tenant).await;
    Ok(Json(revoked.into()))
}
