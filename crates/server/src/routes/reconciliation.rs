//! Reconciliation: runs on request (scope `admin`, like recompute: it rewrites verified results
//! and spends worker time), the run listing and one run with its items, and the seed contract's
//! status summary (scope `read`).

use crate::auth::{Authorized, Caller, scope};
use crate::context;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Query, invalid_query_value};
use crate::range::{self, Granularity, Window};
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_core::reconcile::Status;
use tally_store::Database;
use tally_store::cursor::Page;
use tally_store::reconciliation::{self as runs, ItemFilter, ItemRow, Run, RunFilter};
use tally_store::reconciliation::{RUN_STATUSES, RUN_TRIGGERS};
use tally_store::rollups;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_run, list_runs))
        .routes(routes!(get_run))
        .routes(routes!(status))
        .routes(routes!(status_v1))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Window start (inclusive): an RFC 3339 instant or a date (midnight in the tenant's time
    /// zone), on a local hour.
    #[schema(schema_with = crate::range::bound_schema, required = true)]
    pub from: String,
    /// Window end (exclusive), like `from`.
    #[schema(schema_with = crate::range::bound_schema, required = true)]
    pub to: String,
}

/// Reconciles `[from, to)` now (scope `admin`). A window that already has a pending run returns
/// that run. The run's orders are those first tracked in the window, and untracked orders first
/// paid in it.
#[utoipa::path(post, path = "/v1/reconciliation/runs", tag = "reconciliation",
    security(("api_key" = ["admin"])), request_body = RunRequest, responses(
        (status = 202, body = Run),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn request_run(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Json(body): Json<RunRequest>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    let mut tx = state.db.tenant_tx(caller.tenant_id).await?;
    let tz = rollups::reader_settings(&mut tx).await?.time_zone;
    let w = range::resolve(&mut tx, &body.from, &body.to, &tz, Granularity::LocalHour).await?;
    tx.commit().await?;
    let run = state
        .db
        .request_reconciliation(
            caller.tenant_id,
            (w.from, w.to),
            &context::current().correlation_id,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

#[derive(Serialize, ToSchema)]
pub struct RunPage {
    pub items: Vec<Run>,
    pub next_cursor: Option<String>,
}

/// Runs, newest first (scope `read`). With `from` and `to`, only the runs whose window contains
/// that range: the newest succeeded one is the reconciliation of the range as of its run (its
/// items with a tracked or first payment time in the range are the range's orders).
#[utoipa::path(get, path = "/v1/reconciliation/runs", tag = "reconciliation",
    security(("api_key" = ["read"])), params(RunFilter), responses(
        (status = 200, body = RunPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn list_runs(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    RawQuery(raw): RawQuery,
    Query(f): Query<RunFilter>,
) -> Result<Response, ApiError> {
    one_of("status", f.status.as_deref(), RUN_STATUSES)?;
    one_of("trigger", f.trigger.as_deref(), RUN_TRIGGERS)?;
    let at = (caller.tenant_id, "reconciliation_runs");
    let page = run_page(&state.db, &caller, f);
    state
        .answers
        .json(&state.db, at, raw.as_deref(), page)
        .await
}

async fn run_page(db: &Database, caller: &Caller, f: RunFilter) -> Result<RunPage, ApiError> {
    let mut tx = db.tenant_tx(caller.tenant_id).await?;
    let tz = rollups::reader_settings(&mut tx).await?.time_zone;
    let containing = range::resolve_optional(
        &mut tx,
        f.from.as_deref(),
        f.to.as_deref(),
        &tz,
        Granularity::LocalHour,
    )
    .await?;
    tx.commit().await?;
    let Page { items, next_cursor } = db
        .list_runs(caller.tenant_id, &f, containing.map(|w| (w.from, w.to)))
        .await?;
    Ok(RunPage { items, next_cursor })
}

/// An enum-valued query parameter: a value outside the enum is a 400 that lists the values,
/// never an empty 200.
fn one_of(field: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(invalid_query_value(
            field,
            format!("`{field}` must be one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct RunDetail {
    pub run: Run,
    /// The run's orders by order id, filtered by `status` when given.
    pub items: Vec<ItemRow>,
    pub next_cursor: Option<String>,
}

/// One run and a page of its items (scope `read`).
#[utoipa::path(get, path = "/v1/reconciliation/runs/{id}", tag = "reconciliation",
    security(("api_key" = ["read"])), params(("id" = Uuid, Path), ItemFilter), responses(
        (status = 200, body = RunDetail),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn get_run(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    Path(id): Path<Uuid>,
    Query(f): Query<ItemFilter>,
) -> Result<Json<RunDetail>, ApiError> {
    if let Some(s) = &f.status {
        s.parse::<Status>()
            .map_err(|e| invalid_query_value("status", e))?;
    }
    let mut tx = state.db.tenant_tx(caller.tenant_id).await?;
    let run = runs::get_run(&mut tx, id).await?;
    let Page { items, next_cursor } = runs::list_items(
        &mut tx,
        &run,
        f.status.as_deref(),
        f.limit.unwrap_or(100),
        f.cursor.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(RunDetail {
        run,
        items,
        next_cursor,
    }))
}

/// One payment platform (a webhook endpoint) as the status page shows it.
#[derive(Serialize, ToSchema)]
pub struct Platform {
    /// `shopify`, `stripe`, `paypal` or `woocommerce`.
    pub platform_name: String,
    pub endpoint_id: Uuid,
    /// `connected` (deliveries arrive and verify), `pending` (no delivery yet), `error` (the
    /// latest delivery attempt failed verification or was dead-lettered) or `disabled`.
    pub connection_status: String,
    /// When the last verified delivery arrived.
    pub last_sync: Option<DateTime<Utc>>,
    /// Verified deliveries received.
    pub events_processed: i64,
    /// Net money posted from this endpoint's deliveries, in the tenant's currency (major units).
    pub revenue_verified: f64,
    pub revenue_verified_cents: i64,
    pub currency: String,
    pub dead_lettered: i64,
    pub verification_failures: i64,
    pub error_message: Option<String>,
}

/// The seed contract's reconciliation status.
#[derive(Serialize, ToSchema)]
pub struct StatusReport {
    /// `verified` (every order of the latest runs settled or awaiting payment), `partial`
    /// (mismatches, unpaid or untracked orders), `pending` (a run is due or under way, or none
    /// ran yet) or `failed` (the latest run of a window failed).
    pub overall_status: String,
    pub platforms: Vec<Platform>,
    /// When the latest run finished successfully.
    pub last_full_sync: Option<DateTime<Utc>>,
    pub tenant_id: Uuid,
    /// The runs looked at: the latest run of each window overlapping this one.
    pub window: Window,
    /// Orders per status over those runs.
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Look at runs of windows overlapping `[from, to)` (instants on a local hour, or dates);
    /// default: the last 30 days.
    #[param(schema_with = crate::range::bound_schema)]
    pub from: Option<String>,
    #[param(schema_with = crate::range::bound_schema)]
    pub to: Option<String>,
}

/// Reconciliation status per platform (scope `read`), the seed contract's path.
#[utoipa::path(get, path = "/api/reconciliation/status", tag = "reconciliation",
    security(("api_key" = ["read"])), params(StatusQuery), responses(
        (status = 200, body = StatusReport),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn status(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    RawQuery(raw): RawQuery,
    Query(q): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    status_answer(&state, &caller, raw.as_deref(), q).await
}

/// The same as `/api/reconciliation/status`.
#[utoipa::path(get, path = "/v1/reconciliation/status", tag = "reconciliation",
    security(("api_key" = ["read"])), params(StatusQuery), responses(
        (status = 200, body = StatusReport),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn status_v1(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    RawQuery(raw): RawQuery,
    Query(q): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    status_answer(&state, &caller, raw.as_deref(), q).await
}

async fn status_answer(
    state: &AppState,
    caller: &Caller,
    raw: Option<&str>,
    q: StatusQuery,
) -> Result<Response, ApiError> {
    let at = (caller.tenant_id, "reconciliation_status");
    let report = status_report(&state.db, caller, q);
    state.answers.json(&state.db, at, raw, report).await
}

async fn status_report(
    db: &Database,
    caller: &Caller,
    q: StatusQuery,
) -> Result<StatusReport, ApiError> {
    let mut tx = db.tenant_tx(caller.tenant_id).await?;
    let settings = rollups::reader_settings(&mut tx).await?;
    let window = range::resolve_optional(
        &mut tx,
        q.from.as_deref(),
        q.to.as_deref(),
        &settings.time_zone,
        Granularity::LocalHour,
    )
    .await?
    .unwrap_or_else(|| {
        let now = Utc::now();
        Window {
            from: now - chrono::TimeDelta::days(30),
            to: now,
        }
    });
    let recent = runs::recent_status(&mut tx, (window.from, window.to)).await?;
    let platforms = runs::platforms(&mut tx, &settings.currency).await?;
    tx.commit().await?;
    let currency = tally_core::money::CurrencyCode::parse(&settings.currency)
        .map_err(|e| ApiError::unprocessable(e.to_string(), Vec::new()))?;
    Ok(StatusReport {
        overall_status: recent.overall.into(),
        platforms: platforms
            .into_iter()
            .map(|p| Platform {
                platform_name: p.source,
                endpoint_id: p.endpoint_id,
                connection_status: p.connection_status,
                last_sync: p.last_delivery_at,
                events_processed: p.deliveries,
                revenue_verified: crate::money::major_units(&currency, p.revenue_cents),
                revenue_verified_cents: p.revenue_cents,
                currency: settings.currency.clone(),
                dead_lettered: p.dead_lettered,
                verification_failures: p.verification_failures,
                error_message: p.error_message,
            })
            .collect(),
        last_full_sync: recent.last_success,
        tenant_id: caller.tenant_id.0,
        window,
        counts: recent.counts,
    })
}
