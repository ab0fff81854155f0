//! From a verified body to a [`Delivery`]: which delivery it is, and what money it moved.
//!
//! Every vendor gets the same treatment: amounts become exact signed minor units (decimal strings
//! through `tally_core::money`, never floats), each posting is keyed by the provider's id for the
//! money movement rather than for the delivery, and a topic that moves no money is [`Ignored`]
//! with a reason instead of failing.

mod json;
mod paypal;
pub(crate) mod shopify;
mod stripe;
pub(crate) mod woocommerce;

use crate::{Headers, Posting, Source};
use std::fmt;
use tally_core::money::MoneyError;

/// A verified webhook delivery, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Identifies the delivery itself, stable across the vendor's retries: the inbox's unique
    /// `(tenant, source, delivery_key)`. Not the idempotency key for money: that is each
    /// posting's [`PostingKey`](crate::PostingKey), because different deliveries (two topics, a
    /// cumulative event) can carry the same money.
    pub delivery_key: String,
    /// The vendor's event name, as sent (`orders/paid`, `charge.refunded`, ...).
    pub topic: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Facts for the ledger; never empty.
    Post(Vec<Posting>),
    /// A genuine delivery that moves no money: answer 200 and record it, so the vendor stops
    /// retrying and the inbox shows why nothing was posted.
    Ignored(Ignored),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// A topic Tally's ledger does not take (subscribed by mistake, or informational).
    UnhandledTopic,
    /// An order whose payment status says it is not paid (yet); the paid snapshot will post.
    NotPaid { status: String },
    /// A Stripe charge that was only authorised; `payment_intent.succeeded` posts the capture.
    NotCaptured,
    /// A refund that returned no money (Shopify restock-only refunds, failed Stripe refunds).
    NoMoneyMoved,
}

impl Ignored {
    pub fn code(&self) -> &'static str {
        match self {
            Ignored::UnhandledTopic => "unhandled_topic",
            Ignored::NotPaid { .. } => "not_paid",
            Ignored::NotCaptured => "not_captured",
            Ignored::NoMoneyMoved => "no_money_moved",
        }
    }
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::UnhandledTopic => f.write_str("topic moves no money in the ledger"),
            Ignored::NotPaid { status } => write!(f, "order is not paid (status {status:?})"),
            Ignored::NotCaptured => f.write_str("charge was authorised, not captured"),
            Ignored::NoMoneyMoved => f.write_str("refund returned no money"),
        }
    }
}

/// A genuine (verified) delivery Tally cannot read. The server dead-letters it for replay rather
/// than failing the request: the vendor retrying the same bytes would not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not JSON: {0}")]
    MalformedJson(String),
    /// JSON, but not the shape the topic promises (a missing or mistyped field).
    #[error("unexpected payload: {0}")]
    InvalidPayload(String),
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("{field}: {source}")]
    InvalidAmount {
        field: &'static str,
        source: MoneyError,
    },
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// A string or member name holds U+0000, which PostgreSQL cannot store.
    #[error("the payload holds a NUL character (\\u0000), which cannot be stored")]
    NulCharacter,
}

impl ParseError {
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::MalformedJson(_) => "malformed_json",
            ParseError::InvalidPayload(_) => "invalid_payload",
            ParseError::MissingHeader(_) => "missing_header",
            ParseError::InvalidAmount { .. } => "invalid_amount",
            ParseError::InvalidField { .. } => "invalid_field",
            ParseError::NulCharacter => "nul_character",
        }
    }
}

/// Reads a delivery that [`verify`](crate::verify) accepted (not a WooCommerce ping, which has
/// nothing to read).
pub fn parse(source: Source, headers: &dyn Headers, body: &[u8]) -> Result<Delivery, ParseError> {
    let delivery = match source {
        Source::Shopify => shopify::parse(headers, body),
        Source::Stripe => stripe::parse(body),
        Source::PayPal => paypal::parse(body),
        Source::WooCommerce => woocommerce::parse(headers, body),
    }?;
    delivery.check_storable()?;
    Ok(delivery)
}

/// The longest delivery key the inbox stores (its `CHECK`), in characters.
const MAX_DELIVERY_KEY_CHARS: usize = 512;

impl Delivery {
    /// Refuses what the inbox or the ledger could not store, so that it is dead-lettered with a
    /// reason instead of failing the same way on every retry of the vendor.
    pub(crate) fn check_storable(&self) -> Result<(), ParseError> {
        let chars = self.delivery_key.chars().count();
        if !(1..=MAX_DELIVERY_KEY_CHARS).contains(&chars) {
            return Err(ParseError::InvalidField {
                field: "delivery key",
                reason: format!(
                    "{chars} characters; the inbox keeps keys of 1 to {MAX_DELIVERY_KEY_CHARS}"
                ),
            });
        }
        match &self.outcome {
            Outcome::Post(postings) => postings.iter().try_for_each(Posting::check_storable),
            Outcome::Ignored(_) => Ok(()),
        }
    }
}
