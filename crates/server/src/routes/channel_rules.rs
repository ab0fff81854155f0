//! A tenant's channel rules (scope `admin`): overrides on top of the global defaults.

use crate::auth::{Authorized, scope};
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tally_core::channel::ChannelRule;
use tally_store::channels::TenantRule;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(remove))
}

#[derive(Serialize, ToSchema)]
pub struct Rules {
    /// This tenant's rules; at equal priority they win over the global ones.
    pub tenant: Vec<TenantRule>,
    #[schema(value_type = Vec<Object>)]
    pub global: Vec<ChannelRule>,
}

/// The rules that map UTM tags, click ids and referrers to channels.
#[utoipa::path(get, path = "/v1/channel-rules", tag = "channels", security(("api_key" = ["admin"])), responses(
    (status = 200, body = Rules),
    (status = 403, body = Problem, content_type = "application/problem+json")
))]
async fn list(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
) -> Result<Json<Rules>, ApiError> {
    Ok(Json(Rules {
        tenant: state.db.tenant_rules(caller.tenant_id).await?,
        global: state.db.global_rules().await?,
    }))
}

/// A channel rule as sent: it matches on exactly one of `click_id`; `utm_source` and/or
/// `utm_medium`; `referrer_host` (otherwise 422).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema only: rules are read as tally_core's ChannelRule"
)]
struct RuleBody {
    /// Lower is tried first.
    priority: i32,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    /// `example.com` (and subdomains) or `name.*` (any top-level domain).
    referrer_host: Option<String>,
    #[schema(schema_with = click_ids)]
    click_id: Option<String>,
    #[schema(schema_with = channel_codes)]
    channel_code: String,
}

fn click_ids() -> utoipa::openapi::schema::Object {
    tally_store::doc::one_of(tally_core::channel::ClickIdKind::ALL.map(|k| k.as_str()))
}

fn channel_codes() -> utoipa::openapi::schema::Object {
    tally_store::doc::one_of(tally_core::channel::TAXONOMY.iter().map(|e| e.code))
}

/// Adds a rule, e.g. `{"priority": 150, "utm_source": "partnerx", "channel_code": "affiliate"}`.
/// Applies to events received from now on (and to replays); stored events keep their channel.
#[utoipa::path(post, path = "/v1/channel-rules", tag = "channels", security(("api_key" = ["admin"])),
    request_body(content = RuleBody), responses(
    (status = 201, body = TenantRule),
    (status = 409, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")
))]
async fn add(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Json(rule): Json<ChannelRule>,
) -> Result<(StatusCode, Json<TenantRule>), ApiError> {
    let rule = rule.normalised().map_err(|e| {
        ApiError::unprocessable(
            "invalid channel rule",
            vec![FieldError {
                pointer: String::new(),
                code: "invalid_value".into(),
                message: e.to_string(),
            }],
        )
    })?;
    let stored = state.db.add_tenant_rule(caller.tenant_id, &rule).await?;
    state.tenants.forget(caller.tenant_id).await;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// Removes one of this tenant's rules.
#[utoipa::path(delete, path = "/v1/channel-rules/{rule_id}", tag = "channels", security(("api_key" = ["admin"])),
    params(("rule_id" = Uuid, Path)), responses(
    (status = 204),
    (status = 404, body = Problem, content_type = "application/problem+json")
))]
async fn remove(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Path(rule_id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state
        .db
        .remove_tenant_rule(caller.tenant_id, rule_id)
        .await?;
    state.tenants.forget(caller.tenant_id).await;
    Ok(StatusCode::NO_CONTENT)
}
