//! Dashboard sessions: a random token (cookie) standing for an API key inside a browser.
//!
//! The token is looked up the way API keys are (a policy shows exactly the row whose hash the
//! request presents), and every lookup re-reads the key, so revoking the key ends its sessions
//! at once.

use crate::db::{Database, set_tenant};
use crate::error::StoreError;
use crate::ids::{KeyId, TenantId};
use crate::tenants::{Scope, hash_secret, random_secret, scopes_from_db};
use chrono::{DateTime, Utc};
use sqlx::Row;

const TOKEN_PREFIX: &str = "ts_";

/// Who a live session acts for.
#[derive(Debug, Clone)]
pub struct SessionOwner {
    pub tenant_id: TenantId,
    pub key_id: KeyId,
    pub scopes: Vec<Scope>,
}

impl Database {
    /// Opens a session for `key_id` until `expires_at` and returns its token (shown once).
    pub async fn create_session(
        &self,
        tenant: TenantId,
        key_id: KeyId,
        expires_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let token = random_secret(TOKEN_PREFIX);
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO dashboard_sessions (tenant_id, key_id, token_sha256, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant)
        .bind(key_id)
        .bind(&hash_secret(&token)[..])
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The owner of an unexpired session whose key is still valid, if any.
    pub async fn find_session(&self, token: &str) -> Result<Option<SessionOwner>, StoreError> {
        let hash = hash_secret(token);
        let mut tx = self.app_pool().begin().await?;
        sqlx::query("SELECT set_config('app.session_sha256', $1, true)")
            .bind(hex::encode(hash))
            .execute(&mut *tx)
            .await?;
        let session: Option<(TenantId, KeyId)> = sqlx::query_as(
            "SELECT tenant_id, key_id FROM dashboard_sessions
             WHERE token_sha256 = $1 AND expires_at > now()",
        )
        .bind(&hash[..])
        .fetch_optional(&mut *tx)
        .await?;
        let Some((tenant_id, key_id)) = session else {
            return Ok(None);
        };
        set_tenant(&mut tx, tenant_id).await?;
        let key = sqlx::query(
            "SELECT scopes FROM api_keys
             WHERE tenant_id = $1 AND key_id = $2 AND revoked_at IS NULL",
        )
        .bind(tenant_id)
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        key.map(|r| {
            Ok(SessionOwner {
                tenant_id,
                key_id,
                scopes: scopes_from_db(r.try_get("scopes")?),
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| e.into())
    }

    /// Ends a session (sign-out); an unknown token is already ended.
    pub async fn delete_session(&self, tenant: TenantId, token: &str) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE token_sha256 = $1")
            .bind(&hash_secret(token)[..])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
