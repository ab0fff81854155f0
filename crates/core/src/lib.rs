//! Tally's domain, pure and synchronous: nothing here does I/O, so everything here is cheap to
//! property-test and fast enough to sit on the ingestion hot path.
//!
//! - [`money`]: decimal strings and JSON numbers to exact minor units (ISO 4217 exponents).
//! - [`pii`]: which JSON keys and values are personal data (the app-side PII guard; the database
//!   has a trigger with the same key list as the second layer).
//! - [`channel`]: marketing channel normalisation from UTM tags, click ids and referrers.
//! - [`event`]: the tracking event contract, its validation and its canonical hash.
//! - [`reconcile`]: one order's tracked side against its paid side, and run totals per currency.
//! - [`storable`]: what PostgreSQL cannot store (U+0000), found anywhere in a JSON document.
//! - [`time`]: client timestamps bounded to RFC 3339's years, which PostgreSQL can store.

pub mod channel;
pub mod event;
pub mod money;
pub mod pii;
pub mod pointer;
pub mod reconcile;
pub mod storable;
pub mod time;
