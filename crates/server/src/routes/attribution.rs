//! Attribution: recompute on demand (scope `admin`: it rewrites stored results and costs a
//! worker's time, so it sits with the other operational actions, not with `ingest`), its job
//! status, revenue per channel, and one conversion's journey and splits (scope `read`).

use crate::auth::{Authorized, scope};
use crate::context;
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_attribution::{MODEL_VERSION, Model};
use tally_store::attribution::{self as queries, ChannelTotal, JourneyTouch};
use tally_store::recompute::{self, RecomputeJob};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_recompute))
        .routes(routes!(recompute_status))
        .routes(routes!(channels))
        .routes(routes!(conversion))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecomputeRequest {
    /// Window start (inclusive), RFC 3339.
    #[serde(deserialize_with = "tally_core::time::rfc3339")]
    pub from: DateTime<Utc>,
    /// Window end (exclusive).
    #[serde(deserialize_with = "tally_core::time::rfc3339")]
    pub to: DateTime<Utc>,
}

fn window_error(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), ApiError> {
    if from < to {
        return Ok(());
    }
    Err(ApiError::unprocessable(
        "the window must start before it ends",
        vec![FieldError {
            pointer: "/to".into(),
            code: "invalid_range".into(),
            message: "`to` must be after `from`".into(),
        }],
    ))
}

