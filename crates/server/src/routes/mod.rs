//! One module per resource; each exposes `router()` with its handlers and their OpenAPI paths.

pub mod admin;
pub mod attribution;
pub mod channel_rules;
pub mod dead_events;
pub mod endpoints;
pub mod events;
pub mod health;
pub mod identity;
pub mod jobs;
pub mod keys;
pub mod ledger;
pub mod reconciliation;
pub mod revenue;
pub mod segment;
pub mod settings;
pub mod snippet;
pub mod webhooks;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

/// Every documented route of the API.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(keys::router())
        .merge(admin::router())
        .merge(events::router())
        .merge(segment::router())
        .merge(snippet::router())
        .merge(identity::router())
        .merge(dead_events::router())
        .merge(channel_rules::router())
        .merge(webhooks::router())
        .merge(endpoints::router())
        .merge(ledger::router())
        .merge(attribution::router())
        .merge(jobs::router())
        .merge(reconciliation::router())
        .merge(revenue::router())
        .merge(settings::router())
}
