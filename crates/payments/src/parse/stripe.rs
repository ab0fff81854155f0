//! Stripe events: `payment_intent.succeeded`, `charge.succeeded`, `charge.refunded`,
//! `charge.dispute.created`.
//!
//! Stripe amounts are integers already in Stripe's minor unit, which is ISO 4217's for every
//! currency (JPY `500` is ¥500, KWD `5120` is 5.120 KWD) except ISK, which Stripe kept two-decimal
//! after it became zero-decimal: see [`minor_units`].
//!
//! Stripe has no order of its own; the merchant's order id travels in `metadata.order_id`.
//! `occurred_at` is the event's `created` for payments (when Stripe recorded the success) and the
//! refund's or dispute's own `created` otherwise.

use super::json::{self, from_slice, from_value};
use super::{Delivery, Ignored, Outcome, ParseError};
use crate::{EntryType, Posting, Source};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tally_core::money::CurrencyCode;

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: Value,
    previous_attributes: Option<Value>,
}

pub(super) fn parse(body: &[u8]) -> Result<Delivery, ParseError> {
    let event: Event = from_slice(body)?;
    let created = unix("created", event.created)?;
    let object = event.data.object;
    let outcome = match event.kind.as_str() {
        "payment_intent.succeeded" => payment_intent(from_value(object)?, created)?,
        "charge.succeeded" => charge_succeeded(from_value(object)?, created)?,
        "charge.refunded" => {
            charge_refunded(from_value(object)?, event.data.previous_attributes, created)?
        }
        "charge.dispute.created" => dispute(from_value(object)?)?,
        _ => Outcome::Ignored(Ignored::UnhandledTopic),
    };
    Ok(Delivery {
        delivery_key: event.id,
        topic: event.kind,
        outcome,
    })
}

#[derive(Deserialize, Default)]
struct Metadata {
    order_id: Option<String>,
}

