//! The read side's summaries (migration 0041): revenue per (local hour | local day, model,
//! channel, currency), claimed and verified, and paid-not-tracked money per bucket. Reads are
//! range scans of these rows, never of events.
//!
//! Buckets are cut in the tenant's time zone. Hour buckets are aligned on the tenant's local
//! midnight (`tally_local_hour`), so a DST day has 23 or 25 of them and the repeated hour is two
//! buckets, not one; day rows are the sums of a day's hour rows. Any `[from, to)` whose bounds are
//! local hour boundaries is answered exactly: whole days from day rows, the edges from hour rows.
//! Other bounds are refused by the API with the granularity (see [`is_hour_aligned`]).

use crate::error::StoreError;
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use tally_core::reconcile::{Item, Status};
use uuid::Uuid;

/// Local hour and day bounds of `[start, end)` in `tz`: the hours and days that overlap it.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct Spans {
    hour_from: DateTime<Utc>,
    hour_to: DateTime<Utc>,
    day_from: DateTime<Utc>,
    day_to: DateTime<Utc>,
}

async fn spans(
    conn: &mut PgConnection,
    window: (DateTime<Utc>, DateTime<Utc>),
    tz: &str,
) -> Result<Spans, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tally_local_hour($1, $3) AS hour_from,
                tally_local_hour($2 - interval '1 microsecond', $3) + interval '1 hour' AS hour_to,
                date_trunc('day', $1, $3) AS day_from,
                tally_next_local_day($2 - interval '1 microsecond', $3) AS day_to",
    )
    .bind(window.0)
    .bind(window.1)
    .bind(tz)
    .fetch_one(conn)
    .await?)
}

/// The span a job over `window` works on: `window` widened to the tenant's local hour boundaries
/// (`tally_local_hour_cover`), so the rollup buckets it rebuilds hold only its own conversions
/// and orders. Windows are cut so already when they are scheduled; this covers a time zone that
/// changed since.
pub async fn job_span(
    conn: &mut PgConnection,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Result<(DateTime<Utc>, DateTime<Utc>), StoreError> {
    sqlx::query_as(
        "SELECT c.cover_start, c.cover_end FROM tenant_settings,
                tally_local_hour_cover($1, $2, time_zone) AS c",
    )
    .bind(window.0)
    .bind(window.1)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// One allocation as the rollups count it: its claimed cents and weight, and its share of the
/// order's verified net (0 while nothing is verified).
#[derive(Debug, Clone, Copy)]
pub struct Contribution<'a> {
    pub conversion_id: Uuid,
    pub model: &'a str,
    pub channel_code: &'a str,
    pub currency: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub allocated_cents: i64,
    pub weight: f64,
    pub verified_cents: i64,
}

/// The local hour of each of `times` in `tz`, by the database's own `tally_local_hour`, so the
/// buckets written here are the ones readers and other writers cut.
async fn local_hours(
    conn: &mut PgConnection,
    times: &[DateTime<Utc>],
    tz: &str,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT tally_local_hour(t, $2) FROM unnest($1::timestamptz[]) WITH ORDINALITY AS u(t, i)
         ORDER BY i",
    )
    .bind(times)
    .bind(tz)
    .fetch_all(conn)
    .await?)
}

