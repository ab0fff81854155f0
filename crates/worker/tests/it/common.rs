use sqlx::PgConnection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_store::jobs::{self, ClaimedJob, NewJob};
use tally_store::testing::TestDb;
use tally_store::{Database, TenantId};
use tally_worker::queue::BoxFuture;
use tally_worker::{Handler, Handlers, Worker, WorkerConfig};
use tokio::sync::watch;
use uuid::Uuid;

pub async fn tenant(t: &TestDb) -> TenantId {
    t.db.create_tenant("Test shop").await.unwrap().0.tenant_id
}

/// Quick retries and polls, so tests run in milliseconds.
pub fn fast_config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 2,
        lease: Duration::from_secs(5),
        poll_interval: Duration::from_millis(100),
        base_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        // Tests count jobs: no nightly reconciliations unless a test asks for them.
        nightly_interval: None,
        // The default week's retention: tests count the succeeded jobs they leave behind.
        ..WorkerConfig::default()
    }
}

/// A running worker, stopped (and awaited) on drop of the returned guard's `stop`.
pub struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
    }
}

pub fn start(db: &Database, cfg: WorkerConfig, handlers: Handlers) -> Running {
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(Worker::new(db.clone(), cfg, handlers).run(rx));
    Running { stop, task }
}

/// Polls `check` until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Jobs of the tenant by status (as the operator sees the queue).
pub async fn job_count(db: &Database, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = $1")
        .bind(status)
        .fetch_one(db.operator_pool())
        .await
        .unwrap()
}

/// Enqueues a `probe` job in `tenant`; `None` when a pending job already has `key`.
pub async fn enqueue(t: &TestDb, tenant: TenantId, key: Option<&str>) -> Option<Uuid> {
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    let id = jobs::enqueue(
        &mut tx,
        tenant,
        &NewJob {
            kind: "probe",
            dedupe_key: key,
            payload: serde_json::json!({}),
            correlation_id: "corr-test",
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

/// Records when it ran; fails while `failing` is set.
#[derive(Clone, Default)]
pub struct Probe {
    pub runs: Arc<Mutex<Vec<Instant>>>,
    pub failing: Arc<AtomicBool>,
}

impl Handler for Probe {
    fn run<'a>(
        &'a self,
        _job: &'a ClaimedJob,
        _tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.runs.lock().unwrap().push(Instant::now());
            anyhow::ensure!(!self.failing.load(Ordering::SeqCst), "probe told to fail");
            Ok(())
        })
    }
}
