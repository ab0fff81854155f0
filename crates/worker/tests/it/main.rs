//! Worker integration tests: real PostgreSQL (one throwaway cluster for this binary, a fresh
//! database per test), real queue, real recompute.

mod barrier;
mod common;
mod prune;
mod queue;
mod recompute;
mod upkeep;
