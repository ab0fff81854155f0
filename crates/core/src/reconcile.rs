//! Reconciliation: what was tracked against what was paid, one order at a time.
//!
//! The tracked side of an order is its first conversion event (later conversions with the same
//! `order_id` are duplicates: counted, never added). The paid side is the ledger's postings for
//! the order, netted per currency (payments − refunds − chargebacks ± adjustments). [`classify`]
//! turns the two sides into one [`Item`]; [`summarize`] adds items up per currency, never across
//! currencies.
//!
//! Pure and synchronous so that the status rules are one function, property-testable, and the
//! same whether a worker reconciles a whole day or the API shows one order.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// An order's reconciliation outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Paid exactly what was tracked, nothing reversed.
    Matched,
    /// Paid in the tracked currency, but another amount, nothing reversed.
    AmountMismatch,
    /// Paid, but only in currencies other than the tracked one.
    CurrencyMismatch,
    /// Tracked, no payment yet, still inside the tenant's grace period.
    AwaitingPayment,
    /// Tracked, no payment, and the grace period is over.
    TrackedNotPaid,
    /// Money in the ledger for an order that tracking never reported.
    PaidNotTracked,
    /// Paid and reversed down to zero (or below).
    Refunded,
    /// Paid, partly reversed, something left.
    PartiallyRefunded,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Matched,
        Status::AmountMismatch,
        Status::CurrencyMismatch,
        Status::AwaitingPayment,
        Status::TrackedNotPaid,
        Status::PaidNotTracked,
        Status::Refunded,
        Status::PartiallyRefunded,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Status::Matched => "matched",
            Status::AmountMismatch => "amount_mismatch",
            Status::CurrencyMismatch => "currency_mismatch",
            Status::AwaitingPayment => "awaiting_payment",
            Status::TrackedNotPaid => "tracked_not_paid",
            Status::PaidNotTracked => "paid_not_tracked",
            Status::Refunded => "refunded",
            Status::PartiallyRefunded => "partially_refunded",
        }
    }

    /// Whether the paid side confirms the order (fully, or as far as it was not given back).
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Status::Matched | Status::Refunded | Status::PartiallyRefunded
        )
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.code() == s)
            .ok_or_else(|| {
                let codes: Vec<&str> = Status::ALL.iter().map(|s| s.code()).collect();
                format!("unknown status {s:?}; expected one of {}", codes.join(", "))
            })
    }
}

/// The first conversion event of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub conversion_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub revenue_cents: i64,
    pub currency: String,
    /// Other conversion events with the same order id (reported, never counted).
    pub duplicates: u32,
}

/// One ledger posting of an order, signed (money in positive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub amount_cents: i64,
    pub currency: String,
    pub occurred_at: DateTime<Utc>,
}

/// Both sides of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: String,
    pub tracked: Option<Tracked>,
    pub postings: Vec<Posting>,
}

/// One order's outcome, with both sides' amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub order_id: String,
    pub status: Status,
    pub conversion_id: Option<Uuid>,
    pub tracked_at: Option<DateTime<Utc>>,
    pub tracked_cents: Option<i64>,
    pub tracked_currency: Option<String>,
    pub duplicate_conversions: u32,
    /// The ledger's net in `verified_currency`: the tracked currency when the ledger has any
    /// posting in it, else the currency with the most money in.
    pub verified_cents: i64,
    pub verified_currency: Option<String>,
    /// Money in (payments, positive adjustments) and out (refunds, chargebacks, negative
    /// adjustments, as a positive number) in `verified_currency`.
    pub paid_cents: i64,
    pub reversed_cents: i64,
    pub postings: u32,
    /// `verified − tracked` when both are in one currency.
    pub difference_cents: Option<i64>,
    /// When the first posting happened (paid-not-tracked orders belong to that day).
    pub first_posting_at: Option<DateTime<Utc>>,
}

/// Money per currency on the paid side: (in, out) with out as a positive number. Sums are i128:
/// a single order never comes close, but nothing here may wrap whatever the ledger holds.
#[derive(Default, Clone, Copy)]
struct Flow {
    paid: i128,
    reversed: i128,
}

impl Flow {
    fn net(self) -> i128 {
        self.paid - self.reversed
    }
}

