//! PayPal webhook events: `PAYMENT.CAPTURE.COMPLETED`, `PAYMENT.CAPTURE.REFUNDED`.
//!
//! The resource is a capture or a refund, both with `amount = {currency_code, value}` as a
//! decimal string. The merchant's order id is the `custom_id` the merchant set on the purchase
//! unit, else its `invoice_id`.

use super::json::{self, from_slice, from_value};
use super::{Delivery, Ignored, Outcome, ParseError};
use crate::{EntryType, Posting, Source};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Event {
    id: String,
    event_type: String,
    create_time: DateTime<Utc>,
    resource: Value,
}

#[derive(Deserialize)]
struct Resource {
    id: String,
    amount: Amount,
    custom_id: Option<String>,
    invoice_id: Option<String>,
    create_time: Option<DateTime<Utc>>,
    update_time: Option<DateTime<Utc>>,
    #[serde(default)]
    links: Vec<Link>,
}

/// A HATEOAS link; a refund's `up` link is its capture (`.../v2/payments/captures/{id}`).
#[derive(Deserialize)]
struct Link {
    href: String,
    rel: String,
}

#[derive(Deserialize)]
struct Amount {
    currency_code: String,
    value: String,
}

pub(super) fn parse(body: &[u8]) -> Result<Delivery, ParseError> {
    let event: Event = from_slice(body)?;
    let entry_type = match event.event_type.as_str() {
        "PAYMENT.CAPTURE.COMPLETED" => Some(EntryType::Payment),
        "PAYMENT.CAPTURE.REFUNDED" => Some(EntryType::Refund),
        _ => None,
    };
    let outcome = match entry_type {
        Some(entry_type) => {
            let resource: Resource = from_value(event.resource)?;
            Outcome::Post(vec![posting(entry_type, resource, event.create_time)?])
        }
        None => Outcome::Ignored(Ignored::UnhandledTopic),
    };
    Ok(Delivery {
        delivery_key: event.id,
        topic: event.event_type,
        outcome,
    })
}

/// Keyed by the capture's or the refund's id. `occurred_at` is when the resource last changed
/// state (a capture can sit `PENDING` before it completes), else its creation, else the event's.
/// The payment reference is the capture: a capture's own id, a refund's `up` link (a refund
/// rarely repeats the capture's `custom_id`, so the link is what ties it to its order).
fn posting(
    entry_type: EntryType,
    resource: Resource,
    event_time: DateTime<Utc>,
) -> Result<Posting, ParseError> {
    let currency = json::currency(
        "resource.amount.currency_code",
        &resource.amount.currency_code,
    )?;
    let amount = json::decimal("resource.amount.value", currency, &resource.amount.value)?;
    let payment_ref = match entry_type {
        EntryType::Payment => Some(resource.id.clone()),
        _ => captured_by(&resource.links),
    };
    Ok(Posting {
        source: Source::PayPal,
        entry_type,
        external_id: resource.id,
        amount_minor: json::signed(entry_type, "resource.amount.value", amount)?,
        currency,
        order_id: json::reference(resource.custom_id).or(json::reference(resource.invoice_id)),
        payment_ref,
        occurred_at: resource
            .update_time
            .or(resource.create_time)
            .unwrap_or(event_time),
    })
}

/// The capture id at the end of a refund's `up` link.
fn captured_by(links: &[Link]) -> Option<String> {
    let up = links.iter().find(|link| link.rel == "up")?;
    let (_, id) = up.href.trim_end_matches('/').rsplit_once("/captures/")?;
    json::reference(Some(id.to_string()))
}
