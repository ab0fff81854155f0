//! A tenant's dead-lettered background jobs (listing: scope `read`, so the dashboard's data
//! health page can show them to an analyst) and their replay (scope `admin`).

use crate::auth::{Authorized, scope};
use crate::context;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tally_store::jobs::{self, FailedJob};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_failed))
        .routes(routes!(replay_failed))
}

/// A job that used up its attempts.
#[derive(Serialize, ToSchema)]
pub struct FailedJobView {
    pub id: Uuid,
    pub job_id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub error: String,
    /// Of the request or event batch that caused the job.
    pub correlation_id: String,
    pub failed_at: DateTime<Utc>,
    pub replayed_at: Option<DateTime<Utc>>,
}

impl From<FailedJob> for FailedJobView {
    fn from(f: FailedJob) -> Self {
        Self {
            id: f.id,
            job_id: f.job_id,
            kind: f.kind,
            payload: f.payload,
            attempts: f.attempts,
            error: f.error,
            correlation_id: f.correlation_id,
            failed_at: f.failed_at,
            replayed_at: f.replayed_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Replayed {
    /// The new job, or `null` when a pending job of the same identity will do the work.
    pub job_id: Option<Uuid>,
}

/// This tenant's failed jobs, newest first (scope `read`).
#[utoipa::path(get, path = "/v1/jobs/failed", tag = "jobs", security(("api_key" = ["read"])),
    responses(
        (status = 200, body = Vec<FailedJobView>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")
    ))]
async fn list_failed(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
) -> Result<Json<Vec<FailedJobView>>, ApiError> {
    let mut tx = state.db.tenant_tx(caller.tenant_id).await?;
    let failed = jobs::list_failed(&mut tx).await?;
    Ok(Json(failed.into_iter().map(Into::into).collect()))
}

/// Enqueues a failed job again with fresh attempts; each failure replays once (scope `admin`).
#[utoipa::path(post, path = "/v1/jobs/failed/{id}/replay", tag = "jobs",
    security(("api_key" = ["admin"])), params(("id" = Uuid, Path)), responses(
        (status = 202, body = Replayed),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "already replayed")
    ))]
async fn replay_failed(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let job_id = state
        .db
        .replay_failed(
            Some(caller.tenant_id),
            id,
            &context::current().correlation_id,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { job_id })))
}
