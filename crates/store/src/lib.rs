//! Tally's PostgreSQL layer.
//!
//! - [`cluster`]: the PostgreSQL server Tally starts itself when no `DATABASE_URL` is given.
//! - [`db`]: pools per role, embedded migrations (`migrations/`), tenant-scoped transactions.
//! - [`tenants`]: tenants, their settings and API keys.
//! - `testing` (feature): one throwaway cluster per test binary, a fresh database per test.
//!
//! The database is the second line of defence for every invariant: row-level security keeps
//! tenants apart, grants and triggers keep events and money append-only, a trigger refuses PII.

pub mod cluster;
pub mod db;
pub mod error;
pub mod ids;
pub mod tenants;
#[cfg(feature = "testing")]
pub mod testing;

pub use db::{Database, DbConfig, TenantTx};
pub use error::StoreError;
pub use ids::{KeyId, TenantId};
