use crate::common::{Probe, enqueue, eventually, fast_config, job_count, start, tenant};
use std::time::Duration;
use tally_store::jobs;
use tally_store::testing::TestDb;
use tally_worker::{Handlers, WorkerConfig};
use uuid::Uuid;

const HOUR: Duration = Duration::from_secs(3600);

/// Claims the next job and finishes it as a worker would; returns its id.
async fn succeed_next(t: &TestDb) -> Uuid {
    let job = t.db.claim_job(HOUR).await.unwrap().unwrap();
    let mut tx = t.db.tenant_tx(job.tenant_id).await.unwrap();
    jobs::fence(&mut tx, &job).await.unwrap();
    jobs::finish(&mut tx, &job).await.unwrap();
    tx.commit().await.unwrap();
    job.id
}

/// Moves these jobs' `updated_at` two hours back, whatever their status.
async fn age(t: &TestDb, ids: &[Uuid]) {
    sqlx::query("UPDATE jobs SET updated_at = now() - interval '2 hours' WHERE id = ANY($1)")
        .bind(ids)
        .execute(t.db.operator_pool())
        .await
        .unwrap();
}

async fn remaining(t: &TestDb) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM jobs ORDER BY id")
        .fetch_all(t.db.operator_pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn only_succeeded_jobs_past_the_retention_are_pruned() {
    let t = TestDb::new().await;
    let (a, b) = (tenant(&t).await, tenant(&t).await);
    // Old succeeded jobs in two tenants, a recent one, an old running one, an old pending one.
    let mut old_succeeded = Vec::new();
    for tenant in [a, b, a] {
        enqueue(&t, tenant, None).await.unwrap();
        old_succeeded.push(succeed_next(&t).await);
    }
    enqueue(&t, a, None).await.unwrap();
    let recent_succeeded = succeed_next(&t).await;
    let running = enqueue(&t, b, None).await.unwrap();
    assert_eq!(t.db.claim_job(HOUR).await.unwrap().unwrap().id, running);
    let pending = enqueue(&t, a, None).await.unwrap();
    age(&t, &old_succeeded).await;
    age(&t, &[running, pending]).await;

    let deleted = t.db.prune_succeeded_jobs(HOUR, 10_000).await.unwrap();

    assert_eq!(deleted, 3);
    let mut kept = vec![recent_succeeded, running, pending];
    kept.sort();
    assert_eq!(remaining(&t).await, kept);
    assert_eq!(t.db.prune_succeeded_jobs(HOUR, 10_000).await.unwrap(), 0);
}

#[tokio::test]
async fn pruning_deletes_at_most_a_batch() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    let mut old = Vec::new();
    for _ in 0..3 {
        enqueue(&t, tenant, None).await.unwrap();
        old.push(succeed_next(&t).await);
    }
    age(&t, &old).await;

    assert_eq!(t.db.prune_succeeded_jobs(HOUR, 1).await.unwrap(), 1);
    assert_eq!(job_count(&t.db, "succeeded").await, 2);
    assert_eq!(t.db.prune_succeeded_jobs(HOUR, 10_000).await.unwrap(), 2);
    assert_eq!(job_count(&t.db, "succeeded").await, 0);
}

#[tokio::test]
async fn concurrent_pruners_delete_each_job_once() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    let mut old = Vec::new();
    for _ in 0..40 {
        enqueue(&t, tenant, None).await.unwrap();
        old.push(succeed_next(&t).await);
    }
    age(&t, &old).await;
    let pruners: Vec<_> = (0..4)
        .map(|_| {
            let db = t.db.clone();
            tokio::spawn(async move {
                let mut deleted = 0;
                loop {
                    let n = db.prune_succeeded_jobs(HOUR, 3).await.unwrap();
                    deleted += n;
                    if n < 3 {
                        return deleted;
                    }
                }
            })
        })
        .collect();
    let mut deleted = 0;
    for p in pruners {
        deleted += p.await.unwrap();
    }
    // A pruner stops at its first short batch, possibly while others still hold rows.
    deleted += t.db.prune_succeeded_jobs(HOUR, 10_000).await.unwrap();
    assert_eq!(deleted, 40);
    assert!(remaining(&t).await.is_empty());
}

#[tokio::test]
async fn a_running_worker_prunes_succeeded_jobs() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    let cfg = WorkerConfig {
        succeeded_retention: Duration::from_millis(1),
        prune_interval: Duration::from_millis(50),
        ..fast_config()
    };
    let probe = Probe::default();
    // Started before the job exists, so a later round than the first prunes it.
    let worker = start(&t.db, cfg, Handlers::default().with("probe", probe.clone()));
    enqueue(&t, tenant, None).await.unwrap();
    eventually(Duration::from_secs(5), || async {
        probe.runs.lock().unwrap().len() == 1 && remaining(&t).await.is_empty()
    })
    .await;
    worker.stop().await;
    // Gone because it succeeded and aged, not because it failed.
    assert!(t.db.list_failed_all().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_running_worker_prunes_idempotency_keys_after_24_hours() {
    use sqlx::Connection;
    use tally_store::idempotency::{StoredResponse, record};
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    for key in ["day-old", "fresh"] {
        let (tx, stored) =
            t.db.claim_idempotency_key(tenant, "/v1/keys", key)
                .await
                .unwrap();
        assert!(stored.is_none());
        let answer = StoredResponse {
            request_sha256: vec![7; 32],
            status: 201,
            content_type: Some("application/json".into()),
            body: b"{}".to_vec(),
        };
        record(tx, tenant, "/v1/keys", key, &answer).await.unwrap();
    }
    // Only the owner can move `created_at`: one key just past the retention, one just inside.
    let mut owner = sqlx::PgConnection::connect(&t.cfg.owner_url).await.unwrap();
    let mut tx = owner.begin().await.unwrap();
    tally_store::db::set_tenant(&mut tx, tenant).await.unwrap();
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - CASE key
             WHEN 'day-old' THEN interval '24 hours 1 minute' ELSE interval '23 hours 59 minutes' END",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let keys = || async {
        let mut tx = t.db.tenant_tx(tenant).await.unwrap();
        let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys ORDER BY key")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        keys
    };

    let cfg = WorkerConfig {
        prune_interval: Duration::from_millis(50),
        ..fast_config()
    };
    let worker = start(&t.db, cfg, Handlers::default());
    eventually(Duration::from_secs(5), || async {
        keys().await == ["fresh"]
    })
    .await;
    worker.stop().await;
    // The database itself refuses to let the pruning role take a key early.
    assert_eq!(t.db.prune_idempotency_keys(10_000).await.unwrap(), 0);
    assert_eq!(keys().await, ["fresh"]);
}
