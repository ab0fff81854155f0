//! Recompute of attribution windows: scheduling (from the API, the CLI and ingestion), loading a
//! window's events, and replacing its allocations and rollups in one transaction.
//!
//! A window's identity is (tenant, window_start, window_end, model_version): one row of
//! `attribution_recompute_jobs` however often it is scheduled, and at most one pending job for it
//! (the identity row's id is the job's dedupe key). Every function here takes a connection whose
//! transaction already acts for the tenant ([`crate::Database::tenant_tx`]).

use crate::db::Database;
use crate::error::StoreError;
use crate::identity::{self, Fold, JourneyScope, Link, Stitching};
use crate::ids::TenantId;
use crate::jobs;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::collections::HashMap;
use tally_attribution::{Conversion, Touch};
use uuid::Uuid;

/// The job kind of a recompute.
pub const RECOMPUTE_KIND: &str = "attribution.recompute";

/// Rows per `INSERT ... SELECT FROM unnest(...)`, to bound the size of one bind message.
const INSERT_CHUNK: usize = 100_000;

/// A recompute identity and the state of its latest run.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RecomputeJob {
    pub id: Uuid,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub model_version: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// Completed runs.
    pub run_count: i32,
    pub last_correlation_id: Option<String>,
    pub last_error: Option<String>,
    /// Conversions attributed by the latest run.
    pub conversions: Option<i32>,
    pub updated_at: DateTime<Utc>,
}

/// The job's payload: which identity row to run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RecomputePayload {
    pub recompute_id: Uuid,
}

const JOB_COLUMNS: &str = "id, window_start, window_end, model_version, status, run_count, \
                           last_correlation_id, last_error, conversions, updated_at";

impl Database {
    /// Schedules a recompute of `[window_start, window_end)`, widened to the tenant's local hour
    /// boundaries (`rollups::job_span`), in a transaction of its own: every caller (the API, the
    /// CLI, tests) asks for exactly this one write.
    pub async fn schedule_recompute(
        &self,
        tenant: TenantId,
        window_start: DateTime<Utc>,
        window_end: DateTime<Utc>,
        model_version: &str,
        correlation_id: &str,
    ) -> Result<RecomputeJob, StoreError> {
        if window_start >= window_end {
            return Err(StoreError::Invalid(
                "the window must start before it ends".into(),
            ));
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let window = crate::rollups::job_span(&mut tx, (window_start, window_end)).await?;
        let mut jobs =
            schedule_windows(&mut tx, tenant, &[window], model_version, correlation_id).await?;
        tx.commit().await?;
        jobs.pop().ok_or(StoreError::NotFound)
    }
}

/// Schedules the tenant-day windows that events at `occurred` can change (the rules are in
/// `tally_schedule_for_events`, migration 0014), holding the shared ingest lock until the
/// caller's transaction ends, exactly as `tally_ingest_events` does for the events it writes.
/// For events written by other means, and for tests that play an ingest transaction.
pub async fn schedule_for_events(
    tx: &mut PgConnection,
    tenant: TenantId,
    occurred: &[DateTime<Utc>],
    correlation_id: &str,
) -> Result<(), StoreError> {
    // Two statements on purpose: the schedule's snapshot must be younger than the lock.
    hold_ingest_lock(tx, tenant).await?;
    sqlx::query("SELECT tally_schedule_for_events($1, $2, $3, $4, $5)")
        .bind(tenant)
        .bind(occurred)
        .bind(tally_attribution::MODEL_VERSION)
        .bind(correlation_id)
        .bind(RECOMPUTE_KIND)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Takes the tenant's ingest lock shared until the transaction ends, in a statement of its own.
/// A transaction that then finds a window's job still pending and so enqueues nothing relies on
/// [`ingest_barrier`]: the run that claims that job waits for this transaction's commit before it
/// reads anything.
pub(crate) async fn hold_ingest_lock(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared(tally_ingest_lock_key($1))")
        .bind(tenant)
        .execute(conn)
        .await?;
    Ok(())
}

/// Schedules every tenant-local day in `time_zone` that holds a conversion (what a change of the
/// attribution settings alters), with the same day arithmetic as ingestion's scheduling
/// (`tally_unscheduled_windows`, migration 0015), so the windows are the ones ingestion uses.
/// The caller holds [`hold_ingest_lock`].
///
/// The days are found by skipping from each day's midnight to the next conversion on the
/// conversions index, one probe per day, rather than by `SELECT DISTINCT` over every
/// conversion: on 1 M conversions over 31 days (2-core machine, under load) 0.7–6.5 ms instead
/// of 2.1 s, time during which this transaction would hold the lock recomputes wait for.
pub(crate) async fn schedule_conversion_days(
    conn: &mut PgConnection,
    tenant: TenantId,
    time_zone: &str,
    correlation_id: &str,
) -> Result<Vec<RecomputeJob>, StoreError> {
    let windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "WITH RECURSIVE days (day) AS (
             SELECT (min(occurred_at) AT TIME ZONE $2)::date FROM attribution_events
             WHERE tenant_id = $1 AND kind = 'conversion'
             UNION ALL
             SELECT (SELECT (e.occurred_at AT TIME ZONE $2)::date FROM attribution_events e
                     WHERE e.tenant_id = $1 AND e.kind = 'conversion'
                       AND e.occurred_at >= (days.day + 1)::timestamp AT TIME ZONE $2
                     ORDER BY e.occurred_at LIMIT 1)
             FROM days WHERE days.day IS NOT NULL)
         SELECT day::timestamp AT TIME ZONE $2, (day + 1)::timestamp AT TIME ZONE $2
         FROM days WHERE day IS NOT NULL ORDER BY 1",
    )
    .bind(tenant)
    .bind(time_zone)
    .fetch_all(&mut *conn)
    .await?;
    schedule_windows(
        conn,
        tenant,
        &windows,
        tally_attribution::MODEL_VERSION,
        correlation_id,
    )
    .await
}

