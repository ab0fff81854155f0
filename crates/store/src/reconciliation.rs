//! Reconciliation runs: scheduling, what a run reads (both sides of the window's orders), what it
//! writes (the run, its items, each allocation's verified share) and the run listings.
//!
//! A run covers a window of the tenant (normally one local day) and the orders that belong to it:
//! orders whose first tracked conversion is in the window, and untracked orders whose first
//! posting is. Runs are scheduled by the ledger's insert trigger (migration 0041), by every
//! recompute (which reconciles its window in its own transaction, see `tally-worker`), nightly,
//! and on request. The classification itself is `tally_core::reconcile`.

use crate::Database;
use crate::cursor::{Cursor, Page, PageRequest};
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::keyset::{Compare, Listing};
use crate::recompute::{NewSplit, window_splits};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use std::collections::BTreeMap;
use tally_core::reconcile::{Item, Order, Posting, Summary, Tracked};
use uuid::Uuid;

/// The job kind of a reconciliation run (also in migration 0041's scheduler).
pub const RECONCILE_KIND: &str = "reconciliation.run";

/// A run as the API returns it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Run {
    pub id: Uuid,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// `manual`, `automatic` (after postings or a recompute) or `nightly`.
    pub trigger: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// Orders reconciled.
    pub items: Option<i32>,
    /// Orders per status; every status is present.
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
    /// Per currency (never added across currencies): `claimed_cents`, `verified_cents`,
    /// `ghost_cents` (claimed − verified where positive), `unclaimed_cents` (paid, not
    /// tracked), `discrepancy_bps`, `orders`.
    #[schema(value_type = Vec<Object>)]
    pub totals: serde_json::Value,
    /// Postings in the window that name no order and reverse no known payment.
    pub orphaned_postings: Option<i32>,
    /// Set when this run found exactly the items of that earlier run of the same window (a
    /// rerun with nothing new): its items are that run's.
    pub same_items_as: Option<Uuid>,
    pub error: Option<String>,
    pub correlation_id: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

const RUN_COLUMNS: &str = "id, window_start, window_end, trigger, status, attempts, items, counts, \
    totals, orphaned_postings, same_items_as, error, correlation_id, created_at, started_at, finished_at";

/// One order of a run, as stored and listed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ItemRow {
    pub order_id: String,
    pub status: String,
    pub conversion_id: Option<Uuid>,
    pub tracked_at: Option<DateTime<Utc>>,
    pub tracked_cents: Option<i64>,
    pub tracked_currency: Option<String>,
    pub duplicate_conversions: i32,
    pub verified_cents: i64,
    pub verified_currency: Option<String>,
    pub paid_cents: i64,
    pub reversed_cents: i64,
    pub postings: i32,
    pub difference_cents: Option<i64>,
    pub first_posting_at: Option<DateTime<Utc>>,
}

const ITEM_COLUMNS: &str = "order_id, status, conversion_id, tracked_at, tracked_cents, \
    tracked_currency::text AS tracked_currency, duplicate_conversions, verified_cents, \
    verified_currency::text AS verified_currency, paid_cents, reversed_cents, postings, \
    difference_cents, first_posting_at";

/// The states of a run, and what started it (the `status` and `trigger` filters' values).
pub const RUN_STATUSES: &[&str] = &["pending", "running", "succeeded", "failed"];
pub const RUN_TRIGGERS: &[&str] = &["manual", "automatic", "nightly"];

fn run_statuses() -> utoipa::openapi::schema::Object {
    crate::doc::one_of(RUN_STATUSES.iter().copied())
}

fn run_triggers() -> utoipa::openapi::schema::Object {
    crate::doc::one_of(RUN_TRIGGERS.iter().copied())
}

/// Filters of `GET /v1/reconciliation/runs`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunFilter {
    /// `pending`, `running`, `succeeded` or `failed`.
    #[param(schema_with = run_statuses)]
    pub status: Option<String>,
    /// `manual`, `automatic` or `nightly`.
    #[param(schema_with = run_triggers)]
    pub trigger: Option<String>,
    /// With `to`: only runs whose window contains `[from, to)` (a run of exactly that window,
    /// or of a wider one). An RFC 3339 instant on a local hour, or a date (midnight in the
    /// tenant's time zone).
    pub from: Option<String>,
    /// With `from`: the range's end (exclusive), like `from`.
    pub to: Option<String>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The tenant's reconciliation parameters.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReconcileSettings {
    pub time_zone: String,
    pub reconciliation_grace_hours: i32,
}

