//! Money in responses: minor units are the exact figure (`*_cents`); major units are added for
//! people and for the seed contract, formatted per currency (JPY 0 decimals, KWD 3).

use tally_core::money::CurrencyCode;

/// `cents` in major units as a JSON-friendly float. The decimal string is exact; the float is
/// exact for every amount below 2^53 minor units, which the money bounds keep us under.
pub fn major_units(currency: &CurrencyCode, cents: i64) -> f64 {
    currency.format_amount(cents).parse().unwrap_or(f64::NAN)
}
