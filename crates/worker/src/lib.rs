//! Tally's background workers.
//!
//! - [`queue`]: runs jobs from the PostgreSQL queue (`tally_store::jobs`): claims across tenants
//!   as `tally_operator`, works as `tally_app` inside the job's tenant, keeps the lease alive,
//!   retries with exponential backoff and jitter, dead-letters after `max_attempts`, wakes on
//!   `LISTEN tally_jobs` and polls as a fallback.
//! - [`recompute`]: the attribution recompute job: load a window, run the eight models, replace
//!   the window's allocations and rollups.
//!
//! - [`bench`](mod@bench): a generated day of events, for the recompute benchmark and tests.
//!
//! Workers keep no state of their own: any number of processes may run against one database.

pub mod bench;
pub mod queue;
pub mod recompute;

pub use queue::{Handler, Handlers, Worker, WorkerConfig};