pub async fn settings(conn: &mut PgConnection) -> Result<ReconcileSettings, StoreError> {
    sqlx::query_as("SELECT time_zone, reconciliation_grace_hours FROM tenant_settings")
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Schedules a run of each window (coalesced with a pending run of the same window) in the
/// caller's tenant transaction; returns the runs that will do the work.
pub async fn schedule_windows(
    conn: &mut PgConnection,
    tenant: TenantId,
    windows: &[(DateTime<Utc>, DateTime<Utc>)],
    trigger: &str,
    correlation_id: &str,
) -> Result<Vec<Run>, StoreError> {
    let (starts, ends): (Vec<_>, Vec<_>) = windows.iter().copied().unzip();
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM tally_schedule_reconciliation_windows($1, $2, $3, $4, $5)"
    )))
    .bind(tenant)
    .bind(starts)
    .bind(ends)
    .bind(trigger)
    .bind(correlation_id)
    .fetch_all(conn)
    .await?)
}

/// Schedules a run of each tenant-local day (the nightly runs).
pub async fn schedule_days(
    conn: &mut PgConnection,
    tenant: TenantId,
    days: &[NaiveDate],
    trigger: &str,
    correlation_id: &str,
) -> Result<Vec<Run>, StoreError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM tally_schedule_reconciliation($1, $2, $3, $4)"
    )))
    .bind(tenant)
    .bind(days)
    .bind(trigger)
    .bind(correlation_id)
    .fetch_all(conn)
    .await?)
}

/// Schedules the nightly runs of the tenant unless they were scheduled since local midnight:
/// yesterday, and the two days whose tracked orders' grace period ended within the last day
/// (their `awaiting_payment` items become `tracked_not_paid`). Returns how many were scheduled.
pub async fn schedule_nightly(
    conn: &mut PgConnection,
    tenant: TenantId,
    correlation_id: &str,
) -> Result<usize, StoreError> {
    let days: Vec<NaiveDate> = sqlx::query_scalar(
        "WITH s AS (SELECT time_zone AS tz, reconciliation_grace_hours AS g FROM tenant_settings),
              days AS (
                SELECT DISTINCT d FROM s, LATERAL (VALUES
                    ((now() AT TIME ZONE s.tz)::date - 1),
                    (((now() - make_interval(hours => s.g)) AT TIME ZONE s.tz)::date),
                    (((now() - make_interval(hours => s.g)) AT TIME ZONE s.tz)::date - 1)) AS v(d))
         SELECT d FROM days, s
         WHERE d < (now() AT TIME ZONE s.tz)::date
           AND NOT EXISTS (
             SELECT FROM reconciliation_runs r
             WHERE r.trigger = 'nightly' AND r.window_start = d::timestamp AT TIME ZONE s.tz
               AND r.window_end = (d + 1)::timestamp AT TIME ZONE s.tz
               AND r.created_at >= date_trunc('day', now(), s.tz))
         ORDER BY d",
    )
    .fetch_all(&mut *conn)
    .await?;
    if days.is_empty() {
        return Ok(0);
    }
    Ok(
        schedule_days(conn, tenant, &days, "nightly", correlation_id)
            .await?
            .len(),
    )
}

/// A run created and started inside the caller's transaction (a recompute reconciling the window
/// it just wrote): it becomes visible, already finished, when that transaction commits.
pub async fn start_inline_run(
    conn: &mut PgConnection,
    tenant: TenantId,
    window: (DateTime<Utc>, DateTime<Utc>),
    correlation_id: &str,
) -> Result<Uuid, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO reconciliation_runs (tenant_id, id, window_start, window_end, trigger, status,
             attempts, correlation_id, started_at)
         VALUES ($1, tally_uuid_v7(), $2, $3, 'automatic', 'running', 1, $4, now()) RETURNING id",
    )
    .bind(tenant)
    .bind(window.0)
    .bind(window.1)
    .bind(correlation_id)
    .fetch_one(conn)
    .await?)
}

