//! Constraints that keep the data model honest.

use crate::fixtures::{owner, seed_tenant};
use tally_store::testing::{TestDb, begin_for_tenant};
use uuid::Uuid;

async fn insert_event(
    t: &TestDb,
    tenant: Uuid,
    event_id: &str,
    channel: &str,
) -> Result<(), sqlx::Error> {
    let mut conn = owner(t).await;
    let mut tx = begin_for_tenant(&mut conn, tenant).await;
    sqlx::query(
        "INSERT INTO attribution_events (tenant_id, id, event_id, payload_sha256, kind, event_type,
            occurred_at, session_id, channel_code, correlation_id)
         VALUES ($1, tally_uuid_v7(), $2, sha256('p'), 'touch', 'page_view', now(), 's', $3, 'c')",
    )
    .bind(tenant)
    .bind(event_id)
    .bind(channel)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[tokio::test]
async fn channel_code_must_be_in_the_taxonomy() {
    let t = TestDb::new().await;
    let a = Uuid::now_v7();
    seed_tenant(&mut owner(&t).await, a).await;
    insert_event(&t, a, "e-ok", "paid_search_google")
        .await
        .unwrap();
    let err = insert_event(&t, a, "e-bad", "not_a_channel")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("foreign key"), "{err}");
}

#[tokio::test]
async fn event_id_is_unique_per_tenant_only() {
    let t = TestDb::new().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    seed_tenant(&mut own, b).await;
    insert_event(&t, a, "same-key", "direct").await.unwrap();
    let err = insert_event(&t, a, "same-key", "direct").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("attribution_events_tenant_id_event_id_key"),
        "{err}"
    );
    // Another tenant may use the same client key.
    insert_event(&t, b, "same-key", "direct").await.unwrap();
}

#[tokio::test]
async fn money_signs_and_windows_are_checked() {
    let t = TestDb::new().await;
    let a = Uuid::now_v7();
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    let mut tx = begin_for_tenant(&mut own, a).await;
    let err = sqlx::query(
        "INSERT INTO revenue_ledger (tenant_id, id, source, external_id, entry_type, amount_cents, currency, occurred_at, correlation_id)
         VALUES ($1, tally_uuid_v7(), 'stripe', 're_1', 'refund', 500, 'USD', now(), 'c')",
    )
    .bind(a)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("check constraint"), "{err}");
}
