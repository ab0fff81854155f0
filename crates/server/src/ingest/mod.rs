//! Event ingestion: validate, rate-limit, write exactly once, dead-letter the rest.
//!
//! - [`tenant`]: per-tenant ingestion context (channel resolver, currency, rate limiter),
//!   cached so the hot path never reads rules or settings from the database.
//! - [`limit`]: GCRA rate limits that count events, not requests (per tenant, and per key
//!   for keys with a limit of their own).
//! - [`segment`]: Segment / RudderStack calls mapped onto Tally events.
//! - [`group_commit`]: coalesces concurrent single-event requests into one transaction.
//! - [`batch`]: the write of a validated batch (events + dead letters + recompute schedule in
//!   one transaction), shared by both endpoints and by replays.

pub mod batch;
pub mod group_commit;
pub mod limit;
pub mod segment;
pub mod tenant;