pub async fn get_run(conn: &mut PgConnection, id: Uuid) -> Result<Run, StoreError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM reconciliation_runs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// Records that an attempt started (its own short transaction, so progress is visible).
pub async fn mark_running(conn: &mut PgConnection, id: Uuid) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE reconciliation_runs SET status = 'running', attempts = attempts + 1,
                started_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the run gave up (its job is in `worker_failed_jobs` too).
pub async fn mark_failed(conn: &mut PgConnection, id: Uuid, error: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE reconciliation_runs SET status = 'failed', error = $2, finished_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Both sides of the window's orders, ready for `tally_core::reconcile::classify`.
#[derive(Debug, Default)]
pub struct WindowOrders {
    pub orders: Vec<Order>,
    pub orphaned_postings: i64,
}

/// Loads the orders that belong to `[start, end)`: tracked orders whose first conversion is in
/// it, and untracked orders whose first posting is. Reads conversions and postings by their
/// order and time indexes only.
pub async fn load_orders(
    conn: &mut PgConnection,
    tenant: TenantId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<WindowOrders, StoreError> {
    // Every conversion of every order converted in the window, first ones first. In two steps,
    // the window's orders by the conversions' time index, then their conversions by the order
    // index through an array: one statement with `IN (subquery)` was planned as a scan of every
    // conversion right after a bulk load (20 s for 22 k orders on the bench day).
    let mut window_orders: Vec<String> = sqlx::query_scalar(
        "SELECT order_id FROM attribution_events
         WHERE tenant_id = $1 AND kind = 'conversion' AND order_id IS NOT NULL
           AND occurred_at >= $2 AND occurred_at < $3",
    )
    .bind(tenant)
    .bind(start)
    .bind(end)
    .fetch_all(&mut *conn)
    .await?;
    window_orders.sort_unstable();
    window_orders.dedup();
    let conversions: Vec<(String, Uuid, DateTime<Utc>, i64, String)> = sqlx::query_as(
        "SELECT e.order_id, e.id, e.occurred_at, e.revenue_cents, e.currency::text
         FROM unnest($2::text[]) AS w(order_id)
         JOIN attribution_events e ON e.tenant_id = $1 AND e.order_id = w.order_id
              AND e.kind = 'conversion'
         ORDER BY e.order_id, e.occurred_at, e.id",
    )
    .bind(tenant)
    .bind(&window_orders)
    .fetch_all(&mut *conn)
    .await?;
    let mut tracked: BTreeMap<String, Tracked> = BTreeMap::new();
    for (order_id, id, occurred_at, revenue_cents, currency) in conversions {
        match tracked.get_mut(&order_id) {
            Some(first) => first.duplicates += 1,
            None => {
                tracked.insert(
                    order_id,
                    Tracked {
                        conversion_id: id,
                        occurred_at,
                        revenue_cents,
                        currency,
                        duplicates: 0,
                    },
                );
            }
        }
    }
    // An order whose first conversion lies before the window belongs to an earlier window.
    tracked.retain(|_, t| t.occurred_at >= start);

    // Untracked orders with a posting in the window (kept below when their first posting is).
    // Postings resolve to orders through the payment they reverse (`revenue_ledger_resolved`,
    // migration 0070), so a dispute or refund without an order id still lands on its order.
    let untracked: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT l.resolved_order_id FROM revenue_ledger_resolved l
         WHERE l.tenant_id = $1 AND l.resolved_order_id IS NOT NULL
           AND l.occurred_at >= $2 AND l.occurred_at < $3
           AND NOT EXISTS (SELECT FROM attribution_events e WHERE e.tenant_id = $1
                           AND e.order_id = l.resolved_order_id AND e.kind = 'conversion')",
    )
    .bind(tenant)
    .bind(start)
    .bind(end)
    .fetch_all(&mut *conn)
    .await?;
    let wanted: Vec<String> = tracked
        .keys()
        .cloned()
        .chain(untracked.iter().cloned())
        .collect();
    let postings = crate::ledger::order_postings(conn, &wanted).await?;
    let mut paid: BTreeMap<String, Vec<Posting>> = BTreeMap::new();
    for p in postings {
        paid.entry(p.order_id.unwrap_or_default())
            .or_default()
            .push(Posting {
                amount_cents: p.amount_cents,
                currency: p.currency,
                occurred_at: p.occurred_at,
            });
    }
    let orphaned_postings: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM revenue_ledger_resolved
         WHERE tenant_id = $1 AND resolved_order_id IS NULL
           AND occurred_at >= $2 AND occurred_at < $3",
    )
    .bind(tenant)
    .bind(start)
    .bind(end)
    .fetch_one(&mut *conn)
    .await?;

    let mut orders: Vec<Order> = Vec::with_capacity(tracked.len() + untracked.len());
    for (order_id, t) in tracked {
        let postings = paid.remove(&order_id).unwrap_or_default();
        orders.push(Order {
            order_id,
            tracked: Some(t),
            postings,
        });
    }
    for order_id in untracked {
        let postings = paid.remove(&order_id).unwrap_or_default();
        let first = postings.iter().map(|p| p.occurred_at).min();
        if first.is_some_and(|f| f >= start && f < end) {
            orders.push(Order {
                order_id,
                tracked: None,
                postings,
            });
        }
    }
    orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    Ok(WindowOrders {
        orders,
        orphaned_postings,
    })
}

