//! Money as integer minor units.
//!
//! Amounts arrive as decimal strings (`"59.99"`) or JSON numbers and are turned into minor units
//! by the currency's ISO 4217 exponent (JPY 0, USD 2, KWD 3) without ever passing through a
//! float: `0.1 + 0.2` style errors in revenue are exactly what Tally exists to avoid. The
//! exponent table comes from `iso_currency` rather than a hand-kept list so new codes and
//! exponent changes arrive with a dependency bump.

use iso_currency::Currency;
use std::fmt;

/// The largest magnitude, in minor units, that one event's revenue, one ledger posting or one
/// adjustment may have: 10^13, i.e. 100 000 000 000.00 in a two-decimal currency.
///
/// The bound exists so that sums cannot overflow `i64` (about 9.2 × 10^18). A sum of n amounts
/// is at most n × 10^13, so any day, month or lifetime total of a tenant stays inside `i64`
/// until it holds more than 922 337 maximal amounts; in money that is 92 quadrillion major
/// units of a two-decimal currency, and even in the currency with the least valuable minor
/// unit (the Iranian rial, two decimals) roughly 150 billion US dollars. Totals are computed
/// widened anyway (`i128` in Rust, `numeric` in PostgreSQL's `sum`) and narrowed with a check,
/// so an impossible total is an error, never a wrapped number. Single amounts above the bound
/// are refused; they are far larger than any real order in every currency but the weakest.
pub const MAX_AMOUNT_MINOR: i64 = 10_000_000_000_000;

/// `amount` unchanged when its magnitude is at most [`MAX_AMOUNT_MINOR`].
pub fn check_amount(amount: i64) -> Result<i64, MoneyError> {
    if amount.unsigned_abs() <= MAX_AMOUNT_MINOR.unsigned_abs() {
        Ok(amount)
    } else {
        Err(MoneyError::OutOfRange(amount.to_string()))
    }
}

/// An ISO 4217 currency known to have a defined minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurrencyCode {
    code: [u8; 3],
    exponent: u8,
}

impl CurrencyCode {
    /// Parses a three-letter code, case-insensitively (Stripe sends `usd`).
    pub fn parse(raw: &str) -> Result<Self, MoneyError> {
        let upper = raw.trim().to_ascii_uppercase();
        let currency =
            Currency::from_code(&upper).ok_or_else(|| MoneyError::UnknownCurrency(raw.into()))?;
        // Codes without a minor unit (XAU, XDR, ...) are not money a shop is paid in.
        let exponent = currency
            .exponent()
            .ok_or_else(|| MoneyError::UnknownCurrency(raw.into()))?;
        let bytes = upper.as_bytes();
        Ok(Self {
            code: [bytes[0], bytes[1], bytes[2]],
            exponent: u8::try_from(exponent)
                .map_err(|_| MoneyError::UnknownCurrency(raw.into()))?,
        })
    }

    /// Every code [`parse`](Self::parse) accepts, in upper case. iso_currency can list its
    /// currencies only behind a feature that pulls in strum; trying the 17,576 three-letter
    /// codes is instant and keeps the list exactly what `parse` takes.
    pub fn all() -> Vec<Self> {
        let letters = b'A'..=b'Z';
        letters
            .clone()
            .flat_map(|a| letters.clone().map(move |b| [a, b]))
            .flat_map(|[a, b]| (b'A'..=b'Z').map(move |c| [a, b, c]))
            .filter_map(|code| Self::parse(std::str::from_utf8(&code).ok()?).ok())
            .collect()
    }

