//! Reading events back: filters, newest first, keyset cursor pagination.

use crate::Database;
use crate::cursor::{Cursor, Page, PageRequest};
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::keyset::Listing;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use tally_core::event::{EventKind, EventType};
use uuid::Uuid;

/// A stored event as the API returns it.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct StoredEvent {
    pub id: Uuid,
    pub event_id: String,
    pub kind: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub session_id: String,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub order_id: Option<String>,
    /// Minor units of `currency` (cents, yen, fils).
    pub revenue_cents: Option<i64>,
    pub currency: Option<String>,
    pub channel_code: String,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    pub referrer_host: Option<String>,
    #[schema(value_type = Object)]
    pub click_ids: serde_json::Value,
    #[schema(value_type = Object)]
    pub properties: serde_json::Value,
    pub correlation_id: String,
    pub replayed_from: Option<Uuid>,
}

/// Filters of `GET /v1/events`; every one optional.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// One of the event types (`page_view`, ..., `purchase`, ...); another value is a 400 that
    /// lists them.
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = crate::doc::event_types)]
    pub event_type: Option<EventType>,
    /// `touch` or `conversion`.
    #[param(schema_with = crate::doc::event_kinds)]
    pub kind: Option<EventKind>,
    pub channel: Option<String>,
    pub session_id: Option<String>,
    pub order_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    /// Inclusive lower bound on `occurred_at`.
    #[serde(default, deserialize_with = "tally_core::time::optional_rfc3339")]
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `occurred_at`.
    #[serde(default, deserialize_with = "tally_core::time::optional_rfc3339")]
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

const COLUMNS: &str =
    "id, event_id, kind, event_type, occurred_at, received_at, session_id, anonymous_id, user_id,
    order_id, revenue_cents, currency, channel_code, utm_source, utm_medium, utm_campaign, utm_term,
    utm_content, referrer_host, click_ids, properties, correlation_id, replayed_from";

impl Database {
    pub async fn list_events(
        &self,
        tenant: TenantId,
        f: &EventFilter,
    ) -> Result<Page<StoredEvent>, StoreError> {
        let page = PageRequest::parse(f.limit, f.cursor.as_deref())?;
        let listing = Listing {
            table: "attribution_events",
            columns: COLUMNS,
            time_column: "occurred_at",
            filters: &[
                ("event_type", f.event_type.map(EventType::as_str)),
                ("kind", f.kind.map(EventKind::as_str)),
                ("channel_code", f.channel.as_deref()),
                ("session_id", f.session_id.as_deref()),
                ("order_id", f.order_id.as_deref()),
                ("anonymous_id", f.anonymous_id.as_deref()),
                ("user_id", f.user_id.as_deref()),
            ],
            from: f.from,
            to: f.to,
            bounds: &[],
        };
        self.keyset_page(tenant, &listing, &page, |e: &StoredEvent| Cursor {
            at: e.occurred_at,
            id: e.id,
        })
        .await
    }

    /// One event by Tally's id or by the client's `event_id` (as the conversion endpoint takes
    /// them): clients know their own ids. Tally's id wins when a client's `event_id` happens to
    /// be another event's UUID.
    pub async fn get_event(&self, tenant: TenantId, key: &str) -> Result<StoredEvent, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM attribution_events
             WHERE tenant_id = $1 AND (id = $2 OR event_id = $3)
             ORDER BY id = $2 DESC LIMIT 1"
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let event = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(key.parse::<Uuid>().ok())
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(event)
    }
}
