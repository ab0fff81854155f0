//! The normalised financial fact a webhook delivery turns into.

use crate::{ParseError, Source};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use tally_core::money::CurrencyCode;

/// What kind of money movement a posting records. The code is the ledger's `entry_type` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    Payment,
    Refund,
    Chargeback,
}

impl EntryType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::Payment => "payment",
            EntryType::Refund => "refund",
            EntryType::Chargeback => "chargeback",
        }
    }

    /// Gives `amount` the sign this entry type carries in the ledger: money in is positive,
    /// money out negative. Vendors disagree on the sign of a refund (WooCommerce sends `"-5.00"`,
    /// the others a positive amount), so the entry type decides, never the payload. `None` for
    /// `i64::MIN`, whose magnitude has no `i64`: clamping it would post a different amount.
    pub(crate) fn signed(self, amount: i64) -> Option<i64> {
        let magnitude = amount.checked_abs()?;
        Some(match self {
            EntryType::Payment => magnitude,
            EntryType::Refund | EntryType::Chargeback => -magnitude,
        })
    }
}

impl fmt::Display for EntryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One money movement as the payment provider reports it, ready for `revenue_ledger`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub source: Source,
    pub entry_type: EntryType,
    /// The provider's id for the money movement (a charge's payment intent, a refund, a dispute,
    /// a capture...). Together with `source` and `entry_type` it is the fact's identity: see
    /// [`PostingKey`].
    pub external_id: String,
    /// Signed minor units of `currency`: payments positive, refunds and chargebacks negative.
    pub amount_minor: i64,
    pub currency: CurrencyCode,
    /// The merchant's order the money belongs to, in the form Tally's tracking events carry it
    /// (see each vendor's parser for which field that is), when the provider says.
    pub order_id: Option<String>,
    /// The provider's id of the payment this money belongs to, the same on the payment and on
    /// every refund and chargeback of it: how a reversal that carries no order id still finds
    /// its order (the ledger links it to the payment, whichever arrives first). Stripe: the
    /// payment intent, else the charge; PayPal: the capture; Shopify and WooCommerce: the order.
    /// `None` when the provider does not say (a PayPal refund without its `up` link).
    pub payment_ref: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// The identity of a financial fact, matching the ledger's unique
/// `(tenant_id, source, external_id, entry_type)`: a second posting with the same key is the same
/// money seen again (a retry, a duplicate topic, a cumulative event), so the first one stands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PostingKey {
    pub source: Source,
    pub external_id: String,
    pub entry_type: EntryType,
}

/// The longest id the ledger stores, in characters as PostgreSQL's `length` counts them (the
/// `CHECK`s on `external_id`, `order_id` and `payment_ref`). Vendors allow longer (Stripe's
/// metadata values hold 500 characters): such a posting must be dead-lettered with a reason, since
/// a write the database refuses would fail the same way on every retry.
pub const MAX_ID_CHARS: usize = 255;

impl Posting {
    pub fn key(&self) -> PostingKey {
        PostingKey {
            source: self.source,
            external_id: self.external_id.clone(),
            entry_type: self.entry_type,
        }
    }

    /// Refuses ids the ledger cannot store, naming the field.
    pub(crate) fn check_storable(&self) -> Result<(), ParseError> {
        let ids = [
            ("external_id", Some(&self.external_id)),
            ("order_id", self.order_id.as_ref()),
            ("payment_ref", self.payment_ref.as_ref()),
        ];
        for (field, id) in ids {
            let Some(id) = id else { continue };
            let chars = id.chars().count();
            if !(1..=MAX_ID_CHARS).contains(&chars) {
                return Err(ParseError::InvalidField {
                    field,
                    reason: format!(
                        "{chars} characters; the ledger keeps ids of 1 to {MAX_ID_CHARS}"
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_type_decides_the_sign() {
        assert_eq!(EntryType::Payment.signed(500), Some(500));
        assert_eq!(EntryType::Payment.signed(-500), Some(500));
        assert_eq!(EntryType::Refund.signed(500), Some(-500));
        assert_eq!(EntryType::Refund.signed(-500), Some(-500));
        assert_eq!(EntryType::Chargeback.signed(500), Some(-500));
        assert_eq!(EntryType::Refund.signed(-i64::MAX), Some(-i64::MAX));
        assert_eq!(EntryType::Refund.signed(i64::MIN), None);
        assert_eq!(EntryType::Payment.signed(i64::MIN), None);
    }
}
