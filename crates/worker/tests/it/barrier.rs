//! Ingestion schedules recomputes without locking rows: an ingest transaction that finds the
//! window's job still pending enqueues nothing. The recompute's barrier must then wait for that
//! transaction, so its events are in the run. This is the race that would otherwise leave
//! events attributed by no run at all.

use crate::common::{eventually, fast_config, job_count, start, tenant};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tally_store::recompute::schedule_for_events;
use tally_store::testing::TestDb;
use tally_store::{Database, TenantId};
use tally_worker::Handlers;
use tally_worker::bench::{DayEvent, insert_events};
use uuid::Uuid;

fn conversion(at: DateTime<Utc>, identity: &str) -> DayEvent {
    DayEvent {
        id: Uuid::now_v7(),
        identity: identity.into(),
        occurred_at: at,
        channel: "email",
        revenue_cents: Some(1000),
    }
}

async fn allocated_conversions(db: &Database, tenant: TenantId) -> i64 {
    let mut tx = db.tenant_tx(tenant).await.unwrap();
    sqlx::query_scalar("SELECT count(DISTINCT conversion_id) FROM attribution_allocations")
        .fetch_one(&mut *tx)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_run_waits_for_ingest_transactions_that_saw_its_job_pending() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    let at = Utc::now() - chrono::TimeDelta::minutes(10);

    // First event: its transaction enqueues the window's job.
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    insert_events(&mut tx, tenant, &[conversion(at, "a")])
        .await
        .unwrap();
    schedule_for_events(&mut tx, tenant, &[at], "first")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(job_count(&t.db, "pending").await, 1);

    // Second event: the job is pending, so this transaction enqueues nothing; it stays open.
    let mut open = t.db.tenant_tx(tenant).await.unwrap();
    insert_events(&mut open, tenant, &[conversion(at, "b")])
        .await
        .unwrap();
    schedule_for_events(&mut open, tenant, &[at], "second")
        .await
        .unwrap();

    let worker = start(&t.db, fast_config(), Handlers::standard());
    eventually(Duration::from_secs(10), || async {
        job_count(&t.db, "pending").await == 0
    })
    .await;
    // The run was claimed and is held at the barrier by the open transaction.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        allocated_conversions(&t.db, tenant).await,
        0,
        "the run must not finish before the barrier opens"
    );
    open.commit().await.unwrap();

    eventually(Duration::from_secs(20), || async {
        allocated_conversions(&t.db, tenant).await == 2
    })
    .await;
    assert_eq!(
        job_count(&t.db, "pending").await,
        0,
        "one run covered both events"
    );
    worker.stop().await;
}
