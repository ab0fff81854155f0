//! Everything ingestion needs to know about a tenant, cached: its channel resolver (global
//! rules + its overrides), its default currency and its rate limiter.
//!
//! Building a resolver reads ~170 rules; doing that per request would cost more than the insert.
//! Entries live 30 s, and a rule change through this process drops the tenant's entry at once
//! (other processes pick it up within the TTL). The rate limiter lives in the same entry, so a
//! settings change also resets the tenant's bucket, which errs on the caller's side.

use crate::error::ApiError;
use crate::ingest::limit::TenantLimit;
use std::sync::Arc;
use std::time::Duration;
use tally_core::channel::ChannelResolver;
use tally_core::money::CurrencyCode;
use tally_store::{Database, TenantId};

pub struct TenantIngest {
    pub resolver: ChannelResolver,
    pub currency: Option<CurrencyCode>,
    pub limit: TenantLimit,
}

#[derive(Clone)]
pub struct TenantCache(moka::future::Cache<TenantId, Arc<TenantIngest>>);

impl Default for TenantCache {
    fn default() -> Self {
        Self(
            moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
        )
    }
}

impl TenantCache {
    pub async fn get(
        &self,
        db: &Database,
        tenant: TenantId,
    ) -> Result<Arc<TenantIngest>, ApiError> {
        self.0
            .try_get_with(tenant, load(db, tenant))
            .await
            .map_err(|e: Arc<ApiError>| {
                ApiError::new(e.parts().status, e.parts().code, e.parts().detail.clone())
            })
    }

    pub async fn forget(&self, tenant: TenantId) {
        self.0.invalidate(&tenant).await;
    }
}

async fn load(db: &Database, tenant: TenantId) -> Result<Arc<TenantIngest>, ApiError> {
    let mut tx = db.tenant_tx(tenant).await?;
    let (global, own) = tally_store::channels::load_rules(&mut tx).await?;
    tx.commit().await?;
    let settings = db.ingest_settings(tenant).await?;
    let resolver = ChannelResolver::new(&global, &own).map_err(|e| {
        tracing::error!(error = %e, "stored channel rules do not build a resolver");
        ApiError::internal()
    })?;
    Ok(Arc::new(TenantIngest {
        resolver,
        currency: CurrencyCode::parse(&settings.currency).ok(),
        limit: TenantLimit::new(
            u32::try_from(settings.rate_limit_per_minute).unwrap_or(1),
            u32::try_from(settings.rate_limit_burst).unwrap_or(1),
        ),
    }))
}
