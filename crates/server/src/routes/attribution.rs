//! Attribution: recompute on demand (scope `admin`: it rewrites stored results and costs a
//! worker's time, so it sits with the other operational actions, not with `ingest`), its job
//! status, revenue per channel, the top conversion paths, and one conversion's journey and
//! splits (scope `read`).

use crate::auth::{Authorized, Caller, scope};
use crate::context;
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{Json, Path, Query};
use crate::range::{self, Granularity, Window};
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_attribution::{MODEL_VERSION, Model};
use tally_store::Database;
use tally_store::attribution::{self as queries, ConversionPath, JourneyTouch};
use tally_store::recompute::{self, RecomputeJob};
use tally_store::rollups::{self, ChannelTotal, UnattributedTotal};
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
        .routes(routes!(paths))
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
    security(("api_key" = ["admin"])), request_body = RecomputeRequest, responses(
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
    security(("api_key" = ["read"])), params(("id" = Uuid, Path)), responses(
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
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChannelsQuery {
    /// Start (inclusive): an RFC 3339 instant on an hour of the tenant's time zone, or a date
    /// (local midnight). Unaligned bounds are refused with the granularity, never rounded.
    #[param(schema_with = crate::range::bound_schema, required = true)]
    pub from: String,
    /// End (exclusive), like `from`.
    #[param(schema_with = crate::range::bound_schema, required = true)]
    pub to: String,
    /// One model (`first_touch`, ..., `shapley`); all eight side by side when absent.
    #[param(schema_with = tally_store::doc::models)]
    pub model: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ModelTotals {
    pub model: String,
    /// Credited conversions (fractional: a conversion is split like its revenue).
    pub conversions: f64,
    /// Attributed tracked revenue (claimed), minor units.
    pub claimed_cents: i64,
    /// The same as `claimed_cents` (its earlier name).
    pub revenue_cents: i64,
    /// The same allocation shares applied to each order's net verified amount, minor units.
    pub verified_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelRevenue {
    /// A channel code, or `unattributed` for paid orders that tracking never reported (their
    /// money is verified and claimed by no channel, under every model).
    pub channel_code: String,
    pub currency: String,
    /// One entry per model (every model, 0 included), in the dashboard's model order.
    pub models: Vec<ModelTotals>,
}

#[derive(Serialize, ToSchema)]
pub struct ModelFreshness {
    pub model: String,
    /// When the newest figures of this model in the window were computed (null: none yet).
    pub computed_at: Option<DateTime<Utc>>,
    /// A recompute of a window overlapping this one is queued or running: new conversions are
    /// not in these figures yet, or (journey-local models) only through the run's fast pass,
    /// which attributes a new sale from its own journey before the full run; Markov and Shapley
    /// take them in with the full run.
    pub recompute_pending: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelReport {
    /// The effective window (dates resolved in `time_zone`).
    pub window: Window,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub time_zone: String,
    pub model_version: String,
    pub channels: Vec<ChannelRevenue>,
    /// Paid-not-tracked money per currency (also the `unattributed` line of `channels`).
    pub unattributed: Vec<UnattributedTotal>,
    pub models: Vec<ModelFreshness>,
}

/// Revenue, conversions, claimed and verified per channel over `[from, to)` (scope `read`).
#[utoipa::path(get, path = "/v1/attribution/channels", tag = "attribution",
    security(("api_key" = ["read"])), params(ChannelsQuery), responses(
        (status = 200, body = ChannelReport),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn channels(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    RawQuery(raw): RawQuery,
    Query(q): Query<ChannelsQuery>,
) -> Result<Response, ApiError> {
    let at = (caller.tenant_id, "channels");
    let report = channel_report(&state.db, &caller, q);
    state
        .answers
        .json(&state.db, at, raw.as_deref(), report)
        .await
}

async fn channel_report(
    db: &Database,
    caller: &Caller,
    q: ChannelsQuery,
) -> Result<ChannelReport, ApiError> {
    let model = crate::routes::revenue::parse_model(q.model.as_deref())?;
    let models: Vec<Model> = model.map_or(Model::ALL.to_vec(), |m| vec![m]);
    let mut tx = db.tenant_tx(caller.tenant_id).await?;
    let tz = rollups::reader_settings(&mut tx).await?.time_zone;
    let window = range::resolve(&mut tx, &q.from, &q.to, &tz, Granularity::LocalHour).await?;
    let span = (window.from, window.to);
    let totals = rollups::channel_totals(
        &mut tx,
        caller.tenant_id,
        MODEL_VERSION,
        span,
        &tz,
        model.map(Model::code),
    )
    .await?;
    let unattributed = rollups::unattributed_totals(&mut tx, caller.tenant_id, span, &tz).await?;
    let pending = recompute::pending_overlapping(&mut tx, MODEL_VERSION, span).await?;
    tx.commit().await?;
    let freshness = models
        .iter()
        .map(|m| ModelFreshness {
            model: m.code().into(),
            computed_at: totals
                .iter()
                .filter(|t| t.model == m.code())
                .map(|t| t.computed_at)
                .max(),
            recompute_pending: pending,
        })
        .collect();
    let mut channels = side_by_side(totals, &models);
    channels.extend(unattributed.iter().map(|u| {
        ChannelRevenue {
            channel_code: "unattributed".into(),
            currency: u.currency.clone(),
            models: models
                .iter()
                .map(|m| ModelTotals {
                    model: m.code().into(),
                    conversions: 0.0,
                    claimed_cents: 0,
                    revenue_cents: 0,
                    verified_cents: u.verified_cents,
                })
                .collect(),
        }
    }));
    Ok(ChannelReport {
        window,
        from: window.from,
        to: window.to,
        time_zone: tz,
        model_version: MODEL_VERSION.into(),
        channels,
        unattributed,
        models: freshness,
    })
}

/// Rows come ordered by channel and currency; each group becomes one entry listing every model
/// in `models` (0 where the channel had nothing under it), in [`Model::ALL`] order.
fn side_by_side(totals: Vec<ChannelTotal>, models: &[Model]) -> Vec<ChannelRevenue> {
    let mut out: Vec<ChannelRevenue> = Vec::new();
    for t in totals {
        let same = out
            .last()
            .is_some_and(|c| c.channel_code == t.channel_code && c.currency == t.currency);
        if !same {
            out.push(ChannelRevenue {
                channel_code: t.channel_code.clone(),
                currency: t.currency.clone(),
                models: models
                    .iter()
                    .map(|m| ModelTotals {
                        model: m.code().into(),
                        conversions: 0.0,
                        claimed_cents: 0,
                        revenue_cents: 0,
                        verified_cents: 0,
                    })
                    .collect(),
            });
        }
        let entry = out.last_mut().expect("pushed above");
        if let Some(m) = entry.models.iter_mut().find(|m| m.model == t.model) {
            m.conversions = t.conversions;
            m.claimed_cents = t.claimed_cents;
            m.revenue_cents = t.claimed_cents;
            m.verified_cents = t.verified_cents;
        }
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
    /// The touches of its journey (every id stitched to the conversion's, or its session when
    /// the tenant stitches no further; within the tenant's lookback), oldest first;
    /// empty means the conversion is credited to `direct`.
    pub journey: Vec<JourneyStep>,
    /// The split under each model, once its window has been computed.
    pub splits: Vec<ModelSplit>,
}

/// One conversion's journey and its split under each model (scope `read`). `event_id` is
/// Tally's id or the client's event id.
#[utoipa::path(get, path = "/v1/attribution/conversions/{event_id}", tag = "attribution",
    security(("api_key" = ["read"])), params(("event_id" = String, Path)), responses(
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
    let detail =
        queries::conversion_detail(&mut tx, caller.tenant_id, MODEL_VERSION, &event_id).await?;
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PathsQuery {
    /// Start (inclusive), like `/v1/attribution/channels`: an instant on a local hour or a date.
    pub from: String,
    /// End (exclusive), like `from`.
    pub to: String,
    /// How many paths, 1–100 (default 20).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct PathReport {
    pub window: Window,
    pub time_zone: String,
    /// Most conversions first; one entry per path and currency (never added across currencies).
    pub paths: Vec<ConversionPath>,
}

/// The most frequent conversion paths (channel sequences) in `[from, to)` with their
/// conversions and revenue (scope `read`): the stitched journeys the latest recomputes credited,
/// so a conversion appears once its day has been recomputed (see `recompute_pending` on
/// `/v1/attribution/channels`).
#[utoipa::path(get, path = "/v1/attribution/paths", tag = "attribution",
    security(("api_key" = [])), params(PathsQuery), responses(
        (status = 200, body = PathReport),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn paths(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    RawQuery(raw): RawQuery,
    Query(q): Query<PathsQuery>,
) -> Result<Response, ApiError> {
    let at = (caller.tenant_id, "paths");
    let report = path_report(&state.db, &caller, q);
    state
        .answers
        .json(&state.db, at, raw.as_deref(), report)
        .await
}

async fn path_report(
    db: &Database,
    caller: &Caller,
    q: PathsQuery,
) -> Result<PathReport, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::unprocessable(
            "`limit` is out of range",
            vec![FieldError {
                pointer: "/limit".into(),
                code: "out_of_range".into(),
                message: "`limit` must be between 1 and 100".into(),
            }],
        ));
    }
    let mut tx = db.tenant_tx(caller.tenant_id).await?;
    let tz = rollups::reader_settings(&mut tx).await?.time_zone;
    let window = range::resolve(&mut tx, &q.from, &q.to, &tz, Granularity::LocalHour).await?;
    let paths = queries::top_paths(&mut tx, MODEL_VERSION, (window.from, window.to), limit).await?;
    tx.commit().await?;
    Ok(PathReport {
        window,
        time_zone: tz,
        paths,
    })
}
