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
use tally_core::reconcile::{Item, Status};

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

/// Rebuilds the revenue rollups of every local hour and day that `window` overlaps, from the
/// stored allocations and their verified shares. Fractional conversions are summed in a fixed
/// order (floating-point addition is not associative), so a rerun gives bit-identical rows
/// whatever plan PostgreSQL picks. A neighbouring window's rows in a shared edge hour are
/// included. In the caller's job transaction, after the tenant's recompute lock.
pub async fn rebuild_revenue(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    window: (DateTime<Utc>, DateTime<Utc>),
    tz: &str,
) -> Result<(), StoreError> {
    let s = spans(conn, window, tz).await?;
    sqlx::query(
        "DELETE FROM revenue_rollups WHERE tenant_id = $1 AND model_version = $2 AND grain = 'hour'
         AND bucket_start >= $3 AND bucket_start < $4",
    )
    .bind(tenant)
    .bind(model_version)
    .bind(s.hour_from)
    .bind(s.hour_to)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO revenue_rollups (tenant_id, model_version, grain, bucket_start, time_zone,
             model, channel_code, currency, conversions, claimed_cents, verified_cents)
         SELECT a.tenant_id, a.model_version, 'hour', tally_local_hour(a.occurred_at, $5), $5,
                a.model, a.channel_code, a.currency,
                sum(a.weight ORDER BY a.conversion_id), sum(a.allocated_cents),
                coalesce(sum(v.verified_cents), 0)
         FROM attribution_allocations a
         LEFT JOIN verified_allocations v ON v.tenant_id = a.tenant_id
              AND v.conversion_id = a.conversion_id AND v.model = a.model
              AND v.model_version = a.model_version AND v.channel_code = a.channel_code
         WHERE a.tenant_id = $1 AND a.model_version = $2 AND a.occurred_at >= $3 AND a.occurred_at < $4
         GROUP BY a.tenant_id, a.model_version, 4, a.model, a.channel_code, a.currency",
    )
    .bind(tenant)
    .bind(model_version)
    .bind(s.hour_from)
    .bind(s.hour_to)
    .bind(tz)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM revenue_rollups WHERE tenant_id = $1 AND model_version = $2 AND grain = 'day'
         AND bucket_start >= $3 AND bucket_start < $4",
    )
    .bind(tenant)
    .bind(model_version)
    .bind(s.day_from)
    .bind(s.day_to)
    .execute(&mut *conn)
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
    sqlx::query(
        "DELETE FROM unattributed_rollups WHERE tenant_id = $1 AND grain = 'hour'
         AND bucket_start >= $2 AND bucket_start < $3",
    )
    .bind(tenant)
    .bind(s.hour_from)
    .bind(s.hour_to)
    .execute(&mut *conn)
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
    sqlx::query(
        "DELETE FROM unattributed_rollups WHERE tenant_id = $1 AND grain = 'day'
         AND bucket_start >= $2 AND bucket_start < $3",
    )
    .bind(tenant)
    .bind(s.day_from)
    .bind(s.day_to)
    .execute(&mut *conn)
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
