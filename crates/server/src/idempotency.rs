//! `Idempotency-Key` on the POSTs that create something, with Stripe's semantics: the first
//! successful answer to a key is stored per tenant and route; a retry with the same key and
//! the same body gets that answer again (status and body, marked `Idempotent-Replayed: true`)
//! without running the handler; the same key with a different body is refused with 409
//! `idempotency_conflict`. A request that failed (invalid, refused, database down) stores
//! nothing, so its retry runs again and can never be answered as a duplicate of a write that
//! did not happen.
//!
//! It is one middleware for every such route ([`ROUTES`]) rather than code in each handler.
//! The key is held (a transaction-level advisory lock) from before the handler runs until its
//! answer is stored, so two concurrent requests with one key run the handler once. The
//! handler's write and the stored answer are two transactions, the handler's committing first:
//! if the process dies between them, a retry runs the handler again. Closing that gap would
//! take every creating store function running inside the middleware's transaction.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tally_store::idempotency::{StoredResponse, record};

pub const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";
/// The longest key accepted (Stripe's limit).
pub const MAX_KEY_CHARS: usize = 255;

/// Route templates whose POSTs honour the header. A new creating route joins by being listed.
pub const ROUTES: &[&str] = &[
    "/v1/keys",
    "/v1/webhook-endpoints",
    "/v1/ledger/adjustments",
    "/v1/attribution/recompute",
    "/v1/reconciliation/runs",
    "/v1/channel-rules",
    "/v1/identify",
];

pub async fn middleware(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let applies = req.method() == Method::POST
        && req.headers().contains_key(HEADER)
        && matched.is_some_and(|m| ROUTES.contains(&m.as_str()));
    if !applies {
        return next.run(req).await;
    }
    handle(state, req, next)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(state: AppState, req: Request, next: Next) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let key = parse_key(parts.headers.get(HEADER))?;
    let caller = Caller::from_request_parts(&mut parts, &state).await?;
    let body = to_bytes(body, crate::app::MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body exceeds {} bytes", crate::app::MAX_BODY_BYTES),
            )
        })?;
    let request_sha256 = Sha256::digest(&body).to_vec();
    let route = parts.uri.path().to_string();
    let (tx, stored) = state
        .db
        .claim_idempotency_key(caller.tenant_id, &route, &key)
        .await?;
    if let Some(stored) = stored {
        if stored.request_sha256 != request_sha256 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this Idempotency-Key was already used with a different request body; use a new key for a new request",
            ));
        }
        return Ok(replay(stored));
    }
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if !response.status().is_success() {
        return Ok(response);
    }
    let (head, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX)
        .await
        .map_err(|_| ApiError::internal())?;
    let answer = StoredResponse {
        request_sha256,
        status: head.status.as_u16(),
        content_type: head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: body.to_vec(),
    };
    // The handler's write has committed: the client gets its answer even if storing it fails
    // (then a retry runs the handler again, as without a key).
    if let Err(e) = record(tx, caller.tenant_id, &route, &key, &answer).await {
        tracing::error!(error = %e, "could not store the answer of an idempotent request");
    }
    Ok(Response::from_parts(head, Body::from(body)))
}

fn parse_key(value: Option<&HeaderValue>) -> Result<String, ApiError> {
    value
        .and_then(|v| v.to_str().ok())
        .filter(|k| {
            (1..=MAX_KEY_CHARS).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_CHARS} visible ASCII characters (a UUID is a good choice)"
            ))
        })
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    if let Some(ct) = stored
        .content_type
        .and_then(|ct| HeaderValue::from_str(&ct).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
