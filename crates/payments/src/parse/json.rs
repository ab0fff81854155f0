//! Shared payload plumbing: JSON decoding with classified errors, ids, exact money.

use super::ParseError;
use crate::EntryType;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use tally_core::money::{CurrencyCode, MoneyError};

/// Reads a body in two steps so the error says which problem it has: bytes that are not JSON at
/// all (`malformed_json`), or JSON of the wrong shape (`invalid_payload`), whatever position the
/// first problem happens to sit at.
///
/// A NUL escape (`\u0000`, which PHP's `json_encode` writes) is refused here, where every vendor's
/// body becomes JSON, because PostgreSQL's text and jsonb cannot hold it.
pub(super) fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, ParseError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ParseError::MalformedJson(e.to_string()))?;
    if crate::nul::contains_nul(&value) {
        return Err(ParseError::NulCharacter);
    }
    from_value(value)
}

pub(super) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ParseError> {
    serde_json::from_value(value).map_err(|e| ParseError::InvalidPayload(e.to_string()))
}

/// Deserialises an id that one vendor sends as a JSON number (Shopify, WooCommerce) and another
/// as a string, into the string the ledger stores.
pub(super) fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    Ok(match Id::deserialize(deserializer)? {
        Id::Number(n) => n.to_string(),
        Id::Text(s) => s,
    })
}

/// An optional merchant reference, where vendors send `""` as readily as `null`.
pub(super) fn reference(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty())
}

pub(super) fn currency(field: &'static str, code: &str) -> Result<CurrencyCode, ParseError> {
    CurrencyCode::parse(code).map_err(|source| ParseError::InvalidAmount { field, source })
}

/// `amount` with the sign `entry_type` gives it in the ledger.
pub(super) fn signed(
    entry_type: EntryType,
    field: &'static str,
    amount: i64,
) -> Result<i64, ParseError> {
    entry_type
        .signed(amount)
        .ok_or_else(|| out_of_range(field, amount))
}

/// The error for an amount, or a sum of amounts, that `i64` minor units cannot hold: such a
/// delivery is dead-lettered rather than posted with a clamped (wrong) amount.
pub(super) fn out_of_range(field: &'static str, amount: impl ToString) -> ParseError {
    ParseError::InvalidAmount {
        field,
        source: MoneyError::OutOfRange(amount.to_string()),
    }
}

/// A decimal amount in major units (`"59.99"`), exactly, in minor units of `currency`.
pub(super) fn decimal(
    field: &'static str,
    currency: CurrencyCode,
    amount: &str,
) -> Result<i64, ParseError> {
    currency
        .parse_amount(amount)
        .map_err(|source| ParseError::InvalidAmount { field, source })
}
