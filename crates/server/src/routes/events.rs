//! `POST /v1/events`, `POST /v1/events/batch`, `GET /v1/events`, `GET /v1/events/{id}`.

use crate::auth::{Authorized, scope};
use crate::context;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Query, refuse_nul};
use crate::ingest::batch::{self, Checked, EventResult, to_result};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use tally_store::cursor::Page;
use tally_store::event_queries::{EventFilter, StoredEvent};
use tally_store::events::{NewEvent, WriteOutcome};
use utoipa::ToSchema;

mod schema;
use schema::{BatchBody, EventBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The most events one batch may hold.
pub const MAX_BATCH_EVENTS: usize = 1000;
/// The largest batch body.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// The largest single-event body (an event is at most 32 KiB in canonical form).
pub const MAX_EVENT_BODY_BYTES: usize = 64 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest_one, list_events))
        .routes(routes!(ingest_batch))
        .routes(routes!(get_event))
}

/// Checks media type and size, then parses: wrong type → 415, too large → 413, not JSON → 400,
/// U+0000 anywhere → 422 for the whole request (not even a dead letter can hold it).
///
/// `text/plain` is read as JSON too: it is what `navigator.sendBeacon` sends a string as, and
/// the one type a page can post cross-origin without a preflight (which a beacon cannot make).
pub fn parse_json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    max: usize,
) -> Result<Value, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json") || essence == "text/plain"
        })
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json` (or `text/plain` \
             holding JSON, as `navigator.sendBeacon` does)",
        ));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds {max} bytes"),
        )
    };
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    if body.len() > max {
        return Err(too_large());
    }
    let value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    refuse_nul(&value)?;
    Ok(value)
}

/// Result of `POST /v1/events` for an accepted or duplicate event.
#[derive(Serialize, ToSchema)]
pub struct SingleResult {
    /// `accepted` (201) or `duplicate` (200).
    pub status: &'static str,
    pub id: Uuid,
    pub event_id: String,
}

/// Records one event. 201 when stored, 200 when it is an exact re-send (`duplicate`), 409 when
/// its `event_id` is taken by a different payload, 422 when invalid (then dead-lettered).
#[utoipa::path(post, path = "/v1/events", tag = "events", security(("api_key" = ["ingest"])),
    request_body = EventBody,
    responses(
        (status = 201, body = SingleResult), (status = 200, body = SingleResult),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")
    ))]
async fn ingest_one(
    State(state): State<AppState>,
    caller: Authorized<scope::Collect>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = parse_json_body(&headers, body, MAX_EVENT_BODY_BYTES)?;
    if raw.is_array() {
        return Err(ApiError::bad_request(
            "send several events to /v1/events/batch",
        ));
    }
    let tenant = state.tenants.get(&state.db, caller.tenant_id).await?;
    let budget = state.tenants.admit(&caller, &tenant, 1)?;
    let correlation_id = context::current().correlation_id;
    let result = match batch::check(&raw, &tenant, &correlation_id) {
        Checked::Valid(valid) => {
            let event_id = valid.event_id.clone();
            let event = NewEvent {
                event: *valid,
                correlation_id,
                replayed_from: None,
            };
            let written: WriteOutcome = state
                .group_commit
                .submit(caller.tenant_id, event)
                .await
                .map_err(|e| ApiError::from_store(&e))?;
            let result = to_result(written, event_id);
            metrics::counter!("tally_events_total", "outcome" => result.outcome()).increment(1);
            result
        }
        invalid => batch::write(&state.db, caller.tenant_id, vec![invalid], &correlation_id)
            .await?
            .remove(0),
    };
    let mut response = single_response(result)?;
    response.headers_mut().extend(budget.headers());
    Ok(response)
}

/// The answer to one submitted event (shared with `/v1/segment`).
pub fn single_response(result: EventResult) -> Result<Response, ApiError> {
    match result {
        EventResult::Accepted { id, event_id } => Ok((
            StatusCode::CREATED,
            Json(SingleResult { status: "accepted", id, event_id }),
        )
            .into_response()),
        EventResult::Duplicate { id, event_id } => Ok((
            StatusCode::OK,
            Json(SingleResult { status: "duplicate", id, event_id }),
        )
            .into_response()),
        EventResult::Conflict { id, event_id } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_conflict",
            format!("event_id {event_id:?} was already used for a different payload; nothing was written"),
        )
        .with_extension("existing_id", id)),
        EventResult::Rejected { dead_event_id, error_code, errors } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            if error_code == tally_core::event::codes::REJECTED_PII {
                "pii_detected"
            } else {
                "validation_failed"
            },
            "the event is invalid; it was kept in the dead-letter queue and can be replayed once fixed",
        )
        .with_errors(errors)
        .with_extension("dead_event_id", dead_event_id)),
        EventResult::Refused { error_code, detail, .. } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            error_code,
            detail,
        )),
        linked @ EventResult::Linked { known, .. } => {
            let status = if known { StatusCode::OK } else { StatusCode::CREATED };
            Ok((status, Json(linked)).into_response())
        }
    }
}

/// 413 for a batch of more than [`MAX_BATCH_EVENTS`].
pub fn check_batch_len(len: usize) -> Result<(), ApiError> {
    if len > MAX_BATCH_EVENTS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("a batch holds at most {MAX_BATCH_EVENTS} events; this one has {len}"),
        ));
    }
    Ok(())
}

/// The answer to a batch: one result per submitted event, in order, and counts.
#[derive(Serialize, ToSchema)]
pub struct BatchResponse {
    pub accepted: usize,
    pub duplicates: usize,
    pub conflicts: usize,
    pub rejected: usize,
    /// Events the database refused to store (see the `refused` result); nothing written for them.
    pub refused: usize,
    /// Segment `identify` calls whose ids were linked (0 on `/v1/events/batch`).
    pub linked: usize,
    pub results: Vec<EventResult>,
}

/// Records up to 1000 events (≤ 1 MiB) in one transaction. The batch fails as a whole only when
/// it is not a batch (400/413/415), is over the rate limit (429, nothing written) or the
/// database is unavailable (503, retry it whole); otherwise each event gets its own result, and
/// an event the database refuses is `refused` without failing the others.
#[utoipa::path(post, path = "/v1/events/batch", tag = "events", security(("api_key" = ["ingest"])),
    request_body(content = BatchBody, description = "`{\"events\": [...]}` or a bare JSON array of events"),
    responses(
        (status = 200, body = BatchResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json",
            description = "a string or member name holds U+0000"),
        (status = 429, body = Problem, content_type = "application/problem+json")
    ))]
