//! The job runner. See `tally_store::jobs` for the queue's states and why work and completion
//! commit in one transaction.

use rand::Rng;
use sqlx::PgConnection;
use sqlx::postgres::PgListener;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tally_store::Database;
use tally_store::jobs::{self, ClaimedJob};
use tokio::sync::{Notify, watch};
use tracing::Instrument;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a job kind does. `run` gets a transaction acting for the job's tenant, with the job
/// already fenced; whatever it writes commits together with the job's completion, or not at all.
pub trait Handler: Send + Sync + 'static {
    fn run<'a>(
        &'a self,
        job: &'a ClaimedJob,
        tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Before each attempt, in a short transaction of its own (e.g. to show progress).
    fn started<'a>(
        &'a self,
        _job: &'a ClaimedJob,
        _tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// After the last attempt failed and the job went to `worker_failed_jobs`.
    fn gave_up<'a>(
        &'a self,
        _job: &'a ClaimedJob,
        _error: &'a str,
        _tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Handlers by job kind.
#[derive(Clone, Default)]
pub struct Handlers(HashMap<String, Arc<dyn Handler>>);

impl Handlers {
    /// Every kind Tally enqueues.
    pub fn standard() -> Self {
        Self::default()
            .with(
                tally_store::recompute::RECOMPUTE_KIND,
                crate::recompute::Recompute,
            )
            .with(
                tally_store::reconciliation::RECONCILE_KIND,
                crate::reconcile::Reconcile,
            )
    }

    pub fn with(mut self, kind: &str, handler: impl Handler) -> Self {
        self.0.insert(kind.to_owned(), Arc::new(handler));
        self
    }
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// How long a claim lasts without a heartbeat; a dead worker's job is free again after it.
    pub lease: Duration,
    /// The fallback when a notification is missed (listener reconnecting) and for retries that
    /// become due.
    pub poll_interval: Duration,
    /// The first retry's delay; each further attempt doubles it, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// How long succeeded jobs stay in the queue table for inspection before they are deleted
    /// (their results live elsewhere; unpruned, the table grows with every ingested batch).
    pub succeeded_retention: Duration,
    /// How often this process prunes; the first round runs at start.
    pub prune_interval: Duration,
    /// How often the nightly reconciliation schedule is checked (the first check runs at start);
    /// `None` schedules none (tests that count jobs, processes that run no reconciliations).
    pub nightly_interval: Option<Duration>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
            base_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            succeeded_retention: Duration::from_secs(7 * 24 * 3600),
            prune_interval: Duration::from_secs(600),
            nightly_interval: Some(crate::upkeep::NIGHTLY_INTERVAL),
        }
    }
}

/// Delay before attempt `attempts + 1`: exponential, with "equal jitter" (half fixed, half
/// random) so that jobs failing together (database restart) do not retry in lockstep.
pub fn backoff(cfg: &WorkerConfig, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let full = cfg
        .base_backoff
        .saturating_mul(1 << exp)
        .min(cfg.max_backoff);
    let half = full / 2;
    half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
}

#[derive(Clone)]
pub struct Worker {
    db: Database,
    cfg: Arc<WorkerConfig>,
    handlers: Arc<Handlers>,
}

impl Worker {
    pub fn new(db: Database, cfg: WorkerConfig, handlers: Handlers) -> Self {
        Self {
            db,
            cfg: Arc::new(cfg),
            handlers: Arc::new(handlers),
        }
    }

