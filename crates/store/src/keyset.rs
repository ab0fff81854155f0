//! The one query behind every newest-first listing (events, dead letters, the ledger), so that
//! paging, range bounds and the tenant condition are written, and fixed, in a single place.

use crate::Database;
use crate::cursor::{Cursor, Page, PageRequest};
use crate::error::StoreError;
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Postgres, QueryBuilder};

/// Declares a closed set of values a listing can be filtered by: deserialised strictly (an
/// unknown value is a 400 naming the valid ones, where it used to match nothing and answer an
/// empty 200), documented as an enum in OpenAPI, and bound to SQL by its code.
macro_rules! filter_values {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $code)] $variant),+
        }

        // Written out because utoipa's derive does not see a `serde(rename)` whose literal
        // comes from a macro argument: it documented `Api` where the API takes `api`.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::doc::one_of([$($code),+]).into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code),+
                }
            }
        }
    };
}
pub(crate) use filter_values;

/// What a listing reads and how it may be narrowed.
///
/// Table, columns and column names are `&'static str` so that only names written in code can
/// reach the SQL text; everything a client sends is a bind.
pub(crate) struct Listing<'a> {
    pub table: &'static str,
    pub columns: &'static str,
    /// With `id`, the keyset: the listing's order and the cursor's position.
    pub time_column: &'static str,
    /// `column = value` conditions; `None` leaves the column unfiltered, so that only the
    /// filters a client set reach the planner (and can use an index).
    pub filters: &'a [(&'static str, Option<&'a str>)],
    /// Inclusive, on `time_column`.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive, on `time_column`, so adjacent ranges never share a row.
    pub to: Option<DateTime<Utc>>,
    /// Comparisons on other time columns, e.g. a run's window containing a range.
    pub bounds: &'a [(&'static str, Compare, DateTime<Utc>)],
}

/// The comparison of a [`Listing::bounds`] entry: the column's value is at most / at least the
/// bound.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Compare {
    AtMost,
    AtLeast,
}

impl Compare {
    fn sql(self) -> &'static str {
        match self {
            Compare::AtMost => " <= ",
            Compare::AtLeast => " >= ",
        }
    }
}

impl Database {
    /// One page of `listing` for `tenant`, newest first by `(time_column, id)`.
    ///
    /// `tenant_id` is matched explicitly as well as by row-level security: RLS is the second
    /// line of defence, not the only one. `key` gives a row's cursor (its time and id).
    pub(crate) async fn keyset_page<T>(
        &self,
        tenant: TenantId,
        listing: &Listing<'_>,
        page: &PageRequest,
        key: impl Fn(&T) -> Cursor,
    ) -> Result<Page<T>, StoreError>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let time = listing.time_column;
        let mut q = QueryBuilder::<Postgres>::new("SELECT ");
        q.push(listing.columns)
            .push(" FROM ")
            .push(listing.table)
            .push(" WHERE tenant_id = ")
            .push_bind(tenant);
        for &(column, value) in listing.filters {
            if let Some(value) = value {
                q.push(" AND ").push(column).push(" = ").push_bind(value);
            }
        }
        if let Some(from) = listing.from {
            q.push(format_args!(" AND {time} >= ")).push_bind(from);
        }
        if let Some(to) = listing.to {
            q.push(format_args!(" AND {time} < ")).push_bind(to);
        }
        for &(column, compare, value) in listing.bounds {
            q.push(" AND ")
                .push(column)
                .push(compare.sql())
                .push_bind(value);
        }
        if let Some(after) = page.after() {
            q.push(format_args!(" AND ({time}, id) < ("))
                .push_bind(after.at)
                .push(", ")
                .push_bind(after.id)
                .push(")");
        }
        q.push(format_args!(" ORDER BY {time} DESC, id DESC LIMIT "))
            .push_bind(page.fetch_limit());

        let mut tx = self.tenant_tx(tenant).await?;
        let items: Vec<T> = q.build_query_as().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(page.finish(items, key))
    }
}
