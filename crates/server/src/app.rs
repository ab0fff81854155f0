//! Assembles the API: documented routes, `/openapi.json`, `/metrics`, problem+json fallbacks,
//! and the middleware every request passes through.

use crate::error::ApiError;
use crate::metrics as app_metrics;
use crate::state::AppState;
use crate::{context, dashboard, openapi, routes};
use axum::Router;
use axum::extract::Request;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The largest request body accepted anywhere (a batch is ≤ 1 MiB; this leaves room for the
/// batch endpoint to answer with its own precise 413).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

pub fn build_router(state: AppState) -> Router {
    let (api, doc) = routes::api().split_for_parts();
    let doc = Arc::new(openapi::document(doc));
    api.route(
        "/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
    .route("/metrics", get(render_metrics))
    .merge(dashboard::router())
    .fallback(|| async { ApiError::not_found("no such route") })
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
    })
    .route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::idempotency::middleware,
    ))
    .route_layer(axum::middleware::from_fn(app_metrics::track))
    .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
    .layer(axum::middleware::from_fn(limit_uri))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::browser::cors,
    ))
    .layer(axum::middleware::from_fn(context::middleware))
    .layer(axum::middleware::from_fn(dashboard::security_headers))
    .with_state(state)
}

/// The longest request target (path and query) accepted; no route needs a tenth of it.
///
/// hyper answers a target over 64 KiB itself, with a bare 414 before any of Tally's code runs;
/// this lower limit answers everything between as a problem document, like every other error.
pub const MAX_URI_BYTES: usize = 8 * 1024;

async fn limit_uri(request: Request, next: Next) -> Response {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if length > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is {length} bytes; the limit is {MAX_URI_BYTES}"),
        )
        .into_response();
    }
    next.run(request).await
}

/// Renders the registry; gauges that live in the database are read at scrape time, so every
/// process reports the same depth however the dead letters were created or replayed.
async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.dead_letter_depth().await {
        Ok(depths) => {
            let total: i64 = depths.iter().map(|(_, n)| n).sum();
            metrics::gauge!("tally_dead_events_open").set(total as f64);
        }
        Err(e) => tracing::warn!(error = %e, "could not read the dead-letter depth"),
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        app_metrics::handle().render(),
    )
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    app_metrics::handle();
    axum::serve(listener, build_router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
