//! Reading attribution results: one conversion's journey with its split under each model, and
//! the most frequent conversion paths (revenue per channel is read from the rollups,
//! [`crate::rollups`]). Connections act for the tenant.

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

/// A channel sequence that led to conversions, with how many and how much (one currency).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ConversionPath {
    /// Channels touch by touch, oldest first, repeats in a row collapsed; `["direct"]` for
    /// conversions without touches (as the models credit them).
    pub path: Vec<String>,
    pub currency: String,
    pub conversions: i64,
    pub revenue_cents: i64,
}

/// The `limit` most frequent paths of the conversions in `[from, to)`. Journeys are rebuilt the
/// way [`conversion_detail`] builds one (same identity, within the lookback), so a path always
/// agrees with the drill-down; the cost grows with the window's conversions (index lookups per
/// conversion), not with the tenant's events.
pub async fn top_paths(
    conn: &mut PgConnection,
    span: (DateTime<Utc>, DateTime<Utc>),
    limit: i64,
) -> Result<Vec<ConversionPath>, StoreError> {
    Ok(sqlx::query_as(
        "WITH conv AS (
             SELECT c.id, c.occurred_at, COALESCE(c.revenue_cents, 0) AS revenue_cents,
                    c.currency::text AS currency,
                    COALESCE(c.user_id, c.anonymous_id, c.session_id) AS who
             FROM attribution_events c
             WHERE c.kind = 'conversion' AND c.occurred_at >= $1 AND c.occurred_at < $2
         ), touches AS (
             -- The converting identities go in as an array, as in recompute's load_window:
             -- the plan is then a nested loop over the identity index whatever the statistics
             -- say. Joined to the conversions directly, stale statistics after a bulk load made
             -- the planner scan every touch of the month once per conversion.
             SELECT i.who, t.id, t.channel_code, t.occurred_at
             FROM tenant_settings s, unnest(ARRAY(SELECT DISTINCT who FROM conv)) AS i(who)
             JOIN attribution_events t ON t.kind = 'touch'
                  AND COALESCE(t.user_id, t.anonymous_id, t.session_id) = i.who
             WHERE t.occurred_at >= $1 - make_interval(days => s.lookback_days)
               AND t.occurred_at < $2
         ), steps AS (
             SELECT conv.id, t.channel_code, t.occurred_at, t.id AS touch_id,
                    lag(t.channel_code) OVER (PARTITION BY conv.id ORDER BY t.occurred_at, t.id)
                      AS previous
             FROM conv, tenant_settings s, touches t
             WHERE t.who = conv.who
               AND t.occurred_at BETWEEN conv.occurred_at - make_interval(days => s.lookback_days)
                                     AND conv.occurred_at
         ), journeys AS (
             -- One grouped pass over the steps (a subquery per conversion read them all again).
             SELECT id, array_agg(channel_code ORDER BY occurred_at, touch_id) AS path
             FROM steps WHERE previous IS DISTINCT FROM channel_code
             GROUP BY id
         ), paths AS (
             SELECT conv.currency, conv.revenue_cents, COALESCE(j.path, ARRAY['direct']) AS path
             FROM conv LEFT JOIN journeys j ON j.id = conv.id
         )
         SELECT path, currency, count(*) AS conversions, sum(revenue_cents)::bigint AS revenue_cents
         FROM paths
         GROUP BY path, currency
         ORDER BY conversions DESC, revenue_cents DESC, path, currency
         LIMIT $3",
    )
    .bind(span.0)
    .bind(span.1)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Allocation rows of the tenant (all windows and versions), for the benchmark's report.
pub async fn allocation_count(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM attribution_allocations")
            .fetch_one(conn)
            .await?,
    )
}
