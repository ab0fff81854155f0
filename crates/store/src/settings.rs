//! A tenant's settings: reading them, and changing them by JSON merge patch (RFC 7396) together
//! with the attribution recomputes the change implies, in one transaction.
//!
//! Validation lives here rather than in the HTTP layer because the tenant API, the operator API
//! and the CLI (`tally tenant create`, `tally tenant settings`) must refuse exactly the same
//! values. The time zone is checked against PostgreSQL's own list (`pg_timezone_names`) instead
//! of a Rust time zone crate, because PostgreSQL is what turns instants into tenant days
//! (`AT TIME ZONE` in ingestion's scheduling and here): a name that a newer tz database in a crate
//! knew but the server's did not would make every later ingest transaction of the tenant fail.

use crate::db::Database;
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::recompute::{self, RecomputeJob};
use crate::tenants::{NewApiKey, Tenant};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use std::fmt;
use std::ops::RangeInclusive;
use tally_attribution::Model;
use tally_core::event::{FieldError, codes};
use tally_core::money::CurrencyCode;

/// Up to a year back: the scheduling of backfilled touches (migration 0014) and the recompute's
/// journey loading both read `lookback` days, and the column's CHECK allows no more.
const LOOKBACK_DAYS: RangeInclusive<f64> = 1.0..=365.0;
/// Below an hour the newest touch outweighs one a day older by more than 2^24, so the model
/// would be last touch under another name; above a year (the longest lookback) it is linear.
const HALF_LIFE_HOURS: RangeInclusive<f64> = 1.0..=8760.0;
/// The Markov model's exact solve is cubic in `channels^order` states (`tally_attribution`).
const MARKOV_ORDER: RangeInclusive<f64> = 1.0..=3.0;
/// Events per minute and burst: at least one, and far below `integer`'s limit.
const RATE_LIMIT: RangeInclusive<f64> = 1.0..=1_000_000_000.0;
/// Up to a year, as the column's CHECK (migration 0040).
const GRACE_HOURS: RangeInclusive<f64> = 0.0..=8760.0;
/// A shopper of one id links nothing; past 10,000 ids one journey is no longer a person's, and
/// each merge rewrites every member row (migration 0100's CHECK).
const COMPONENT_IDS: RangeInclusive<f64> = 2.0..=10_000.0;
/// The areas of IANA's canonical `Area/Location` names. Abbreviations and legacy aliases (`CET`,
/// `EST`, `EST5EDT`, `US/Eastern`, `Etc/GMT+1`) are in PostgreSQL's list too but refused: they
/// name no place, so their offset and daylight-saving rules need not be the shop's (`EST` is
/// UTC-5 all summer; `Etc/GMT+1` is UTC-1), and a tenant's day boundaries would silently be off.
const AREAS: [&str; 10] = [
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
];
/// The longest IANA name is 32 characters; the bound only keeps junk away from the database.
const MAX_TIME_ZONE_LEN: usize = 64;

/// A tenant's settings as stored.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TenantSettings {
    /// ISO 4217 code given to conversions sent without `currency`.
    pub currency: String,
    /// IANA time zone. The tenant's days (recompute windows, daily reports) start at its
    /// midnight.
    pub time_zone: String,
    /// How far back a touch can be part of a conversion's journey.
    pub lookback_days: i32,
    /// Half-life of the `time_decay` model.
    pub time_decay_half_life_hours: f64,
    /// Channels per state of the `markov` model (1 to 3).
    pub markov_order: i32,
    /// The model shown when a report does not name one.
    pub default_model: String,
    /// Events per minute that ingestion accepts (GCRA).
    pub rate_limit_per_minute: i32,
    /// Events that may arrive at once above the steady rate.
    pub rate_limit_burst: i32,
    /// How long a tracked order waits for its payment before reconciliation calls it unpaid.
    pub reconciliation_grace_hours: i32,
    /// The web origins (`scheme://host[:port]`) whose pages may send events with a publishable
    /// key; empty refuses publishable keys everywhere.
    pub allowed_origins: Vec<String>,
    /// Whether journeys follow the shopper across sessions through linked ids; off, a journey
    /// stays inside one session and events record no links.
    pub identity_cross_session: bool,
    /// The most ids one shopper may have; a link that would exceed it is refused and reported.
    pub identity_max_component_ids: i32,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "currency::text AS currency, time_zone, lookback_days, \
    time_decay_half_life_hours, markov_order, default_model, rate_limit_per_minute, \
    rate_limit_burst, reconciliation_grace_hours, allowed_origins, identity_cross_session, \
    identity_max_component_ids, updated_at";

