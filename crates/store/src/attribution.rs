//! Reading attribution results: one conversion's journey with its split under each model
//! (revenue per channel is read from the rollups, [`crate::rollups`]). Connections act for the
//! tenant.

use crate::error::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ConversionEvent {
    pub id: Uuid,
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub revenue_cents: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JourneyTouch {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub channel_code: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredAllocation {
    pub model: String,
    pub channel_code: String,
    pub allocated_cents: i64,
    pub weight: f64,
}

/// A conversion, the touches of its journey (by the tenant's current lookback) and its stored
/// allocations, ordered by model then channel.
#[derive(Debug, Clone)]
pub struct ConversionDetail {
    pub conversion: ConversionEvent,
    pub touches: Vec<JourneyTouch>,
    pub allocations: Vec<StoredAllocation>,
}

/// Finds a conversion by Tally's id or the client's `event_id`.
pub async fn conversion_detail(
    conn: &mut PgConnection,
    model_version: &str,
    key: &str,
) -> Result<ConversionDetail, StoreError> {
    let conversion: ConversionEvent = sqlx::query_as(
        "SELECT id, event_id, occurred_at, revenue_cents, currency::text AS currency
         FROM attribution_events
         WHERE kind = 'conversion' AND (id = $1 OR event_id = $2)
         ORDER BY id = $1 DESC LIMIT 1",
    )
    .bind(key.parse::<Uuid>().ok())
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    let touches = sqlx::query_as(
        "SELECT t.id, t.occurred_at, t.channel_code
         FROM attribution_events c, tenant_settings s, attribution_events t
         WHERE c.id = $1 AND t.tenant_id = c.tenant_id AND t.kind = 'touch'
           AND COALESCE(t.user_id, t.anonymous_id, t.session_id)
             = COALESCE(c.user_id, c.anonymous_id, c.session_id)
           AND t.occurred_at BETWEEN c.occurred_at - make_interval(days => s.lookback_days) AND c.occurred_at
         ORDER BY t.occurred_at, t.id, t.channel_code",
    )
    .bind(conversion.id)
    .fetch_all(&mut *conn)
    .await?;
    let allocations = sqlx::query_as(
        "SELECT model, channel_code, allocated_cents, weight FROM attribution_allocations
         WHERE conversion_id = $1 AND model_version = $2 ORDER BY model, channel_code",
    )
    .bind(conversion.id)
    .bind(model_version)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ConversionDetail {
        conversion,
        touches,
        allocations,
    })
}

/// Allocation rows of the tenant (all windows and versions), for the benchmark's report.
pub async fn allocation_count(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM attribution_allocations")
            .fetch_one(conn)
            .await?,
    )
}