/// i128 sums back to i64 for storage, saturating: a sum past i64 is not a real order, and the
/// store bounds amounts at the door, so this only keeps a hostile ledger from wrapping.
fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Classifies one order as of `now`; `grace` is how long a tracked order may wait for payment.
pub fn classify(order: &Order, now: DateTime<Utc>, grace: TimeDelta) -> Item {
    let mut flows: BTreeMap<&str, Flow> = BTreeMap::new();
    for p in &order.postings {
        let f = flows.entry(p.currency.as_str()).or_default();
        if p.amount_cents >= 0 {
            f.paid += i128::from(p.amount_cents);
        } else {
            f.reversed -= i128::from(p.amount_cents);
        }
    }
    let first_posting_at = order.postings.iter().map(|p| p.occurred_at).min();
    let tracked_currency = order.tracked.as_ref().map(|t| t.currency.as_str());
    // The currency the paid side is reported in: the tracked one when the ledger has it, else
    // the one with the most money in (ties: alphabetical, so the choice is stable).
    let verified_currency = tracked_currency
        .filter(|c| flows.contains_key(c))
        .or_else(|| {
            flows
                .iter()
                .max_by(|a, b| a.1.paid.cmp(&b.1.paid).then(b.0.cmp(a.0)))
                .map(|(c, _)| *c)
        });
    let flow = verified_currency
        .and_then(|c| flows.get(c).copied())
        .unwrap_or_default();
    let net = flow.net();

    let status = match &order.tracked {
        None => Status::PaidNotTracked,
        Some(t) => {
            let waited = now.signed_duration_since(t.occurred_at);
            let unpaid = if waited >= grace {
                Status::TrackedNotPaid
            } else {
                Status::AwaitingPayment
            };
            if order.postings.is_empty() {
                unpaid
            } else if verified_currency != Some(t.currency.as_str()) {
                Status::CurrencyMismatch
            } else if flow.paid == 0 {
                // Only reversals so far: a refund delivered before its payment.
                unpaid
            } else if flow.reversed > 0 {
                if net <= 0 {
                    Status::Refunded
                } else {
                    Status::PartiallyRefunded
                }
            } else if net == i128::from(t.revenue_cents) {
                Status::Matched
            } else {
                Status::AmountMismatch
            }
        }
    };
    let difference_cents = order
        .tracked
        .as_ref()
        .filter(|t| verified_currency == Some(t.currency.as_str()))
        .map(|t| clamp(net - i128::from(t.revenue_cents)));
    Item {
        order_id: order.order_id.clone(),
        status,
        conversion_id: order.tracked.as_ref().map(|t| t.conversion_id),
        tracked_at: order.tracked.as_ref().map(|t| t.occurred_at),
        tracked_cents: order.tracked.as_ref().map(|t| t.revenue_cents),
        tracked_currency: tracked_currency.map(str::to_string),
        duplicate_conversions: order.tracked.as_ref().map_or(0, |t| t.duplicates),
        verified_cents: clamp(net),
        verified_currency: verified_currency.map(str::to_string),
        paid_cents: clamp(flow.paid),
        reversed_cents: clamp(flow.reversed),
        postings: u32::try_from(order.postings.len()).unwrap_or(u32::MAX),
        difference_cents,
        first_posting_at,
    }
}

/// A run's totals in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CurrencyTotals {
    pub currency: String,
    /// Tracked revenue of the orders (first conversions only).
    pub claimed_cents: i64,
    /// The ledger's net of every order reported in this currency, tracked or not.
    pub verified_cents: i64,
    /// Claimed but not (or not yet) paid: Σ max(0, tracked − verified) over tracked orders.
    pub ghost_cents: i64,
    /// Paid but never tracked: Σ max(0, net) over paid-not-tracked orders, and over the paid
    /// side of currency mismatches (money that matches no tracked amount in its currency).
    pub unclaimed_cents: i64,
    /// |claimed − verified| / claimed in basis points (10 000 when nothing was claimed but
    /// something was paid, 0 when both are 0).
    pub discrepancy_bps: i64,
    pub orders: i64,
}

/// Counts per status (every status present, 0 included) and totals per currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub counts: BTreeMap<&'static str, i64>,
    pub currencies: Vec<CurrencyTotals>,
}

#[derive(Default)]
struct Acc {
    claimed: i128,
    verified: i128,
    ghost: i128,
    unclaimed: i128,
    orders: i64,
}

pub fn summarize(items: &[Item]) -> Summary {
    let mut counts: BTreeMap<&'static str, i64> =
        Status::ALL.iter().map(|s| (s.code(), 0)).collect();
    let mut acc: BTreeMap<&str, Acc> = BTreeMap::new();
    for item in items {
        *counts.entry(item.status.code()).or_default() += 1;
        let verified = i128::from(item.verified_cents);
        if let (Some(cur), Some(tracked)) = (&item.tracked_currency, item.tracked_cents) {
            let a = acc.entry(cur).or_default();
            a.claimed += i128::from(tracked);
            a.orders += 1;
            let paid_here = if item.verified_currency.as_ref() == Some(cur) {
                verified
            } else {
                0
            };
            a.ghost += (i128::from(tracked) - paid_here).max(0);
        }
        if let Some(cur) = &item.verified_currency {
            let a = acc.entry(cur).or_default();
            a.verified += verified;
            if item.tracked_currency.as_ref() != Some(cur) {
                a.unclaimed += verified.max(0);
                if item.tracked_currency.is_none() {
                    a.orders += 1;
                }
            }
        }
    }
    let currencies = acc
        .into_iter()
        .map(|(currency, a)| CurrencyTotals {
            currency: currency.to_string(),
            claimed_cents: clamp(a.claimed),
            verified_cents: clamp(a.verified),
            ghost_cents: clamp(a.ghost),
            unclaimed_cents: clamp(a.unclaimed),
            discrepancy_bps: discrepancy_bps(a.claimed, a.verified),
            orders: a.orders,
        })
        .collect();
    Summary { counts, currencies }
}

/// |claimed − verified| / claimed in basis points, rounded half up; capped at i64.
pub fn discrepancy_bps(claimed: i128, verified: i128) -> i64 {
    let diff = (claimed - verified).abs();
    if claimed == 0 {
        return if diff == 0 { 0 } else { 10_000 };
    }
    let c = claimed.abs();
    clamp((diff * 10_000 + c / 2) / c)
}

#[cfg(test)]
mod tests;
