//! Revenue reads (scope `read`): the realtime totals (the seed contract's
//! `/api/attribution/revenue/realtime`, also at `/v1/revenue/realtime`), the claimed-vs-verified
//! time series, and the export. All of them read summaries, never events.

use crate::auth::{Authorized, Caller, scope};
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{Query, invalid_query_value};
use crate::money::major_units;
use crate::range::{self, Granularity, Window};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tally_attribution::{MODEL_VERSION, Model};
use tally_core::money::CurrencyCode;
use tally_store::live::{self, LiveTotal};
use tally_store::rollups::{self, SeriesPoint, SeriesQuery};
use tally_store::{Database, TenantId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(realtime))
        .routes(routes!(realtime_v1))
        .routes(routes!(timeseries))
        .routes(routes!(export))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RealtimeQuery {
    /// Start (inclusive), an RFC 3339 instant on a quarter hour or a date; default: today's
    /// local midnight.
    #[param(schema_with = crate::range::bound_schema)]
    pub from: Option<String>,
    /// End (exclusive); default: the next local midnight.
    #[param(schema_with = crate::range::bound_schema)]
    pub to: Option<String>,
    /// The currency to total (ISO 4217); default: the tenant's. Other currencies are listed in
    /// `currencies`, never added in.
    #[param(schema_with = tally_store::doc::currencies)]
    pub currency: Option<String>,
}

/// One currency's realtime figures.
#[derive(Serialize, ToSchema, Hash)]
pub struct CurrencyFigures {
    pub currency: String,
    /// Tracked conversions and their revenue.
    pub conversions: i64,
    pub claimed_cents: i64,
    /// Ledger postings and their net.
    pub postings: i64,
    pub verified_cents: i64,
}

/// The seed contract's realtime revenue, plus the claimed/verified split.
#[derive(Serialize, ToSchema)]
pub struct Realtime {
    pub tenant_id: Uuid,
    /// Tracked (claimed) revenue of the window in `currency`, major units.
    pub total_revenue: f64,
    pub total_revenue_cents: i64,
    /// Tracked conversion events counted in `total_revenue`.
    pub event_count: i64,
    /// True when the ledger's net for the window equals the tracked total: the money claimed has
    /// been paid. The amounts themselves are in `verified_revenue` and `claimed_revenue`.
    pub verified: bool,
    pub currency: String,
    pub claimed_revenue: f64,
    pub claimed_revenue_cents: i64,
    /// Net ledger postings of the window (payments − refunds − chargebacks ± adjustments).
    pub verified_revenue: f64,
    pub verified_revenue_cents: i64,
    /// When the newest event or posting counted here was received (null when none).
    pub last_updated: Option<DateTime<Utc>>,
    /// Seconds since `last_updated`; 0 when nothing is counted yet.
    pub data_freshness_seconds: f64,
    pub window: Window,
    /// Every currency with activity in the window.
    pub currencies: Vec<CurrencyFigures>,
}