impl TenantSettings {
    /// Whether stored attributions computed under `self` may differ under `other`.
    fn attribution_differs(&self, other: &TenantSettings) -> bool {
        self.lookback_days != other.lookback_days
            || self.time_decay_half_life_hours != other.time_decay_half_life_hours
            || self.markov_order != other.markov_order
            || self.time_zone != other.time_zone
            || self.identity_cross_session != other.identity_cross_session
    }
}

/// A settings change (JSON merge patch): members present are changed, absent ones kept, unknown
/// ones refused; `null` is refused too, as no setting can be unset.
#[derive(Debug, Default, Clone, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// ISO 4217, e.g. `EUR` (any case; stored upper case).
    #[schema(example = "EUR", schema_with = crate::doc::currencies)]
    pub currency: Option<String>,
    /// IANA `Area/Location` (e.g. `Europe/Berlin`) or `UTC`; abbreviations like `CET` and
    /// aliases like `US/Eastern` or `Etc/GMT+1` are refused.
    #[schema(example = "Europe/Berlin", nullable = false)]
    pub time_zone: Option<String>,
    #[schema(nullable = false, minimum = 1, maximum = 365)]
    pub lookback_days: Option<i32>,
    #[schema(nullable = false, minimum = 1, maximum = 8760)]
    pub time_decay_half_life_hours: Option<f64>,
    #[schema(nullable = false, minimum = 1, maximum = 3)]
    pub markov_order: Option<i32>,
    /// One of `first_touch`, `last_touch`, `last_non_direct`, `linear`, `position_based`,
    /// `time_decay`, `markov`, `shapley`.
    #[schema(schema_with = crate::doc::models)]
    pub default_model: Option<String>,
    #[schema(nullable = false, minimum = 1, maximum = 1000000000)]
    pub rate_limit_per_minute: Option<i32>,
    #[schema(nullable = false, minimum = 1, maximum = 1000000000)]
    pub rate_limit_burst: Option<i32>,
    #[schema(nullable = false, minimum = 0, maximum = 8760)]
    pub reconciliation_grace_hours: Option<i32>,
    /// Exact origins, e.g. `https://shop.example` or `http://localhost:3000`: scheme, host and
    /// a non-default port only (no path, no trailing slash, no wildcard); at most 100.
    #[schema(max_items = 100, example = json!(["https://shop.example"]))]
    pub allowed_origins: Option<Vec<String>>,
    pub identity_cross_session: Option<bool>,
    #[schema(minimum = 2, maximum = 10000)]
    pub identity_max_component_ids: Option<i32>,
}