/// Deletes `table`'s rows of one grain in `[from, to)` (for revenue rows, of one model version).
async fn clear(
    conn: &mut PgConnection,
    table: &str,
    tenant: TenantId,
    model_version: Option<&str>,
    grain: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<(), StoreError> {
    let versioned = if model_version.is_some() {
        "AND model_version = $5"
    } else {
        ""
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE tenant_id = $1 AND grain = $2 AND bucket_start >= $3
         AND bucket_start < $4 {versioned}"
    )))
    .bind(tenant)
    .bind(grain)
    .bind(from)
    .bind(to)
    .bind(model_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds contributions to the hour and day rows of their local hour and day: the fast pass, which
/// attributes new conversions ahead of their window's full run (crates/worker/src/recompute.rs),
/// in the transaction that writes their splits. The full run rebuilds the window's rows from
/// scratch ([`rebuild_revenue`]), so what is added here lives until then.
pub async fn add_revenue(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    tz: &str,
    contributions: &[Contribution<'_>],
) -> Result<(), StoreError> {
    if contributions.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO revenue_rollups (tenant_id, model_version, grain, bucket_start, time_zone,
             model, channel_code, currency, conversions, claimed_cents, verified_cents)
         SELECT $1, $2, g.grain,
                CASE g.grain WHEN 'hour' THEN tally_local_hour(u.t, $3)
                             ELSE date_trunc('day', u.t, $3) END,
                $3, u.model, u.channel, u.currency, sum(u.weight), sum(u.cents), sum(u.verified)
         FROM unnest($4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::float8[],
                     $9::bigint[], $10::bigint[])
              AS u(t, model, channel, currency, weight, cents, verified)
         CROSS JOIN (VALUES ('hour'), ('day')) AS g(grain)
         GROUP BY 3, 4, 6, 7, 8
         ON CONFLICT (tenant_id, model_version, grain, bucket_start, model, channel_code, currency)
         DO UPDATE SET conversions = revenue_rollups.conversions + EXCLUDED.conversions,
                       claimed_cents = revenue_rollups.claimed_cents + EXCLUDED.claimed_cents,
                       verified_cents = revenue_rollups.verified_cents + EXCLUDED.verified_cents,
                       computed_at = now()",
    )
    .bind(tenant)
    .bind(model_version)
    .bind(tz)
    .bind(
        contributions
            .iter()
            .map(|c| c.occurred_at)
            .collect::<Vec<_>>(),
    )
    .bind(contributions.iter().map(|c| c.model).collect::<Vec<_>>())
    .bind(
        contributions
            .iter()
            .map(|c| c.channel_code)
            .collect::<Vec<_>>(),
    )
    .bind(contributions.iter().map(|c| c.currency).collect::<Vec<_>>())
    .bind(contributions.iter().map(|c| c.weight).collect::<Vec<_>>())
    .bind(
        contributions
            .iter()
            .map(|c| c.allocated_cents)
            .collect::<Vec<_>>(),
    )
    .bind(
        contributions
            .iter()
            .map(|c| c.verified_cents)
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Rebuilds the revenue rollups of `window`, which is cut at local hour boundaries
/// (`tally_local_hour_cover`), from every allocation of its conversions: the hour rows from
/// `contributions`, then the day rows of the days it overlaps from their hour rows. In the
/// caller's job transaction, after the tenant's recompute lock.
///
/// The hour rows are summed here rather than by a join of stored allocations and verified shares
/// in SQL: the job has both in memory, and writing the shares only to join them back cost more
/// than the recompute itself (over 10 minutes on the bench month, with the statistics of rows
/// written earlier in the same transaction unknown to the planner). Fractional conversions are
/// summed in conversion order (floating-point addition is not associative), so a rerun writes
/// bit-identical rows.
pub async fn rebuild_revenue(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    window: (DateTime<Utc>, DateTime<Utc>),
    tz: &str,
    contributions: &[Contribution<'_>],
) -> Result<(), StoreError> {
    let s = spans(conn, window, tz).await?;
    let mut order: Vec<&Contribution> = contributions.iter().collect();
    order.sort_by_key(|c| c.conversion_id);
    let mut times: Vec<DateTime<Utc>> = order.iter().map(|c| c.occurred_at).collect();
    times.sort_unstable();
    times.dedup();
    let hours = local_hours(conn, &times, tz).await?;
    type Key<'a> = (DateTime<Utc>, &'a str, &'a str, &'a str);
    let mut sums: BTreeMap<Key, (f64, i64, i64)> = BTreeMap::new();
    for c in order {
        let at = times.binary_search(&c.occurred_at).map_err(|_| {
            StoreError::Invalid("a contribution's time is not among the bucketed ones".into())
        })?;
        let sum = sums
            .entry((hours[at], c.model, c.channel_code, c.currency))
            .or_default();
        sum.0 += c.weight;
        sum.1 = checked_sum(sum.1, c.allocated_cents)?;
        sum.2 = checked_sum(sum.2, c.verified_cents)?;
    }
    clear(
        conn,
        "revenue_rollups",
        tenant,
        Some(model_version),
        "hour",
        (s.hour_from, s.hour_to),
    )
    .await?;
    let mut rows = RollupColumns::default();
    for ((bucket, model, channel, currency), (conversions, claimed, verified)) in sums {
        rows.bucket.push(bucket);
        rows.model.push(model);
        rows.channel.push(channel);
        rows.currency.push(currency);
        rows.conversions.push(conversions);
        rows.claimed.push(claimed);
        rows.verified.push(verified);
    }
    sqlx::query(
        "INSERT INTO revenue_rollups (tenant_id, model_version, grain, bucket_start, time_zone,
             model, channel_code, currency, conversions, claimed_cents, verified_cents)
         SELECT $1, $2, 'hour', u.bucket, $3, u.model, u.channel, u.currency, u.conversions,
                u.claimed, u.verified
         FROM unnest($4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::float8[],
                     $9::bigint[], $10::bigint[])
              AS u(bucket, model, channel, currency, conversions, claimed, verified)",
    )
    .bind(tenant)
    .bind(model_version)
    .bind(tz)
    .bind(rows.bucket)
    .bind(rows.model)
    .bind(rows.channel)
    .bind(rows.currency)
    .bind(rows.conversions)
    .bind(rows.claimed)
    .bind(rows.verified)
    .execute(&mut *conn)
    .await?;
    clear(
        conn,
        "revenue_rollups",
        tenant,
        Some(model_version),
        "day",
        (s.day_from, s.day_to),
    )
    .await?;
    sqlx::query(
        "INSERT INTO revenue_rollups (tenant_id, model_version, grain, bucket_start, time_zone,
             model, channel_code, currency, conversions, claimed_cents, verified_cents)
         SELECT tenant_id, model_version, 'day', date_trunc('day', bucket_start, $5), $5, model,
                channel_code, currency, sum(conversions ORDER BY bucket_start), sum(claimed_cents),
                sum(verified_cents)
         FROM revenue_rollups
         WHERE tenant_id = $1 AND model_version = $2 AND grain = 'hour' AND time_zone = $5
           AND bucket_start >= $3 AND bucket_start < $4
         GROUP BY tenant_id, model_version, 4, model, channel_code, currency",
    )
    .bind(tenant)
    .bind(model_version)
    .bind(s.day_from)
    .bind(s.day_to)
    .bind(tz)
    .execute(conn)
    .await?;
    Ok(())
}

/// The hour rows to insert, column by column (for `unnest`).
#[derive(Default)]
struct RollupColumns<'a> {
    bucket: Vec<DateTime<Utc>>,
    model: Vec<&'a str>,
    channel: Vec<&'a str>,
    currency: Vec<&'a str>,
    conversions: Vec<f64>,
    claimed: Vec<i64>,
    verified: Vec<i64>,
}

