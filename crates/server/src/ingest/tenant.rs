//! Everything ingestion needs to know about a tenant, cached: its channel resolver (global
//! rules + its overrides), its default currency and its rate limiter.
//!
//! Building a resolver reads ~170 rules; doing that per request would cost more than the insert.
//! Entries live 30 s, and a rule change through this process drops the tenant's entry at once
//! (other processes pick it up within the TTL).
//!
//! The rate limiter is state, not a copy of settings, so it is kept apart from that entry: when
//! it lived inside it, every expiry (each 30 s) and every rule change gave the tenant a fresh
//! burst (with 1/min and burst 5, 15 events passed in 62 s). A reloaded entry takes the
//! tenant's existing limiter and builds a new one only when the tenant's limits changed. Keys
//! with a limit of their own (publishable keys) get a limiter per key the same way.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::ingest::limit::{Budget, TenantLimit};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;
use tally_core::channel::ChannelResolver;
use tally_core::money::CurrencyCode;
use tally_store::{Database, KeyId, TenantId};

pub struct TenantIngest {
    pub resolver: ChannelResolver,
    pub currency: Option<CurrencyCode>,
    pub limit: Arc<TenantLimit>,
    /// The `allowed_origins` setting: where publishable keys may be used from.
    pub allowed_origins: Vec<String>,
}

#[derive(Clone)]
pub struct TenantCache {
    entries: moka::future::Cache<TenantId, Arc<TenantIngest>>,
    /// No expiry: dropping a limiter would reset the tenant's budget. Bounded by size only (a
    /// limiter is a few dozen bytes), far above the number of tenants one installation serves.
    limits: moka::sync::Cache<TenantId, Arc<TenantLimit>>,
    /// Keys' own limiters, kept like the tenants'.
    key_limits: moka::sync::Cache<KeyId, Arc<TenantLimit>>,
}

impl Default for TenantCache {
    fn default() -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            limits: moka::sync::Cache::new(1_000_000),
            key_limits: moka::sync::Cache::new(1_000_000),
        }
    }
}

impl TenantCache {
    pub async fn get(
        &self,
        db: &Database,
        tenant: TenantId,
    ) -> Result<Arc<TenantIngest>, ApiError> {
        self.entries
            .try_get_with(tenant, self.load(db, tenant))
            .await
            .map_err(|e: Arc<ApiError>| {
                ApiError::new(e.parts().status, e.parts().code, e.parts().detail.clone())
            })
    }

    /// Drops the tenant's cached rules and settings (its limiter stays).
    pub async fn forget(&self, tenant: TenantId) {
        self.entries.invalidate(&tenant).await;
    }

    /// Takes `events` from the tenant's budget and, for a key with a limit of its own, from
    /// the key's; the answer reports the tighter of the two.
    pub fn admit(
        &self,
        caller: &Caller,
        tenant: &TenantIngest,
        events: usize,
    ) -> Result<Budget, ApiError> {
        let budget = tenant.limit.take(events)?;
        let Some(own) = caller.rate_limit else {
            return Ok(budget);
        };
        let key = limiter(
            &self.key_limits,
            caller.key_id,
            u32::try_from(own.per_minute).unwrap_or(1),
            u32::try_from(own.burst).unwrap_or(1),
        );
        let key_budget = key.take(events).map_err(|refused| {
            let detail = format!("this key's own {}", refused.parts().detail);
            refused.with_detail(detail)
        })?;
        Ok(if key_budget.remaining < budget.remaining {
            key_budget
        } else {
            budget
        })
    }

    async fn load(&self, db: &Database, tenant: TenantId) -> Result<Arc<TenantIngest>, ApiError> {
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
            limit: limiter(
                &self.limits,
                tenant,
                u32::try_from(settings.rate_limit_per_minute).unwrap_or(1),
                u32::try_from(settings.rate_limit_burst).unwrap_or(1),
            ),
            allowed_origins: settings.allowed_origins,
        }))
    }
}

/// The owner's limiter if it enforces these limits, else a new one in its place.
fn limiter<K: Hash + Eq + Send + Sync + 'static>(
    limits: &moka::sync::Cache<K, Arc<TenantLimit>>,
    owner: K,
    per_minute: u32,
    burst: u32,
) -> Arc<TenantLimit> {
    match limits.get(&owner) {
        Some(limit) if limit.enforces(per_minute, burst) => limit,
        _ => {
            let limit = Arc::new(TenantLimit::new(per_minute, burst));
            limits.insert(owner, limit.clone());
            limit
        }
    }
}
