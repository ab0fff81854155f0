//! The dead-letter queue: events that failed validation, kept (redacted) so they can be fixed
//! upstream and replayed, never silently dropped.

use crate::Database;
use crate::cursor::{Cursor, Page, PageRequest};
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::keyset::{Listing, filter_values};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

/// A dead letter about to be written. `payload` must already be redacted.
#[derive(Debug, Clone)]
pub struct NewDeadEvent {
    pub source: &'static str,
    pub error_code: String,
    pub errors: serde_json::Value,
    pub payload: serde_json::Value,
    pub event_id: Option<String>,
    pub correlation_id: String,
}

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct DeadEvent {
    pub id: Uuid,
    pub source: String,
    pub error_code: String,
    #[schema(value_type = Vec<Object>)]
    pub errors: serde_json::Value,
    /// The submitted payload with personal data removed; any JSON value, since a batch item
    /// that was not an object (even `null`) is kept as sent.
    #[schema(value_type = Value)]
    pub payload: serde_json::Value,
    pub event_id: Option<String>,
    pub correlation_id: String,
    /// `open`, `replayed`, `discarded` or `superseded` (an event with the same `event_id` was
    /// accepted later; `replayed_event_id` names it).
    pub status: String,
    pub replay_count: i32,
    pub replayed_event_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadEventFilter {
    /// `open` (default for replay), `replayed`, `discarded` or `superseded`.
    #[param(inline)]
    #[schema(inline)]
    pub status: Option<DeadEventStatus>,
    pub error_code: Option<String>,
    #[param(inline)]
    #[schema(inline)]
    pub source: Option<DeadEventSource>,
    #[serde(default, deserialize_with = "tally_core::time::optional_rfc3339")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "tally_core::time::optional_rfc3339")]
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    #[schema(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

filter_values! {
    /// Where a dead letter stands.
    DeadEventStatus { Open = "open", Replayed = "replayed", Discarded = "discarded", Superseded = "superseded" }
}

filter_values! {
    /// What sent a dead letter: the tracking API, its Segment-compatible routes or a payment
    /// vendor.
    DeadEventSource {
        Api = "api", Segment = "segment", Shopify = "shopify", Stripe = "stripe", Paypal = "paypal",
        Woocommerce = "woocommerce",
    }
}

const COLUMNS: &str = "id, source, error_code, errors, payload, event_id, correlation_id, status,
    replay_count, replayed_event_id, created_at, updated_at";

/// Inserts dead letters inside the caller's transaction; returns their ids in order.
pub async fn insert_dead_events(
    tx: &mut PgConnection,
    tenant: TenantId,
    dead: &[NewDeadEvent],
) -> Result<Vec<Uuid>, StoreError> {
    if dead.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = dead.iter().map(|_| Uuid::now_v7()).collect();
    let col = |f: fn(&NewDeadEvent) -> serde_json::Value| dead.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO dead_events (tenant_id, id, source, error_code, errors, payload, event_id, correlation_id)
         SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::text[], $8::text[])",
    )
    .bind(tenant)
    .bind(&ids)
    .bind(dead.iter().map(|d| d.source).collect::<Vec<_>>())
    .bind(dead.iter().map(|d| d.error_code.as_str()).collect::<Vec<_>>())
    .bind(col(|d| d.errors.clone()))
    .bind(col(|d| d.payload.clone()))
    .bind(dead.iter().map(|d| d.event_id.as_deref()).collect::<Vec<_>>())
    .bind(dead.iter().map(|d| d.correlation_id.as_str()).collect::<Vec<_>>())
    .execute(tx)
    .await?;
    Ok(ids)
}

/// Links a replayed dead letter to the event it became.
pub async fn mark_replayed(tx: &mut PgConnection, id: Uuid, event: Uuid) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE dead_events SET status = 'replayed', replayed_event_id = $2,
             replay_count = replay_count + 1, updated_at = now()
         WHERE id = $1 AND status = 'open'",
    )
    .bind(id)
    .bind(event)
    .execute(tx)
    .await?;
    Ok(())
}

/// Records a replay that failed again, with today's errors.
pub async fn note_failed_replay(
    tx: &mut PgConnection,
    id: Uuid,
    error_code: &str,
    errors: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE dead_events SET replay_count = replay_count + 1, error_code = $2, errors = $3, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(error_code)
    .bind(errors)
    .execute(tx)
    .await?;
    Ok(())
}

impl Database {
    pub async fn list_dead_events(
        &self,
        tenant: TenantId,
        f: &DeadEventFilter,
    ) -> Result<Page<DeadEvent>, StoreError> {
        let page = PageRequest::parse(f.limit, f.cursor.as_deref())?;
        let listing = Listing {
            table: "dead_events",
            columns: COLUMNS,
            time_column: "created_at",
            filters: &[
                ("status", f.status.map(DeadEventStatus::as_str)),
                ("error_code", f.error_code.as_deref()),
                ("source", f.source.map(DeadEventSource::as_str)),
            ],
            from: f.from,
            to: f.to,
            bounds: &[],
        };
        self.keyset_page(tenant, &listing, &page, |d: &DeadEvent| Cursor {
            at: d.created_at,
            id: d.id,
        })
        .await
    }

    /// Locks and returns one dead letter for a replay or discard in `tx`.
    pub async fn lock_dead_event(tx: &mut PgConnection, id: Uuid) -> Result<DeadEvent, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM dead_events WHERE id = $1 FOR UPDATE");
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(tx)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Locks up to `limit` open dead letters matching `f` (oldest first) for a bulk replay.
    /// Only tracking events (`source = 'api'`): a payment delivery is replayed by its vendor.
    pub async fn lock_open_dead_events(
        tx: &mut PgConnection,
        f: &DeadEventFilter,
        limit: i64,
    ) -> Result<Vec<DeadEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM dead_events
             WHERE status = 'open' AND source = 'api'
               AND ($1::text IS NULL OR error_code = $1)
               AND ($2::text IS NULL OR source = $2)
               AND ($3::timestamptz IS NULL OR created_at >= $3)
               AND ($4::timestamptz IS NULL OR created_at < $4)
             ORDER BY created_at, id
             LIMIT $5
             FOR UPDATE SKIP LOCKED"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&f.error_code)
            .bind(f.source.map(DeadEventSource::as_str))
            .bind(f.from)
            .bind(f.to)
            .bind(limit)
            .fetch_all(tx)
            .await?)
    }

    /// Marks an open dead letter discarded (kept for the record, never replayed).
    pub async fn discard_dead_event(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<DeadEvent, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let dead = Self::lock_dead_event(&mut tx, id).await?;
        if dead.status != "open" {
            return Err(StoreError::Conflict(format!(
                "dead event is {}, only open ones can be discarded",
                dead.status
            )));
        }
        let sql = format!(
            "UPDATE dead_events SET status = 'discarded', updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
        );
        let updated = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(updated)
    }
}

impl Database {
    /// Open dead letters per tenant, across the installation (operator view, counts only).
    pub async fn dead_letter_depth(&self) -> Result<Vec<(TenantId, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, count(*) FROM dead_events WHERE status = 'open' GROUP BY tenant_id",
        )
        .fetch_all(self.operator_pool())
        .await?)
    }
}
