//! Opaque keyset cursors: `(timestamp, id)` of the last row of a page, base64url-encoded so
//! clients treat them as tokens rather than building them.

use crate::error::StoreError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.at.timestamp_micros(), self.id))
    }

    pub fn decode(raw: &str) -> Result<Self, StoreError> {
        let invalid = || StoreError::Invalid("cursor is not one this API issued".into());
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = text.split_once('|').ok_or_else(invalid)?;
        Ok(Self {
            at: DateTime::from_timestamp_micros(micros.parse().map_err(|_| invalid())?)
                .ok_or_else(invalid)?,
            id: id.parse().map_err(|_| invalid())?,
        })
    }

    /// Trims a `limit + 1` fetch to `limit` rows and derives the next cursor from the last row.
    pub fn paginate<T>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> Cursor) -> Page<T> {
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = more
            .then(|| items.last().map(|last| key(last).encode()))
            .flatten();
        Page { items, next_cursor }
    }
}

/// A listing's paging parameters, checked: every list endpoint pages the same way (newest
/// first by `(timestamp, id)`, 1–500 rows, default 100).
pub struct PageRequest {
    limit: i64,
    after: Option<Cursor>,
}

impl PageRequest {
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, StoreError> {
        let limit = i64::from(limit.unwrap_or(100));
        if !(1..=500).contains(&limit) {
            return Err(StoreError::Invalid(
                "limit must be between 1 and 500".into(),
            ));
        }
        Ok(Self {
            limit,
            after: cursor.map(Cursor::decode).transpose()?,
        })
    }

    /// The keyset bound: rows strictly before it (none on the first page).
    pub fn after(&self) -> Option<Cursor> {
        self.after
    }

    /// Bind as the SQL `LIMIT`: one more row than the page, to know whether another follows.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    pub fn finish<T>(&self, items: Vec<T>, key: impl Fn(&T) -> Cursor) -> Page<T> {
        Cursor::paginate(items, self.limit as usize, key)
    }
}

/// One page of a listing.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_foreign_tokens() {
        let c = Cursor {
            at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("not-a-cursor").is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("x|y")).is_err());
    }
}
