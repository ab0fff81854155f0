//! The job queue's SQL (`migrations/0007_jobs.sql`, `0030_job_queue_wakeup.sql`).
//!
//! Our own ~200 lines rather than a crate (DESIGN §7): the PostgreSQL queue crates are on sqlx 0.8
//! or bring a schema of their own, and ours must be enqueued by tenant code as `tally_app`, in the
//! same transaction as the write that causes the job, under row-level security.
//!
//! Life of a job: tenant code [`enqueue`]s it (`pending`); a worker claims it as `tally_operator`
//! (`running`, with a lease token and expiry); the work then runs as `tally_app` in the job's
//! tenant, in a transaction that first [`fence`]s the job (a `FOR KEY SHARE` lock that claims'
//! `FOR UPDATE SKIP LOCKED` skip, while heartbeats may still extend the lease) and ends by
//! [`finish`]ing it, so the work and its completion commit together or not at all. A failure goes
//! back to `pending` later ([`retry_later`]) or, after `max_attempts`, to `worker_failed_jobs`
//! ([`dead_letter`]); [`Database::replay_failed`] enqueues it again. Succeeded jobs are deleted
//! once they are older than the workers' retention ([`Database::prune_succeeded_jobs`]).

use crate::db::Database;
use crate::error::StoreError;
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use std::time::Duration;
use uuid::Uuid;

/// The channel the insert trigger notifies.
pub const NOTIFY_CHANNEL: &str = "tally_jobs";

/// A job to enqueue. Jobs with the same `dedupe_key` (and kind) coalesce while one is pending.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub dedupe_key: Option<&'a str>,
    pub payload: serde_json::Value,
    pub correlation_id: &'a str,
}

/// A job a worker holds the lease of.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub kind: String,
    pub dedupe_key: Option<String>,
    pub payload: serde_json::Value,
    /// Including this one.
    pub attempts: i32,
    pub max_attempts: i32,
    pub correlation_id: String,
    pub lease_token: Uuid,
}

/// A dead-lettered job, as listed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct FailedJob {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub job_id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub error: String,
    pub correlation_id: String,
    pub failed_at: DateTime<Utc>,
    pub replayed_at: Option<DateTime<Utc>>,
}

/// What a replay reads back: tenant, kind, dedupe key, payload, when last replayed.
type FailedForReplay = (
    TenantId,
    String,
    Option<String>,
    serde_json::Value,
    Option<DateTime<Utc>>,
);

/// Enqueues a job in the caller's tenant transaction; `None` when a pending job with the same
/// dedupe key already exists (it will do this job's work).
pub async fn enqueue(
    conn: &mut PgConnection,
    tenant: TenantId,
    job: &NewJob<'_>,
) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO jobs (tenant_id, id, kind, dedupe_key, payload, correlation_id)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id, kind, dedupe_key) WHERE status = 'pending' AND dedupe_key IS NOT NULL
         DO NOTHING RETURNING id",
    )
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(job.kind)
    .bind(job.dedupe_key)
    .bind(&job.payload)
    .bind(job.correlation_id)
    .fetch_optional(conn)
    .await?)
}

/// Locks the job for the work transaction; fails with `Conflict` when the lease was lost (it
/// expired and another worker took the job), so stale work never commits.
pub async fn fence(conn: &mut PgConnection, job: &ClaimedJob) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT 1 FROM jobs WHERE tenant_id = $1 AND id = $2 AND lease_token = $3 FOR KEY SHARE",
    )
    .bind(job.tenant_id)
    .bind(job.id)
    .bind(job.lease_token)
    .fetch_optional(conn)
    .await?
    .map(|_| ())
    .ok_or_else(|| StoreError::Conflict(format!("lease on job {} was lost", job.id)))
}

