//! Reading attribution results: one conversion's journey with its split under each model
//! (revenue per channel is read from the rollups, [`crate::rollups`]). Connections act for the
//! tenant.

use crate::error::StoreError;
use crate::identity::JourneyScope;
use crate::ids::TenantId;
use chrono::{DateTime, TimeDelta, Utc};
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

/// A conversion with its journey key.
#[derive(sqlx::FromRow)]
struct ConversionRow {
    #[sqlx(flatten)]
    conversion: ConversionEvent,
    journey: String,
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

/// A conversion, the touches of its journey (by the tenant's current lookback and stitching, as
/// the next recompute will see them) and its stored allocations, ordered by model then channel.
#[derive(Debug, Clone)]
pub struct ConversionDetail {
    pub conversion: ConversionEvent,
    pub touches: Vec<JourneyTouch>,
    pub allocations: Vec<StoredAllocation>,
}

/// Finds a conversion of `tenant` by Tally's id or the client's `event_id`.
pub async fn conversion_detail(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    key: &str,
) -> Result<ConversionDetail, StoreError> {
    let (lookback_days, cross_session): (i32, bool) = sqlx::query_as(
        "SELECT lookback_days, identity_cross_session FROM tenant_settings WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    let scope = JourneyScope::new(cross_session);
    let first = scope.first_id();
    let (conversion, mut journey): (ConversionEvent, String) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT e.id, e.event_id, e.occurred_at, e.revenue_cents, e.currency::text AS currency,
                    {first} AS journey
             FROM attribution_events e
             WHERE e.tenant_id = $3 AND e.kind = 'conversion' AND (e.id = $1 OR e.event_id = $2)
             ORDER BY e.id = $1 DESC LIMIT 1"
        )))
        .bind(key.parse::<Uuid>().ok())
        .bind(key)
        .bind(tenant)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row: ConversionRow| (row.conversion, row.journey))
        .ok_or(StoreError::NotFound)?;
    scope
        .keys(conn, tenant, std::iter::once(&mut journey))
        .await?;
    let ids = scope.ids(conn, tenant, &[journey.as_str()]).await?;
    let at = conversion.occurred_at;
    // The journey's window is inclusive at both ends (`tally_attribution::journey`).
    let span = (
        at - TimeDelta::days(lookback_days.into()),
        at + TimeDelta::microseconds(1),
    );
    let mut touches: Vec<JourneyTouch> = scope
        .touches(conn, tenant, (&ids.0, &ids.1), span)
        .await?
        .into_iter()
        .map(|(id, _, occurred_at, channel_code)| JourneyTouch {
            id,
            occurred_at,
            channel_code,
        })
        .collect();
    touches.sort_by(|a, b| {
        (a.occurred_at, a.id, &a.channel_code).cmp(&(b.occurred_at, b.id, &b.channel_code))
    });
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
