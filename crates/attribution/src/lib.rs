//! Tally's attribution engine: which marketing channels get credit, in whole cents, for each
//! conversion. Pure and single-threaded; the worker feeds it one tenant's window at a time.
//!
//! ```text
//! Touch[] + Conversion[] ──build_journeys──► JourneySet ──attribute(models)──► AllocationRow[]
//! ```
//!
//! - [`journey`]: the journey rules (identity, inclusive lookback, tie order, touchless conversions
//!   are `direct`, which paths count as non-converting) and the flat, interned [`JourneySet`].
//! - [`identity`]: the identity graph's fold (which ids are one shopper), capped per shopper.
//! - [`model`]: model codes and parameters.
//! - [`engine`]: runs models and rounds their credit to cents ([`attribute`]).
//! - `heuristic`, [`markov`], [`shapley`]: the models themselves. Markov removal effects are
//!   solved exactly; Shapley values are exact through the unanimity-game decomposition.
//! - [`rounding`]: largest remainder with ties broken by channel code, so every conversion's rows
//!   add up to its revenue and reruns are identical.
//! - [`bench`](mod@bench): a seeded workload and timings for `tally bench attribution`.
//!
//! ```
//! use chrono::{DateTime, TimeDelta};
//! use tally_attribution::{Conversion, ModelConfig, Touch, attribute, build_journeys, splits};
//! use uuid::Uuid;
//!
//! let at = |s: i64| DateTime::from_timestamp(1_780_000_000 + s, 0).unwrap();
//! let touch = |id, s, channel: &str| Touch {
//!     event_id: Uuid::from_u128(id),
//!     identity: "user-1".into(),
//!     occurred_at: at(s),
//!     channel: channel.into(),
//! };
//! let touches = [
//!     touch(1, 0, "organic_search"),
//!     touch(2, 60, "email"),
//!     touch(3, 120, "organic_search"),
//! ];
//! let sale = Conversion {
//!     event_id: Uuid::from_u128(9),
//!     identity: "user-1".into(),
//!     occurred_at: at(180),
//!     revenue_cents: 1_000,
//! };
//! let journeys = build_journeys(&touches, &[sale], TimeDelta::days(30)).unwrap();
//! let rows = attribute(&[ModelConfig::Linear], &journeys);
//! let split: Vec<_> = rows.iter().map(|r| (r.channel, r.allocated_cents)).collect();
//! assert_eq!(split, [("email", 333), ("organic_search", 667)]);
//! assert_eq!(splits(&rows).count(), 1);
//! ```
//!
//! Determinism is a contract: the same events in any order give bit-identical rows. Inputs are
//! sorted into a canonical order first, channels are numbered in code order, and nothing iterates
//! a randomly seeded hash map.

pub mod bench;
pub mod engine;
mod heuristic;
pub mod identity;
pub mod journey;
pub mod markov;
pub mod model;
pub mod rounding;
pub mod shapley;

pub use engine::{AllocationRow, attribute, splits};
pub use journey::{
    Conversion, ConvertingJourney, DIRECT, JourneyError, JourneySet, Touch, build_journeys,
};
pub use markov::removal_effects;
pub use model::{ConfigError, HalfLife, MarkovOrder, Model, ModelConfig, UnknownModel};
pub use rounding::{RoundingError, largest_remainder};
pub use shapley::shapley_values;

/// Version of what the models compute. Stored with every allocation and part of the recompute
/// job key; bump it whenever any model, the journey rules or the rounding could give a different
/// row for the same events, so stale results are recomputed rather than mixed with new ones.
pub const MODEL_VERSION: &str = "v1";
