//! Authentication: tenant API keys, dashboard sessions and the operator token.
//!
//! A request without a key may carry a dashboard session cookie instead (see
//! [`crate::dashboard::session`]); a key, when present, always wins.
//!
//! A key arrives as `Authorization: Bearer tk_...` or `X-API-Key: tk_...`. Looking it up costs a
//! database round trip, which would dominate a single-event ingest, so owners are cached for a
//! few seconds (moka, keyed by the secret's SHA-256, never the secret). A revocation through this
//! process evicts at once; another process's revocation takes effect within the TTL.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tally_store::tenants::{KeyOwner, Scope, hash_secret};
use tally_store::{KeyId, TenantId};

const CACHE_TTL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct KeyCache(moka::sync::Cache<[u8; 32], Option<KeyOwner>>);

impl KeyCache {
    pub fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
        )
    }

    /// Forgets every cached key of a tenant (after a revocation).
    pub fn evict_tenant(&self, tenant: TenantId) {
        let stale: Vec<[u8; 32]> = self
            .0
            .iter()
            .filter(|(_, owner)| owner.as_ref().is_some_and(|o| o.tenant_id == tenant))
            .map(|(hash, _)| *hash)
            .collect();
        for hash in stale {
            self.0.invalidate(&hash);
        }
    }
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new()
    }
}

/// The authenticated tenant behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: TenantId,
    pub key_id: KeyId,
    pub scopes: Vec<Scope>,
}

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this API key lacks the `{}` scope",
                scope.as_str()
            )))
        }
    }
}

fn presented_secret(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get(AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    parts.headers.get("x-api-key")?.to_str().ok().map(str::trim)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(secret) = presented_secret(parts) else {
            if let Some(token) = crate::dashboard::session::token(&parts.headers) {
                return crate::dashboard::session::caller(parts, state, token).await;
            }
            return Err(ApiError::unauthorized(
                "send an API key as `Authorization: Bearer tk_...` or `X-API-Key`",
            ));
        };
        let hash = hash_secret(secret);
        let owner = match state.keys.0.get(&hash) {
            Some(owner) => owner,
            None => {
                let owner = state.db.find_key_owner(secret).await?;
                state.keys.0.insert(hash, owner.clone());
                owner
            }
        };
        match owner {
            Some(o) if !o.revoked => Ok(Caller {
                tenant_id: o.tenant_id,
                key_id: o.key_id,
                scopes: o.scopes,
            }),
            Some(_) => Err(ApiError::unauthorized("this API key has been revoked")),
            None => Err(ApiError::unauthorized("unknown API key")),
        }
    }
}

/// The installation's operator (`TALLY_ADMIN_TOKEN`), for cross-tenant administration.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.config.admin_token.as_deref() else {
            return Err(ApiError::unauthorized(
                "the admin API is disabled: start Tally with TALLY_ADMIN_TOKEN set",
            ));
        };
        let presented = presented_secret(parts).ok_or_else(|| {
            ApiError::unauthorized("send the operator token as `Authorization: Bearer ...`")
        })?;
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Operator)
        } else {
            Err(ApiError::unauthorized("invalid operator token"))
        }
    }
}
