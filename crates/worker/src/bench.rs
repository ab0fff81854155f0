//! A generated day of events for `tally bench attribution` and the tests: inserted in bulk, then
//! recomputed by the real job code, so the timing covers PostgreSQL and back.

use chrono::{DateTime, TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use sqlx::PgConnection;
use tally_store::TenantId;
use uuid::Uuid;

/// Taxonomy codes the generator draws from.
pub const CHANNELS: [&str; 8] = [
    "affiliate",
    "direct",
    "display_google",
    "email",
    "organic_search",
    "paid_search_google",
    "paid_social_meta",
    "referral",
];

/// One generated event; `revenue_cents` is `Some` for conversions.
#[derive(Debug, Clone)]
pub struct DayEvent {
    pub id: Uuid,
    pub identity: String,
    pub occurred_at: DateTime<Utc>,
    pub channel: &'static str,
    pub revenue_cents: Option<i64>,
}

/// About `events` events on the UTC day starting at `day`: journeys of 1–8 touches, ~10 %
/// ending in a conversion a little after their last touch. The same seed gives the same day.
pub fn generate_day(events: usize, day: DateTime<Utc>, seed: u64) -> Vec<DayEvent> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let micros_per_day = 86_400_000_000_i64;
    let mut out = Vec::with_capacity(events + events / 8);
    let mut journey = 0u64;
    while out.len() < events {
        journey += 1;
        let identity = format!("u{seed:x}-{journey}");
        let mut at: Vec<i64> = (0..rng.random_range(1..=8))
            .map(|_| rng.random_range(0..micros_per_day - 1_000_000))
            .collect();
        at.sort_unstable();
        for &t in &at {
            out.push(DayEvent {
                id: Uuid::from_u128(rng.random()),
                identity: identity.clone(),
                occurred_at: day + TimeDelta::microseconds(t),
                channel: CHANNELS[rng.random_range(0..CHANNELS.len())],
                revenue_cents: None,
            });
        }
        if rng.random_bool(0.10) {
            let last = *at.last().expect("at least one touch");
            out.push(DayEvent {
                id: Uuid::from_u128(rng.random()),
                identity,
                occurred_at: day + TimeDelta::microseconds(last + 500_000),
                channel: "direct",
                revenue_cents: Some(rng.random_range(100..=100_000)),
            });
        }
    }
    out
}

/// Inserts events in the caller's tenant transaction, 50,000 rows a statement. Identities go in
/// `user_id` of every event; the client event id is the row id in text.
pub async fn insert_events(
    conn: &mut PgConnection,
    tenant: TenantId,
    events: &[DayEvent],
) -> Result<(), sqlx::Error> {
    insert(conn, tenant, events, None).await
}

/// [`insert_events`] for identity stitching's A/B: the same journeys, but only the conversion
/// carries the user id; its touches carry the session alone, and the link of session and user
/// that the conversion carries (stamped with a links number as ingestion stamps it, migration
/// 0140) is what joins them again.
pub async fn insert_linked_events(
    conn: &mut PgConnection,
    tenant: TenantId,
    events: &[DayEvent],
) -> Result<(), sqlx::Error> {
    // Held as ingestion holds it while it draws from the links sequence.
    sqlx::query("SELECT pg_advisory_xact_lock_shared(tally_ingest_lock_key($1))")
        .bind(tenant)
        .execute(&mut *conn)
        .await?;
    let links_seq: i64 = sqlx::query_scalar("SELECT nextval('identity_links_seq')")
        .fetch_one(&mut *conn)
        .await?;
    insert(conn, tenant, events, Some(links_seq)).await
}

async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    events: &[DayEvent],
    links_seq: Option<i64>,
) -> Result<(), sqlx::Error> {
    for chunk in events.chunks(50_000) {
        let ids: Vec<Uuid> = chunk.iter().map(|e| e.id).collect();
        let identities: Vec<&str> = chunk.iter().map(|e| e.identity.as_str()).collect();
        let times: Vec<DateTime<Utc>> = chunk.iter().map(|e| e.occurred_at).collect();
        let channels: Vec<&str> = chunk.iter().map(|e| e.channel).collect();
        let revenue: Vec<Option<i64>> = chunk.iter().map(|e| e.revenue_cents).collect();
        sqlx::query(
            "INSERT INTO attribution_events (tenant_id, id, event_id, payload_sha256, kind,
                 event_type, occurred_at, session_id, user_id, order_id, revenue_cents, currency,
                 channel_code, correlation_id, links_seq)
             SELECT $1, id, id::text, sha256(id::text::bytea),
                    CASE WHEN revenue IS NULL THEN 'touch' ELSE 'conversion' END,
                    CASE WHEN revenue IS NULL THEN 'page_view' ELSE 'purchase' END,
                    at, 's-' || identity,
                    CASE WHEN $7::bigint IS NOT NULL AND revenue IS NULL THEN NULL ELSE identity END,
                    CASE WHEN revenue IS NULL THEN NULL ELSE 'o-' || id::text END, revenue,
                    CASE WHEN revenue IS NULL THEN NULL ELSE 'USD' END, channel, 'bench', $7
             FROM unnest($2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::bigint[])
                  AS e(id, identity, at, channel, revenue)",
        )
        .bind(tenant)
        .bind(ids)
        .bind(identities)
        .bind(times)
        .bind(channels)
        .bind(revenue)
        .bind(links_seq)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
