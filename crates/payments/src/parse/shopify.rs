//! Shopify REST webhooks: `orders/create`, `orders/paid`, `refunds/create`.
//!
//! `order_id` is Shopify's numeric order `id`, not its `name` (`#1001`): a refund payload carries
//! only `order_id`, names are merchant-formatted and not unique, and the id is what Shopify's
//! checkout events report to tracking.

use super::json::{self, from_slice};
use super::{Delivery, Ignored, Outcome, ParseError};
use crate::headers::required;
use crate::{EntryType, Headers, Posting, Source};
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub(crate) const TOPIC_HEADER: &str = "X-Shopify-Topic";
pub(crate) const EVENT_ID_HEADER: &str = "X-Shopify-Event-Id";
/// Older deliveries (and some apps' replays) carry only the webhook id.
pub(crate) const WEBHOOK_ID_HEADER: &str = "X-Shopify-Webhook-Id";

pub(super) fn parse(headers: &dyn Headers, body: &[u8]) -> Result<Delivery, ParseError> {
    let topic = required(headers, TOPIC_HEADER, ParseError::MissingHeader)?;
    let delivery_key = headers
        .header(EVENT_ID_HEADER)
        .or_else(|| headers.header(WEBHOOK_ID_HEADER))
        .ok_or(ParseError::MissingHeader(EVENT_ID_HEADER))?;
    let outcome = match topic {
        "orders/paid" => order(body, true)?,
        "orders/create" => order(body, false)?,
        "refunds/create" => refund(body)?,
        _ => Outcome::Ignored(Ignored::UnhandledTopic),
    };
    Ok(Delivery {
        delivery_key: delivery_key.to_string(),
        topic: topic.to_string(),
        outcome,
    })
}

#[derive(Deserialize)]
struct Order {
    #[serde(deserialize_with = "json::id")]
    id: String,
    /// In the shop's currency (`currency`), not the buyer's `presentment_currency`: the shop's
    /// currency is what the merchant is paid in.
    total_price: String,
    currency: String,
    financial_status: Option<String>,
    processed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// One payment per order, keyed by the order id, so `orders/create` (when created already paid)
/// and `orders/paid` for the same order post once.
fn order(body: &[u8], paid_topic: bool) -> Result<Outcome, ParseError> {
    let order: Order = from_slice(body)?;
    let status = order.financial_status.unwrap_or_default();
    if !paid_topic && status != "paid" {
        return Ok(Outcome::Ignored(Ignored::NotPaid { status }));
    }
    let currency = json::currency("currency", &order.currency)?;
    let amount = json::decimal("total_price", currency, &order.total_price)?;
    Ok(Outcome::Post(vec![Posting {
        source: Source::Shopify,
        entry_type: EntryType::Payment,
        external_id: order.id.clone(),
        amount_minor: json::signed(EntryType::Payment, "total_price", amount)?,
        currency,
        payment_ref: Some(order.id.clone()),
        order_id: Some(order.id),
        occurred_at: order.processed_at.unwrap_or(order.created_at),
    }]))
}

#[derive(Deserialize)]
struct Refund {
    #[serde(deserialize_with = "json::id")]
    id: String,
    #[serde(deserialize_with = "json::id")]
    order_id: String,
    created_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    transactions: Vec<Transaction>,
}

#[derive(Deserialize)]
struct Transaction {
    kind: String,
    status: String,
    amount: String,
    currency: String,
}

/// The money a refund returned is its successful `refund` transactions, not the line items
/// (which may be restocked without any money moving).
fn refund(body: &[u8]) -> Result<Outcome, ParseError> {
    let refund: Refund = from_slice(body)?;
    let mut total: Option<(tally_core::money::CurrencyCode, i64)> = None;
    for transaction in refund
        .transactions
        .iter()
        .filter(|t| t.kind == "refund" && t.status == "success")
    {
        let currency = json::currency("transactions[].currency", &transaction.currency)?;
        let amount = json::decimal("transactions[].amount", currency, &transaction.amount)?;
        total = Some(match total {
            None => (currency, amount),
            Some((first, sum)) if first == currency => {
                let sum = tally_core::money::check_amount(sum + amount).map_err(|source| {
                    ParseError::InvalidAmount {
                        field: "transactions[].amount",
                        source,
                    }
                })?;
                (first, sum)
            }
            Some((first, _)) => {
                return Err(ParseError::InvalidField {
                    field: "transactions[].currency",
                    reason: format!("refund mixes {first} and {currency}"),
                });
            }
        });
    }
    let Some((currency, amount)) = total.filter(|(_, amount)| *amount != 0) else {
        return Ok(Outcome::Ignored(Ignored::NoMoneyMoved));
    };
    Ok(Outcome::Post(vec![Posting {
        source: Source::Shopify,
        entry_type: EntryType::Refund,
        external_id: refund.id,
        amount_minor: json::signed(EntryType::Refund, "transactions[].amount", amount)?,
        currency,
        payment_ref: Some(refund.order_id.clone()),
        order_id: Some(refund.order_id),
        occurred_at: refund.processed_at.unwrap_or(refund.created_at),
    }]))
}
