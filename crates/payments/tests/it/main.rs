//! Integration tests: one binary, a module per concern. Every request is signed the way its
//! vendor signs it (`tally_payments::testing`), over bodies shaped like the vendor's.

mod fixtures;
mod fuzz;
mod ledger;
mod parse;
mod references;
mod verify;
