//! Which models exist, their stable codes and their parameters.
//!
//! The codes are what the database, the API and the dashboard store and show, so they never change;
//! a change in what a model computes bumps [`crate::MODEL_VERSION`] instead.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An attribution model. The string form ([`Model::code`]) is stable and used everywhere outside
/// this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    FirstTouch,
    LastTouch,
    LastNonDirect,
    Linear,
    PositionBased,
    TimeDecay,
    Markov,
    Shapley,
}

impl Model {
    /// Every model, in the order the dashboard lists them (simple heuristics first).
    pub const ALL: [Model; 8] = [
        Model::FirstTouch,
        Model::LastTouch,
        Model::LastNonDirect,
        Model::Linear,
        Model::PositionBased,
        Model::TimeDecay,
        Model::Markov,
        Model::Shapley,
    ];

    /// Whether a conversion's split depends on its own journey only. Markov and Shapley credit
    /// channels by their effect over every path of the window, so one new path moves every split.
    pub const fn is_journey_local(self) -> bool {
        !matches!(self, Model::Markov | Model::Shapley)
    }

    pub const fn code(self) -> &'static str {
        match self {
            Model::FirstTouch => "first_touch",
            Model::LastTouch => "last_touch",
            Model::LastNonDirect => "last_non_direct",
            Model::Linear => "linear",
            Model::PositionBased => "position_based",
            Model::TimeDecay => "time_decay",
            Model::Markov => "markov",
            Model::Shapley => "shapley",
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A model code that is not one of [`Model::ALL`]; its message lists the valid ones, so a
/// client that guessed (`Linear`) learns the spelling from the error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown attribution model `{0}`; the models are {codes}", codes = model_codes())]
pub struct UnknownModel(pub String);

fn model_codes() -> String {
    Model::ALL.map(Model::code).join(", ")
}

impl FromStr for Model {
    type Err = UnknownModel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Model::ALL
            .into_iter()
            .find(|m| m.code() == s)
            .ok_or_else(|| UnknownModel(s.to_owned()))
    }
}

/// A parameter outside its documented range.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("time-decay half-life must be a positive, finite number of hours, got {0}")]
    HalfLife(f64),
    #[error("markov order must be 1, 2 or 3, got {0}")]
    MarkovOrder(u8),
}

/// Time-decay half-life in hours; always positive and finite, so weights never become NaN.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HalfLife(f64);

impl HalfLife {
    /// Seven days, the usual industry default (and the reference implementation's).
    pub const DEFAULT: HalfLife = HalfLife(7.0 * 24.0);

    pub fn from_hours(hours: f64) -> Result<Self, ConfigError> {
        if hours.is_finite() && hours > 0.0 {
            Ok(HalfLife(hours))
        } else {
            Err(ConfigError::HalfLife(hours))
        }
    }

    pub fn hours(self) -> f64 {
        self.0
    }
}

/// Markov chain order: how many consecutive channels make one state.
///
/// Capped at 3 because the number of states grows like `channels^order` and the exact solve is
/// cubic in the states; see [`crate::markov`] for what happens when a tenant's data still has too
/// many states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MarkovOrder(u8);

impl MarkovOrder {
    pub const DEFAULT: MarkovOrder = MarkovOrder(1);

    pub fn new(order: u8) -> Result<Self, ConfigError> {
        if (1..=3).contains(&order) {
            Ok(MarkovOrder(order))
        } else {
            Err(ConfigError::MarkovOrder(order))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// A model together with its parameters. Models without parameters are plain variants, so an
/// impossible combination (a half-life on `linear`) cannot be written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ModelConfig {
    FirstTouch,
    LastTouch,
    LastNonDirect,
    Linear,
    PositionBased,
    TimeDecay { half_life: HalfLife },
    Markov { order: MarkovOrder },
    Shapley,
}

impl ModelConfig {
    pub fn model(&self) -> Model {
        match self {
            ModelConfig::FirstTouch => Model::FirstTouch,
            ModelConfig::LastTouch => Model::LastTouch,
            ModelConfig::LastNonDirect => Model::LastNonDirect,
            ModelConfig::Linear => Model::Linear,
            ModelConfig::PositionBased => Model::PositionBased,
            ModelConfig::TimeDecay { .. } => Model::TimeDecay,
            ModelConfig::Markov { .. } => Model::Markov,
            ModelConfig::Shapley => Model::Shapley,
        }
    }

    /// Every model with default parameters, in [`Model::ALL`] order.
    pub fn all_defaults() -> Vec<ModelConfig> {
        Model::ALL.into_iter().map(ModelConfig::from).collect()
    }
}

impl From<Model> for ModelConfig {
    /// The model with its default parameters.
    fn from(model: Model) -> Self {
        match model {
            Model::FirstTouch => ModelConfig::FirstTouch,
            Model::LastTouch => ModelConfig::LastTouch,
            Model::LastNonDirect => ModelConfig::LastNonDirect,
            Model::Linear => ModelConfig::Linear,
            Model::PositionBased => ModelConfig::PositionBased,
            Model::TimeDecay => ModelConfig::TimeDecay {
                half_life: HalfLife::DEFAULT,
            },
            Model::Markov => ModelConfig::Markov {
                order: MarkovOrder::DEFAULT,
            },
            Model::Shapley => ModelConfig::Shapley,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        for m in Model::ALL {
            assert_eq!(m.code().parse::<Model>(), Ok(m));
            assert_eq!(m.to_string(), m.code());
            assert_eq!(ModelConfig::from(m).model(), m);
        }
        let mut codes: Vec<_> = Model::ALL.iter().map(|m| m.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Model::ALL.len());
        assert_eq!(
            "Markov".parse::<Model>(),
            Err(UnknownModel("Markov".into()))
        );
    }

    #[test]
    fn parameters_are_range_checked() {
        assert_eq!(HalfLife::DEFAULT.hours(), 168.0);
        assert!(HalfLife::from_hours(0.0).is_err());
        assert!(HalfLife::from_hours(-1.0).is_err());
        assert!(HalfLife::from_hours(f64::NAN).is_err());
        assert!(HalfLife::from_hours(f64::INFINITY).is_err());
        assert_eq!(HalfLife::from_hours(0.5).map(HalfLife::hours), Ok(0.5));
        assert_eq!(MarkovOrder::DEFAULT.get(), 1);
        assert!(MarkovOrder::new(0).is_err());
        assert!(MarkovOrder::new(4).is_err());
        assert_eq!(MarkovOrder::new(3).map(MarkovOrder::get), Ok(3));
    }

    #[test]
    fn serde_uses_the_codes() {
        // serde_json is a dev-dependency, so this pins the wire form the API will use.
        let json = serde_json::to_string(&Model::LastNonDirect).unwrap();
        assert_eq!(json, "\"last_non_direct\"");
        let back: Model = serde_json::from_str("\"position_based\"").unwrap();
        assert_eq!(back, Model::PositionBased);
    }
}