/// One channel's part of a conversion's split under one model, to spread its verified net over.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationShare {
    pub conversion_id: Uuid,
    pub model: String,
    pub channel_code: String,
    pub allocated_cents: i64,
    pub weight: f64,
    pub currency: String,
    pub occurred_at: DateTime<Utc>,
}

impl AllocationShare {
    /// What this share adds to the rollups, with its part of the order's verified net.
    pub fn contribution(&self, verified_cents: i64) -> crate::rollups::Contribution<'_> {
        crate::rollups::Contribution {
            conversion_id: self.conversion_id,
            model: &self.model,
            channel_code: &self.channel_code,
            currency: &self.currency,
            occurred_at: self.occurred_at,
            allocated_cents: self.allocated_cents,
            weight: self.weight,
            verified_cents,
        }
    }

    /// One share per credited cell of a split the caller is about to write, its weights as
    /// stored, so the rollups are the same whether read back or taken in hand.
    pub fn of_split<'a>(split: &'a NewSplit<'_>) -> impl Iterator<Item = AllocationShare> + 'a {
        credited(
            (split.conversion_id, split.currency, split.occurred_at),
            (&split.models, &split.channels),
            &split.cents,
            &split.weights,
        )
    }
}

/// The shares of one split: (conversion, currency, time), its models and channels, and its
/// cells; a cell of weight 0 is a channel the model did not credit (migration 0150).
fn credited<'a, M: AsRef<str>, C: AsRef<str>>(
    (conversion_id, currency, occurred_at): (Uuid, &'a str, DateTime<Utc>),
    (models, channels): (&'a [M], &'a [C]),
    cents: &'a [i64],
    weights: &'a [f64],
) -> impl Iterator<Item = AllocationShare> + 'a {
    let width = channels.len();
    cents
        .iter()
        .zip(weights)
        .enumerate()
        .filter(|(_, (_, weight))| **weight > 0.0)
        .map(move |(i, (&allocated_cents, &weight))| AllocationShare {
            conversion_id,
            model: models[i / width].as_ref().to_string(),
            channel_code: channels[i % width].as_ref().to_string(),
            allocated_cents,
            weight,
            currency: currency.to_string(),
            occurred_at,
        })
}