/// A member's problem: code and message, located by the caller.
type Refusal = (&'static str, String);

impl SettingsPatch {
    /// Reads every member of `doc`, keeping the valid ones and reporting each invalid one with
    /// its pointer, so one answer lists everything to fix. The time zone is only checked for
    /// shape here; [`validate`] asks PostgreSQL whether it exists.
    fn parse(doc: &Value) -> (Self, Vec<FieldError>) {
        let mut patch = Self::default();
        let mut errors = Vec::new();
        let Some(members) = doc.as_object() else {
            errors.push(FieldError {
                pointer: String::new(),
                code: codes::INVALID_TYPE,
                message: "a settings change must be a JSON object of the members to change".into(),
            });
            return (patch, errors);
        };
        for (name, value) in members {
            let checked = match name.as_str() {
                "currency" => currency(value).map(|v| patch.currency = Some(v)),
                "time_zone" => time_zone_shape(value).map(|v| patch.time_zone = Some(v)),
                "lookback_days" => {
                    integer(value, LOOKBACK_DAYS).map(|v| patch.lookback_days = Some(v))
                }
                "time_decay_half_life_hours" => number(value, HALF_LIFE_HOURS)
                    .map(|v| patch.time_decay_half_life_hours = Some(v)),
                "markov_order" => {
                    integer(value, MARKOV_ORDER).map(|v| patch.markov_order = Some(v))
                }
                "default_model" => model(value).map(|v| patch.default_model = Some(v)),
                "rate_limit_per_minute" => {
                    integer(value, RATE_LIMIT).map(|v| patch.rate_limit_per_minute = Some(v))
                }
                "rate_limit_burst" => {
                    integer(value, RATE_LIMIT).map(|v| patch.rate_limit_burst = Some(v))
                }
                "reconciliation_grace_hours" => {
                    integer(value, GRACE_HOURS).map(|v| patch.reconciliation_grace_hours = Some(v))
                }
                "allowed_origins" => match origins(value) {
                    Ok(v) => {
                        patch.allowed_origins = Some(v);
                        Ok(())
                    }
                    Err(mut refused) => {
                        errors.append(&mut refused);
                        Ok(())
                    }
                },
                "identity_cross_session" => {
                    boolean(value).map(|v| patch.identity_cross_session = Some(v))
                }
                "identity_max_component_ids" => integer(value, COMPONENT_IDS)
                    .map(|v| patch.identity_max_component_ids = Some(v)),
                _ => Err((
                    codes::UNKNOWN_FIELD,
                    "not a setting; see GET /v1/settings for the members".into(),
                )),
            };
            if let Err((code, message)) = checked {
                errors.push(FieldError {
                    pointer: pointer(name),
                    code,
                    message,
                });
            }
        }
        (patch, errors)
    }
}

/// RFC 6901: `~` and `/` in a member name are escaped.
fn pointer(name: &str) -> String {
    format!("/{}", name.replace('~', "~0").replace('/', "~1"))
}

/// Merge patch's `null` means "remove", which no setting allows: say so rather than "wrong type".
fn present(value: &Value) -> Result<&Value, Refusal> {
    if value.is_null() {
        Err((
            codes::REQUIRED,
            "cannot be null: settings have no unset state; send a value or leave the member out"
                .into(),
        ))
    } else {
        Ok(value)
    }
}

fn text(value: &Value) -> Result<&str, Refusal> {
    present(value)?
        .as_str()
        .ok_or_else(|| (codes::INVALID_TYPE, "must be a string".into()))
}

fn currency(value: &Value) -> Result<String, Refusal> {
    let code = CurrencyCode::parse(text(value)?).map_err(|_| {
        (
            codes::INVALID_VALUE,
            "must be an ISO 4217 currency code with a minor unit, e.g. EUR".into(),
        )
    })?;
    Ok(code.as_str().to_string())
}

fn time_zone_shape(value: &Value) -> Result<String, Refusal> {
    let name = text(value)?;
    let well_formed = name.len() <= MAX_TIME_ZONE_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b));
    let located = name
        .split_once('/')
        .is_some_and(|(area, _)| AREAS.iter().any(|a| a.eq_ignore_ascii_case(area)));
    if well_formed && (located || name.eq_ignore_ascii_case("UTC")) {
        Ok(name.to_string())
    } else {
        Err(unknown_time_zone())
    }
}

fn unknown_time_zone() -> Refusal {
    (
        codes::INVALID_VALUE,
        "must be an IANA time zone named by its place, e.g. Europe/Berlin or America/New_York, \
         or UTC; abbreviations (CET, EST) and aliases (US/Eastern, Etc/GMT+1) are refused"
            .into(),
    )
}

/// A JSON number in `range`, integral or not.
fn number(value: &Value, range: RangeInclusive<f64>) -> Result<f64, Refusal> {
    let n = present(value)?
        .as_f64()
        .ok_or_else(|| (codes::INVALID_TYPE, "must be a number".into()))?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err((
            codes::OUT_OF_RANGE,
            format!("must be from {} to {}", range.start(), range.end()),
        ))
    }
}

