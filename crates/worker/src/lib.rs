//! Tally's background workers.
//!
//! - [`queue`]: runs jobs from the PostgreSQL queue (`tally_store::jobs`): claims across tenants
//!   as `tally_operator`, works as `tally_app` inside the job's tenant, keeps the lease alive,
//!   retries with exponential backoff and jitter, dead-letters after `max_attempts`, wakes on
//!   `LISTEN tally_jobs` and polls as a fallback.
//! - [`recompute`]: the attribution recompute job: load a window, run the eight models, replace
//!   the window's allocations, then reconcile it.
//! - [`reconcile`]: the reconciliation job: tracked against paid per order, verified shares of
//!   the allocations, the window's rollups.
//! - [`upkeep`]: folding realtime deltas and scheduling nightly reconciliations.
//!
//! - [`bench`](mod@bench): a generated day of events, for the recompute benchmark and tests.
//!
//! Workers keep no state of their own: any number of processes may run against one database.

pub mod bench;
pub mod queue;
pub mod recompute;
pub mod reconcile;
pub mod upkeep;

pub use queue::{Handler, Handlers, Worker, WorkerConfig};