/// Waits until every ingest transaction of the tenant that is in flight now has ended, then
/// lets go at once, and returns the links horizon: the last value the identity links' sequence
/// had handed out while no ingest transaction was in flight (migration 0100), so every link up
/// to it is committed and visible to the statements that follow. A recompute calls it after its
/// job was claimed and before it reads events.
///
/// Ingestion (`tally_ingest_events`, migration 0014) holds the same key shared until it commits,
/// and looks at whether a window's job is still pending only after the lock was granted, in a
/// later statement. So every ingest transaction that saw the job pending (and therefore enqueued
/// nothing) committed before this returns, and the recompute reads its events; transactions that
/// start after it see the job running and enqueue a new one. No event is left out of every run.
/// Session-level lock and unlock, so ingestion pauses for the drain only, not for the whole
/// recompute; the sequence is read between the two (target list order).
pub async fn ingest_barrier(conn: &mut PgConnection, tenant: TenantId) -> Result<i64, StoreError> {
    let (_, horizon, _): (String, Option<i64>, bool) = sqlx::query_as(
        "SELECT pg_advisory_lock(tally_ingest_lock_key($1))::text,
                pg_sequence_last_value('identity_links_seq'),
                pg_advisory_unlock(tally_ingest_lock_key($1))",
    )
    .bind(tenant)
    .fetch_one(conn)
    .await?;
    Ok(horizon.unwrap_or(0))
}