/// Marks the job done, in the work transaction (after [`fence`]).
pub async fn finish(conn: &mut PgConnection, job: &ClaimedJob) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE jobs SET status = 'succeeded', lease_token = NULL, lease_expires_at = NULL,
                last_error = NULL, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND lease_token = $3",
    )
    .bind(job.tenant_id)
    .bind(job.id)
    .bind(job.lease_token)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a job of this identity waits to run (so a finished run is not the last word).
pub async fn pending_exists(
    conn: &mut PgConnection,
    kind: &str,
    dedupe_key: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM jobs WHERE kind = $1 AND dedupe_key = $2 AND status = 'pending')",
    )
    .bind(kind)
    .bind(dedupe_key)
    .fetch_one(conn)
    .await?)
}

/// This tenant's dead-lettered jobs, newest first.
pub async fn list_failed(conn: &mut PgConnection) -> Result<Vec<FailedJob>, StoreError> {
    Ok(sqlx::query_as(FAILED_SELECT).fetch_all(conn).await?)
}

const FAILED_SELECT: &str =
    "SELECT id, tenant_id, job_id, kind, payload, attempts, error, correlation_id,
        failed_at, replayed_at FROM worker_failed_jobs ORDER BY failed_at DESC, id DESC LIMIT 1000";

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Queue operations across tenants, as `tally_operator`.
impl Database {
    /// Takes the oldest ready job: pending and due, or running with an expired lease (its worker
    /// died). `SKIP LOCKED` lets concurrent workers pass each other instead of queueing up.
    pub async fn claim_job(&self, lease: Duration) -> Result<Option<ClaimedJob>, StoreError> {
        Ok(sqlx::query_as(
            "UPDATE jobs j SET status = 'running', lease_token = $1,
                    lease_expires_at = now() + make_interval(secs => $2),
                    attempts = j.attempts + 1, updated_at = now()
             FROM (SELECT tenant_id, id FROM jobs
                   WHERE (status = 'pending' AND run_at <= now())
                      OR (status = 'running' AND lease_expires_at < now())
                   ORDER BY run_at, id LIMIT 1
                   FOR UPDATE SKIP LOCKED) c
             WHERE j.tenant_id = c.tenant_id AND j.id = c.id
             RETURNING j.tenant_id, j.id, j.kind, j.dedupe_key, j.payload, j.attempts,
                       j.max_attempts, j.correlation_id, j.lease_token",
        )
        .bind(Uuid::now_v7())
        .bind(secs(lease))
        .fetch_optional(self.operator_pool())
        .await?)
    }