/// A whole JSON number in `range` (`30` or `30.0`); the range fits `i32`. Numbers too big for
/// 64-bit integers arrive as floats and are refused as out of range, not as the wrong type.
fn integer(value: &Value, range: RangeInclusive<f64>) -> Result<i32, Refusal> {
    let whole = || {
        (
            codes::INVALID_TYPE,
            format!(
                "must be a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        )
    };
    let n = present(value)?.as_f64().ok_or_else(whole)?;
    if n.fract() != 0.0 {
        return Err(whole());
    }
    // In range, so the conversion is exact.
    number(value, range.clone()).map(|n| n as i32)
}

/// The most origins a tenant may list (as the column's CHECK).
const MAX_ORIGINS: usize = 100;

/// A list of exact web origins, each element refused with its own pointer. An origin is what a
/// browser sends in `Origin`, so only that exact spelling can ever match: the `url` crate's
/// serialisation of the parsed origin must give back the input (`https://Shop.example/`,
/// `https://shop.example:443` and `https://shop.example/cart` are refused with the spelling
/// that would match).
fn origins(value: &Value) -> Result<Vec<String>, Vec<FieldError>> {
    let field = |pointer: String, (code, message): Refusal| FieldError {
        pointer,
        code,
        message,
    };
    let items = present(value)
        .and_then(|v| {
            v.as_array()
                .ok_or_else(|| (codes::INVALID_TYPE, "must be an array of origins".into()))
        })
        .map_err(|refusal| vec![field("/allowed_origins".into(), refusal)])?;
    if items.len() > MAX_ORIGINS {
        return Err(vec![field(
            "/allowed_origins".into(),
            (codes::TOO_LARGE, format!("at most {MAX_ORIGINS} origins")),
        )]);
    }
    let mut errors = Vec::new();
    let mut list: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match text(item).and_then(origin) {
            Ok(o) if !list.contains(&o) => list.push(o),
            Ok(_) => {}
            Err(refusal) => errors.push(field(format!("/allowed_origins/{i}"), refusal)),
        }
    }
    if errors.is_empty() {
        Ok(list)
    } else {
        Err(errors)
    }
}

fn origin(raw: &str) -> Result<String, Refusal> {
    let usage = "must be an origin: scheme://host[:port], e.g. https://shop.example";
    let url = url::Url::parse(raw).map_err(|_| (codes::INVALID_FORMAT, usage.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err((
            codes::INVALID_VALUE,
            format!("{usage} (http or https only)"),
        ));
    }
    let exact = url.origin().ascii_serialization();
    if exact == raw {
        Ok(exact)
    } else {
        Err((
            codes::INVALID_VALUE,
            format!(
                "{usage}, spelled as browsers send it: {exact:?} (no path or trailing slash, \
                 lower case, default port left out)"
            ),
        ))
    }
}

fn boolean(value: &Value) -> Result<bool, Refusal> {
    present(value)?
        .as_bool()
        .ok_or_else(|| (codes::INVALID_TYPE, "must be true or false".into()))
}

fn model(value: &Value) -> Result<String, Refusal> {
    let code = text(value)?;
    code.parse::<Model>()
        .map(|m| m.code().to_string())
        .map_err(|_| {
            let all: Vec<&str> = Model::ALL.iter().map(|m| m.code()).collect();
            (
                codes::INVALID_VALUE,
                format!("must be one of {}", all.join(", ")),
            )
        })
}

/// Why a settings change was not made.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Every invalid member, each with its pointer; nothing was changed.
    #[error("invalid settings: {}", describe(.0))]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SettingsError {
    fn from(err: sqlx::Error) -> Self {
        SettingsError::Store(err.into())
    }
}

fn describe(errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.pointer, e.message))
        .collect();
    parts.join("; ")
}

/// The recomputes a change scheduled: one window per tenant-local day (in the new time zone)
/// that holds a conversion. A window that already had a pending run is counted but got no
/// second job.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScheduledRecompute {
    pub windows: usize,
    /// Start of the first window, when there is one.
    pub from: Option<DateTime<Utc>>,
    /// End of the last window.
    pub to: Option<DateTime<Utc>>,
}

impl From<&[RecomputeJob]> for ScheduledRecompute {
    fn from(jobs: &[RecomputeJob]) -> Self {
        Self {
            windows: jobs.len(),
            from: jobs.first().map(|j| j.window_start),
            to: jobs.last().map(|j| j.window_end),
        }
    }
}

/// The settings after a change, and what it scheduled.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SettingsChange {
    pub settings: TenantSettings,
    pub recompute: ScheduledRecompute,
}

impl fmt::Display for TenantSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: [(&str, String); 13] = [
            ("currency", self.currency.clone()),
            ("time_zone", self.time_zone.clone()),
            ("lookback_days", self.lookback_days.to_string()),
            (
                "time_decay_half_life_hours",
                self.time_decay_half_life_hours.to_string(),
            ),
            ("markov_order", self.markov_order.to_string()),
            ("default_model", self.default_model.clone()),
            (
                "rate_limit_per_minute",
                self.rate_limit_per_minute.to_string(),
            ),
            ("rate_limit_burst", self.rate_limit_burst.to_string()),
            (
                "reconciliation_grace_hours",
                self.reconciliation_grace_hours.to_string(),
            ),
            ("allowed_origins", self.allowed_origins.join(" ")),
            (
                "identity_cross_session",
                self.identity_cross_session.to_string(),
            ),
            (
                "identity_max_component_ids",
                self.identity_max_component_ids.to_string(),
            ),
            ("updated_at", self.updated_at.to_rfc3339()),
        ];
        for (name, value) in rows {
            writeln!(f, "{name:<28}{value}")?;
        }
        Ok(())
    }
}