/// Upserts the identity rows of `windows` (an explicit request: the API or the CLI) and enqueues
/// a job for each that has none pending. Rows are locked in window order (`ORDER BY s`) so that
/// concurrent requests for the same days never deadlock.
pub(crate) async fn schedule_windows(
    conn: &mut PgConnection,
    tenant: TenantId,
    windows: &[(DateTime<Utc>, DateTime<Utc>)],
    model_version: &str,
    correlation_id: &str,
) -> Result<Vec<RecomputeJob>, StoreError> {
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let (starts, ends): (Vec<_>, Vec<_>) = windows.iter().copied().unzip();
    let sql = format!(
        "WITH w AS (SELECT DISTINCT * FROM unnest($2::timestamptz[], $3::timestamptz[]) AS w(s, e)),
              ident AS (
                INSERT INTO attribution_recompute_jobs
                    (tenant_id, id, window_start, window_end, model_version, status, last_correlation_id)
                SELECT $1, gen_random_uuid(), s, e, $4, 'pending', $5 FROM w ORDER BY s
                ON CONFLICT (tenant_id, window_start, window_end, model_version) DO UPDATE
                SET status = 'pending', last_correlation_id = EXCLUDED.last_correlation_id,
                    updated_at = now()
                RETURNING *),
              queued AS (
                INSERT INTO jobs (tenant_id, id, kind, dedupe_key, payload, correlation_id)
                SELECT $1, gen_random_uuid(), $6, id::text, jsonb_build_object('recompute_id', id), $5
                FROM ident
                ON CONFLICT (tenant_id, kind, dedupe_key)
                    WHERE status = 'pending' AND dedupe_key IS NOT NULL DO NOTHING)
         SELECT {JOB_COLUMNS} FROM ident ORDER BY window_start"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(starts)
        .bind(ends)
        .bind(model_version)
        .bind(correlation_id)
        .bind(RECOMPUTE_KIND)
        .fetch_all(conn)
        .await?)
}

/// One recompute identity of the tenant.
pub async fn get_recompute(conn: &mut PgConnection, id: Uuid) -> Result<RecomputeJob, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM attribution_recompute_jobs WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Records that a run started (its own short transaction, so progress is visible).
pub async fn mark_running(conn: &mut PgConnection, id: Uuid) -> Result<(), StoreError> {
    set_status(conn, id, "running", None).await
}

/// Records that the job gave up (its error is in `worker_failed_jobs` too).
pub async fn mark_failed(conn: &mut PgConnection, id: Uuid, error: &str) -> Result<(), StoreError> {
    set_status(conn, id, "failed", Some(error)).await
}

async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE attribution_recompute_jobs SET status = $2, last_error = COALESCE($3, last_error),
                updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes the tenant's recomputes run one at a time, until the transaction ends; call it first.
///
/// Without it, two runs of one window (a new pending job claimed while the previous run still
/// works, or a replay) could commit in the wrong order, the one that read fewer events last; and
/// windows sharing a rollup hour at their edges (half-hour time zones) would collide.
pub async fn lock_tenant(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text || '/recompute/' || $2, 0))",
    )
    .bind(tenant)
    .bind(model_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// The tenant's attribution parameters.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttributionSettings {
    pub lookback_days: i32,
    pub time_decay_half_life_hours: f64,
    pub markov_order: i32,
    pub time_zone: String,
    pub identity_cross_session: bool,
    pub identity_max_component_ids: i32,
}

