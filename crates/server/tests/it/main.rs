//! HTTP integration tests: real server on a loopback port, real PostgreSQL (one throwaway
//! cluster for this binary, a fresh database per test), real HTTP through reqwest.

mod attribution;
mod auth;
mod browser;
mod collect;
mod collect_browser;
mod common;
mod dashboard;
mod events;
mod faults;
mod health;
mod idempotency;
mod identity;
mod input;
mod ledger;
mod openapi;
mod payment_links;
mod reconciliation;
mod segment;
mod settings;
mod vendors;
mod webhook_hardening;
mod webhook_model;
mod webhooks;