    /// Runs until `shutdown` turns true; jobs under way finish first.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(self.db.clone(), wake.clone(), shutdown.clone()));
        let pruner = tokio::spawn(prune(
            self.db.clone(),
            self.cfg.succeeded_retention,
            self.cfg.prune_interval,
            shutdown.clone(),
        ));
        let folder = tokio::spawn(crate::upkeep::fold_live(
            self.db.clone(),
            crate::upkeep::FOLD_INTERVAL,
            shutdown.clone(),
        ));
        // Only a process that can run reconciliations schedules the nightly ones.
        let nightly = self
            .cfg
            .nightly_interval
            .filter(|_| {
                self.handlers
                    .0
                    .contains_key(tally_store::reconciliation::RECONCILE_KIND)
            })
            .map(|interval| {
                tokio::spawn(crate::upkeep::nightly(
                    self.db.clone(),
                    interval,
                    shutdown.clone(),
                ))
            });
        let slots: Vec<_> = (0..self.cfg.concurrency.max(1))
            .map(|_| tokio::spawn(self.clone().slot(wake.clone(), shutdown.clone())))
            .collect();
        for slot in slots {
            let _ = slot.await;
        }
        listener.abort();
        pruner.abort();
        folder.abort();
        if let Some(nightly) = nightly {
            nightly.abort();
        }
        tracing::info!("workers stopped");
    }

    async fn slot(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            // Registered before claiming, so a notification arriving meanwhile is not lost.
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.db.claim_job(self.cfg.lease).await {
                Ok(Some(job)) => {
                    let span = tracing::info_span!("job", job_id = %job.id, kind = %job.kind,
                        tenant_id = %job.tenant_id, correlation_id = %job.correlation_id,
                        attempt = job.attempts);
                    self.process(job).instrument(span).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "claiming a job failed"),
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                // A dropped sender means nobody can stop us any more: stop now.
                changed = shutdown.changed() => if changed.is_err() { break },
            }
        }
    }

    async fn process(&self, job: ClaimedJob) {
        let Some(handler) = self.handlers.0.get(&job.kind).cloned() else {
            self.failed(
                &job,
                None,
                &format!("no handler for job kind {:?}", job.kind),
            )
            .await;
            return;
        };
        if job.attempts > job.max_attempts {
            // Its last attempt's worker died holding the lease.
            let error = "the lease of the last attempt expired (the worker stopped)";
            self.failed(&job, Some(&*handler), error).await;
            return;
        }
        let heartbeat = tokio::spawn(heartbeat(self.db.clone(), job.clone(), self.cfg.lease));
        let started = std::time::Instant::now();
        let outcome = self.attempt(&job, &*handler).await;
        heartbeat.abort();
        match outcome {
            Ok(()) => tracing::info!(ms = started.elapsed().as_millis() as u64, "job succeeded"),
            Err(e) => self.failed(&job, Some(&*handler), &format!("{e:#}")).await,
        }
    }

    async fn attempt(&self, job: &ClaimedJob, handler: &dyn Handler) -> anyhow::Result<()> {
        let mut tx = self.db.tenant_tx(job.tenant_id).await?;
        handler.started(job, &mut tx).await?;
        tx.commit().await?;
        let mut tx = self.db.tenant_tx(job.tenant_id).await?;
        jobs::fence(&mut tx, job).await?;
        handler.run(job, &mut tx).await?;
        jobs::finish(&mut tx, job).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Retries later, or dead-letters when the attempts are used up (or no handler exists).
    async fn failed(&self, job: &ClaimedJob, handler: Option<&dyn Handler>, error: &str) {
        let last = handler.is_none() || job.attempts >= job.max_attempts;
        let outcome = if last {
            tracing::error!(error, "job failed for good; moved to worker_failed_jobs");
            self.give_up(job, handler, error).await
        } else {
            let delay = backoff(&self.cfg, job.attempts);
            tracing::warn!(
                error,
                retry_in_ms = delay.as_millis() as u64,
                "job failed; will retry"
            );
            self.db
                .retry_later(job, error, delay)
                .await
                .map_err(Into::into)
        };
        if let Err(e) = outcome {
            // The lease runs out and the job is claimed again, so nothing is lost.
            tracing::error!(error = %e, "recording the job's failure failed");
        }
    }

    async fn give_up(
        &self,
        job: &ClaimedJob,
        handler: Option<&dyn Handler>,
        error: &str,
    ) -> anyhow::Result<()> {
        self.db.dead_letter(job, error).await?;
        if let Some(handler) = handler {
            let mut tx = self.db.tenant_tx(job.tenant_id).await?;
            handler.gave_up(job, error, &mut tx).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Extends the lease every third of it until aborted or the lease is lost.
async fn heartbeat(db: Database, job: ClaimedJob, lease: Duration) {
    loop {
        tokio::time::sleep(lease / 3).await;
        match db.heartbeat(&job, lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job_id = %job.id, "lease lost; the work will not commit");
                return;
            }
            Err(e) => tracing::warn!(job_id = %job.id, error = %e, "heartbeat failed"),
        }
    }
}

/// Rows deleted per statement: a round over a large backlog (the first after an upgrade, or
/// after a long outage) stays a series of short transactions.
const PRUNE_BATCH: i64 = 10_000;

/// Every `interval`, deletes succeeded jobs past `retention` and idempotency keys past theirs
/// (24 hours, fixed by the database). Every worker process runs one; rounds that overlap are
/// harmless (see [`Database::prune_succeeded_jobs`]; a key deleted twice is deleted once).
async fn prune(
    db: Database,
    retention: Duration,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        drain("succeeded jobs", || {
            db.prune_succeeded_jobs(retention, PRUNE_BATCH)
        })
        .await;
        drain("expired idempotency keys", || {
            db.prune_idempotency_keys(PRUNE_BATCH)
        })
        .await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Runs `batch` until a short batch says nothing old is left (or another worker is deleting
/// the rest), and logs what went.
async fn drain<F, Fut>(what: &str, batch: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<u64, tally_store::StoreError>>,
{
    let mut deleted = 0;
    let outcome = loop {
        match batch().await {
            Ok(n) if n < PRUNE_BATCH as u64 => break Ok(deleted + n),
            Ok(n) => deleted += n,
            Err(e) => break Err(e),
        }
    };
    match outcome {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "pruned {what}"),
        Err(e) => tracing::warn!(
            deleted,
            error = %e,
            "pruning {what} failed; trying again next interval"
        ),
    }
}

/// Wakes the slots on every `tally_jobs` notification. `PgListener` reconnects by itself; while
/// it is down, the slots' polling carries on.
async fn listen(db: Database, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    let mut listener = loop {
        let connected = async {
            let mut l = PgListener::connect_with(db.operator_pool()).await?;
            l.listen(jobs::NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        match connected.await {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN failed; polling until it works");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        }
    };
    loop {
        tokio::select! {
            received = listener.try_recv() => match received {
                Ok(Some(_)) => wake.notify_waiters(),
                // Reconnected: jobs may have arrived unannounced.
                Ok(None) => wake.notify_waiters(),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}