pub async fn attribution_settings(
    conn: &mut PgConnection,
) -> Result<AttributionSettings, StoreError> {
    sqlx::query_as(
        "SELECT lookback_days, time_decay_half_life_hours, markov_order, time_zone,
                identity_cross_session, identity_max_component_ids FROM tenant_settings",
    )
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// What a window's recompute reads.
#[derive(Debug, Default)]
pub struct WindowEvents {
    pub touches: Vec<Touch>,
    pub conversions: Vec<Conversion>,
    /// Parallel to `conversions`.
    pub currencies: Vec<String>,
}

/// Loads the conversions of `[start, end)` and the touches that can be in their journeys or in
/// the window's non-converting paths: every touch of the window, plus the touches of every id of
/// the converting journeys (see [`JourneyScope`]) in the lookback before it. Other journeys'
/// older touches are left out on purpose: they are earlier windows' paths, and loading them would
/// read `lookback` days for every day.
///
/// On the way it folds the identity links that the window's events carry and its earlier runs
/// did not fold ([`identity::fold`]), from the rows it reads anyway, so that ingestion only
/// stamps events with a number (migration 0140); the caller schedules the days a merge changes.
pub async fn load_window(
    conn: &mut PgConnection,
    tenant: TenantId,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    lookback: TimeDelta,
    scope: JourneyScope,
    stitching: Stitching,
) -> Result<(WindowEvents, Fold), StoreError> {
    let first = scope.first_id();
    let mark = stitching.window_mark(conn).await?;
    let rows = |kind: &str, columns: &str| {
        format!(
            "SELECT e.id, {first}, e.occurred_at, {columns}, {}
             FROM attribution_events e
             WHERE e.tenant_id = $1 AND e.kind = '{kind}' AND e.occurred_at >= $2
               AND e.occurred_at < $3",
            identity::NEW_LINK
        )
    };
    let range = (tenant, start, end);
    let links_range = (mark, stitching.horizon);
    let conversions: Vec<ConversionRow> = window_rows(
        conn,
        rows("conversion", "e.revenue_cents, e.currency::text"),
        range,
        links_range,
    )
    .await?;
    let touches: Vec<TouchRow> =
        window_rows(conn, rows("touch", "e.channel_code"), range, links_range).await?;
    // The window's new links are folded before its journeys are keyed, so they follow them.
    let mut links = Vec::new();
    let mut conversions: Vec<_> = conversions
        .into_iter()
        .map(|(id, first, at, cents, currency, seq, ids)| {
            links.extend(Link::from_event(seq, ids, at));
            (id, first, at, cents, currency)
        })
        .collect();
    let mut touches: Vec<_> = touches
        .into_iter()
        .map(|(id, first, at, channel, seq, ids)| {
            links.extend(Link::from_event(seq, ids, at));
            (id, first, at, channel)
        })
        .collect();
    let fold = identity::fold(conn, tenant, stitching, links).await?;
    let ids = conversions
        .iter_mut()
        .map(|c| &mut c.1)
        .chain(touches.iter_mut().map(|t| &mut t.1));
    scope.keys(conn, tenant, ids).await?;
    touches.extend(
        shoppers_touches(conn, tenant, scope, &conversions, (start - lookback, start)).await?,
    );
    Ok((WindowEvents::new(touches, conversions), fold))
}

/// A touch as the loaders key it: id, journey key, time, channel.
type KeyedTouch = (Uuid, String, DateTime<Utc>, String);
/// A conversion as the loaders key it: id, journey key, time, cents, currency.
type KeyedConversion = (Uuid, String, DateTime<Utc>, i64, String);

impl WindowEvents {
    fn new(touches: Vec<KeyedTouch>, conversions: Vec<KeyedConversion>) -> Self {
        let mut window = WindowEvents {
            touches: Vec::with_capacity(touches.len()),
            conversions: Vec::with_capacity(conversions.len()),
            currencies: Vec::with_capacity(conversions.len()),
        };
        for (event_id, identity, occurred_at, channel) in touches {
            window.touches.push(Touch {
                event_id,
                identity,
                occurred_at,
                channel,
            });
        }
        for (event_id, identity, occurred_at, revenue_cents, currency) in conversions {
            window.conversions.push(Conversion {
                event_id,
                identity,
                occurred_at,
                revenue_cents,
            });
            window.currencies.push(currency);
        }
        window
    }
}

/// The touches in `span` of every shopper with one of `conversions` (already keyed), by the
/// identity indexes. No conversions, no lookups: ingestion schedules days without conversions
/// too, and they skip both.
async fn shoppers_touches(
    conn: &mut PgConnection,
    tenant: TenantId,
    scope: JourneyScope,
    conversions: &[KeyedConversion],
    span: (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<KeyedTouch>, StoreError> {
    let mut keys: Vec<&str> = conversions.iter().map(|c| c.1.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, id_keys) = scope.ids(conn, tenant, &keys).await?;
    scope.touches(conn, tenant, (&ids, &id_keys), span).await
}

/// The conversions of `[start, end)` that have no stored split yet (accepted since the window's
/// last run), with the touches of their shoppers' journeys, when there are at most `cap` of them;
/// `None` when there are none or more. For the fast pass that attributes new sales under the
/// journey-local models ahead of their window's full run (crates/worker/src/recompute.rs): a few
/// index lookups per shopper instead of the window's every event. Journeys are keyed by the
/// shopper graph as folded so far; the full run folds the window's new links and corrects them.
pub async fn load_unsplit(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    lookback: TimeDelta,
    scope: JourneyScope,
    cap: usize,
) -> Result<Option<WindowEvents>, StoreError> {
    let first = scope.first_id();
    let mut conversions: Vec<KeyedConversion> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT e.id, {first}, e.occurred_at, e.revenue_cents, e.currency::text
             FROM attribution_events e
             WHERE e.tenant_id = $1 AND e.kind = 'conversion' AND e.occurred_at >= $2
               AND e.occurred_at < $3
               AND NOT EXISTS (SELECT FROM attribution_splits s
                               WHERE s.tenant_id = e.tenant_id AND s.conversion_id = e.id
                                 AND s.model_version = $4 OFFSET 0)
             LIMIT $5"
    )))
    .bind(tenant)
    .bind(start)
    .bind(end)
    .bind(model_version)
    .bind(i64::try_from(cap).unwrap_or(i64::MAX).saturating_add(1))
    .fetch_all(&mut *conn)
    .await?;
    if conversions.is_empty() || conversions.len() > cap {
        return Ok(None);
    }
    scope
        .keys(conn, tenant, conversions.iter_mut().map(|c| &mut c.1))
        .await?;
    let earliest = conversions.iter().map(|c| c.2).min().unwrap_or(start);
    let latest = conversions.iter().map(|c| c.2).max().unwrap_or(start);
    // A journey is `[t - lookback, t]`, both ends inclusive (`tally_attribution::journey`).
    let span = (earliest - lookback, latest + TimeDelta::microseconds(1));
    let touches = shoppers_touches(conn, tenant, scope, &conversions, span).await?;
    Ok(Some(WindowEvents::new(touches, conversions)))
}