    /// Extends the lease; `false` when it is no longer ours.
    pub async fn heartbeat(&self, job: &ClaimedJob, lease: Duration) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $4)
             WHERE tenant_id = $1 AND id = $2 AND lease_token = $3",
        )
        .bind(job.tenant_id)
        .bind(job.id)
        .bind(job.lease_token)
        .bind(secs(lease))
        .execute(self.operator_pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts a failed job back for another attempt after `delay`. When a newer pending job of the
    /// same identity exists, that one will do the work, so this one is dropped instead.
    pub async fn retry_later(
        &self,
        job: &ClaimedJob,
        error: &str,
        delay: Duration,
    ) -> Result<(), StoreError> {
        let requeued = sqlx::query(
            "UPDATE jobs SET status = 'pending', lease_token = NULL, lease_expires_at = NULL,
                    run_at = now() + make_interval(secs => $4), last_error = $5, updated_at = now()
             WHERE tenant_id = $1 AND id = $2 AND lease_token = $3",
        )
        .bind(job.tenant_id)
        .bind(job.id)
        .bind(job.lease_token)
        .bind(secs(delay))
        .bind(error)
        .execute(self.operator_pool())
        .await
        .map_err(StoreError::from);
        match requeued {
            Err(e) if e.constraint() == Some("jobs_one_pending_per_key") => {
                sqlx::query(
                    "DELETE FROM jobs WHERE tenant_id = $1 AND id = $2 AND lease_token = $3",
                )
                .bind(job.tenant_id)
                .bind(job.id)
                .bind(job.lease_token)
                .execute(self.operator_pool())
                .await?;
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// Moves a job that used up its attempts to `worker_failed_jobs`, atomically.
    pub async fn dead_letter(&self, job: &ClaimedJob, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "WITH gone AS (DELETE FROM jobs WHERE tenant_id = $1 AND id = $2 AND lease_token = $3
                           RETURNING tenant_id, id, kind, dedupe_key, payload, attempts, correlation_id)
             INSERT INTO worker_failed_jobs
                 (tenant_id, id, job_id, kind, dedupe_key, payload, attempts, error, correlation_id)
             SELECT tenant_id, $4, id, kind, dedupe_key, payload, attempts, $5, correlation_id FROM gone",
        )
        .bind(job.tenant_id)
        .bind(job.id)
        .bind(job.lease_token)
        .bind(Uuid::now_v7())
        .bind(error)
        .execute(self.operator_pool())
        .await?;
        Ok(())
    }

    /// Deletes up to `batch` jobs that succeeded more than `older_than` ago, in every tenant;
    /// returns how many. A job's outcome lives elsewhere (a recompute's in
    /// `attribution_recompute_jobs`), so a succeeded queue row is only kept a while to inspect
    /// recent work; without this the table grows with every ingested batch. Only `succeeded` is
    /// final: pending and running rows are never touched. Batches keep each transaction short,
    /// and `SKIP LOCKED` lets workers pruning at once take disjoint rows instead of waiting.
    /// `MATERIALIZED` fixes the batch: as a plain subquery the planner may rescan it per row, and
    /// each rescan skips the rows this statement already deleted, so `LIMIT` would bound nothing.
    pub async fn prune_succeeded_jobs(
        &self,
        older_than: Duration,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "WITH old AS MATERIALIZED (
                 SELECT tenant_id, id FROM jobs
                 WHERE status = 'succeeded' AND updated_at < now() - make_interval(secs => $1)
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             DELETE FROM jobs j USING old
             WHERE j.tenant_id = old.tenant_id AND j.id = old.id AND j.status = 'succeeded'",
        )
        .bind(secs(older_than))
        .bind(batch)
        .execute(self.operator_pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Every tenant's dead-lettered jobs (the operator's view), newest first.
    pub async fn list_failed_all(&self) -> Result<Vec<FailedJob>, StoreError> {
        Ok(sqlx::query_as(FAILED_SELECT)
            .fetch_all(self.operator_pool())
            .await?)
    }

    /// Enqueues a dead-lettered job again with fresh attempts, once (`Conflict` when it was
    /// already replayed), restricted to `tenant` when given. Returns the new job's id, or `None`
    /// when a pending job of the same identity will do its work.
    pub async fn replay_failed(
        &self,
        tenant: Option<TenantId>,
        failed_id: Uuid,
        correlation_id: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut tx = self.operator_pool().begin().await?;
        let row: Option<FailedForReplay> = sqlx::query_as(
            "SELECT tenant_id, kind, dedupe_key, payload, replayed_at FROM worker_failed_jobs
                 WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) FOR UPDATE",
        )
        .bind(failed_id)
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
        let (tenant, kind, dedupe_key, payload, replayed_at) = row.ok_or(StoreError::NotFound)?;
        if replayed_at.is_some() {
            return Err(StoreError::Conflict(format!(
                "failed job {failed_id} was already replayed"
            )));
        }
        sqlx::query(
            "UPDATE worker_failed_jobs SET replayed_at = now() WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(failed_id)
        .execute(&mut *tx)
        .await?;
        let job = NewJob {
            kind: &kind,
            dedupe_key: dedupe_key.as_deref(),
            payload,
            correlation_id,
        };
        let id = enqueue(&mut tx, tenant, &job).await?;
        tx.commit().await?;
        Ok(id)
    }
}
