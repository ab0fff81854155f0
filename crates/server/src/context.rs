//! The correlation id: taken from `X-Correlation-ID` when the caller sends a sane one, generated
//! otherwise, echoed on every response, attached to every log line of the request (through its
//! span) and stored on every row the request creates.
//!
//! It lives in a task-local as well as in the span, so that error responses built deep inside a
//! handler (`ApiError::into_response`) can carry it without threading it through every call.
//! tower-http's request-id layer sets and propagates the header, but cannot provide that.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

pub const CORRELATION_HEADER: HeaderName = HeaderName::from_static("x-correlation-id");

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub correlation_id: String,
    pub path: String,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// The current request's context; outside a request (CLI, worker) a fresh correlation id.
pub fn current() -> RequestContext {
    CONTEXT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| RequestContext {
            correlation_id: new_correlation_id(),
            path: String::new(),
        })
}

pub fn new_correlation_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A caller-chosen id is kept when it is 1–128 characters of `[A-Za-z0-9._:-]`: anything else
/// could break log parsing or smuggle data into rows, so it is replaced rather than refused.
fn accept(raw: &HeaderValue) -> Option<String> {
    let s = raw.to_str().ok()?;
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    ok.then(|| s.to_string())
}

pub async fn middleware(mut req: Request, next: Next) -> Response {
    let correlation_id = req
        .headers()
        .get(&CORRELATION_HEADER)
        .and_then(accept)
        .unwrap_or_else(new_correlation_id);
    let ctx = RequestContext {
        correlation_id: correlation_id.clone(),
        path: req.uri().path().to_string(),
    };
    req.extensions_mut().insert(ctx.clone());
    let method = req.method().clone();
    let span = tracing::info_span!("request", correlation_id = %correlation_id, method = %method, path = %ctx.path);
    let started = Instant::now();
    let mut response = CONTEXT
        .scope(ctx, next.run(req))
        .instrument(span.clone())
        .await;
    log_finished(&span, response.status(), started.elapsed());
    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    response
}

/// Successful requests are logged at `debug`: at ingestion rates one JSON line per request cost
/// more CPU than the request itself, and their counts and latencies are in `/metrics` anyway.
/// Every refused request is logged at `info` and every server error at `warn`, as before.
fn log_finished(span: &tracing::Span, status: StatusCode, elapsed: std::time::Duration) {
    let (status, latency_ms) = (status.as_u16(), elapsed.as_secs_f64() * 1e3);
    span.in_scope(|| match status {
        500.. => tracing::warn!(status, latency_ms, "request finished"),
        400..=499 => tracing::info!(status, latency_ms, "request finished"),
        _ => tracing::debug!(status, latency_ms, "request finished"),
    });
}
