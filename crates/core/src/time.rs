//! Client timestamps, bounded to what RFC 3339 can write and PostgreSQL can store.
//!
//! chrono parses years from -262143 to +262142 (`-262143-01-01T00:00:00Z`), while `timestamptz`
//! ends at 294276 AD and starts in 4713 BC, so such a value used to pass deserialisation and
//! fail in the query as a 500. RFC 3339 itself has four-digit years, so years 0001 to 9999 are
//! the contract, checked while a request is deserialised (a 400 for a query, 422 for a body).

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Deserializer};

/// Deserialises an RFC 3339 timestamp with a year from 0001 to 9999. For a required field:
/// `#[serde(deserialize_with = "tally_core::time::rfc3339")]`.
pub fn rfc3339<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let at = DateTime::<Utc>::deserialize(deserializer)?;
    if (1..=9999).contains(&at.year()) {
        Ok(at)
    } else {
        Err(serde::de::Error::custom(
            "the timestamp's year must be between 0001 and 9999",
        ))
    }
}

/// [`rfc3339`] for an optional field:
/// `#[serde(default, deserialize_with = "tally_core::time::optional_rfc3339")]`.
pub fn optional_rfc3339<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    struct Bounded(#[serde(deserialize_with = "rfc3339")] DateTime<Utc>);
    Ok(Option::<Bounded>::deserialize(deserializer)?.map(|Bounded(at)| at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Window {
        #[serde(default, deserialize_with = "optional_rfc3339")]
        from: Option<DateTime<Utc>>,
    }

    #[test]
    fn years_outside_rfc_3339_are_refused() {
        let parse = |json: &str| serde_json::from_str::<Window>(json).map(|w| w.from);
        assert!(parse(r#"{"from": "-262143-01-01T00:00:00Z"}"#).is_err());
        assert!(parse(r#"{"from": "+10000-01-01T00:00:00Z"}"#).is_err());
        assert!(parse(r#"{"from": "0000-12-31T23:59:59Z"}"#).is_err());
        assert!(
            parse(r#"{"from": "9999-12-31T23:59:59Z"}"#)
                .unwrap()
                .is_some()
        );
        assert!(parse(r#"{"from": null}"#).unwrap().is_none());
        assert!(parse("{}").unwrap().is_none());
    }
}