/// Amounts are bounded at the door so that a tenant's sums fit in i64 (issue 12); a sum that
/// would not is refused rather than wrapped.
fn checked_sum(a: i64, b: i64) -> Result<i64, StoreError> {
    a.checked_add(b)
        .ok_or_else(|| StoreError::Invalid("a rollup sum is beyond a 64-bit amount".into()))
}

/// Rebuilds the paid-not-tracked rollups of `window`'s hours from a run's items (each such order
/// counted in the hour of its first posting), then the days those hours are in.
pub async fn rebuild_unattributed(
    conn: &mut PgConnection,
    tenant: TenantId,
    window: (DateTime<Utc>, DateTime<Utc>),
    tz: &str,
    items: &[Item],
) -> Result<(), StoreError> {
    let s = spans(conn, window, tz).await?;
    let untracked: Vec<&Item> = items
        .iter()
        .filter(|i| i.status == Status::PaidNotTracked)
        .collect();
    let firsts: Vec<Option<DateTime<Utc>>> = untracked.iter().map(|i| i.first_posting_at).collect();
    let currencies: Vec<Option<&str>> = untracked
        .iter()
        .map(|i| i.verified_currency.as_deref())
        .collect();
    let cents: Vec<i64> = untracked.iter().map(|i| i.verified_cents).collect();
    clear(
        conn,
        "unattributed_rollups",
        tenant,
        None,
        "hour",
        (s.hour_from, s.hour_to),
    )
    .await?;
    sqlx::query(
        "INSERT INTO unattributed_rollups (tenant_id, grain, bucket_start, time_zone, currency,
             orders, verified_cents)
         SELECT $1, 'hour', tally_local_hour(f, $2), $2, c, count(*), sum(v)
         FROM unnest($3::timestamptz[], $4::text[], $5::bigint[]) AS u(f, c, v)
         WHERE f IS NOT NULL AND c IS NOT NULL
         GROUP BY 3, 5",
    )
    .bind(tenant)
    .bind(tz)
    .bind(firsts)
    .bind(currencies)
    .bind(cents)
    .execute(&mut *conn)
    .await?;
    clear(
        conn,
        "unattributed_rollups",
        tenant,
        None,
        "day",
        (s.day_from, s.day_to),
    )
    .await?;
    sqlx::query(
        "INSERT INTO unattributed_rollups (tenant_id, grain, bucket_start, time_zone, currency,
             orders, verified_cents)
         SELECT tenant_id, 'day', date_trunc('day', bucket_start, $4), $4, currency, sum(orders),
                sum(verified_cents)
         FROM unattributed_rollups
         WHERE tenant_id = $1 AND grain = 'hour' AND time_zone = $4
           AND bucket_start >= $2 AND bucket_start < $3
         GROUP BY tenant_id, 3, currency",
    )
    .bind(tenant)
    .bind(s.day_from)
    .bind(s.day_to)
    .bind(tz)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether `t` is the start of a local hour in `tz` (the granularity of exact reads).