#[derive(Deserialize)]
struct PaymentIntent {
    id: String,
    amount_received: i64,
    currency: String,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Charge {
    id: String,
    payment_intent: Option<String>,
    amount: i64,
    amount_captured: Option<i64>,
    captured: Option<bool>,
    #[serde(default)]
    amount_refunded: i64,
    currency: String,
    #[serde(default)]
    metadata: Metadata,
    refunds: Option<RefundList>,
}

#[derive(Deserialize)]
struct RefundList {
    data: Vec<Refund>,
}

#[derive(Deserialize)]
struct Refund {
    id: String,
    amount: i64,
    currency: String,
    status: Option<String>,
    created: i64,
}

#[derive(Deserialize)]
struct Dispute {
    id: String,
    /// The disputed charge, and its payment intent when it had one: what ties the chargeback
    /// to its payment when the dispute's metadata names no order.
    charge: String,
    payment_intent: Option<String>,
    amount: i64,
    currency: String,
    created: i64,
    #[serde(default)]
    metadata: Metadata,
}

/// What every Stripe posting is made of besides its amount.
struct Fact {
    entry_type: EntryType,
    external_id: String,
    /// The payment intent, else the charge: the same for `payment_intent.succeeded` and
    /// `charge.succeeded` of one payment (see [`payment_ref`]).
    payment_ref: String,
    order_id: Option<String>,
    occurred_at: DateTime<Utc>,
}

/// A payment's reference: its payment intent, else (a charge made without one) the charge.
fn payment_ref(payment_intent: Option<&str>, charge: &str) -> String {
    payment_intent.unwrap_or(charge).to_string()
}

/// A posting from a Stripe integer amount; `field` names the amount in errors.
fn posting(
    fact: Fact,
    field: &'static str,
    amount: i64,
    currency: &str,
) -> Result<Posting, ParseError> {
    let (currency, amount) = minor_units(field, amount, currency)?;
    Ok(Posting {
        source: Source::Stripe,
        entry_type: fact.entry_type,
        external_id: fact.external_id,
        amount_minor: json::signed(fact.entry_type, field, amount)?,
        currency,
        order_id: fact.order_id,
        payment_ref: Some(fact.payment_ref),
        occurred_at: fact.occurred_at,
    })
}

/// `payment_intent.succeeded` and `charge.succeeded` report the same money, so both key the
/// payment on the payment intent id (a charge made without a payment intent keys on its own id)
/// and the second to arrive finds the fact already posted. They can differ in `order_id`: a
/// payment intent's metadata is not copied onto its charge, so the first delivery decides.
fn payment_intent(intent: PaymentIntent, created: DateTime<Utc>) -> Result<Outcome, ParseError> {
    let fact = Fact {
        entry_type: EntryType::Payment,
        payment_ref: intent.id.clone(),
        external_id: intent.id,
        order_id: json::reference(intent.metadata.order_id),
        occurred_at: created,
    };
    let payment = posting(
        fact,
        "amount_received",
        intent.amount_received,
        &intent.currency,
    )?;
    Ok(Outcome::Post(vec![payment]))
}

/// A charge succeeds at authorisation when capture is manual (`captured: false`); the money
/// moves at capture, which `payment_intent.succeeded` reports. `amount_captured` is what was
/// taken when a capture was partial.
fn charge_succeeded(charge: Charge, created: DateTime<Utc>) -> Result<Outcome, ParseError> {
    if charge.captured == Some(false) {
        return Ok(Outcome::Ignored(Ignored::NotCaptured));
    }
    let reference = payment_ref(charge.payment_intent.as_deref(), &charge.id);
    let fact = Fact {
        entry_type: EntryType::Payment,
        external_id: reference.clone(),
        payment_ref: reference,
        order_id: json::reference(charge.metadata.order_id),
        occurred_at: created,
    };
    let payment = posting(
        fact,
        "amount_captured",
        charge.amount_captured.unwrap_or(charge.amount),
        &charge.currency,
    )?;
    Ok(Outcome::Post(vec![payment]))
}

/// `charge.refunded` describes the charge after the refund, so its `amount_refunded` is
/// cumulative and every later event repeats the earlier refunds. Each refund in `refunds.data`
/// is posted under its own `re_...` id, so repeats are duplicates and only the new refund adds
/// money. `pending` refunds count (Stripe already includes them in `amount_refunded`); `failed`
/// and `canceled` ones returned nothing.
///
/// Since API version 2022-11-15 a charge no longer embeds `refunds`. Then the new refund is the
/// increase of `amount_refunded` over `data.previous_attributes.amount_refunded`, keyed
/// `"{charge}:refunded_to:{amount_refunded}"`: the running total only grows, so each refund has
/// its own key and a redelivery repeats it. Without `previous_attributes` the increase is
/// unknowable, so the delivery is refused (dead-lettered) rather than guessed. An account should
/// not switch between the two shapes while refunds are in flight: a refund seen both ways would
/// be keyed twice.
fn charge_refunded(
    charge: Charge,
    previous: Option<Value>,
    created: DateTime<Utc>,
) -> Result<Outcome, ParseError> {
    let order_id = json::reference(charge.metadata.order_id);
    let reference = payment_ref(charge.payment_intent.as_deref(), &charge.id);
    let refund_fact = |external_id: String, occurred_at: DateTime<Utc>| Fact {
        entry_type: EntryType::Refund,
        external_id,
        payment_ref: reference.clone(),
        order_id: order_id.clone(),
        occurred_at,
    };
    let refunds = charge.refunds.map(|list| list.data).unwrap_or_default();
    let postings = if refunds.is_empty() {
        let before = previous
            .as_ref()
            .and_then(|p| p.get("amount_refunded"))
            .and_then(Value::as_i64)
            .ok_or_else(|| {
                ParseError::InvalidPayload(
                    "charge.refunded has neither refunds.data nor \
                     previous_attributes.amount_refunded"
                        .into(),
                )
            })?;
        let newly_refunded = charge
            .amount_refunded
            .checked_sub(before)
            .ok_or_else(|| json::out_of_range("amount_refunded", charge.amount_refunded))?;
        if newly_refunded > 0 {
            let external_id = format!("{}:refunded_to:{}", charge.id, charge.amount_refunded);
            vec![posting(
                refund_fact(external_id, created),
                "amount_refunded",
                newly_refunded,
                &charge.currency,
            )?]
        } else {
            Vec::new()
        }
    } else {
        refunds
            .into_iter()
            .filter(|refund| !matches!(refund.status.as_deref(), Some("failed" | "canceled")))
            .map(|refund| {
                let created = unix("refunds.data[].created", refund.created)?;
                posting(
                    refund_fact(refund.id, created),
                    "refunds.data[].amount",
                    refund.amount,
                    &refund.currency,
                )
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(if postings.is_empty() {
        Outcome::Ignored(Ignored::NoMoneyMoved)
    } else {
        Outcome::Post(postings)
    })
}

/// The disputed amount leaves the balance when the dispute opens; winning it back arrives as a
/// later event Tally does not post yet. A dispute carries no order id unless the merchant put one
/// in the dispute's own metadata; otherwise its payment reference leads to the order.
fn dispute(dispute: Dispute) -> Result<Outcome, ParseError> {
    let fact = Fact {
        entry_type: EntryType::Chargeback,
        external_id: dispute.id,
        payment_ref: payment_ref(dispute.payment_intent.as_deref(), &dispute.charge),
        order_id: json::reference(dispute.metadata.order_id),
        occurred_at: unix("created", dispute.created)?,
    };
    let chargeback = posting(fact, "amount", dispute.amount, &dispute.currency)?;
    Ok(Outcome::Post(vec![chargeback]))
}

/// Converts a Stripe integer amount to ISO 4217 minor units. ISK is the one currency where they
/// differ: Stripe still counts ISK in hundredths (`100` is 1 króna) and since 2023 accepts only
/// multiples of 100, so the division is exact; an old fractional-króna amount is refused rather
/// than rounded.
fn minor_units(
    field: &'static str,
    amount: i64,
    currency: &str,
) -> Result<(CurrencyCode, i64), ParseError> {
    let currency = json::currency("currency", currency)?;
    let stripe_exponent = if currency.as_str() == "ISK" {
        2
    } else {
        currency.exponent()
    };
    let divisor = 10i64.pow(u32::from(
        stripe_exponent.saturating_sub(currency.exponent()),
    ));
    if amount % divisor != 0 {
        return Err(ParseError::InvalidField {
            field,
            reason: format!("{amount} is not a whole number of {currency} minor units"),
        });
    }
    let amount = tally_core::money::check_amount(amount / divisor)
        .map_err(|source| ParseError::InvalidAmount { field, source })?;
    Ok((currency, amount))
}

fn unix(field: &'static str, seconds: i64) -> Result<DateTime<Utc>, ParseError> {
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| ParseError::InvalidField {
        field,
        reason: format!("{seconds} is not a unix timestamp"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_minor_units_follow_iso_except_isk() {
        let units = |amount, code| {
            minor_units("amount", amount, code).map(|(c, a)| (c.as_str().to_string(), a))
        };
        assert_eq!(units(5999, "usd"), Ok(("USD".into(), 5999)));
        assert_eq!(units(500, "jpy"), Ok(("JPY".into(), 500)));
        assert_eq!(units(5120, "kwd"), Ok(("KWD".into(), 5120)));
        assert_eq!(units(10_000, "isk"), Ok(("ISK".into(), 100)));
        assert!(matches!(
            units(4010, "isk"),
            Err(ParseError::InvalidField { .. })
        ));
        assert!(matches!(
            units(100, "zzz"),
            Err(ParseError::InvalidAmount { .. })
        ));
    }
}
