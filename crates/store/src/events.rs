//! Writing and reading tracking events.
//!
//! A batch of events is one call of `tally_ingest_events` (migration 0014), whose multi-row
//! `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT DO NOTHING RETURNING` writes them: one
//! statement and one round trip however many events, which is what keeps the batch endpoint
//! close to raw `COPY` speed. The idempotency key is claimed by that same
//! insert, in the same transaction as the write (REFERENCE "Idempotency": claiming first and
//! writing later loses events when the write fails).
//!
//! Rows the insert skipped already existed (or appeared earlier in the same batch, or were
//! committed by a concurrent request while this one waited on the unique index): their stored
//! payload hash says whether this is a duplicate (same hash) or an idempotency conflict.

use crate::error::StoreError;
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use std::collections::HashMap;
use tally_core::event::ValidEvent;
use uuid::Uuid;

/// A valid event with where it came from.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: ValidEvent,
    pub correlation_id: String,
    /// The dead-lettered event this one replays, if any.
    pub replayed_from: Option<Uuid>,
}

/// What happened to one event of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum WriteOutcome {
    /// Stored now, under this id.
    Accepted { id: Uuid },
    /// The same event was stored before, under this id; nothing was written.
    Duplicate { id: Uuid },
    /// The key is taken by an event with a different payload; nothing was written.
    Conflict { id: Uuid },
}

/// One call writes the group, answers for every key and schedules the recompute (migration
/// 0014 says why it is a function).
const INGEST_EVENTS: &str = r#"
SELECT event_id, id, payload_sha256, accepted FROM tally_ingest_events(
    $1, $2::uuid[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::timestamptz[], $8::text[],
    $9::text[], $10::text[], $11::text[], $12::bigint[], $13::text[], $14::text[],
    $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[],
    $21::jsonb[], $22::jsonb[], $23::text[], $24::uuid[], $25, $26, $27)
"#;

/// Column arrays for [`INSERT_EVENTS`], one entry per event.
#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    event_id: Vec<String>,
    sha: Vec<Vec<u8>>,
    kind: Vec<&'static str>,
    event_type: Vec<&'static str>,
    occurred_at: Vec<DateTime<Utc>>,
    session_id: Vec<String>,
    anonymous_id: Vec<Option<String>>,
    user_id: Vec<Option<String>>,
    order_id: Vec<Option<String>>,
    revenue: Vec<Option<i64>>,
    currency: Vec<Option<String>>,
    channel: Vec<&'static str>,
    utm: [Vec<Option<String>>; 5],
    referrer_host: Vec<Option<String>>,
    click_ids: Vec<serde_json::Value>,
    properties: Vec<serde_json::Value>,
    correlation_id: Vec<String>,
    replayed_from: Vec<Option<Uuid>>,
}

impl Columns {
    fn push(&mut self, e: &NewEvent) {
        let v = &e.event;
        self.id.push(Uuid::now_v7());
        self.event_id.push(v.event_id.clone());
        self.sha.push(v.payload_sha256.to_vec());
        self.kind.push(v.kind.as_str());
        self.event_type.push(v.event_type.as_str());
        self.occurred_at.push(v.occurred_at);
        self.session_id.push(v.session_id.clone());
        self.anonymous_id.push(v.anonymous_id.clone());
        self.user_id.push(v.user_id.clone());
        self.order_id.push(v.order_id.clone());
        self.revenue.push(v.revenue_cents);
        self.currency
            .push(v.currency.map(|c| c.as_str().to_string()));
        self.channel.push(v.channel_code);
        let u = &v.utm;
        for (col, val) in
            self.utm
                .iter_mut()
                .zip([&u.source, &u.medium, &u.campaign, &u.term, &u.content])
        {
            col.push(val.clone());
        }
        self.referrer_host.push(v.referrer_host.clone());
        self.click_ids.push(serde_json::Value::Object(
            v.click_ids
                .iter()
                .map(|(k, id)| (k.as_str().to_string(), serde_json::Value::String(id.into())))
                .collect(),
        ));
        self.properties
            .push(serde_json::Value::Object(v.properties.clone()));
        self.correlation_id.push(e.correlation_id.clone());
        self.replayed_from.push(e.replayed_from);
    }
}

