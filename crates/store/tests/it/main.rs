//! Store integration tests: one throwaway PostgreSQL cluster for this binary, a fresh database
//! per test. Everything runs against real roles, grants, policies and triggers.

mod append_only;
mod cluster;
mod constraints;
mod fixtures;
mod isolation;
mod keys;
mod pii;
mod secrets;
mod seed;