/// The stored allocations of the conversions in `[start, end)`, channel by channel, in no
/// particular order (see [`window_splits`]).
pub async fn allocation_shares(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<AllocationShare>, StoreError> {
    let splits = window_splits(conn, tenant, model_version, window).await?;
    Ok(splits
        .iter()
        .flat_map(|s| {
            credited(
                (s.conversion_id, &s.currency, s.occurred_at),
                (&s.models, &s.channels),
                &s.cents,
                &s.weights,
            )
        })
        .collect())
}

/// SHA-256 over the items in order: equal fingerprints, equal items.
pub fn fingerprint(items: &[Item]) -> [u8; 32] {
    let mut h = Sha256::new();
    for item in items {
        // serde_json of a plain struct cannot fail; the separator keeps items apart.
        h.update(serde_json::to_vec(item).unwrap_or_default());
        h.update([0x1e]);
    }
    h.finalize().into()
}

/// Writes a finished run: its totals, and its items unless the previous succeeded run of the
/// same window found exactly these (then it points at that run). Also rebuilds the
/// unattributed (paid-not-tracked) rollups of the window's hours.
pub async fn finish_run(
    conn: &mut PgConnection,
    tenant: TenantId,
    run_id: Uuid,
    window: (DateTime<Utc>, DateTime<Utc>),
    items: &[Item],
    summary: &Summary,
    orphaned_postings: i64,
) -> Result<(), StoreError> {
    let fp = fingerprint(items);
    let previous: Option<(Uuid, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT coalesce(same_items_as, id), fingerprint FROM reconciliation_runs
         WHERE window_start = $1 AND window_end = $2 AND status = 'succeeded' AND id <> $3
         ORDER BY finished_at DESC, id DESC LIMIT 1",
    )
    .bind(window.0)
    .bind(window.1)
    .bind(run_id)
    .fetch_optional(&mut *conn)
    .await?;
    let same = previous
        .filter(|(_, prev)| prev.as_deref() == Some(&fp[..]))
        .map(|(id, _)| id);
    if same.is_none() {
        insert_items(conn, tenant, run_id, items).await?;
    }
    sqlx::query(
        "UPDATE reconciliation_runs SET status = 'succeeded', items = $2, counts = $3, totals = $4,
                orphaned_postings = $5, fingerprint = $6, same_items_as = $7, error = NULL,
                finished_at = now()
         WHERE id = $1",
    )
    .bind(run_id)
    .bind(i32::try_from(items.len()).unwrap_or(i32::MAX))
    .bind(serde_json::to_value(&summary.counts).unwrap_or_default())
    .bind(serde_json::to_value(&summary.currencies).unwrap_or_default())
    .bind(i32::try_from(orphaned_postings).unwrap_or(i32::MAX))
    .bind(&fp[..])
    .bind(same)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_items(
    conn: &mut PgConnection,
    tenant: TenantId,
    run_id: Uuid,
    items: &[Item],
) -> Result<(), StoreError> {
    for chunk in items.chunks(50_000) {
        let col = |f: fn(&Item) -> Option<String>| chunk.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO reconciliation_items (tenant_id, run_id, order_id, status, conversion_id,
                 tracked_at, tracked_cents, tracked_currency, duplicate_conversions, verified_cents,
                 verified_currency, paid_cents, reversed_cents, postings, difference_cents,
                 first_posting_at)
             SELECT $1, $2, u.* FROM unnest($3::text[], $4::text[], $5::uuid[], $6::timestamptz[],
                 $7::bigint[], $8::text[], $9::int[], $10::bigint[], $11::text[], $12::bigint[],
                 $13::bigint[], $14::int[], $15::bigint[], $16::timestamptz[]) AS u",
        )
        .bind(tenant)
        .bind(run_id)
        .bind(
            chunk
                .iter()
                .map(|i| i.order_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(chunk.iter().map(|i| i.status.code()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|i| i.conversion_id).collect::<Vec<_>>())
        .bind(chunk.iter().map(|i| i.tracked_at).collect::<Vec<_>>())
        .bind(chunk.iter().map(|i| i.tracked_cents).collect::<Vec<_>>())
        .bind(col(|i| i.tracked_currency.clone()))
        .bind(
            chunk
                .iter()
                .map(|i| i32::try_from(i.duplicate_conversions).unwrap_or(i32::MAX))
                .collect::<Vec<_>>(),
        )
        .bind(chunk.iter().map(|i| i.verified_cents).collect::<Vec<_>>())
        .bind(col(|i| i.verified_currency.clone()))
        .bind(chunk.iter().map(|i| i.paid_cents).collect::<Vec<_>>())
        .bind(chunk.iter().map(|i| i.reversed_cents).collect::<Vec<_>>())
        .bind(
            chunk
                .iter()
                .map(|i| i32::try_from(i.postings).unwrap_or(i32::MAX))
                .collect::<Vec<_>>(),
        )
        .bind(chunk.iter().map(|i| i.difference_cents).collect::<Vec<_>>())
        .bind(chunk.iter().map(|i| i.first_posting_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Filters of a run's item listing.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ItemFilter {
    /// One item status (`matched`, `amount_mismatch`, ...).
    #[param(schema_with = crate::doc::item_statuses)]
    pub status: Option<String>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of a run's items, by order id; a run that found its predecessor's items lists those.
pub async fn list_items(
    conn: &mut PgConnection,
    run: &Run,
    status: Option<&str>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<ItemRow>, StoreError> {
    if !(1..=500).contains(&limit) {
        return Err(StoreError::Invalid(
            "limit must be between 1 and 500".into(),
        ));
    }
    let after = cursor
        .map(|c| {
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| StoreError::Invalid("cursor is not one this API issued".into()))
        })
        .transpose()?;
    let mut items: Vec<ItemRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ITEM_COLUMNS} FROM reconciliation_items
         WHERE run_id = $1 AND ($2::text IS NULL OR status = $2)
           AND ($3::text IS NULL OR order_id > $3)
         ORDER BY order_id LIMIT $4"
    )))
    .bind(run.same_items_as.unwrap_or(run.id))
    .bind(status)
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(conn)
    .await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = more
        .then(|| {
            items
                .last()
                .map(|i| URL_SAFE_NO_PAD.encode(i.order_id.as_bytes()))
        })
        .flatten();
    Ok(Page { items, next_cursor })
}

/// The newest reconciliation item of an order, from the latest succeeded run that listed it.
pub async fn latest_item(
    conn: &mut PgConnection,
    order_id: &str,
) -> Result<Option<(Uuid, ItemRow)>, StoreError> {
    let row: Option<(Uuid,)> = sqlx::query_as(
        "SELECT r.id FROM reconciliation_runs r
         JOIN reconciliation_items i ON i.tenant_id = r.tenant_id
              AND i.run_id = coalesce(r.same_items_as, r.id)
         WHERE i.order_id = $1 AND r.status = 'succeeded'
         ORDER BY r.finished_at DESC, r.id DESC LIMIT 1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((run_id,)) = row else {
        return Ok(None);
    };
    let item: ItemRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ITEM_COLUMNS} FROM reconciliation_items i
         WHERE i.order_id = $1 AND i.run_id = (SELECT coalesce(same_items_as, id)
                                               FROM reconciliation_runs WHERE id = $2)"
    )))
    .bind(order_id)
    .bind(run_id)
    .fetch_one(conn)
    .await?;
    Ok(Some((run_id, item)))
}