/// The rows of one kind that [`load_window`] reads: `$1`–`$3` the tenant and the window, `$4`–`$5`
/// the links range of [`identity::NEW_LINK`].
async fn window_rows<T>(
    conn: &mut PgConnection,
    sql: String,
    (tenant, start, end): (TenantId, DateTime<Utc>, DateTime<Utc>),
    (mark, horizon): (i64, i64),
) -> Result<Vec<T>, StoreError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(start)
        .bind(end)
        .bind(mark)
        .bind(horizon)
        .fetch_all(conn)
        .await?)
}

/// The ids of [`identity::NEW_LINK`]'s second column.
type NewIds = Option<Vec<Option<String>>>;
/// A conversion as [`load_window`] reads it: id, first id, time, cents, currency, new link.
type ConversionRow = (
    Uuid,
    String,
    DateTime<Utc>,
    i64,
    String,
    Option<i64>,
    NewIds,
);
/// A touch as [`load_window`] reads it: id, first id, time, channel, new link.
type TouchRow = (Uuid, String, DateTime<Utc>, String, Option<i64>, NewIds);

/// Every model's split of one conversion, to write (a row of `attribution_splits`, migration
/// 0150): the models and the channels any of them credited, each in byte order, and the cents and
/// weights as models × channels matrices, row-major; a cell of weight 0 is a channel the model
/// did not credit.
#[derive(Debug, Clone)]
pub struct NewSplit<'a> {
    pub conversion_id: Uuid,
    pub models: Vec<&'static str>,
    pub channels: Vec<&'a str>,
    pub cents: Vec<i64>,
    /// As stored: see [`NewSplit::stored_weight`].
    pub weights: Vec<f64>,
    pub currency: &'a str,
    pub occurred_at: DateTime<Utc>,
}

