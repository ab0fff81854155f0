use crate::common::{Probe, enqueue, eventually, fast_config, job_count, start, tenant};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tally_store::TenantId;
use tally_store::jobs;
use tally_store::testing::TestDb;
use tally_worker::Handlers;

#[tokio::test]
async fn pending_jobs_coalesce_by_dedupe_key() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    assert!(enqueue(&t, tenant, Some("k")).await.is_some());
    assert!(enqueue(&t, tenant, Some("k")).await.is_none());
    assert!(enqueue(&t, tenant, Some("other")).await.is_some());
    assert_eq!(job_count(&t.db, "pending").await, 2);
}

#[tokio::test]
async fn concurrent_claims_never_share_a_job() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    for _ in 0..60 {
        enqueue(&t, tenant, None).await;
    }
    let claimers: Vec<_> = (0..6)
        .map(|_| {
            let db = t.db.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(job) = db.claim_job(Duration::from_secs(60)).await.unwrap() {
                    mine.push(job.id);
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 60, "every job claimed");
    assert_eq!(distinct.len(), 60, "no job claimed twice");
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    enqueue(&t, tenant, None).await;
    let first =
        t.db.claim_job(Duration::from_millis(500))
            .await
            .unwrap()
            .unwrap();
    assert!(
        t.db.claim_job(Duration::from_secs(1))
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again =
        t.db.claim_job(Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(again.attempts, 2);
    assert_ne!(again.lease_token, first.lease_token);
    // The first holder's lease is gone: it can neither heartbeat nor fence its work.
    assert!(
        !t.db
            .heartbeat(&first, Duration::from_secs(1))
            .await
            .unwrap()
    );
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    assert!(jobs::fence(&mut tx, &first).await.is_err());
}

#[tokio::test]
async fn failures_back_off_then_dead_letter_then_replay_succeeds() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    let probe = Probe::default();
    probe.failing.store(true, Ordering::SeqCst);
    let worker = start(
        &t.db,
        fast_config(),
        Handlers::default().with("probe", probe.clone()),
    );
    enqueue(&t, tenant, Some("k")).await;

    let failed = || async { t.db.list_failed_all().await.unwrap() };
    eventually(Duration::from_secs(10), || async {
        !failed().await.is_empty()
    })
    .await;
    let dead = failed().await.remove(0);
    assert_eq!((dead.kind.as_str(), dead.attempts), ("probe", 3));
    assert!(dead.error.contains("probe told to fail"), "{}", dead.error);
    assert_eq!(dead.correlation_id, "corr-test");
    assert_eq!(
        job_count(&t.db, "pending").await + job_count(&t.db, "running").await,
        0
    );
    let runs = probe.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 3);
    // Backoff: ~50–100 ms, then ~100–200 ms (equal jitter over 100 ms doubling).
    let gaps: Vec<_> = runs.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= Duration::from_millis(50), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(100), "{gaps:?}");

    // The tenant sees its own failed job.
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    assert_eq!(jobs::list_failed(&mut tx).await.unwrap().len(), 1);
    drop(tx);

    probe.failing.store(false, Ordering::SeqCst);
    let replayed =
        t.db.replay_failed(Some(tenant), dead.id, "corr-replay")
            .await
            .unwrap();
    assert!(replayed.is_some());
    eventually(Duration::from_secs(5), || async {
        job_count(&t.db, "succeeded").await == 1
    })
    .await;
    assert_eq!(probe.runs.lock().unwrap().len(), 4);
    // A second replay of the same failure is refused; another tenant cannot replay it.
    assert!(
        t.db.replay_failed(Some(tenant), dead.id, "c")
            .await
            .is_err()
    );
    let stranger = TenantId::new();
    assert!(matches!(
        t.db.replay_failed(Some(stranger), dead.id, "c").await,
        Err(tally_store::StoreError::NotFound)
    ));
    worker.stop().await;
}

#[tokio::test]
async fn a_new_job_starts_within_a_second_by_notify() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    let probe = Probe::default();
    // Polling alone would take a minute.
    let cfg = tally_worker::WorkerConfig {
        poll_interval: Duration::from_secs(60),
        ..fast_config()
    };
    let worker = start(&t.db, cfg, Handlers::default().with("probe", probe.clone()));
    // Let the slots claim nothing and go to sleep, and the listener subscribe.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let enqueued = Instant::now();
    enqueue(&t, tenant, None).await;
    eventually(Duration::from_secs(5), || async {
        !probe.runs.lock().unwrap().is_empty()
    })
    .await;
    let latency = probe.runs.lock().unwrap()[0] - enqueued;
    assert!(
        latency < Duration::from_secs(1),
        "started after {latency:?}"
    );
    worker.stop().await;
}