/// Schedules a recompute of `[from, to)` with every model (scope `admin`). Scheduling a window
/// that already has a pending run returns that run.
#[utoipa::path(post, path = "/v1/attribution/recompute", tag = "attribution",
    security(("api_key" = [])), request_body = RecomputeRequest, responses(
        (status = 202, body = RecomputeJob),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn request_recompute(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Json(body): Json<RecomputeRequest>,
) -> Result<(StatusCode, Json<RecomputeJob>), ApiError> {
    window_error(body.from, body.to)?;
    let job = state
        .db
        .schedule_recompute(
            caller.tenant_id,
            body.from,
            body.to,
            MODEL_VERSION,
            &context::current().correlation_id,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// A recompute window's state (scope `read`).
#[utoipa::path(get, path = "/v1/attribution/jobs/{id}", tag = "attribution",
    security(("api_key" = [])), params(("id" = Uuid, Path)), responses(
        (status = 200, body = RecomputeJob),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    ))]
async fn recompute_status(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    Path(id): Path<Uuid>,
) -> Result<Json<RecomputeJob>, ApiError> {
    let mut tx = state.db.tenant_tx(caller.tenant_id).await?;
    Ok(Json(recompute::get_recompute(&mut tx, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChannelsQuery {
    /// Start (inclusive); revenue is bucketed by UTC hour, so use whole hours.
    #[serde(deserialize_with = "tally_core::time::rfc3339")]
    pub from: DateTime<Utc>,
    /// End (exclusive).
    #[serde(deserialize_with = "tally_core::time::rfc3339")]
    pub to: DateTime<Utc>,
    /// One model (`first_touch`, ..., `shapley`); all eight side by side when absent.
    pub model: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ModelTotals {
    pub model: String,
    /// Credited conversions (fractional: a conversion is split like its revenue).
    pub conversions: f64,
    /// Attributed tracked revenue, minor units.
    pub revenue_cents: i64,
    /// The ledger-verified share (0 until reconciliation fills it in).
    pub verified_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelRevenue {
    pub channel_code: String,
    pub currency: String,
    /// One entry per model, in the dashboard's model order.
    pub models: Vec<ModelTotals>,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub model_version: String,
    pub channels: Vec<ChannelRevenue>,
}

/// Revenue and conversions per channel over `[from, to)` (scope `read`).
#[utoipa::path(get, path = "/v1/attribution/channels", tag = "attribution",
    security(("api_key" = [])), params(ChannelsQuery), responses(
        (status = 200, body = ChannelReport),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn channels(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    Query(q): Query<ChannelsQuery>,
) -> Result<Json<ChannelReport>, ApiError> {
    window_error(q.from, q.to)?;
    let model =
        q.model
            .as_deref()
            .map(|m| {
                m.parse::<Model>().map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.to_string())
                        .with_errors(vec![FieldError {
                            pointer: "/model".into(),
                            code: "invalid_value".into(),
                            message: e.to_string(),
                        }])
                })
            })
            .transpose()?;
    let mut tx = state.db.tenant_tx(caller.tenant_id).await?;
    let totals =
        queries::channel_totals(&mut tx, MODEL_VERSION, q.from, q.to, model.map(Model::code))
            .await?;
    Ok(Json(ChannelReport {
        from: q.from,
        to: q.to,
        model_version: MODEL_VERSION.into(),
        channels: side_by_side(totals),
    }))
}

/// Rows come ordered by channel and currency; each group becomes one entry, models in
/// [`Model::ALL`] order.
fn side_by_side(totals: Vec<ChannelTotal>) -> Vec<ChannelRevenue> {
    let mut out: Vec<ChannelRevenue> = Vec::new();
    for t in totals {
        let same = out
            .last()
            .is_some_and(|c| c.channel_code == t.channel_code && c.currency == t.currency);
        if !same {
            out.push(ChannelRevenue {
                channel_code: t.channel_code.clone(),
                currency: t.currency.clone(),
                models: Vec::new(),
            });
        }
        let entry = out.last_mut().expect("pushed above");
        entry.models.push(ModelTotals {
            model: t.model,
            conversions: t.conversions,
            revenue_cents: t.claimed_cents,
            verified_cents: t.verified_cents,
        });
    }
    for c in &mut out {
        c.models.sort_by_key(|m| model_rank(&m.model));
    }
    out
}

/// Models in the dashboard's order rather than alphabetically.
fn model_rank(code: &str) -> Option<usize> {
    Model::ALL.iter().position(|m| m.code() == code)
}

#[derive(Serialize, ToSchema)]
pub struct ConversionInfo {
    pub id: Uuid,
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub revenue_cents: i64,
    pub currency: String,
}

#[derive(Serialize, ToSchema)]
pub struct JourneyStep {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub channel_code: String,
}

impl From<JourneyTouch> for JourneyStep {
    fn from(t: JourneyTouch) -> Self {
        Self {
            event_id: t.id,
            occurred_at: t.occurred_at,
            channel_code: t.channel_code,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChannelShare {
    pub channel_code: String,
    pub allocated_cents: i64,
    /// The share before rounding to cents.
    pub weight: f64,
}

#[derive(Serialize, ToSchema)]
pub struct ModelSplit {
    pub model: String,
    pub channels: Vec<ChannelShare>,
}

#[derive(Serialize, ToSchema)]
pub struct ConversionAttribution {
    pub conversion: ConversionInfo,
    pub model_version: String,
    /// The touches of its journey (same identity, within the tenant's lookback), oldest first;
    /// empty means the conversion is credited to `direct`.
    pub journey: Vec<JourneyStep>,
    /// The split under each model, once its window has been computed.
    pub splits: Vec<ModelSplit>,
}

/// One conversion's journey and its split under each model (scope `read`). `event_id` is
/// Tally's id or the client's event id.
#[utoipa::path(get, path = "/v1/attribution/conversions/{event_id}", tag = "attribution",
    security(("api_key" = [])), params(("event_id" = String, Path)), responses(
        (status = 200, body = ConversionAttribution),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    ))]
async fn conversion(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    Path(event_id): Path<String>,
) -> Result<Json<ConversionAttribution>, ApiError> {
    let mut tx = state.db.tenant_tx(caller.tenant_id).await?;
    let detail = queries::conversion_detail(&mut tx, MODEL_VERSION, &event_id).await?;
    let mut splits: Vec<ModelSplit> = Vec::new();
    for a in detail.allocations {
        if splits.last().is_none_or(|s| s.model != a.model) {
            splits.push(ModelSplit {
                model: a.model.clone(),
                channels: Vec::new(),
            });
        }
        splits
            .last_mut()
            .expect("pushed above")
            .channels
            .push(ChannelShare {
                channel_code: a.channel_code,
                allocated_cents: a.allocated_cents,
                weight: a.weight,
            });
    }
    splits.sort_by_key(|s| model_rank(&s.model));
    let c = detail.conversion;
    Ok(Json(ConversionAttribution {
        conversion: ConversionInfo {
            id: c.id,
            event_id: c.event_id,
            occurred_at: c.occurred_at,
            revenue_cents: c.revenue_cents,
            currency: c.currency,
        },
        model_version: MODEL_VERSION.into(),
        journey: detail.touches.into_iter().map(Into::into).collect(),
        splits,
    }))
}
