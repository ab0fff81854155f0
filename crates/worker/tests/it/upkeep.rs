//! The workers' periodic work: nightly reconciliation runs, scheduled once per local day, and
//! realtime deltas folded into totals without changing what readers add up.

use crate::common::{eventually, fast_config, start, tenant};
use std::time::Duration;
use tally_store::live;
use tally_worker::{Handlers, WorkerConfig};

#[tokio::test]
async fn nightly_runs_are_scheduled_once_per_local_day_and_run() {
    let t = tally_store::testing::TestDb::new().await;
    let tenant = tenant(&t).await;
    let cfg = WorkerConfig {
        nightly_interval: Some(Duration::from_millis(100)),
        ..fast_config()
    };
    let worker = start(&t.db, cfg, Handlers::standard());
    let nightly = || async {
        let mut tx = t.db.tenant_tx(tenant).await.unwrap();
        let runs: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT status, window_start FROM reconciliation_runs WHERE trigger = 'nightly'
             ORDER BY window_start",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        runs
    };
    eventually(Duration::from_secs(20), || async {
        let runs = nightly().await;
        !runs.is_empty() && runs.iter().all(|(s, _)| s == "succeeded")
    })
    .await;
    // Many checks later, still one run per day: yesterday and the grace period's two days.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = nightly().await;
    let yesterday = chrono::Utc::now().date_naive().pred_opt().unwrap();
    assert!(
        runs.iter().any(|(_, at)| at.date_naive() == yesterday),
        "{runs:?}"
    );
    assert!((2..=3).contains(&runs.len()), "{runs:?}");
    drop(worker);
}

#[tokio::test]
async fn folding_moves_deltas_into_totals_and_readers_see_the_same_sums() {
    let t = tally_store::testing::TestDb::new().await;
    let tenant = tenant(&t).await;
    let now = chrono::Utc::now();
    let range = (
        now - chrono::TimeDelta::days(1),
        now + chrono::TimeDelta::days(1),
    );
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    for cents in [100, 250, -50] {
        sqlx::query(
            "INSERT INTO live_deltas (tenant_id, stream, bucket_start, currency, events, cents, last_at)
             VALUES ($1, 'ledger', tally_quarter_hour(now()), 'USD', 1, $2, now())",
        )
        .bind(tenant)
        .bind(cents)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let read = || async {
        let mut tx = t.db.tenant_tx(tenant).await.unwrap();
        live::totals(&mut tx, tenant, range).await.unwrap()
    };
    let before = read().await;
    assert_eq!((before[0].events, before[0].cents), (3, 300));
    // Folders racing each other fold each delta once.
    let (a, b) = tokio::join!(t.db.fold_live_deltas(), t.db.fold_live_deltas());
    a.unwrap();
    b.unwrap();
    t.db.fold_live_deltas().await.unwrap();
    let deltas: i64 = sqlx::query_scalar("SELECT count(*) FROM live_deltas")
        .fetch_one(t.db.operator_pool())
        .await
        .unwrap();
    assert_eq!(deltas, 0);
    assert_eq!(read().await, before);
}
