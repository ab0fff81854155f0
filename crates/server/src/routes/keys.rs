//! A tenant's own API keys (scope `admin`), and `GET /v1/me` for any valid key.

use crate::auth::{Authorized, Caller, scope};
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_store::tenants::{ApiKeyInfo, KeyKind, KeyLimit, NewApiKey, Scope};
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
    #[schema(value_type = KindName)]
    pub kind: &'static str,
    pub scopes: Vec<String>,
    /// The key's own events per minute, on top of the tenant's (publishable keys).
    pub rate_limit_per_minute: Option<i32>,
    pub rate_limit_burst: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyInfo> for KeyView {
    fn from(k: ApiKeyInfo) -> Self {
        Self {
            key_id: k.key_id.0,
            name: k.name,
            prefix: k.prefix,
            kind: k.kind.as_str(),
            scopes: k.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            rate_limit_per_minute: k.rate_limit.map(|l| l.per_minute),
            rate_limit_burst: k.rate_limit.map(|l| l.burst),
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

/// A key's kind: `secret` (servers; any scopes) or `publishable` (web pages; ingest only).
#[derive(ToSchema)]
pub enum KindName {
    #[schema(rename = "secret")]
    Secret,
    #[schema(rename = "publishable")]
    Publishable,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[serde(default)]
    pub name: String,
    /// `secret` (default) or `publishable`: a publishable key (`pk_…`) may only send events,
    /// only from the tenant's `allowed_origins`, and gets scopes `["ingest"]`.
    #[serde(default)]
    #[schema(value_type = Option<KindName>)]
    pub kind: Option<String>,
    /// Any of `ingest`, `read`, `admin` (a publishable key takes none or `["ingest"]`).
    #[serde(default)]
    #[schema(min_items = 1, inline, schema_with = scope_list)]
    pub scopes: Vec<String>,
    /// The key's own limit in events per minute, on top of the tenant's (default for
    /// publishable keys 60000, burst 2000; secret keys have none unless given).
    #[schema(minimum = 1, maximum = 1000000000)]
    pub rate_limit_per_minute: Option<i32>,
    #[schema(minimum = 1, maximum = 1000000000)]
    pub rate_limit_burst: Option<i32>,
}

fn field_error(pointer: &str, code: &str, message: impl Into<String>) -> crate::error::FieldError {
    crate::error::FieldError {
        pointer: pointer.into(),
        code: code.into(),
        message: message.into(),
    }
}

fn scope_list() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(tally_store::doc::scopes())
        .min_items(Some(1))
        .build()
}

impl CreateKey {
    fn parsed_kind(&self) -> Result<KeyKind, ApiError> {
        let Some(raw) = &self.kind else {
            return Ok(KeyKind::Secret);
        };
        let kind = KeyKind::parse(raw).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid key kind",
                vec![field_error(
                    "/kind",
                    "invalid_value",
                    format!("unknown kind {raw:?}; use secret or publishable"),
                )],
            )
        })?;
        if kind == KeyKind::Publishable && self.scopes.iter().any(|s| s != "ingest") {
            return Err(ApiError::unprocessable(
                "a publishable key can only ingest",
                vec![field_error(
                    "/scopes",
                    "not_allowed",
                    "a publishable key's only scope is ingest: leave scopes out",
                )],
            ));
        }
        Ok(kind)
    }

    fn parsed_limit(&self) -> Result<Option<KeyLimit>, ApiError> {
        let mut errors = Vec::new();
        for (pointer, value) in [
            ("/rate_limit_per_minute", self.rate_limit_per_minute),
            ("/rate_limit_burst", self.rate_limit_burst),
        ] {
            if value.is_some_and(|v| !KeyLimit::RANGE.contains(&v)) {
                errors.push(field_error(
                    pointer,
                    "out_of_range",
                    "must be from 1 to 1000000000",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::unprocessable("invalid rate limit", errors));
        }
        match (self.rate_limit_per_minute, self.rate_limit_burst) {
            (None, None) => Ok(None),
            (Some(per_minute), Some(burst)) => Ok(Some(KeyLimit { per_minute, burst })),
            _ => Err(ApiError::unprocessable(
                "give both rate_limit_per_minute and rate_limit_burst, or neither",
                vec![field_error(
                    "",
                    "required",
                    "a key's limit needs both members",
                )],
            )),
        }
    }

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

/// Creates a key (scope `admin`); several keys may be valid at once, for rotation. A
/// `publishable` key is for web pages (see `allowed_origins` in the settings).
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
    let kind = body.parsed_kind()?;
    let limit = body.parsed_limit()?;
    let key = match kind {
        KeyKind::Publishable => {
            state
                .db
                .create_publishable_key(tenant, &body.name, limit)
                .await?
        }
        KeyKind::Secret => {
            let scopes = body.parsed_scopes()?;
            state
                .db
                .create_secret_key(tenant, &body.name, &scopes, limit)
                .await?
        }
    };
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
