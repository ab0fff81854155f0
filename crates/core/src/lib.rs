//! Tally's domain, pure and synchronous: nothing here does I/O, so everything here is cheap to
//! property-test and fast enough to sit on the ingestion hot path.
//!
//! - [`money`]: decimal strings and JSON numbers to exact minor units (ISO 4217 exponents).
//! - [`pii`]: which JSON keys and values are personal data (the app-side PII guard; the database
//!   has a trigger with the same key list as the second layer).
//! - [`channel`]: marketing channel normalisation from UTM tags, click ids and referrers.
//! - [`event`]: the tracking event contract, its validation and its canonical hash.
//! - [`reconcile`]: one order's tracked side against its paid side, and run totals per currency.

pub mod channel;
pub mod event;
pub mod money;
pub mod pii;
mod pointer;
pub mod reconcile;