/// Realtime revenue (scope `read`): tracked conversions within a second of their commit, ledger
/// postings likewise. Answers `304 Not Modified` to a matching `If-None-Match`.
#[utoipa::path(get, path = "/api/attribution/revenue/realtime", tag = "revenue",
    security(("api_key" = ["read"])), params(RealtimeQuery), responses(
        (status = 200, body = Realtime, headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "unchanged since the ETag sent in If-None-Match"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn realtime(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(q): Query<RealtimeQuery>,
) -> Result<Response, ApiError> {
    realtime_response(&state, &caller, &headers, (raw.as_deref(), &q)).await
}

/// The same as `/api/attribution/revenue/realtime`.
#[utoipa::path(get, path = "/v1/revenue/realtime", tag = "revenue",
    security(("api_key" = ["read"])), params(RealtimeQuery), responses(
        (status = 200, body = Realtime, headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "unchanged since the ETag sent in If-None-Match"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn realtime_v1(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(q): Query<RealtimeQuery>,
) -> Result<Response, ApiError> {
    realtime_response(&state, &caller, &headers, (raw.as_deref(), &q)).await
}

fn currency_param(raw: Option<&str>, default: &str) -> Result<CurrencyCode, ApiError> {
    let raw = raw.unwrap_or(default);
    CurrencyCode::parse(raw).map_err(|e| {
        ApiError::unprocessable(
            "unknown currency",
            vec![FieldError {
                pointer: "/currency".into(),
                code: "invalid_currency".into(),
                message: e.to_string(),
            }],
        )
    })
}

/// The figures behind a realtime answer, which [`crate::answers::Answers`] keeps; freshness
/// and the body are made per request.
struct RealtimeFigures {
    totals: Vec<LiveTotal>,
    window: Window,
    currency: CurrencyCode,
}

async fn realtime_response(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    (raw, q): (Option<&str>, &RealtimeQuery),
) -> Result<Response, ApiError> {
    let at = (caller.tenant_id, "realtime");
    let figures = state
        .answers
        .get(&state.db, at, raw, realtime_figures(&state.db, caller, q))
        .await?;
    let RealtimeFigures {
        totals,
        window,
        currency,
    } = &*figures;
    let (window, currency) = (*window, *currency);
    let figures = currency_figures(totals);
    let last_updated = totals.iter().map(|t| t.last_at).max();
    let mine = figures.iter().find(|f| f.currency == currency.as_str());
    let claimed = mine.map_or(0, |f| f.claimed_cents);
    let verified = mine.map_or(0, |f| f.verified_cents);
    // The ETag covers what the figures are, not when they were read (freshness changes every
    // request), so an unchanged total revalidates with a 304.
    let etag = {
        let mut h = Sha256::new();
        h.update(
            serde_json::to_vec(&(&figures, last_updated, window, currency.as_str()))
                .unwrap_or_default(),
        );
        format!("\"{}\"", hex_prefix(&h.finalize()))
    };
    let cache = [
        (
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(|_| ApiError::internal())?,
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        ),
    ];
    if if_none_match(headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let freshness = last_updated.map_or(0.0, |t| {
        (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
    });
    let body = Realtime {
        tenant_id: caller.tenant_id.0,
        total_revenue: major_units(&currency, claimed),
        total_revenue_cents: claimed,
        event_count: mine.map_or(0, |f| f.conversions),
        verified: claimed == verified,
        currency: currency.as_str().to_string(),
        claimed_revenue: major_units(&currency, claimed),
        claimed_revenue_cents: claimed,
        verified_revenue: major_units(&currency, verified),
        verified_revenue_cents: verified,
        last_updated,
        data_freshness_seconds: freshness,
        window,
        currencies: figures,
    };
    Ok((cache, axum::Json(body)).into_response())
}

async fn realtime_figures(
    db: &Database,
    caller: &Caller,
    q: &RealtimeQuery,
) -> Result<RealtimeFigures, ApiError> {
    let mut tx = db.tenant_tx(caller.tenant_id).await?;
    let settings = rollups::reader_settings(&mut tx).await?;
    let currency = currency_param(q.currency.as_deref(), &settings.currency)?;
    let window = match range::resolve_optional(
        &mut tx,
        q.from.as_deref(),
        q.to.as_deref(),
        &settings.time_zone,
        Granularity::QuarterHour,
    )
    .await?
    {
        Some(window) => window,
        None => range::today(&mut tx, &settings.time_zone).await?,
    };
    let totals = live::totals(&mut tx, caller.tenant_id, (window.from, window.to)).await?;
    tx.commit().await?;
    Ok(RealtimeFigures {
        totals,
        window,
        currency,
    })
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 9110 `If-None-Match`: a list of entity tags (weak or strong, compared weakly) or `*`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

fn currency_figures(totals: &[LiveTotal]) -> Vec<CurrencyFigures> {
    let mut out: Vec<CurrencyFigures> = Vec::new();
    for t in totals {
        let idx = match out.iter().position(|f| f.currency == t.currency) {
            Some(i) => i,
            None => {
                out.push(CurrencyFigures {
                    currency: t.currency.clone(),
                    conversions: 0,
                    claimed_cents: 0,
                    postings: 0,
                    verified_cents: 0,
                });
                out.len() - 1
            }
        };
        let f = &mut out[idx];
        if t.stream == "tracked" {
            f.conversions = t.events;
            f.claimed_cents = t.cents;
        } else {
            f.postings = t.events;
            f.verified_cents = t.cents;
        }
    }
    out.sort_by(|a, b| a.currency.cmp(&b.currency));
    out
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// Start (inclusive): an RFC 3339 instant or a date (local midnight), on the interval.
    #[param(schema_with = crate::range::bound_schema, required = true)]
    pub from: String,
    /// End (exclusive), like `from`.
    #[param(schema_with = crate::range::bound_schema, required = true)]
    pub to: String,
    /// `hour` or `day` (default), in the tenant's time zone.
    #[param(schema_with = intervals)]
    pub interval: Option<String>,
    /// One of the eight models; default: the tenant's `default_model`.
    #[param(schema_with = tally_store::doc::models)]
    pub model: Option<String>,
    /// One channel code; default: every channel.
    pub channel: Option<String>,
    /// ISO 4217; default: the tenant's currency.
    #[param(schema_with = tally_store::doc::currencies)]
    pub currency: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Series {
    pub window: Window,
    pub interval: String,
    pub time_zone: String,
    pub model: String,
    pub channel: Option<String>,
    pub currency: String,
    /// Every bucket of the window, empty ones included.
    pub buckets: Vec<SeriesPoint>,
}

/// The most buckets one series may have (a year of hours, 27 years of days).
const MAX_BUCKETS: i64 = 10_000;

/// Claimed vs verified revenue per hour or day of the tenant's time zone (scope `read`).
#[utoipa::path(get, path = "/v1/revenue/timeseries", tag = "revenue",
    security(("api_key" = ["read"])), params(SeriesParams), responses(
        (status = 200, body = Series),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn timeseries(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    RawQuery(raw): RawQuery,
    Query(q): Query<SeriesParams>,
) -> Result<Response, ApiError> {
    let at = (caller.tenant_id, "timeseries");
    let series = series(&state.db, &caller, q);
    state
        .answers
        .json(&state.db, at, raw.as_deref(), series)
        .await
}

async fn series(db: &Database, caller: &Caller, q: SeriesParams) -> Result<Series, ApiError> {
    let daily = match q.interval.as_deref() {
        None | Some("day") => true,
        Some("hour") => false,
        Some(other) => {
            return Err(invalid_query_value(
                "interval",
                format!("`interval` must be `hour` or `day`, not {other:?}"),
            ));
        }
    };
    let model = parse_model(q.model.as_deref())?;
    let mut tx = db.tenant_tx(caller.tenant_id).await?;
    let settings = rollups::reader_settings(&mut tx).await?;
    let currency = currency_param(q.currency.as_deref(), &settings.currency)?;
    let granularity = if daily {
        Granularity::LocalDay
    } else {
        Granularity::LocalHour
    };
    let window = range::resolve(&mut tx, &q.from, &q.to, &settings.time_zone, granularity).await?;
    let hours = (window.to - window.from).num_hours();
    if (if daily { hours / 24 } else { hours }) > MAX_BUCKETS {
        return Err(ApiError::unprocessable(
            "the series is too long",
            vec![FieldError {
                pointer: "/to".into(),
                code: "too_many_buckets".into(),
                message: format!(
                    "a series has at most {MAX_BUCKETS} buckets; narrow the window or use interval=day"
                ),
            }],
        ));
    }
    let model = model.map_or(settings.default_model.clone(), |m| m.code().to_string());
    let buckets = rollups::series(
        &mut tx,
        caller.tenant_id,
        MODEL_VERSION,
        &SeriesQuery {
            range: (window.from, window.to),
            daily,
            time_zone: &settings.time_zone,
            model: &model,
            currency: currency.as_str(),
            channel: q.channel.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Series {
        window,
        interval: if daily { "day" } else { "hour" }.into(),
        time_zone: settings.time_zone,
        model,
        channel: q.channel,
        currency: currency.as_str().to_string(),
        buckets,
    })
}

fn intervals() -> utoipa::openapi::schema::Object {
    tally_store::doc::one_of(["hour", "day"])
}

fn formats() -> utoipa::openapi::schema::Object {
    tally_store::doc::one_of(["csv", "json"])
}

/// A `model` query parameter: unknown names are a 400 that lists the eight.
pub fn parse_model(raw: Option<&str>) -> Result<Option<Model>, ApiError> {
    raw.map(|m| {
        m.parse::<Model>()
            .map_err(|e| invalid_query_value("model", e.to_string()))
    })
    .transpose()
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` or `json`; default: from `Accept` (`text/csv` → csv), else json.
    #[param(schema_with = formats)]
    pub format: Option<String>,
    /// Start (inclusive): a date or an instant at local midnight.
    #[param(schema_with = crate::range::bound_schema, required = true)]
    pub from: String,
    /// End (exclusive), like `from`.
    #[param(schema_with = crate::range::bound_schema, required = true)]
    pub to: String,
}

/// The longest export, in days.
const MAX_EXPORT_DAYS: i64 = 3_660;

/// Revenue per local day, channel, model and currency: conversions, claimed and verified
/// (scope `read`). Streamed a day at a time, so a long range never sits in memory.
#[utoipa::path(get, path = "/v1/export/revenue", tag = "revenue",
    security(("api_key" = ["read"])), params(ExportParams), responses(
        (status = 200, description = "CSV (`date,channel,model,currency,conversions,claimed,verified`, amounts in major units) or JSON (`{\"rows\": [...]}`)",
            content(("text/csv"), ("application/json"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn export(
    State(state): State<AppState>,
    caller: Authorized<scope::Read>,
    headers: HeaderMap,
    Query(q): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(invalid_query_value(
                "format",
                format!("`format` must be `csv` or `json`, not {other:?}"),
            ));
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv")),
    };
    let mut tx = state.db.tenant_tx(caller.tenant_id).await?;
    let settings = rollups::reader_settings(&mut tx).await?;
    let window = range::resolve(
        &mut tx,
        &q.from,
        &q.to,
        &settings.time_zone,
        Granularity::LocalDay,
    )
    .await?;
    if (window.to - window.from).num_days() > MAX_EXPORT_DAYS {
        return Err(ApiError::unprocessable(
            "the export is too long",
            vec![FieldError {
                pointer: "/to".into(),
                code: "too_long".into(),
                message: format!("an export covers at most {MAX_EXPORT_DAYS} days"),
            }],
        ));
    }
    let days: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT d::date::timestamp AT TIME ZONE $3, (d::date + 1)::timestamp AT TIME ZONE $3
         FROM generate_series(($1::timestamptz AT TIME ZONE $3)::date,
                              (($2::timestamptz - interval '1 microsecond') AT TIME ZONE $3)::date,
                              interval '1 day') AS d",
    )
    .bind(window.from)
    .bind(window.to)
    .bind(&settings.time_zone)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;

    let exporter = Exporter {
        db: state.db.clone(),
        tenant: caller.tenant_id,
        tz: settings.time_zone,
        csv,
        emitted: Arc::new(AtomicBool::new(false)),
    };
    let head = if csv {
        "date,channel,model,currency,conversions,claimed,verified\n".to_string()
    } else {
        format!(
            "{{\"from\":{},\"to\":{},\"rows\":[",
            serde_json::to_string(&window.from).unwrap_or_default(),
            serde_json::to_string(&window.to).unwrap_or_default()
        )
    };
    let tail = if csv { String::new() } else { "]}".to_string() };
    let body = futures_util::stream::once(async move { Ok::<_, ApiError>(head) })
        .chain(futures_util::stream::iter(days).then(move |day| {
            let exporter = exporter.clone();
            async move { exporter.day(day).await }
        }))
        .chain(futures_util::stream::once(async move { Ok(tail) }))
        .map(|chunk| {
            chunk.map(bytes::Bytes::from).map_err(|e| {
                // Headers are sent: the client sees a cut body; the log has why.
                std::io::Error::other(e.parts().detail.clone())
            })
        });
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    let disposition = format!(
        "attachment; filename=\"tally-revenue-{}-{}.{}\"",
        window.from.format("%Y%m%d"),
        window.to.format("%Y%m%d"),
        if csv { "csv" } else { "json" }
    );
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(|_| ApiError::internal())?,
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Writes the export one local day at a time, each in a short transaction of its own.
#[derive(Clone)]
struct Exporter {
    db: Database,
    tenant: TenantId,
    tz: String,
    csv: bool,
    /// Whether a JSON row was written yet (days are written one after another).
    emitted: Arc<AtomicBool>,
}

impl Exporter {
    async fn day(&self, day: (DateTime<Utc>, DateTime<Utc>)) -> Result<String, ApiError> {
        let mut tx = self.db.tenant_tx(self.tenant).await?;
        let rows = rollups::export_day(&mut tx, self.tenant, MODEL_VERSION, day, &self.tz).await?;
        tx.commit().await?;
        if self.csv {
            let mut w = csv::Writer::from_writer(Vec::new());
            for r in &rows {
                let currency =
                    CurrencyCode::parse(&r.currency).map_err(|_| ApiError::internal())?;
                w.write_record([
                    r.date.to_string(),
                    r.channel.clone(),
                    r.model.clone(),
                    r.currency.clone(),
                    format!("{:.4}", r.conversions),
                    currency.format_amount(r.claimed_cents),
                    currency.format_amount(r.verified_cents),
                ])
                .map_err(|_| ApiError::internal())?;
            }
            let bytes = w.into_inner().map_err(|_| ApiError::internal())?;
            return String::from_utf8(bytes).map_err(|_| ApiError::internal());
        }
        // JSON rows carry exact minor units; a comma goes before every row but the very first.
        let mut out = String::new();
        for r in &rows {
            if self.emitted.swap(true, Ordering::Relaxed) {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(r).unwrap_or_default());
        }
        Ok(out)
    }
}