/// Writes `events` for `tenant` and says, per event and in order, whether it was accepted, a
/// duplicate or a conflict; accepted events get their recompute windows scheduled (jobs carry
/// `job_correlation_id`). On a connection outside a transaction this is one round trip and one
/// transaction of its own; inside the caller's transaction it joins it.
pub async fn ingest_events(
    conn: &mut PgConnection,
    tenant: TenantId,
    events: &[NewEvent],
    job_correlation_id: &str,
) -> Result<Vec<WriteOutcome>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // Rows go in by event id, whatever order they came in: two transactions inserting
    // overlapping keys (one event sent to two API processes at once) then wait on the unique
    // index in the same order instead of deadlocking. The sort is stable, so of two copies of a
    // key in one write the first sent is still the one inserted.
    let mut sorted: Vec<&NewEvent> = events.iter().collect();
    sorted.sort_by(|a, b| a.event.event_id.cmp(&b.event.event_id));
    let mut c = Columns::default();
    for e in sorted {
        c.push(e);
    }
    let [utm_source, utm_medium, utm_campaign, utm_term, utm_content] = &c.utm;
    let rows = sqlx::query(INGEST_EVENTS)
        .bind(tenant)
        .bind(&c.id)
        .bind(&c.event_id)
        .bind(&c.sha)
        .bind(&c.kind)
        .bind(&c.event_type)
        .bind(&c.occurred_at)
        .bind(&c.session_id)
        .bind(&c.anonymous_id)
        .bind(&c.user_id)
        .bind(&c.order_id)
        .bind(&c.revenue)
        .bind(&c.currency)
        .bind(&c.channel)
        .bind(utm_source)
        .bind(utm_medium)
        .bind(utm_campaign)
        .bind(utm_term)
        .bind(utm_content)
        .bind(&c.referrer_host)
        .bind(&c.click_ids)
        .bind(&c.properties)
        .bind(&c.correlation_id)
        .bind(&c.replayed_from)
        .bind(tally_attribution::MODEL_VERSION)
        .bind(job_correlation_id)
        .bind(crate::recompute::RECOMPUTE_KIND)
        .fetch_all(&mut *conn)
        .await?;
    let mut inserted: HashMap<String, Uuid> = HashMap::new();
    let mut existing: HashMap<String, (Uuid, [u8; 32])> = HashMap::new();
    for row in rows {
        let key: String = row.try_get("event_id")?;
        let id: Uuid = row.try_get("id")?;
        if row.try_get("accepted")? {
            inserted.insert(key, id);
        } else {
            let sha: Vec<u8> = row.try_get("payload_sha256")?;
            let sha: [u8; 32] = sha
                .try_into()
                .map_err(|_| sqlx::Error::Decode("payload_sha256 is not 32 bytes".into()))?;
            existing.insert(key, (id, sha));
        }
    }

    let mut outcomes = Vec::with_capacity(events.len());
    // An event id inserted by this group is accepted once; a later copy in the same group is
    // judged against it like any re-send.
    let mut claimed: HashMap<&str, ()> = HashMap::new();
    let own: HashMap<&str, &[u8; 32]> = events
        .iter()
        .map(|e| (e.event.event_id.as_str(), &e.event.payload_sha256))
        .rev()
        .collect();
    for e in events {
        let key = e.event.event_id.as_str();
        let outcome = match inserted.get(key) {
            Some(&id) if claimed.insert(key, ()).is_none() => WriteOutcome::Accepted { id },
            Some(&id) => judge(id, own[key], &e.event.payload_sha256),
            None => {
                let (id, stored) = existing.get(key).ok_or_else(|| {
                    StoreError::Conflict(format!("event {key} was neither stored nor found"))
                })?;
                judge(*id, stored, &e.event.payload_sha256)
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

fn judge(id: Uuid, stored: &[u8; 32], sent: &[u8; 32]) -> WriteOutcome {
    if stored == sent {
        WriteOutcome::Duplicate { id }
    } else {
        WriteOutcome::Conflict { id }
    }
}

impl crate::Database {
    /// [`ingest_events`] on a pooled connection outside any transaction: the whole write is one
    /// round trip and one implicit transaction, committed (durably) when this returns.
    pub async fn ingest_events(
        &self,
        tenant: TenantId,
        events: &[NewEvent],
        job_correlation_id: &str,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let mut conn = self.app.acquire().await?;
        let written = ingest_events(&mut conn, tenant, events, job_correlation_id).await?;
        self.changes().changed(tenant);
        Ok(written)
    }
}
