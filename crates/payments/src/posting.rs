//! The normalised financial fact a webhook delivery turns into.

use crate::Source;
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
    /// the others a positive amount), so the entry type decides, never the payload.
    pub(crate) fn signed(self, amount: i64) -> i64 {
        let magnitude = amount.saturating_abs();
        match self {
            EntryType::Payment => magnitude,
            EntryType::Refund | EntryType::Chargeback => -magnitude,
        }
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

impl Posting {
    pub fn key(&self) -> PostingKey {
        PostingKey {
            source: self.source,
            external_id: self.external_id.clone(),
            entry_type: self.entry_type,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_type_decides_the_sign() {
        assert_eq!(EntryType::Payment.signed(500), 500);
        assert_eq!(EntryType::Payment.signed(-500), 500);
        assert_eq!(EntryType::Refund.signed(500), -500);
        assert_eq!(EntryType::Refund.signed(-500), -500);
        assert_eq!(EntryType::Chargeback.signed(500), -500);
        assert_eq!(EntryType::Refund.signed(i64::MIN), -i64::MAX);
    }
}
