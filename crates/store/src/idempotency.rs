//! Stored answers to requests sent with an `Idempotency-Key` (migration 0061).
//!
//! A request holds its key for the whole of its handling: [`claim`] takes a transaction-level
//! advisory lock on (tenant, route, key), so a concurrent retry waits and then finds the stored
//! answer instead of running the handler a second time. The answer is recorded by [`record`] in
//! that same transaction, after the handler's own write committed.

use crate::db::TenantTx;
use crate::error::StoreError;
use crate::ids::TenantId;
use sqlx::Row;

/// The first request's hash and answer for a key.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub request_sha256: Vec<u8>,
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl crate::Database {
    /// Opens the tenant transaction that holds `key` of `route` until it ends, and returns the
    /// answer stored for it, if any.
    pub async fn claim_idempotency_key(
        &self,
        tenant: TenantId,
        route: &str,
        key: &str,
    ) -> Result<(TenantTx, Option<StoredResponse>), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text || ' ' || $2 || ' ' || $3, 0))",
        )
        .bind(tenant.to_string())
        .bind(route)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT request_sha256, status, content_type, response_body FROM idempotency_keys
             WHERE route = $1 AND key = $2",
        )
        .bind(route)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let stored = row
            .map(|r| -> Result<_, sqlx::Error> {
                Ok(StoredResponse {
                    request_sha256: r.try_get("request_sha256")?,
                    status: u16::try_from(r.try_get::<i16, _>("status")?).unwrap_or(200),
                    content_type: r.try_get("content_type")?,
                    body: r.try_get("response_body")?,
                })
            })
            .transpose()?;
        Ok((tx, stored))
    }
}

impl crate::Database {
    /// Deletes up to `batch` keys older than the retention (24 hours; migration 0120's
    /// policies decide which rows the operator role may see and delete, so that no caller can
    /// prune a key early). Returns how many went.
    pub async fn prune_idempotency_keys(&self, batch: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM idempotency_keys i
             USING (SELECT tenant_id, route, key FROM idempotency_keys LIMIT $1) old
             WHERE (i.tenant_id, i.route, i.key) = (old.tenant_id, old.route, old.key)",
        )
        .bind(batch)
        .execute(self.operator_pool())
        .await?;
        Ok(done.rows_affected())
    }
}

/// Stores the answer for a claimed key and commits, releasing it.
pub async fn record(
    mut tx: TenantTx,
    tenant: TenantId,
    route: &str,
    key: &str,
    response: &StoredResponse,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO idempotency_keys
             (tenant_id, route, key, request_sha256, status, content_type, response_body)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant)
    .bind(route)
    .bind(key)
    .bind(&response.request_sha256)
    .bind(i16::try_from(response.status).unwrap_or(200))
    .bind(response.content_type.as_deref())
    .bind(&response.body)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
