//! Realtime totals (migration 0041, 0042): tracked conversions and ledger postings per quarter
//! hour and currency, readable within a second of their commit.
//!
//! Writers only insert delta rows (`tally_ingest_events`, the ledger's insert trigger); workers
//! fold them into `live_totals` about every second ([`Database::fold_live_deltas`]); readers add
//! totals and unfolded deltas in one statement ([`totals`]), so a fold that commits between two
//! reads changes nothing they can see.

use crate::Database;
use crate::error::StoreError;
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// One stream's total in one currency.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LiveTotal {
    /// `tracked` (accepted conversions) or `ledger` (postings, net).
    pub stream: String,
    pub currency: String,
    pub events: i64,
    pub cents: i64,
    /// When the newest counted event or posting was received.
    pub last_at: DateTime<Utc>,
}

/// A total as summed in SQL: `cents` is NULL when it does not fit in 64 bits.
#[derive(sqlx::FromRow)]
struct RawTotal {
    stream: String,
    currency: String,
    events: i64,
    cents: Option<i64>,
    last_at: DateTime<Utc>,
}

/// Totals of the quarter hours in `[from, to)` (bounds on quarter hours), per stream and currency.
pub async fn totals(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<LiveTotal>, StoreError> {
    // Sums stay numeric in SQL and only become i64 when they fit (None otherwise).
    let rows: Vec<RawTotal> = sqlx::query_as(
        "SELECT stream, currency::text AS currency, sum(events)::bigint AS events,
                    CASE WHEN abs(sum(cents)) <= 9223372036854775807 THEN sum(cents)::bigint END AS cents,
                    max(last_at) AS last_at
             FROM (SELECT stream, currency, events, cents, last_at FROM live_totals
                   WHERE tenant_id = $1 AND bucket_start >= $2 AND bucket_start < $3
                   UNION ALL
                   SELECT stream, currency, events, cents, last_at FROM live_deltas
                   WHERE tenant_id = $1 AND bucket_start >= $2 AND bucket_start < $3) x
             GROUP BY stream, currency ORDER BY stream, currency",
    )
    .bind(tenant)
    .bind(range.0)
    .bind(range.1)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(
            |RawTotal {
                 stream,
                 currency,
                 events,
                 cents,
                 last_at,
             }| {
                let cents = cents.ok_or_else(|| {
                    StoreError::Invalid(format!("the {stream} total in {currency} exceeds 64 bits"))
                })?;
                Ok(LiveTotal {
                    stream,
                    currency,
                    events,
                    cents,
                    last_at,
                })
            },
        )
        .collect()
}

impl Database {
    /// Folds every tenant's deltas into the totals; returns how many tenants were folded. Safe to
    /// run from any number of processes at once: a tenant being folded elsewhere is skipped.
    pub async fn fold_live_deltas(&self) -> Result<usize, StoreError> {
        let tenants: Vec<TenantId> =
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM live_deltas")
                .fetch_all(self.operator_pool())
                .await?;
        let mut folded = 0;
        for tenant in tenants {
            let mut tx = self.tenant_tx(tenant).await?;
            // One folder per tenant at a time: two folders deleting the same rows in different
            // orders could deadlock.
            let mine: bool = sqlx::query_scalar(
                "SELECT pg_try_advisory_xact_lock(hashtextextended($1::text || '/live/fold', 0))",
            )
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
            if !mine {
                continue;
            }
            sqlx::query(
                "WITH moved AS (
                    DELETE FROM live_deltas WHERE tenant_id = $1
                    RETURNING stream, bucket_start, currency, events, cents, last_at)
                 INSERT INTO live_totals (tenant_id, stream, bucket_start, currency, events, cents, last_at)
                 SELECT $1, stream, bucket_start, currency, sum(events), sum(cents), max(last_at)
                 FROM moved GROUP BY stream, bucket_start, currency
                 ON CONFLICT (tenant_id, bucket_start, stream, currency) DO UPDATE
                 SET events = live_totals.events + EXCLUDED.events,
                     cents = live_totals.cents + EXCLUDED.cents,
                     last_at = greatest(live_totals.last_at, EXCLUDED.last_at)",
            )
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            folded += 1;
        }
        Ok(folded)
    }
}