async fn ingest_batch(
    State(state): State<AppState>,
    caller: Authorized<scope::Collect>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = parse_json_body(&headers, body, MAX_BATCH_BYTES)?;
    let events = match raw {
        Value::Array(events) => Some(events),
        Value::Object(mut obj) if obj.len() == 1 => match obj.remove("events") {
            Some(Value::Array(events)) => Some(events),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::bad_request("a batch is a JSON array of events or an object {\"events\": [...]}")
    })?;
    check_batch_len(events.len())?;
    let tenant = state.tenants.get(&state.db, caller.tenant_id).await?;
    let budget = state.tenants.admit(&caller, &tenant, events.len())?;
    let correlation_id = context::current().correlation_id;
    let checked = events
        .iter()
        .map(|raw| batch::check(raw, &tenant, &correlation_id))
        .collect();
    let results = batch::write(&state.db, caller.tenant_id, checked, &correlation_id).await?;
    let mut response = Json(BatchResponse::from(results)).into_response();
    response.headers_mut().extend(budget.headers());
    Ok(response)
}

impl From<Vec<EventResult>> for BatchResponse {
    fn from(results: Vec<EventResult>) -> Self {
        let count = |s: &str| results.iter().filter(|r| r.outcome() == s).count();
        BatchResponse {
            accepted: count("accepted"),
            duplicates: count("duplicate"),
            conflicts: count("conflict"),
            rejected: count("rejected"),
            refused: count("refused"),
            linked: count("linked"),
            results,
        }
    }
}

/// This tenant's events, newest first, with filters and a keyset cursor (scope `read`).
#[utoipa::path(get, path = "/v1/events", tag = "events", security(("api_key" = ["read"])),
    params(EventFilter), responses(
        (status = 200, body = Page<StoredEvent>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn list_events(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    Query(filter): Query<EventFilter>,
) -> Result<Json<Page<StoredEvent>>, ApiError> {
    Ok(Json(state.db.list_events(caller.tenant_id, &filter).await?))
}

/// One event by Tally's id or the client's `event_id` (scope `read`).
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events", security(("api_key" = ["read"])),
    params(("id" = String, Path, description = "Tally's id or the client's `event_id`")), responses(
        (status = 200, body = StoredEvent),
        (status = 404, body = Problem, content_type = "application/problem+json")
    ))]
async fn get_event(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    Path(id): Path<String>,
) -> Result<Json<StoredEvent>, ApiError> {
    Ok(Json(state.db.get_event(caller.tenant_id, &id).await?))
}
