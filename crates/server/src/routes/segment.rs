//! `POST /v1/segment` and `POST /v1/segment/batch`: Segment / RudderStack calls, mapped onto
//! Tally events by [`crate::ingest::segment`] and then written exactly like `/v1/events`
//! (validation, dead letters, idempotency by `messageId`, rate limits). A Segment webhook
//! destination authenticates with the key as Basic user name, or as a Bearer token.

use crate::auth::{Authorized, Caller, scope};
use crate::context;
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::Json;
use crate::ingest::batch::{self, Checked, EventResult};
use crate::ingest::segment::{self, Mapped, Unmappable};
use crate::ingest::tenant::TenantIngest;
use crate::routes::events::{
    BatchResponse, MAX_BATCH_BYTES, MAX_EVENT_BODY_BYTES, check_batch_len, parse_json_body,
    single_response,
};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tally_core::event::{ValidIdentify, validate_identify};
use tally_core::pii;
use tally_store::dead_events::NewDeadEvent;
use tally_store::identity::Identify;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(segment_one))
        .routes(routes!(segment_batch))
}

/// The dead-letter code of a call with no Tally meaning.
const UNMAPPABLE: &str = "unmappable_segment_call";

/// One call of the Segment Spec. Tally reads the members below and keeps the other
/// `properties`; other members (`integrations`, `traits`, most of `context`) are ignored.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a schema only: calls are mapped from raw JSON")]
pub struct SegmentCall {
    #[schema(rename = "type", schema_with = call_types)]
    call_type: String,
    /// Tally's `event_id`: re-sending a call is answered `duplicate`.
    #[schema(rename = "messageId")]
    message_id: Option<String>,
    /// For `track`: `"Order Completed"` or another Tally type by name (`"Subscription
    /// Started"`, `"Email Link Clicked"`); other names are dead-lettered.
    event: Option<String>,
    #[schema(rename = "anonymousId")]
    anonymous_id: Option<String>,
    #[schema(rename = "userId")]
    user_id: Option<String>,
    /// ISO 8601 with an offset, or epoch seconds / milliseconds; else `originalTimestamp`,
    /// else `sentAt`.
    #[schema(value_type = Option<String>)]
    timestamp: Option<Value>,
    #[schema(rename = "originalTimestamp", value_type = Option<String>)]
    original_timestamp: Option<Value>,
    #[schema(rename = "sentAt", value_type = Option<String>)]
    sent_at: Option<Value>,
    /// `campaign` (UTM), `page.url` (click ids), `page.referrer`, `sessionId` (RudderStack).
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    /// For conversions `revenue` (else `total`), `currency`, `order_id`; the rest is kept.
    #[schema(value_type = Option<Object>)]
    properties: Option<Value>,
}

/// A Segment batch (`/v1/batch` shape, at most 1000 calls and 1 MiB) or a bare JSON array of
/// calls. Each call is mapped on its own against [`SegmentCall`]: one that is not a call Tally
/// can map (even `null`) comes back `rejected` in its result, kept as a dead letter, without
/// failing the others, so an item can be any JSON.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum SegmentBatch {
    Wrapped(SegmentBatchObject),
    Bare(Vec<Value>),
}

/// `context` and `sentAt` apply to calls without their own.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a schema only: batches are mapped from raw JSON")]
pub struct SegmentBatchObject {
    /// At most 1000 (more is a 413); not stated as `maxItems`, like `/v1/events/batch`.
    batch: Vec<Value>,
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    #[schema(rename = "sentAt", value_type = Option<String>)]
    sent_at: Option<Value>,
}

fn call_types() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["track", "page", "screen", "identify"]))
        .build()
}

/// Records one Segment call; answered like `POST /v1/events` (201, 200 duplicate, 422 with the
/// dead letter's id for an unmappable or invalid call).
#[utoipa::path(post, path = "/v1/segment", tag = "events",
    security(("api_key" = []), ("basic" = [])),
    request_body(content = SegmentCall, content_type = "application/json"),
    responses(
        (status = 201, body = EventResult, description = "an event accepted (`accepted`) or an identify call's new link (`linked`)"),
        (status = 200, body = EventResult, description = "a duplicate event, or a link already known (`linked`, `known: true`)"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")
    ))]
async fn segment_one(
    State(state): State<AppState>,
    caller: Authorized<scope::Collect>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = parse_json_body(&headers, body, MAX_EVENT_BODY_BYTES)?;
    let tenant = state.tenants.get(&state.db, caller.tenant_id).await?;
    let budget = state.tenants.admit(&caller, &tenant, 1)?;
    let mut results = ingest(&state, &caller, &tenant, vec![raw], None, None).await?;
    let mut response = single_response(results.remove(0))?;
    response.headers_mut().extend(budget.headers());
    Ok(response)
}

/// Records up to 1000 Segment calls in one transaction; answered like `/v1/events/batch`.
#[utoipa::path(post, path = "/v1/segment/batch", tag = "events",
    security(("api_key" = []), ("basic" = [])),
    request_body(content = SegmentBatch, content_type = "application/json"),
    responses(
        (status = 200, body = BatchResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")
    ))]