pub async fn is_hour_aligned(
    conn: &mut PgConnection,
    t: DateTime<Utc>,
    tz: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar("SELECT tally_local_hour($1, $2) = $1")
        .bind(t)
        .bind(tz)
        .fetch_one(conn)
        .await?)
}

/// One (model, channel, currency) total over a range.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChannelTotal {
    pub model: String,
    pub channel_code: String,
    pub currency: String,
    /// Fractional: each conversion's credit is split like its revenue.
    pub conversions: f64,
    pub claimed_cents: i64,
    pub verified_cents: i64,
    pub computed_at: DateTime<Utc>,
}

/// The rollup rows of `[from, to)` (bounds on local hours): whole local days from day rows cut in
/// the tenant's current zone, the rest from hour rows. A SQL fragment shared by the readers, with
/// `$1` tenant, `$2` model version, `$3` from, `$4` to, `$5` time zone.
const RANGE_ROWS: &str = "
    WITH b AS (
        SELECT CASE WHEN date_trunc('day', $3::timestamptz, $5) = $3 THEN $3::timestamptz
                    ELSE tally_next_local_day($3, $5) END AS d0,
               date_trunc('day', $4::timestamptz, $5) AS d1),
    rows AS (
        SELECT r.* FROM revenue_rollups r, b
        WHERE b.d0 < b.d1 AND r.tenant_id = $1 AND r.model_version = $2 AND r.grain = 'day'
          AND r.time_zone = $5 AND r.bucket_start >= b.d0 AND r.bucket_start < b.d1
        UNION ALL
        SELECT r.* FROM revenue_rollups r, b
        WHERE r.tenant_id = $1 AND r.model_version = $2 AND r.grain = 'hour'
          AND r.bucket_start >= $3 AND r.bucket_start < $4
          AND NOT (b.d0 < b.d1 AND r.bucket_start >= b.d0 AND r.bucket_start < b.d1))";

