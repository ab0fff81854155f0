//! Time windows of the read APIs: `from`/`to` as RFC 3339 instants or plain dates (midnight in the
//! tenant's time zone), checked against the granularity the answer is exact at, and echoed back
//! as the effective window.
//!
//! Refusing an unaligned bound (422 that names the granularity) rather than rounding it is the
//! point: a window that silently grows to whole hours reports money outside what was asked.

use crate::error::{ApiError, FieldError};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;

/// How finely a read can cut time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// Quarter hours: the realtime totals (every time zone's hours are unions of them).
    QuarterHour,
    /// Hours of the tenant's time zone: channel totals, hourly series, reconciliation runs.
    LocalHour,
    /// Days of the tenant's time zone: daily series, exports.
    LocalDay,
}

impl Granularity {
    fn describe(self, tz: &str) -> String {
        match self {
            Granularity::QuarterHour => "a quarter hour (:00, :15, :30 or :45 UTC)".into(),
            Granularity::LocalHour => {
                format!("the start of an hour in the tenant's time zone ({tz})")
            }
            Granularity::LocalDay => format!("midnight in the tenant's time zone ({tz})"),
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Granularity::QuarterHour => "SELECT tally_quarter_hour($1) = $1",
            Granularity::LocalHour => "SELECT tally_local_hour($1, $2) = $1",
            Granularity::LocalDay => "SELECT date_trunc('day', $1, $2) = $1",
        }
    }
}

/// The window a read answered for, as instants, with the zone its dates were read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The schema of `from`/`to`: an RFC 3339 instant or a plain date. The alignment and order
/// checks depend on the tenant's time zone and on the other bound, so no schema states them.
pub fn bound_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    let formatted = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    utoipa::openapi::schema::Schema::OneOf(
        OneOfBuilder::new()
            .item(formatted(KnownFormat::DateTime))
            .item(formatted(KnownFormat::Date))
            .build(),
    )
}

/// The earliest and latest instants a window may name: PostgreSQL's range is wider, but money
/// before 1970 or after 9999 is a typo, and bounding them keeps every date function total.
const EARLIEST: i64 = 0;
const LATEST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

fn field_error(field: &str, code: &str, message: String) -> ApiError {
    ApiError::unprocessable(
        "the time window is invalid",
        vec![FieldError {
            pointer: format!("/{field}"),
            code: code.into(),
            message,
        }],
    )
}

enum Bound {
    At(DateTime<Utc>),
    Date(NaiveDate),
}

fn parse_bound(field: &str, raw: &str) -> Result<Bound, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        let t = t.to_utc();
        if !(EARLIEST..=LATEST).contains(&t.timestamp()) {
            return Err(field_error(
                field,
                "out_of_range",
                format!("`{field}` must lie between 1970-01-01 and 9999-12-31"),
            ));
        }
        return Ok(Bound::At(t));
    }
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) if (1970..=9998).contains(&chrono::Datelike::year(&d)) => Ok(Bound::Date(d)),
        _ => Err(field_error(
            field,
            "invalid_format",
            format!(
                "`{field}` must be an RFC 3339 instant with an offset (2026-11-29T00:00:00Z) or a \
                 date (2026-11-29, midnight in the tenant's time zone) between 1970 and 9998"
            ),
        )),
    }
}

/// Reads `from` and `to`, turns dates into the tenant's local midnights, and checks that the
/// window is non-empty and aligned on `granularity`.
pub async fn resolve(
    conn: &mut PgConnection,
    from: &str,
    to: &str,
    tz: &str,
    granularity: Granularity,
) -> Result<Window, ApiError> {
    let from = instant(conn, "from", parse_bound("from", from)?, tz).await?;
    let to = instant(conn, "to", parse_bound("to", to)?, tz).await?;
    if from >= to {
        return Err(field_error(
            "to",
            "invalid_range",
            "`to` must be after `from` (the window is [from, to))".into(),
        ));
    }
    for (field, t) in [("from", from), ("to", to)] {
        let aligned: bool = sqlx::query_scalar(granularity.sql())
            .bind(t)
            .bind(tz)
            .fetch_one(&mut *conn)
            .await?;
        if !aligned {
            return Err(field_error(
                field,
                "unaligned",
                format!(
                    "`{field}` ({t}) must be {}: this read is exact at that granularity and \
                     does not round a window silently",
                    granularity.describe(tz)
                ),
            ));
        }
    }
    Ok(Window { from, to })
}

/// An optional window: both bounds resolved as [`resolve`] does, or neither (`None`, the
/// caller's default). One bound alone is a 400 rather than a guess at the other.
pub async fn resolve_optional(
    conn: &mut PgConnection,
    from: Option<&str>,
    to: Option<&str>,
    tz: &str,
    granularity: Granularity,
) -> Result<Option<Window>, ApiError> {
    match (from, to) {
        (None, None) => Ok(None),
        (Some(from), Some(to)) => resolve(conn, from, to, tz, granularity).await.map(Some),
        _ => Err(ApiError::bad_request(
            "give both `from` and `to`, or neither",
        )),
    }
}

async fn instant(
    conn: &mut PgConnection,
    field: &str,
    bound: Bound,
    tz: &str,
) -> Result<DateTime<Utc>, ApiError> {
    match bound {
        Bound::At(t) => Ok(t),
        Bound::Date(d) => sqlx::query_scalar("SELECT $1::date::timestamp AT TIME ZONE $2")
            .bind(d)
            .bind(tz)
            .fetch_one(conn)
            .await
            .map_err(|_| {
                field_error(
                    field,
                    "invalid_value",
                    format!("`{field}` {d} has no midnight in {tz}"),
                )
            }),
    }
}

/// Today in the tenant's zone: `[local midnight, next local midnight)`.
pub async fn today(conn: &mut PgConnection, tz: &str) -> Result<Window, ApiError> {
    let (from, to): (DateTime<Utc>, DateTime<Utc>) =
        sqlx::query_as("SELECT date_trunc('day', now(), $1), tally_next_local_day(now(), $1)")
            .bind(tz)
            .fetch_one(conn)
            .await?;
    Ok(Window { from, to })
}
