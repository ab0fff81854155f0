//! Tally's PostgreSQL layer.
//!
//! - [`cluster`]: the PostgreSQL server Tally starts itself when no `DATABASE_URL` is given.
//! - [`db`]: pools per role, embedded migrations (`migrations/`), tenant-scoped transactions.
//! - [`tenants`]: tenants and their API keys; [`settings`]: their settings and changing them.
//! - [`webhooks`]: payment webhook endpoints and their delivery inbox; [`secrets`]: their
//!   signing secrets, sealed at rest.
//! - [`idempotency`]: stored answers for requests sent with an `Idempotency-Key`.
//! - [`identity`]: identity stitching (links, the shopper graph, journey keys).
//! - [`ledger`]: the append-only revenue ledger, its queries and manual adjustments.
//! - [`jobs`]: the job queue (claim, lease, retry, dead letter, replay).
//! - [`recompute`]: scheduling and writing attribution recomputes; [`attribution`]: reading them.
//! - [`reconciliation`]: reconciliation runs (tracked against paid, per order) and their items.
//! - [`rollups`]: the read side's hour and day summaries; [`live`]: realtime totals.
//! - [`sessions`]: dashboard sessions (a cookie token standing for an API key).
//! - `testing` (feature): one throwaway cluster per test binary, a fresh database per test.
//!
//! The database is the second line of defence for every invariant: row-level security keeps
//! tenants apart, grants and triggers keep events and money append-only, a trigger refuses PII.

pub mod attribution;
pub mod changes;
pub mod channels;
pub mod cluster;
pub mod cursor;
pub mod db;
pub mod dead_events;
pub mod doc;
pub mod error;
pub mod event_queries;
pub mod events;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod jobs;
mod keyset;
pub mod ledger;
pub mod live;
pub mod recompute;
pub mod reconciliation;
pub mod rollups;
pub mod secrets;
pub mod sessions;
pub mod settings;
pub mod tenants;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

pub use db::{Database, DbConfig, TenantTx};
pub use error::{Fault, Refusal, StoreError};
pub use ids::{KeyId, TenantId};