impl NewSplit<'_> {
    /// A weight as stored: the models' shares sum to 1 up to float error, and the column's
    /// CHECK wants [0, 1] exactly.
    pub fn stored_weight(weight: f64) -> f64 {
        weight.clamp(0.0, 1.0)
    }

    /// Equal to a stored row, column by column (floats bit for bit: they round-trip exactly).
    fn is_stored_as(&self, s: &StoredSplit) -> bool {
        self.currency == s.currency
            && self.occurred_at == s.occurred_at
            && self.cents == s.cents
            && self.models.iter().eq(s.models.iter())
            && self.channels.iter().eq(s.channels.iter())
            && self.weights.len() == s.weights.len()
            && self
                .weights
                .iter()
                .zip(&s.weights)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

/// A stored row of `attribution_splits`, laid out as [`NewSplit`].
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredSplit {
    pub conversion_id: Uuid,
    pub models: Vec<String>,
    pub channels: Vec<String>,
    pub cents: Vec<i64>,
    pub weights: Vec<f64>,
    pub currency: String,
    pub occurred_at: DateTime<Utc>,
}

/// The result of one run, to write.
pub struct WindowResult<'a> {
    pub recompute: &'a RecomputeJob,
    /// The window as worked on (`rollups::job_span`): its splits are replaced.
    pub span: (DateTime<Utc>, DateTime<Utc>),
    pub splits: &'a [NewSplit<'a>],
    pub conversions: usize,
}