impl Database {
    /// Schedules a run of `[from, to)` widened to the tenant's local hour boundaries
    /// (`rollups::job_span`) on request, coalesced with a pending run of that window.
    pub async fn request_reconciliation(
        &self,
        tenant: TenantId,
        window: (DateTime<Utc>, DateTime<Utc>),
        correlation_id: &str,
    ) -> Result<Run, StoreError> {
        if window.0 >= window.1 {
            return Err(StoreError::Invalid(
                "the window must start before it ends".into(),
            ));
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let window = crate::rollups::job_span(&mut tx, window).await?;
        let mut runs =
            schedule_windows(&mut tx, tenant, &[window], "manual", correlation_id).await?;
        tx.commit().await?;
        runs.pop().ok_or(StoreError::NotFound)
    }

    /// Runs newest first; with `containing`, only those whose window contains that range (the
    /// filter's `from`/`to`, resolved to instants by the caller, who knows the time zone).
    pub async fn list_runs(
        &self,
        tenant: TenantId,
        f: &RunFilter,
        containing: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<Page<Run>, StoreError> {
        let page = PageRequest::parse(f.limit, f.cursor.as_deref())?;
        let bounds: Vec<_> = containing
            .map(|(from, to)| {
                [
                    ("window_start", Compare::AtMost, from),
                    ("window_end", Compare::AtLeast, to),
                ]
            })
            .into_iter()
            .flatten()
            .collect();
        let listing = Listing {
            table: "reconciliation_runs",
            columns: RUN_COLUMNS,
            time_column: "created_at",
            filters: &[
                ("status", f.status.as_deref()),
                ("trigger", f.trigger.as_deref()),
            ],
            from: None,
            to: None,
            bounds: &bounds,
        };
        self.keyset_page(tenant, &listing, &page, |r: &Run| Cursor {
            at: r.created_at,
            id: r.id,
        })
        .await
    }
}

/// The latest run of each recent window, summed up for the status page.
#[derive(Debug, Clone)]
pub struct RecentStatus {
    /// `verified`, `partial`, `pending` or `failed`.
    pub overall: &'static str,
    pub last_success: Option<DateTime<Utc>>,
    /// Orders per status over those runs.
    pub counts: serde_json::Value,
}

/// Looks at the latest run of every window overlapping `[since, until)`.
pub async fn recent_status(
    conn: &mut PgConnection,
    (since, until): (DateTime<Utc>, DateTime<Utc>),
) -> Result<RecentStatus, StoreError> {
    // The latest run of each window, newest first.
    type Latest = (String, serde_json::Value, DateTime<Utc>, DateTime<Utc>);
    let latest: Vec<Latest> = sqlx::query_as(
        "SELECT status, counts, window_start, window_end FROM (
             SELECT DISTINCT ON (window_start, window_end) status, counts, window_start,
                    window_end, created_at, id
             FROM reconciliation_runs
             WHERE window_end > $1 AND window_start < $2
             ORDER BY window_start, window_end, created_at DESC, id DESC) l
         ORDER BY created_at DESC, id DESC",
    )
    .bind(since)
    .bind(until)
    .fetch_all(&mut *conn)
    .await?;
    let last_success: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(finished_at) FROM reconciliation_runs WHERE status = 'succeeded'",
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut counts: BTreeMap<String, i64> = tally_core::reconcile::Status::ALL
        .iter()
        .map(|s| (s.code().to_string(), 0))
        .collect();
    // An order is in every run whose window holds it (a month's run and its days' runs): count
    // each window's orders only where no newer succeeded run overlaps it.
    let mut counted: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for (status, c, start, end) in &latest {
        if status != "succeeded" || counted.iter().any(|(s, e)| s < end && start < e) {
            continue;
        }
        counted.push((*start, *end));
        if let Some(map) = c.as_object() {
            for (k, v) in map {
                *counts.entry(k.clone()).or_default() += v.as_i64().unwrap_or(0);
            }
        }
    }
    let unsettled = [
        "amount_mismatch",
        "currency_mismatch",
        "tracked_not_paid",
        "paid_not_tracked",
    ]
    .iter()
    .any(|s| counts.get(*s).copied().unwrap_or(0) > 0);
    let overall = if latest.iter().any(|(s, ..)| s == "failed") {
        "failed"
    } else if latest.is_empty()
        || latest
            .iter()
            .any(|(s, ..)| s == "pending" || s == "running")
    {
        "pending"
    } else if unsettled {
        "partial"
    } else {
        "verified"
    };
    Ok(RecentStatus {
        overall,
        last_success,
        counts: serde_json::to_value(counts).unwrap_or_default(),
    })
}

/// One webhook endpoint's health and money, for the status page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlatformHealth {
    pub endpoint_id: Uuid,
    pub source: String,
    pub connection_status: String,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub deliveries: i64,
    pub dead_lettered: i64,
    pub verification_failures: i64,
    pub error_message: Option<String>,
    /// Net of the postings its deliveries made, in `currency`.
    pub revenue_cents: i64,
}

