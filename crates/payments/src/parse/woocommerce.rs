//! WooCommerce order webhooks (`order.created`, `order.updated`): each delivery is a snapshot of
//! the whole order, refunds included, so postings are derived from the snapshot's state rather
//! than from the event.
//!
//! `order_id` is the order's `id`, not its `number`: sequential-number plugins rewrite `number`,
//! and the id is what tracking receives from WooCommerce's checkout.

use super::json::{self, from_slice, from_value};
use super::{Delivery, Ignored, Outcome, ParseError};
use crate::headers::required;
use crate::{EntryType, Headers, Posting, Source};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const TOPIC_HEADER: &str = "X-WC-Webhook-Topic";
/// New on every attempt, so only a last resort for the delivery key.
pub(crate) const DELIVERY_ID_HEADER: &str = "X-WC-Webhook-Delivery-ID";

/// Statuses in which the order has been paid. `refunded` is among them: WooCommerce does not
/// retry failed deliveries, so the snapshot that says "refunded" may be the only one Tally sees,
/// and the payment it reverses must be posted too (keyed by order id, it never doubles).
const PAID_STATUSES: [&str; 3] = ["processing", "completed", "refunded"];

pub(super) fn parse(headers: &dyn Headers, body: &[u8]) -> Result<Delivery, ParseError> {
    let topic = required(headers, TOPIC_HEADER, ParseError::MissingHeader)?;
    let snapshot: Value = from_slice(body)?;
    let delivery_key = delivery_key(topic, &snapshot, headers)?;
    let outcome = match topic {
        "order.created" | "order.updated" => order(from_value(snapshot)?)?,
        _ => Outcome::Ignored(Ignored::UnhandledTopic),
    };
    Ok(Delivery {
        delivery_key,
        topic: topic.to_string(),
        outcome,
    })
}

/// WooCommerce's delivery id changes on every attempt, so a delivery is identified by the state
/// it reports: `"{resource}:{id}:{date_modified}:{status}"` (the resource from the topic, so an
/// order and a product with the same id never collide). Two topics reporting one state
/// (`order.created` and an immediate `order.updated`) are rightly the same delivery.
fn delivery_key(
    topic: &str,
    snapshot: &Value,
    headers: &dyn Headers,
) -> Result<String, ParseError> {
    let text = |field: &str| match snapshot.get(field) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match text("id") {
        Some(id) => {
            let resource = topic.split('.').next().unwrap_or(topic);
            let modified = text("date_modified").unwrap_or_default();
            let status = text("status").unwrap_or_default();
            Ok(format!("{resource}:{id}:{modified}:{status}"))
        }
        // Not a resource snapshot (an `action.*` topic): nothing to dedup on but the attempt.
        None => Ok(required(headers, DELIVERY_ID_HEADER, ParseError::MissingHeader)?.to_string()),
    }
}

#[derive(Deserialize)]
struct Order {
    #[serde(deserialize_with = "json::id")]
    id: String,
    status: String,
    currency: String,
    total: String,
    date_created_gmt: NaiveDateTime,
    date_paid_gmt: Option<NaiveDateTime>,
    date_modified_gmt: Option<NaiveDateTime>,
    #[serde(default)]
    refunds: Vec<Refund>,
}

#[derive(Deserialize)]
struct Refund {
    #[serde(deserialize_with = "json::id")]
    id: String,
    /// Negative in WooCommerce (`"-5.00"`); the entry type gives the ledger's sign.
    total: String,
}

/// The payment when the status says paid, plus every refund listed: refunds are facts whatever
/// the status now is, and each is keyed by its own id so repeated snapshots never double them.
/// WooCommerce's `_gmt` dates are UTC without an offset. A refund in the snapshot has no date of
/// its own, so it takes the order's last modification: the first snapshot listing a refund is
/// the one written by that refund.
fn order(order: Order) -> Result<Outcome, ParseError> {
    let currency = json::currency("currency", &order.currency)?;
    let order_id = order.id;
    let posting = |entry_type: EntryType,
                   external_id: String,
                   field: &'static str,
                   amount: i64,
                   at: NaiveDateTime| {
        Ok::<_, ParseError>(Posting {
            source: Source::WooCommerce,
            entry_type,
            external_id,
            amount_minor: json::signed(entry_type, field, amount)?,
            currency,
            order_id: Some(order_id.clone()),
            payment_ref: Some(order_id.clone()),
            occurred_at: DateTime::<Utc>::from_naive_utc_and_offset(at, Utc),
        })
    };
    let mut postings = Vec::new();
    if PAID_STATUSES.contains(&order.status.as_str()) {
        let amount = json::decimal("total", currency, &order.total)?;
        let paid_at = order.date_paid_gmt.unwrap_or(order.date_created_gmt);
        postings.push(posting(
            EntryType::Payment,
            order_id.clone(),
            "total",
            amount,
            paid_at,
        )?);
    }
    let modified_at = order.date_modified_gmt.unwrap_or(order.date_created_gmt);
    for refund in order.refunds {
        let amount = json::decimal("refunds[].total", currency, &refund.total)?;
        postings.push(posting(
            EntryType::Refund,
            refund.id,
            "refunds[].total",
            amount,
            modified_at,
        )?);
    }
    Ok(if postings.is_empty() {
        Outcome::Ignored(Ignored::NotPaid {
            status: order.status,
        })
    } else {
        Outcome::Post(postings)
    })
}