/// Replaces the window's splits and records the run, in the caller's (job's) transaction,
/// after [`lock_tenant`]; the job then reconciles the window and rebuilds its rollups in the same
/// transaction, so readers see the old result or the new, never a mix. Returns how many
/// conversions' splits it wrote (new or changed).
pub async fn replace_window(
    conn: &mut PgConnection,
    tenant: TenantId,
    result: WindowResult<'_>,
) -> Result<usize, StoreError> {
    let job = result.recompute;
    // Only the rows that differ are written: a rerun over unchanged events rewrites nothing, and
    // new events change the splits of the conversions whose journeys they join (and, through
    // Markov and Shapley, of the window's others). Reading the window's rows back costs a
    // fraction of deleting and inserting them all.
    let stored = window_splits(conn, tenant, &job.model_version, result.span).await?;
    let mut old: HashMap<Uuid, &StoredSplit> =
        stored.iter().map(|s| (s.conversion_id, s)).collect();
    let mut stale: Vec<Uuid> = Vec::new();
    let mut fresh: Vec<&NewSplit> = Vec::new();
    for split in result.splits {
        match old.remove(&split.conversion_id) {
            Some(s) if split.is_stored_as(s) => {}
            Some(_) => {
                stale.push(split.conversion_id);
                fresh.push(split);
            }
            None => fresh.push(split),
        }
    }
    stale.extend(old.into_keys());
    for chunk in stale.chunks(INSERT_CHUNK) {
        delete_splits(conn, tenant, &job.model_version, chunk).await?;
    }
    insert_splits(conn, tenant, &job.model_version, &fresh).await?;
    let pending = jobs::pending_exists(conn, RECOMPUTE_KIND, &job.id.to_string()).await?;
    sqlx::query(
        "UPDATE attribution_recompute_jobs
         SET status = CASE WHEN $2 THEN 'pending' ELSE 'succeeded' END, run_count = run_count + 1,
             conversions = $3, last_error = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(job.id)
    .bind(pending)
    .bind(i32::try_from(result.conversions).unwrap_or(i32::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(fresh.len())
}

/// The stored splits of the conversions in `[start, end)`, in no particular order: the window's
/// conversions by their time index, then each one's split by the primary key, whose prefix is
/// (tenant_id, conversion_id) (a split's time is its conversion's, which the insert trigger of
/// migration 0150 enforces). `OFFSET 0` keeps the lateral subquery a nested loop of key probes
/// whatever the planner's statistics say (they are stale right after a bulk load, when a hash
/// join over every split of the tenant would be the plan).
///
/// By window rather than by a list of conversion ids: `conversion_id = ANY($1)` with a bound
/// array is a linear search per row (PostgreSQL hashes only constant arrays), 26.8 s for
/// 387 k allocations of 90 k conversions on the bench month.
pub async fn window_splits(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<StoredSplit>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT s.conversion_id, s.models, s.channels, s.cents, s.weights, s.currency::text,
                s.occurred_at
         FROM attribution_events e
         CROSS JOIN LATERAL (
             SELECT * FROM attribution_splits s
             WHERE s.tenant_id = e.tenant_id AND s.conversion_id = e.id
               AND s.model_version = $2
             OFFSET 0) s
         WHERE e.tenant_id = $1 AND e.kind = 'conversion' AND e.occurred_at >= $3
           AND e.occurred_at < $4",
    )
    .bind(tenant)
    .bind(model_version)
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?)
}

/// Writes the splits of conversions that have none (the fast pass: see [`load_unsplit`]), in
/// the caller's transaction, after [`lock_tenant`].
pub async fn insert_new_splits(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    splits: &[NewSplit<'_>],
) -> Result<(), StoreError> {
    let rows: Vec<&NewSplit> = splits.iter().collect();
    insert_splits(conn, tenant, model_version, &rows).await
}

/// Deletes the splits of these conversions.
async fn delete_splits(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    conversions: &[Uuid],
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM attribution_splits s USING unnest($3::uuid[]) AS k(conversion_id)
         WHERE s.tenant_id = $1 AND s.model_version = $2 AND s.conversion_id = k.conversion_id",
    )
    .bind(tenant)
    .bind(model_version)
    .bind(conversions)
    .execute(conn)
    .await?;
    Ok(())
}

/// Each split's arrays travel as one comma-joined text apiece, split back by `string_to_array`:
/// PostgreSQL has no array of arrays of varying length to `unnest`, and COPY, which could carry
/// them, refuses tables under row-level security. Model and channel codes are `[a-z0-9_]`
/// (taxonomy CHECK), integers and Rust's shortest round-trip float text have no comma, and
/// PostgreSQL reads that float text back to the same bits.
async fn insert_splits(
    conn: &mut PgConnection,
    tenant: TenantId,
    model_version: &str,
    splits: &[&NewSplit<'_>],
) -> Result<(), StoreError> {
    // `Debug` writes floats in their shortest round-trip form with an exponent when it is far
    // from 0 (`1e-31`), which `Display` spells out in full.
    fn joined<T: std::fmt::Debug>(items: &[T]) -> String {
        let mut out = String::with_capacity(items.len() * 8);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            std::fmt::Write::write_fmt(&mut out, format_args!("{item:?}"))
                .expect("writing to a String cannot fail");
        }
        out
    }
    for rows in splits.chunks(INSERT_CHUNK) {
        sqlx::query(
            "INSERT INTO attribution_splits (tenant_id, model_version, conversion_id, models,
                 channels, cents, weights, currency, occurred_at)
             SELECT $1, $2, u.c, string_to_array(u.m, ','), string_to_array(u.ch, ','),
                    string_to_array(u.ce, ',')::bigint[], string_to_array(u.w, ',')::float8[],
                    u.cur, u.t
             FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                         $9::timestamptz[]) AS u(c, m, ch, ce, w, cur, t)",
        )
        .bind(tenant)
        .bind(model_version)
        .bind(rows.iter().map(|r| r.conversion_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.models.join(",")).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.channels.join(","))
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| joined(&r.cents)).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| joined(&r.weights)).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.currency).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Whether a recompute of a window overlapping `[from, to)` is queued or running (its new
/// conversions are not in the stored figures yet).
pub async fn pending_overlapping(
    conn: &mut PgConnection,
    model_version: &str,
    span: (DateTime<Utc>, DateTime<Utc>),
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM attribution_recompute_jobs
                        WHERE model_version = $1 AND status IN ('pending', 'running')
                          AND window_start < $3 AND window_end > $2)",
    )
    .bind(model_version)
    .bind(span.0)
    .bind(span.1)
    .fetch_one(conn)
    .await?)
}
