//! One module per resource; each exposes `router()` with its handlers and their OpenAPI paths.

pub mod admin;
pub mod health;
pub mod keys;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

/// Every documented route of the API.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(keys::router())
        .merge(admin::router())
}
