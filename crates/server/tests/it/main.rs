//! HTTP integration tests: real server on a loopback port, real PostgreSQL (one throwaway
//! cluster for this binary, a fresh database per test), real HTTP through reqwest.

mod attribution;
mod auth;
mod browser;
mod common;
mod dashboard;
mod events;
mod health;
mod ledger;
mod reconciliation;
mod vendors;
mod webhook_model;
mod webhooks;