impl Database {
    /// The tenant's settings; `NotFound` when there is no such tenant.
    pub async fn settings(&self, tenant: TenantId) -> Result<TenantSettings, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let settings = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tenant_settings"
        )))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(settings)
    }

    /// Applies a merge patch to the tenant's settings and, when the change alters attribution,
    /// schedules the recompute of every day that holds a conversion, all in one transaction.
    pub async fn change_settings(
        &self,
        tenant: TenantId,
        doc: &Value,
        correlation_id: &str,
    ) -> Result<SettingsChange, SettingsError> {
        let (patch, errors) = SettingsPatch::parse(doc);
        let mut tx = self.tenant_tx(tenant).await?;
        let patch = validate(&mut tx, patch, errors).await?;
        let change = apply(&mut tx, tenant, &patch, correlation_id).await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Creates a tenant (see [`Database::create_tenant`]) whose settings start from `doc`, a
    /// merge patch over the defaults, validated like [`Database::change_settings`].
    pub async fn create_tenant_with_settings(
        &self,
        name: &str,
        doc: &Value,
    ) -> Result<(Tenant, NewApiKey, TenantSettings), SettingsError> {
        let (patch, errors) = SettingsPatch::parse(doc);
        let mut tx = self.app_pool().begin().await?;
        let (tenant, key) = crate::tenants::insert_tenant(&mut tx, name).await?;
        let patch = validate(&mut tx, patch, errors).await?;
        // A new tenant has no conversions, so there is nothing to recompute.
        let settings = write(&mut tx, tenant.tenant_id, &patch).await?;
        tx.commit().await?;
        Ok((tenant, key, settings))
    }
}

