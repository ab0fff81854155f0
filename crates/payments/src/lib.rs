//! Payment webhooks, from raw request to ledger postings: pure, synchronous, no I/O, no clock.
//!
//! Revenue in Tally is only as good as the facts behind it, so everything here errs on the side of
//! refusing: a signature is checked over the raw bytes the vendor signed (never a re-serialised
//! body), amounts are parsed exactly into minor units, and every posting is keyed by the
//! provider's own transaction id so that retries, duplicates and out-of-order deliveries can never
//! count money twice.
//!
//! The server's webhook handler calls, in order:
//!
//! 1. [`verify`] with the endpoint's [`VerifyingKeys`] (for PayPal, fetch the certificate from the
//!    URL that [`paypal_cert_url`] allowed, or use the one configured on the endpoint). A
//!    WooCommerce creation ping comes back as [`Verified::WooCommercePing`]: answer 200, store
//!    nothing.
//! 2. [`parse`] into a [`Delivery`]: its `delivery_key` dedups the delivery itself (unique
//!    `(tenant, source, delivery_key)`), its [`Outcome`] either carries [`Posting`]s, each unique
//!    by its [`PostingKey`] in the ledger, or says why the delivery moved no money.
//! 3. [`Delivery::for_endpoint`] with the endpoint's [`EndpointScope`]: qualifies the ids of
//!    vendors whose ids are unique only within one shop, and applies the endpoint's order id
//!    prefix.
//!
//! A [`VerifyError`] is an untrusted request (answer 401 and keep nothing); a [`ParseError`] is a
//! genuine delivery Tally cannot read (answer 2xx so the vendor stops retrying, and dead-letter it
//! for replay once the parser learns the shape). Both have stable snake_case `code()`s.
//!
//! Layout: `source.rs` names the vendors, `headers.rs` abstracts header lookup, `verify/` holds
//! one module per vendor's signature scheme (the three HMAC ones share `verify/hmac.rs`), `parse/`
//! one module per vendor's payload, `nul.rs` finds the NUL characters PostgreSQL cannot store,
//! `endpoint.rs` scopes postings to their endpoint, and `posting.rs` the normalised ledger fact.
//! With the
//! `testing` feature, the `testing` module signs requests exactly as each vendor does, for tests
//! here and in the server (enable it from `[dev-dependencies]` only).

mod endpoint;
mod headers;
mod nul;
mod parse;
mod posting;
mod source;
#[cfg(feature = "testing")]
pub mod testing;
mod verify;

pub use endpoint::EndpointScope;
pub use headers::Headers;
pub use nul::strip_nul;
pub use parse::{Delivery, Ignored, Outcome, ParseError, parse};
pub use posting::{EntryType, MAX_ID_CHARS, Posting, PostingKey};
pub use source::{Source, UnknownSource};
pub use verify::paypal::{paypal_cert_url, validate_cert_url};
pub use verify::{STRIPE_TOLERANCE, Verified, VerifyError, VerifyingKeys, verify};
