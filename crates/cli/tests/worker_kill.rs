//! Fault test: a worker is killed with SIGKILL in the middle of a recompute (its results written
//! but not committed), another worker takes the job over once the lease expires, and the end
//! state is the same as a clean run's: one completed run, identical allocations.

use chrono::{DateTime, TimeDelta, Utc};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tally_store::TenantId;
use tally_store::recompute::{self, RecomputeJob};
use tally_store::testing::TestDb;
use tally_worker::bench::{generate_day, insert_events};
use tally_worker::recompute::PAUSE_ENV;

fn start_worker(owner_url: &str, pause_ms: Option<u64>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    cmd.arg("worker")
        .env("DATABASE_URL", owner_url)
        .env("TALLY_WORKER_LEASE_SECS", "2")
        .env("TALLY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(ms) = pause_ms {
        cmd.env(PAUSE_ENV, ms.to_string());
    }
    cmd.spawn().expect("starting tally worker")
}

/// Blocks until the child logs a line containing `needle`.
fn wait_for_log(child: &mut Child, needle: &str) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = needle.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(&needle) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the worker never reached the pause");
}

fn day() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z")
        .unwrap()
        .to_utc()
}

async fn schedule(t: &TestDb, tenant: TenantId) -> RecomputeJob {
    t.db.schedule_recompute(
        tenant,
        day(),
        day() + TimeDelta::days(1),
        tally_attribution::MODEL_VERSION,
        "corr-kill",
    )
    .await
    .unwrap()
}

async fn wait_succeeded(t: &TestDb, tenant: TenantId, job: &RecomputeJob, runs: i32) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut tx = t.db.tenant_tx(tenant).await.unwrap();
        let now = recompute::get_recompute(&mut tx, job.id).await.unwrap();
        if now.status == "succeeded" && now.run_count >= runs {
            assert_eq!(now.run_count, runs, "one completed run per schedule");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "recompute did not finish: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type Snapshot = Vec<(uuid::Uuid, String, String, i64, f64)>;

async fn allocations(t: &TestDb, tenant: TenantId) -> Snapshot {
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    sqlx::query_as(
        "SELECT conversion_id, model, channel_code, allocated_cents, weight
         FROM attribution_allocations ORDER BY conversion_id, model, channel_code",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_worker_killed_mid_job_leaves_the_same_result_as_a_clean_run() {
    let t = TestDb::new().await;
    let tenant = t.db.create_tenant("Crash shop").await.unwrap().0.tenant_id;
    let events = generate_day(10_000, day(), 11);
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    insert_events(&mut tx, tenant, &events).await.unwrap();
    tx.commit().await.unwrap();

    let mut doomed = start_worker(&t.cfg.owner_url, Some(600_000));
    let job = schedule(&t, tenant).await;
    wait_for_log(&mut doomed, "pausing before commit");
    doomed.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
    doomed.wait().unwrap();
    // Its writes were never committed.
    assert!(allocations(&t, tenant).await.is_empty());

    let mut survivor = start_worker(&t.cfg.owner_url, None);
    wait_succeeded(&t, tenant, &job, 1).await;
    let after_crash = allocations(&t, tenant).await;
    assert!(!after_crash.is_empty());
    let (attempts, failed): (i32, i64) = sqlx::query_as(
        "SELECT (SELECT attempts FROM jobs WHERE status = 'succeeded' AND kind = 'attribution.recompute'),
                (SELECT count(*) FROM worker_failed_jobs)",
    )
    .fetch_one(t.db.operator_pool())
    .await
    .unwrap();
    assert_eq!(
        (attempts, failed),
        (2, 0),
        "taken over once, never dead-lettered"
    );

    // A clean rerun of the same window gives the very same rows.
    schedule(&t, tenant).await;
    wait_succeeded(&t, tenant, &job, 2).await;
    assert_eq!(allocations(&t, tenant).await, after_crash);
    survivor.kill().unwrap();
    survivor.wait().unwrap();
}