    pub fn as_str(&self) -> &str {
        // The bytes come from an upper-cased ASCII ISO code.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Number of digits after the decimal point in the currency's minor unit.
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Parses a decimal amount in major units into minor units of this currency.
    pub fn parse_amount(&self, raw: &str) -> Result<i64, MoneyError> {
        parse_minor_units(raw, self.exponent)
    }

    /// Formats minor units back as a decimal string in major units (`5999` USD → `"59.99"`).
    pub fn format_amount(&self, minor: i64) -> String {
        let exp = u32::from(self.exponent);
        if exp == 0 {
            return minor.to_string();
        }
        let scale = 10i128.pow(exp);
        let value = i128::from(minor);
        let sign = if value < 0 { "-" } else { "" };
        let abs = value.abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = exp as usize
        )
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown or non-monetary currency code {0:?}")]
    UnknownCurrency(String),
    #[error("{0:?} is not a decimal amount")]
    NotDecimal(String),
    #[error("{raw:?} has more than {exponent} decimal places for its currency")]
    TooPrecise { raw: String, exponent: u8 },
    #[error("{0:?} is out of range")]
    OutOfRange(String),
}

/// Parses `[-+]digits[.digits]` (also `1e2`-free JSON number text) into minor units, at most
/// [`MAX_AMOUNT_MINOR`] in magnitude.
///
/// Trailing zeros beyond the exponent are accepted (`"10.500"` USD is 1050); any other extra
/// precision is an error rather than a silent rounding, because a rounded revenue figure would
/// never reconcile against the payment provider.
pub fn parse_minor_units(raw: &str, exponent: u8) -> Result<i64, MoneyError> {
    let s = raw.trim();
    let not_decimal = || MoneyError::NotDecimal(raw.to_string());
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, f),
        None => (unsigned, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(not_decimal());
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
        || (unsigned.contains('.') && frac_part.is_empty() && int_part.is_empty())
    {
        return Err(not_decimal());
    }
    let exp = usize::from(exponent);
    let (kept, extra) = if frac_part.len() > exp {
        frac_part.split_at(exp)
    } else {
        (frac_part, "")
    };
    if extra.bytes().any(|b| b != b'0') {
        return Err(MoneyError::TooPrecise {
            raw: raw.to_string(),
            exponent,
        });
    }
    let out_of_range = || MoneyError::OutOfRange(raw.to_string());
    let mut value: i64 = 0;
    for digit in int_part.bytes().chain(kept.bytes()) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(digit - b'0')))
            .ok_or_else(out_of_range)?;
    }
    for _ in kept.len()..exp {
        value = value.checked_mul(10).ok_or_else(out_of_range)?;
    }
    check_amount(if negative { -value } else { value }).map_err(|_| out_of_range())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(code: &str) -> CurrencyCode {
        CurrencyCode::parse(code).unwrap()
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(cur("usd").exponent(), 2);
        assert_eq!(cur("JPY").exponent(), 0);
        assert_eq!(cur("KWD").exponent(), 3);
        assert!(CurrencyCode::parse("XAU").is_err());
        assert!(CurrencyCode::parse("ABC").is_err());
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(cur("USD").parse_amount("59.99"), Ok(5999));
        assert_eq!(cur("USD").parse_amount("0.1"), Ok(10));
        assert_eq!(cur("USD").parse_amount("10"), Ok(1000));
        assert_eq!(cur("USD").parse_amount("10.500"), Ok(1050));
        assert_eq!(cur("USD").parse_amount("-3.50"), Ok(-350));
        assert_eq!(cur("JPY").parse_amount("1200"), Ok(1200));
        assert_eq!(cur("KWD").parse_amount("1.234"), Ok(1234));
        assert_eq!(cur("USD").parse_amount(".5"), Ok(50));
    }

    #[test]
    fn refuses_what_is_not_exact_money() {
        assert!(matches!(
            cur("USD").parse_amount("1.999"),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            cur("JPY").parse_amount("1.5"),
            Err(MoneyError::TooPrecise { .. })
        ));
        for bad in ["", ".", "1,00", "1e3", "abc", "--1", "1.2.3", " "] {
            assert!(cur("USD").parse_amount(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            cur("USD").parse_amount("99999999999999999999"),
            Err(MoneyError::OutOfRange(_))
        ));
    }

    #[test]
    fn amounts_are_bounded_at_the_documented_maximum() {
        let usd = cur("USD");
        assert_eq!(usd.parse_amount("100000000000.00"), Ok(MAX_AMOUNT_MINOR));
        assert_eq!(usd.parse_amount("-100000000000"), Ok(-MAX_AMOUNT_MINOR));
        for too_large in [
            "100000000000.01",
            "-100000000000.01",
            "92233720368547758.07",
        ] {
            assert!(
                matches!(usd.parse_amount(too_large), Err(MoneyError::OutOfRange(_))),
                "{too_large}"
            );
        }
        assert_eq!(
            check_amount(i64::MIN),
            Err(MoneyError::OutOfRange(i64::MIN.to_string()))
        );
        assert!(check_amount(i64::MAX).is_err());
    }

    proptest! {
        #[test]
        fn bounded_amounts_round_trip_and_others_are_refused(
            minor in prop_oneof![
                -MAX_AMOUNT_MINOR..=MAX_AMOUNT_MINOR,
                Just(MAX_AMOUNT_MINOR), Just(-MAX_AMOUNT_MINOR),
                Just(MAX_AMOUNT_MINOR + 1), Just(-MAX_AMOUNT_MINOR - 1),
                Just(i64::MAX), Just(i64::MIN),
                any::<i64>(),
            ],
            code in prop::sample::select(vec!["USD", "JPY", "KWD", "CLF"]),
        ) {
            let c = cur(code);
            let parsed = c.parse_amount(&c.format_amount(minor));
            if minor.unsigned_abs() <= MAX_AMOUNT_MINOR.unsigned_abs() {
                prop_assert_eq!(parsed, Ok(minor));
            } else {
                prop_assert!(matches!(parsed, Err(MoneyError::OutOfRange(_))));
            }
        }

        /// The documented promise: sums of up to 900 000 bounded amounts stay inside i64.
        #[test]
        fn sums_of_bounded_amounts_fit_i64(
            amount in -MAX_AMOUNT_MINOR..=MAX_AMOUNT_MINOR,
            count in 0i128..=900_000,
        ) {
            prop_assert!(i64::try_from(i128::from(amount) * count).is_ok());
        }

        /// Fuzz: any text, decimal-looking or not, is parsed without a panic, and what is
        /// accepted is bounded and reads back unchanged from its canonical form.
        #[test]
        fn any_text_parses_to_a_bounded_amount_or_an_error(
            raw in prop_oneof![
                any::<String>(),
                "[ +-]?[0-9]{0,22}([.,][0-9]{0,6})?([eE][+-]?[0-9]{1,3})? ?",
            ],
            code in prop::sample::select(vec!["USD", "JPY", "KWD", "CLF"]),
        ) {
            let c = cur(code);
            if let Ok(minor) = c.parse_amount(&raw) {
                prop_assert!(minor.unsigned_abs() <= MAX_AMOUNT_MINOR.unsigned_abs(), "{raw:?}");
                prop_assert_eq!(c.parse_amount(&c.format_amount(minor)), Ok(minor));
            }
        }

        #[test]
        fn format_then_parse_round_trips(minor in -1_000_000_000_000i64..1_000_000_000_000, code in prop::sample::select(vec!["USD", "JPY", "KWD", "EUR", "CLF"])) {
            let c = cur(code);
            prop_assert_eq!(c.parse_amount(&c.format_amount(minor)), Ok(minor));
        }
    }
}