/// Every webhook endpoint of the tenant with its deliveries and the net money they posted in
/// `currency`.
pub async fn platforms(
    conn: &mut PgConnection,
    currency: &str,
) -> Result<Vec<PlatformHealth>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT e.endpoint_id, e.source,
                CASE WHEN e.status = 'disabled' THEN 'disabled'
                     WHEN d.last_status = 'dead_lettered' THEN 'error'
                     WHEN d.deliveries IS NULL THEN 'pending'
                     ELSE 'connected' END AS connection_status,
                d.last_at AS last_delivery_at, coalesce(d.deliveries, 0) AS deliveries,
                coalesce(d.dead_lettered, 0) AS dead_lettered,
                0::bigint AS verification_failures,
                CASE WHEN d.last_status = 'dead_lettered' THEN d.last_detail END AS error_message,
                coalesce((SELECT sum(l.amount_cents) FROM revenue_ledger l
                          JOIN webhook_deliveries w ON w.tenant_id = l.tenant_id AND w.id = l.delivery_id
                          WHERE w.endpoint_id = e.endpoint_id AND l.currency = $1), 0)::bigint
                    AS revenue_cents
         FROM webhook_endpoints e
         LEFT JOIN LATERAL (
            SELECT count(*) AS deliveries,
                   count(*) FILTER (WHERE status = 'dead_lettered') AS dead_lettered,
                   max(received_at) AS last_at,
                   (array_agg(status ORDER BY received_at DESC))[1] AS last_status,
                   (array_agg(detail ORDER BY received_at DESC))[1] AS last_detail
            FROM webhook_deliveries w WHERE w.tenant_id = e.tenant_id AND w.endpoint_id = e.endpoint_id
            HAVING count(*) > 0) d ON true
         ORDER BY e.created_at, e.endpoint_id",
    )
    .bind(currency)
    .fetch_all(conn)
    .await?)
}

