//! The dead-letter queue: list, replay (one, or in bulk by filter), discard.
//!
//! A replay validates the stored (redacted) payload again with today's rules and channel
//! mappings; success writes the event (linked through `replayed_from`) and marks the dead letter
//! `replayed` in the same transaction, so a replay can never produce two events.

use crate::auth::{Authorized, scope};
use crate::context;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Query};
use crate::ingest::batch::{self, Checked, EventResult, to_result};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tally_store::cursor::{Page, PageRequest};
use tally_store::dead_events::{DeadEvent, DeadEventFilter, mark_replayed, note_failed_replay};
use tally_store::events::{NewEvent, ingest_events};
use tally_store::{Database, TenantId};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The most dead letters one bulk replay handles; call again for the rest.
const MAX_BULK_REPLAY: i64 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(replay_one))
        .routes(routes!(replay_bulk))
        .routes(routes!(discard))
}

/// Dead letters, newest first (scope `read`).
#[utoipa::path(get, path = "/v1/dead-events", tag = "dead-events", security(("api_key" = ["read"])),
    params(DeadEventFilter), responses(
        (status = 200, body = Page<DeadEvent>),
        (status = 400, body = Problem, content_type = "application/problem+json")
    ))]
async fn list(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    Query(filter): Query<DeadEventFilter>,
) -> Result<Json<Page<DeadEvent>>, ApiError> {
    Ok(Json(
        state.db.list_dead_events(caller.tenant_id, &filter).await?,
    ))
}

/// The outcome of replaying one dead letter.
#[derive(Serialize, ToSchema)]
pub struct ReplayResult {
    pub dead_event_id: Uuid,
    /// `accepted`, `duplicate`, `conflict` or `rejected` (still invalid; it stays open).
    #[serde(flatten)]
    pub result: EventResult,
}

#[derive(Serialize, ToSchema)]
pub struct BulkReplay {
    pub replayed: usize,
    pub still_invalid: usize,
    pub results: Vec<ReplayResult>,
}

/// Replays one open dead letter (scope `ingest`).
#[utoipa::path(post, path = "/v1/dead-events/{id}/replay", tag = "dead-events", security(("api_key" = ["ingest"])),
    params(("id" = Uuid, Path)), responses(
        (status = 200, body = ReplayResult),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")
    ))]
async fn replay_one(
    State(state): State<AppState>,
    caller: Authorized<scope::Ingest>,
    Path(id): Path<Uuid>,
) -> Result<Json<ReplayResult>, ApiError> {
    let mut results = replay(&state, caller.tenant_id, Selection::One(id)).await?;
    Ok(Json(results.remove(0)))
}

/// Replays open dead letters matching a filter, oldest first: `limit` of them (1–500), or 1000
/// without one; call again for the rest (scope `ingest`).
#[utoipa::path(post, path = "/v1/dead-events/replay", tag = "dead-events", security(("api_key" = ["ingest"])),
    request_body = DeadEventFilter, responses(
        (status = 200, body = BulkReplay),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn replay_bulk(
    State(state): State<AppState>,
    caller: Authorized<scope::Ingest>,
    Json(filter): Json<DeadEventFilter>,
) -> Result<Json<BulkReplay>, ApiError> {
    // The body is the listing's filter, refused where the listing refuses it (a `limit` of 0
    // replayed 1000 before).
    PageRequest::parse(filter.limit, filter.cursor.as_deref())?;
    let results = replay(&state, caller.tenant_id, Selection::Matching(filter)).await?;
    let still_invalid = results
        .iter()
        .filter(|r| matches!(r.result, EventResult::Rejected { .. }))
        .count();
    Ok(Json(BulkReplay {
        replayed: results.len() - still_invalid,
        still_invalid,
        results,
    }))
}

/// Discards an open dead letter: kept for the record, never replayed (scope `ingest`).
#[utoipa::path(post, path = "/v1/dead-events/{id}/discard", tag = "dead-events", security(("api_key" = ["ingest"])),
    params(("id" = Uuid, Path)), responses(
        (status = 200, body = DeadEvent),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")
    ))]
async fn discard(
    State(state): State<AppState>,
    caller: Authorized<scope::Ingest>,
    Path(id): Path<Uuid>,
) -> Result<Json<DeadEvent>, ApiError> {
    Ok(Json(
        state.db.discard_dead_event(caller.tenant_id, id).await?,
    ))
}

enum Selection {
    One(Uuid),
    Matching(DeadEventFilter),
}

async fn replay(
    state: &AppState,
    tenant: TenantId,
    which: Selection,
) -> Result<Vec<ReplayResult>, ApiError> {
    let ingest = state.tenants.get(&state.db, tenant).await?;
    let correlation_id = context::current().correlation_id;
    let mut tx = state.db.tenant_tx(tenant).await?;
    let dead = match which {
        Selection::One(id) => {
            let d = Database::lock_dead_event(&mut tx, id).await?;
            if d.source != "api" {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "not_replayable",
                    if d.source == "segment" {
                        "a Segment call that maps onto no Tally event cannot be replayed as one; discard it, or have the source send it again once it maps"
                    } else {
                        "a payment webhook dead letter is not a tracking event; fix the endpoint and let the vendor re-send it"
                    },
                ));
            }
            if d.status != "open" {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "not_open",
                    format!(
                        "this dead event is {}; only open ones can be replayed",
                        d.status
                    ),
                ));
            }
            vec![d]
        }
        Selection::Matching(filter) => {
            let limit = filter.limit.map_or(MAX_BULK_REPLAY, i64::from);
            Database::lock_open_dead_events(&mut tx, &filter, limit).await?
        }
    };
    let mut results = Vec::with_capacity(dead.len());
    let mut valid = Vec::new();
    for d in &dead {
        match batch::check(&d.payload, &ingest, &correlation_id) {
            Checked::Valid(event) => valid.push((
                d.id,
                NewEvent {
                    event: *event,
                    correlation_id: correlation_id.clone(),
                    replayed_from: Some(d.id),
                },
            )),
            Checked::Invalid(again, errors) => {
                note_failed_replay(&mut tx, d.id, &again.error_code, &again.errors).await?;
                results.push(ReplayResult {
                    dead_event_id: d.id,
                    result: EventResult::Rejected {
                        dead_event_id: d.id,
                        error_code: again.error_code.clone(),
                        errors,
                    },
                });
            }
        }
    }
    let events: Vec<NewEvent> = valid.iter().map(|(_, e)| e.clone()).collect();
    let written = ingest_events(&mut tx, tenant, &events, &correlation_id).await?;
    for ((dead_id, event), outcome) in valid.into_iter().zip(written) {
        let result = to_result(outcome, event.event.event_id);
        if let EventResult::Accepted { id, .. } | EventResult::Duplicate { id, .. } = &result {
            mark_replayed(&mut tx, dead_id, *id).await?;
        }
        results.push(ReplayResult {
            dead_event_id: dead_id,
            result,
        });
    }
    tx.commit().await?;
    Ok(results)
}