/// Completes the validation with the one check that needs the database, and stores the time
/// zone as PostgreSQL spells it (`europe/berlin` becomes `Europe/Berlin`).
async fn validate(
    conn: &mut PgConnection,
    mut patch: SettingsPatch,
    mut errors: Vec<FieldError>,
) -> Result<SettingsPatch, SettingsError> {
    if let Some(asked) = patch.time_zone.take() {
        let known: Option<String> =
            sqlx::query_scalar("SELECT name FROM pg_timezone_names WHERE lower(name) = lower($1)")
                .bind(&asked)
                .fetch_optional(&mut *conn)
                .await?;
        match known {
            Some(name) => patch.time_zone = Some(name),
            None => {
                let (code, message) = unknown_time_zone();
                errors.push(FieldError {
                    pointer: "/time_zone".into(),
                    code,
                    message,
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(patch)
    } else {
        Err(SettingsError::Invalid(errors))
    }
}

async fn apply(
    conn: &mut PgConnection,
    tenant: TenantId,
    patch: &SettingsPatch,
    correlation_id: &str,
) -> Result<SettingsChange, StoreError> {
    // Taken first, as an ingest transaction does: a recompute that claims one of the windows'
    // pending jobs waits in its ingest barrier for this commit before it reads the settings, so
    // no window keeps a result computed under the old ones.
    recompute::hold_ingest_lock(conn, tenant).await?;
    let before: TenantSettings = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenant_settings WHERE tenant_id = $1 FOR UPDATE"
    )))
    .bind(tenant)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    let after = write(conn, tenant, patch).await?;
    let jobs = if before.attribution_differs(&after) {
        recompute::schedule_conversion_days(conn, tenant, &after.time_zone, correlation_id).await?
    } else {
        Vec::new()
    };
    Ok(SettingsChange {
        recompute: ScheduledRecompute::from(jobs.as_slice()),
        settings: after,
    })
}

/// Stores the patch's members, keeping the others.
async fn write(
    conn: &mut PgConnection,
    tenant: TenantId,
    patch: &SettingsPatch,
) -> Result<TenantSettings, StoreError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tenant_settings SET
             currency = COALESCE($1, currency),
             time_zone = COALESCE($2, time_zone),
             lookback_days = COALESCE($3, lookback_days),
             time_decay_half_life_hours = COALESCE($4, time_decay_half_life_hours),
             markov_order = COALESCE($5, markov_order),
             default_model = COALESCE($6, default_model),
             rate_limit_per_minute = COALESCE($7, rate_limit_per_minute),
             rate_limit_burst = COALESCE($8, rate_limit_burst),
             reconciliation_grace_hours = COALESCE($9, reconciliation_grace_hours),
             identity_cross_session = COALESCE($10, identity_cross_session),
             identity_max_component_ids = COALESCE($11, identity_max_component_ids),
             allowed_origins = COALESCE($13, allowed_origins),
             updated_at = now()
         WHERE tenant_id = $12
         RETURNING {COLUMNS}"
    )))
    .bind(&patch.currency)
    .bind(&patch.time_zone)
    .bind(patch.lookback_days)
    .bind(patch.time_decay_half_life_hours)
    .bind(patch.markov_order)
    .bind(&patch.default_model)
    .bind(patch.rate_limit_per_minute)
    .bind(patch.rate_limit_burst)
    .bind(patch.reconciliation_grace_hours)
    .bind(patch.identity_cross_session)
    .bind(patch.identity_max_component_ids)
    .bind(tenant)
    .bind(&patch.allowed_origins)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(doc: Value) -> Vec<(String, &'static str)> {
        let (_, errors) = SettingsPatch::parse(&doc);
        errors.into_iter().map(|e| (e.pointer, e.code)).collect()
    }

    #[test]
    fn valid_members_are_normalised() {
        let (patch, errors) = SettingsPatch::parse(&json!({
            "currency": "eur", "time_zone": "europe/berlin", "lookback_days": 14.0,
            "time_decay_half_life_hours": 36.5, "markov_order": 3, "default_model": "shapley",
            "rate_limit_per_minute": 1000, "rate_limit_burst": 1, "reconciliation_grace_hours": 0
        }));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(patch.currency.as_deref(), Some("EUR"));
        assert_eq!(patch.time_zone.as_deref(), Some("europe/berlin"));
        assert_eq!(patch.lookback_days, Some(14));
        assert_eq!(patch.time_decay_half_life_hours, Some(36.5));
        assert_eq!(patch.default_model.as_deref(), Some("shapley"));
        assert_eq!(patch.reconciliation_grace_hours, Some(0));
    }

    #[test]
    fn every_invalid_member_is_reported_with_its_pointer() {
        let errors = refused(json!({
            "currency": "EURO", "time_zone": "CET", "lookback_days": 366,
            "time_decay_half_life_hours": 0.5, "markov_order": 1.5, "default_model": "best",
            "rate_limit_per_minute": 1e30, "rate_limit_burst": "10",
            "reconciliation_grace_hours": -1, "identity_cross_session": "no",
            "identity_max_component_ids": 1, "a/b~c": null
        }));
        assert_eq!(
            errors,
            [
                ("/currency".to_string(), codes::INVALID_VALUE),
                ("/time_zone".to_string(), codes::INVALID_VALUE),
                ("/lookback_days".to_string(), codes::OUT_OF_RANGE),
                (
                    "/time_decay_half_life_hours".to_string(),
                    codes::OUT_OF_RANGE
                ),
                ("/markov_order".to_string(), codes::INVALID_TYPE),
                ("/default_model".to_string(), codes::INVALID_VALUE),
                ("/rate_limit_per_minute".to_string(), codes::OUT_OF_RANGE),
                ("/rate_limit_burst".to_string(), codes::INVALID_TYPE),
                (
                    "/reconciliation_grace_hours".to_string(),
                    codes::OUT_OF_RANGE
                ),
                ("/identity_cross_session".to_string(), codes::INVALID_TYPE),
                (
                    "/identity_max_component_ids".to_string(),
                    codes::OUT_OF_RANGE
                ),
                ("/a~1b~0c".to_string(), codes::UNKNOWN_FIELD),
            ]
        );
        assert_eq!(
            refused(json!({"lookback_days": null})),
            [("/lookback_days".to_string(), codes::REQUIRED)]
        );
    }

    #[test]
    fn only_place_names_pass_as_time_zones() {
        for ok in [
            "UTC",
            "utc",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
        ] {
            assert!(time_zone_shape(&json!(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "CET",
            "EST5EDT",
            "US/Eastern",
            "Etc/GMT+1",
            "posix/Europe/Berlin",
            "Europe/Berlin\0",
            "Europe/Ber lin",
            "",
        ] {
            assert!(time_zone_shape(&json!(bad)).is_err(), "{bad:?}");
        }
        assert!(time_zone_shape(&json!(format!("Europe/{}", "x".repeat(64)))).is_err());
    }

    #[test]
    fn a_non_object_is_refused_at_the_root() {
        assert_eq!(refused(json!([])), [(String::new(), codes::INVALID_TYPE)]);
    }
}