/// A conversion event that reported an order.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OrderConversion {
    pub id: Uuid,
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub revenue_cents: i64,
    pub currency: String,
    pub channel_code: String,
}

/// Both sides of one order and where it stands now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub order_id: String,
    /// The order's status as of now (the same rules as a run's items).
    pub status: String,
    /// Tracked side and paid side, compared (amounts, difference, duplicates).
    #[schema(value_type = Object)]
    pub reconciliation: Item,
    /// Conversion events with this order id, first (the one that counts) first.
    pub conversions: Vec<OrderConversion>,
    /// Every posting, oldest first.
    pub postings: Vec<crate::ledger::LedgerEntry>,
    /// Sum of the postings per currency (currencies are never mixed).
    pub net: Vec<crate::ledger::CurrencyTotal>,
    /// The latest succeeded run that reported this order.
    pub last_run_id: Option<Uuid>,
}

impl Database {
    /// An order's tracked conversions and postings; `NotFound` when neither side knows it.
    pub async fn order_view(
        &self,
        tenant: TenantId,
        order_id: &str,
    ) -> Result<OrderView, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let conversions: Vec<OrderConversion> = sqlx::query_as(
            "SELECT id, event_id, occurred_at, revenue_cents, currency::text AS currency, channel_code
             FROM attribution_events WHERE kind = 'conversion' AND order_id = $1
             ORDER BY occurred_at, id",
        )
        .bind(order_id)
        .fetch_all(&mut *tx)
        .await?;
        // Resolved: refunds and disputes that name the order's payment are the order's too.
        let postings = crate::ledger::order_postings(&mut tx, &[order_id.to_string()]).await?;
        if conversions.is_empty() && postings.is_empty() {
            return Err(StoreError::NotFound);
        }
        let grace = settings(&mut tx).await?.reconciliation_grace_hours;
        let last_run_id = latest_item(&mut tx, order_id).await?.map(|(run, _)| run);
        tx.commit().await?;
        let order = Order {
            order_id: order_id.to_string(),
            tracked: conversions.first().map(|c| Tracked {
                conversion_id: c.id,
                occurred_at: c.occurred_at,
                revenue_cents: c.revenue_cents,
                currency: c.currency.clone(),
                duplicates: u32::try_from(conversions.len() - 1).unwrap_or(u32::MAX),
            }),
            postings: postings
                .iter()
                .map(|p| Posting {
                    amount_cents: p.amount_cents,
                    currency: p.currency.clone(),
                    occurred_at: p.occurred_at,
                })
                .collect(),
        };
        let item = tally_core::reconcile::classify(
            &order,
            Utc::now(),
            chrono::TimeDelta::hours(grace.into()),
        );
        Ok(OrderView {
            order_id: order_id.to_string(),
            status: item.status.code().to_string(),
            reconciliation: item,
            conversions,
            net: crate::ledger::net_per_currency(&postings)?,
            postings,
            last_run_id,
        })
    }
}