/// Totals per (model, channel, currency) over `[from, to)`, ordered by channel, currency, model.
pub async fn channel_totals(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    range: (DateTime<Utc>, DateTime<Utc>),
    tz: &str,
    model: Option<&str>,
) -> Result<Vec<ChannelTotal>, StoreError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RANGE_ROWS}
         SELECT model, channel_code, currency::text AS currency, sum(conversions) AS conversions,
                sum(claimed_cents)::bigint AS claimed_cents,
                sum(verified_cents)::bigint AS verified_cents, max(computed_at) AS computed_at
         FROM rows WHERE ($6::text IS NULL OR model = $6)
         GROUP BY model, channel_code, currency
         ORDER BY channel_code, currency, model"
    )))
    .bind(tenant)
    .bind(model_version)
    .bind(range.0)
    .bind(range.1)
    .bind(tz)
    .bind(model)
    .fetch_all(conn)
    .await?)
}

/// Paid-not-tracked money per currency over `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct UnattributedTotal {
    pub currency: String,
    pub orders: i64,
    pub verified_cents: i64,
}

pub async fn unattributed_totals(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: (DateTime<Utc>, DateTime<Utc>),
    tz: &str,
) -> Result<Vec<UnattributedTotal>, StoreError> {
    Ok(sqlx::query_as(
        "WITH b AS (
            SELECT CASE WHEN date_trunc('day', $2::timestamptz, $4) = $2 THEN $2::timestamptz
                        ELSE tally_next_local_day($2, $4) END AS d0,
                   date_trunc('day', $3::timestamptz, $4) AS d1),
         rows AS (
            SELECT u.* FROM unattributed_rollups u, b
            WHERE b.d0 < b.d1 AND u.tenant_id = $1 AND u.grain = 'day' AND u.time_zone = $4
              AND u.bucket_start >= b.d0 AND u.bucket_start < b.d1
            UNION ALL
            SELECT u.* FROM unattributed_rollups u, b
            WHERE u.tenant_id = $1 AND u.grain = 'hour' AND u.bucket_start >= $2 AND u.bucket_start < $3
              AND NOT (b.d0 < b.d1 AND u.bucket_start >= b.d0 AND u.bucket_start < b.d1))
         SELECT currency::text AS currency, sum(orders)::bigint AS orders,
                sum(verified_cents)::bigint AS verified_cents
         FROM rows GROUP BY currency ORDER BY currency",
    )
    .bind(tenant)
    .bind(range.0)
    .bind(range.1)
    .bind(tz)
    .fetch_all(conn)
    .await?)
}

/// One bucket of a time series (empty buckets included, with zeros).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SeriesPoint {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub conversions: f64,
    pub claimed_cents: i64,
    pub verified_cents: i64,
    /// Paid-not-tracked money whose order's first posting is in the bucket.
    pub unattributed_cents: i64,
}

