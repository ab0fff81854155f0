//! Tally's HTTP API.
//!
//! Handlers stay thin (parse, call core/store, map errors); the cross-cutting parts live beside
//! them:
//! - [`context`]: the correlation id of each request, echoed, logged, stored on rows.
//! - [`error`]: every failure as RFC 7807 `application/problem+json`.
//! - [`auth`]: API keys (`Bearer tk_...` or `X-API-Key`) and the operator token.
//! - [`browser`]: which web pages may use which key, and CORS on the collection routes.
//! - [`idempotency`]: `Idempotency-Key` on the POSTs that create something.
//! - [`routes`]: one module per resource, each exposing its own router.
//! - [`range`]: the read APIs' time windows (instants or local dates, checked granularity).
//! - [`dashboard`]: the web dashboard at `/`, its assets and sign-in sessions.
//! - [`openapi`]: the served document, completed with the errors the shared layers answer.
//! - [`app`]: assembles the routers, the OpenAPI document and the middleware.

pub mod answers;
pub mod app;
pub mod auth;
pub mod browser;
pub mod context;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod ingest;
pub mod metrics;
pub mod money;
pub mod openapi;
pub mod range;
pub mod routes;
pub mod state;

pub use app::{build_router, serve};
pub use state::{AppState, GROUP_COMMIT_FLUSHERS, ServerConfig};