async fn segment_batch(
    State(state): State<AppState>,
    caller: Authorized<scope::Collect>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = parse_json_body(&headers, body, MAX_BATCH_BYTES)?;
    let (calls, context, sent_at) = match raw {
        Value::Array(calls) => (calls, None, None),
        Value::Object(mut batch) => match batch.remove("batch") {
            Some(Value::Array(calls)) => (calls, batch.remove("context"), batch.remove("sentAt")),
            _ => return Err(not_a_batch()),
        },
        _ => return Err(not_a_batch()),
    };
    check_batch_len(calls.len())?;
    check_shared(context.as_ref(), sent_at.as_ref())?;
    let tenant = state.tenants.get(&state.db, caller.tenant_id).await?;
    let budget = state.tenants.admit(&caller, &tenant, calls.len())?;
    let results = ingest(&state, &caller, &tenant, calls, context, sent_at).await?;
    let mut response = Json(BatchResponse::from(results)).into_response();
    response.headers_mut().extend(budget.headers());
    Ok(response)
}

/// The batch's shared members apply to every call, so their type is checked once, up front,
/// even when no call needs them: `context` an object, `sentAt` an ISO 8601 time.
fn check_shared(context: Option<&Value>, sent_at: Option<&Value>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if context.is_some_and(|c| !(c.is_object() || c.is_null())) {
        errors.push(FieldError {
            pointer: "/context".into(),
            code: "invalid_type".into(),
            message: "must be an object".into(),
        });
    }
    if sent_at.is_some_and(|t| !(t.is_string() || t.is_null())) {
        errors.push(FieldError {
            pointer: "/sentAt".into(),
            code: "invalid_type".into(),
            message: "must be an ISO 8601 time".into(),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::unprocessable("invalid batch", errors))
    }
}

fn not_a_batch() -> ApiError {
    ApiError::bad_request(
        "a Segment batch is an object {\"batch\": [...calls]} (optionally with `context` and \
         `sentAt`) or a JSON array of calls",
    )
}

/// Maps, validates and writes calls in one transaction; every call gets a result, and what
/// cannot become an event is a dead letter.
async fn ingest(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantIngest,
    calls: Vec<Value>,
    context: Option<Value>,
    sent_at: Option<Value>,
) -> Result<Vec<EventResult>, ApiError> {
    let correlation_id = context::current().correlation_id;
    let mut checked = Vec::with_capacity(calls.len());
    let mut linked = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        checked.push(
            match segment::map(call, context.as_ref(), sent_at.as_ref()) {
                Ok(Mapped::Event(event)) => batch::check(&event, tenant, &correlation_id),
                Ok(Mapped::Identify {
                    anonymous_id,
                    user_id,
                }) => {
                    let body =
                        serde_json::json!({"anonymous_id": anonymous_id, "user_id": user_id});
                    match validate_identify(&body, chrono::Utc::now()) {
                        Ok(valid) => {
                            linked.push((
                                i,
                                link_identity(state, caller, valid, &correlation_id).await?,
                            ));
                            continue;
                        }
                        Err(errors) => {
                            // The ids are checked as `POST /v1/identify` checks them (length,
                            // control characters, the PII guard); pointers name Segment's members.
                            let first = &errors[0];
                            let pointer = match first.pointer.as_str() {
                                "/anonymous_id" => "/anonymousId",
                                "/user_id" => "/userId",
                                other => other,
                            };
                            dead_letter(
                                call,
                                tally_core::event::rejection_code(&errors),
                                Unmappable {
                                    pointer: pointer.to_string(),
                                    message: first.message.clone(),
                                },
                                &correlation_id,
                            )
                        }
                    }
                }
                Err(unmappable) => dead_letter(call, UNMAPPABLE, unmappable, &correlation_id),
            },
        );
    }
    let mut results = batch::write(&state.db, caller.tenant_id, checked, &correlation_id).await?;
    // In ascending order, each insert lands at its call's position.
    for (i, result) in linked {
        results.insert(i, result);
    }
    Ok(results)
}

/// Links a visitor's anonymous id to its user id, as `POST /v1/identify` does.
async fn link_identity(
    state: &AppState,
    caller: &Caller,
    valid: ValidIdentify,
    correlation_id: &str,
) -> Result<EventResult, ApiError> {
    let link = Identify {
        anonymous_id: valid.anonymous_id,
        user_id: valid.user_id,
        session_id: valid.session_id,
        occurred_at: valid.occurred_at,
    };
    let outcome = state
        .db
        .identify(caller.tenant_id, link, correlation_id)
        .await?;
    Ok(EventResult::Linked {
        known: outcome.status != "linked",
        anonymous_id: outcome.anonymous_id,
        user_id: outcome.user_id,
    })
}

fn dead_letter(call: &Value, code: &'static str, why: Unmappable, correlation_id: &str) -> Checked {
    let mut payload = call.clone();
    pii::redact(&mut payload);
    let errors = vec![FieldError {
        pointer: why.pointer,
        code: code.into(),
        message: why.message,
    }];
    let dead = NewDeadEvent {
        source: "segment",
        error_code: code.to_string(),
        errors: serde_json::to_value(&errors).unwrap_or_default(),
        event_id: call
            .get("messageId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty() && id.chars().count() <= tally_core::event::MAX_ID_CHARS)
            .map(str::to_string),
        payload,
        correlation_id: correlation_id.to_string(),
    };
    Checked::Invalid(Box::new(dead), errors)
}