/// Claimed vs verified per local hour or day over `[from, to)` (bounds aligned on the interval)
/// for one model and currency, optionally one channel.
pub async fn series(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    q: &SeriesQuery<'_>,
) -> Result<Vec<SeriesPoint>, StoreError> {
    let buckets = if q.daily {
        "SELECT (d::date::timestamp AT TIME ZONE $5) AS start,
                ((d::date + 1)::timestamp AT TIME ZONE $5) AS \"end\"
         FROM generate_series(($3::timestamptz AT TIME ZONE $5)::date,
                              (($4::timestamptz - interval '1 microsecond') AT TIME ZONE $5)::date,
                              interval '1 day') AS d"
    } else {
        "SELECT h AS start, h + interval '1 hour' AS \"end\"
         FROM generate_series($3::timestamptz, $4::timestamptz - interval '1 hour', interval '1 hour') AS h"
    };
    let grain = if q.daily { "day" } else { "hour" };
    let sql = format!(
        "WITH buckets AS ({buckets}),
         rev AS (
            SELECT bucket_start, sum(conversions) AS conversions, sum(claimed_cents) AS claimed,
                   sum(verified_cents) AS verified
            FROM revenue_rollups
            WHERE tenant_id = $1 AND model_version = $2 AND grain = '{grain}'
              AND ('{grain}' = 'hour' OR time_zone = $5)
              AND bucket_start >= $3 AND bucket_start < $4 AND model = $6 AND currency = $7
              AND ($8::text IS NULL OR channel_code = $8)
            GROUP BY bucket_start),
         un AS (
            SELECT bucket_start, sum(verified_cents) AS verified
            FROM unattributed_rollups
            WHERE tenant_id = $1 AND grain = '{grain}' AND ('{grain}' = 'hour' OR time_zone = $5)
              AND bucket_start >= $3 AND bucket_start < $4 AND currency = $7
            GROUP BY bucket_start)
         SELECT b.start, b.\"end\", coalesce(rev.conversions, 0) AS conversions,
                coalesce(rev.claimed, 0)::bigint AS claimed_cents,
                coalesce(rev.verified, 0)::bigint AS verified_cents,
                (CASE WHEN $8::text IS NULL THEN coalesce(un.verified, 0) ELSE 0 END)::bigint
                    AS unattributed_cents
         FROM buckets b
         LEFT JOIN rev ON rev.bucket_start = b.start
         LEFT JOIN un ON un.bucket_start = b.start
         ORDER BY b.start"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(model_version)
        .bind(q.range.0)
        .bind(q.range.1)
        .bind(q.time_zone)
        .bind(q.model)
        .bind(q.currency)
        .bind(q.channel)
        .fetch_all(conn)
        .await?)
}

/// What [`series`] reads.
pub struct SeriesQuery<'a> {
    pub range: (DateTime<Utc>, DateTime<Utc>),
    pub daily: bool,
    pub time_zone: &'a str,
    pub model: &'a str,
    pub currency: &'a str,
    pub channel: Option<&'a str>,
}

/// One line of the revenue export: a local day, channel, model and currency.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ExportRow {
    pub date: chrono::NaiveDate,
    pub channel: String,
    pub model: String,
    pub currency: String,
    pub conversions: f64,
    pub claimed_cents: i64,
    pub verified_cents: i64,
}

/// The export rows of one local day (`[day_start, day_end)`), from hour rows so that a day is
/// exact whatever zone its day rows were cut in.
pub async fn export_day(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    day: (DateTime<Utc>, DateTime<Utc>),
    tz: &str,
) -> Result<Vec<ExportRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT ($3::timestamptz AT TIME ZONE $5)::date AS date, channel_code AS channel, model,
                currency::text AS currency, sum(conversions) AS conversions,
                sum(claimed_cents)::bigint AS claimed_cents,
                sum(verified_cents)::bigint AS verified_cents
         FROM revenue_rollups
         WHERE tenant_id = $1 AND model_version = $2 AND grain = 'hour'
           AND bucket_start >= $3 AND bucket_start < $4
         GROUP BY channel_code, model, currency
         ORDER BY channel_code, model, currency",
    )
    .bind(tenant)
    .bind(model_version)
    .bind(day.0)
    .bind(day.1)
    .bind(tz)
    .fetch_all(conn)
    .await?)
}

/// What the readers need of the tenant's settings.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ReaderSettings {
    pub time_zone: String,
    pub currency: String,
    pub default_model: String,
}

pub async fn reader_settings(conn: &mut PgConnection) -> Result<ReaderSettings, StoreError> {
    sqlx::query_as(
        "SELECT time_zone, currency::text AS currency, default_model FROM tenant_settings",
    )
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}
