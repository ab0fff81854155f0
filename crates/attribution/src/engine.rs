//! Runs models over a [`JourneySet`] and turns their credit into cents.
//!
//! Every model reduces to the same two steps per conversion: give each channel of the journey a
//! non-negative weight (`Credit`), then split the revenue by largest remainder. Models that need
//! the whole window (Markov, Shapley) compute a per-channel table once, before the loop.

use uuid::Uuid;

use crate::heuristic;
use crate::journey::{ChannelId, ConvertingJourney, JourneySet};
use crate::markov;
use crate::model::{Model, ModelConfig};
use crate::rounding::{Apportioner, quantize};
use crate::shapley;

/// One channel's entry of a stored split (`attribution_splits`): the cents and share of one
/// conversion's revenue that one model gives one channel. The rows of a (model, conversion) pair add up to its revenue exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AllocationRow<'a> {
    pub model: Model,
    pub conversion_id: Uuid,
    /// Channel taxonomy code, borrowed from the [`JourneySet`].
    pub channel: &'a str,
    pub allocated_cents: i64,
    /// This channel's share of the conversion, before rounding to cents; the rows of one
    /// (model, conversion) pair sum to 1 up to floating-point error.
    pub weight: f64,
}

/// Attributes every conversion of `journeys` with every model in `models`.
///
/// Rows come grouped by model (in the order of `models`), then by conversion (time, then event
/// id), then by channel code; one row per channel that got a positive weight, even when it got
/// zero cents. The result depends only on the contents of `journeys`, never on the order of the
/// events it was built from. Passing the same model twice (say Markov of two orders) yields two
/// groups with the same model code; keep such runs apart.
pub fn attribute<'a>(models: &[ModelConfig], journeys: &'a JourneySet) -> Vec<AllocationRow<'a>> {
    let mut rows = Vec::with_capacity(models.len() * journeys.conversion_count() * 3);
    let mut credit = Credit::new(journeys.channels().len());
    for config in models {
        let rule = Rule::new(config, journeys);
        for journey in journeys.conversions() {
            let weights = rule.credit(&journey, journeys, &mut credit);
            credit.emit(config.model(), &journey, journeys, weights, &mut rows);
        }
    }
    rows
}

/// Splits rows from [`attribute`] into one slice per (model, conversion).
pub fn splits<'r, 'a>(
    rows: &'r [AllocationRow<'a>],
) -> impl Iterator<Item = &'r [AllocationRow<'a>]> {
    rows.chunk_by(|a, b| a.model == b.model && a.conversion_id == b.conversion_id)
}

/// A model ready to credit single journeys.
enum Rule {
    FirstTouch,
    LastTouch,
    LastNonDirect,
    Linear,
    PositionBased,
    TimeDecay {
        half_life_hours: f64,
    },
    /// Removal effect per channel id.
    Markov(Vec<f64>),
    /// Shapley value per channel id.
    Shapley(Vec<f64>),
}

/// Whether a journey's weights are exact integers (then rounding works on them directly) or reals
/// (then they are quantised first, see [`crate::rounding`]).
#[derive(Clone, Copy)]
enum Weights {
    Integer,
    Real,
}

impl Rule {
    fn new(config: &ModelConfig, journeys: &JourneySet) -> Rule {
        match *config {
            ModelConfig::FirstTouch => Rule::FirstTouch,
            ModelConfig::LastTouch => Rule::LastTouch,
            ModelConfig::LastNonDirect => Rule::LastNonDirect,
            ModelConfig::Linear => Rule::Linear,
            ModelConfig::PositionBased => Rule::PositionBased,
            ModelConfig::TimeDecay { half_life } => Rule::TimeDecay {
                half_life_hours: half_life.hours(),
            },
            ModelConfig::Markov { order } => {
                Rule::Markov(markov::removal_effect_table(journeys, order))
            }
            ModelConfig::Shapley => Rule::Shapley(shapley::shapley_table(journeys)),
        }
    }

    /// Fills `credit` with this model's weights for `journey`.
    fn credit(
        &self,
        journey: &ConvertingJourney,
        set: &JourneySet,
        credit: &mut Credit,
    ) -> Weights {
        let channels = journey.channels;
        match self {
            Rule::FirstTouch => heuristic::first_touch(channels, credit),
            Rule::LastTouch => heuristic::last_touch(channels, credit),
            Rule::LastNonDirect => heuristic::last_non_direct(channels, set.direct(), credit),
            Rule::Linear => heuristic::linear(channels, credit),
            Rule::PositionBased => heuristic::position_based(channels, credit),
            Rule::TimeDecay { half_life_hours } => {
                heuristic::time_decay(channels, journey.hours_before, *half_life_hours, credit)
            }
            Rule::Markov(table) | Rule::Shapley(table) => {
                credit.per_distinct_channel(channels, table)
            }
        }
        if !credit.any_positive() {
            // Only Markov gets here: a channel on a converting path has a positive removal effect
            // in exact arithmetic, so all-zero means the chain was too large to solve (see
            // `markov`) or underflowed, and linear is the neutral answer.
            credit.clear();
            heuristic::linear(channels, credit);
            return Weights::Integer;
        }
        self.weights()
    }

    fn weights(&self) -> Weights {
        match self {
            Rule::FirstTouch
            | Rule::LastTouch
            | Rule::LastNonDirect
            | Rule::Linear
            | Rule::PositionBased => Weights::Integer,
            Rule::TimeDecay { .. } | Rule::Markov(_) | Rule::Shapley(_) => Weights::Real,
        }
    }
}

/// Per-channel weights of the journey being credited, plus the scratch space for emitting its
/// rows. Dense per-channel arrays and a list of the channels touched make adding O(1) and reset
/// O(touched), with no allocation per journey.
pub(crate) struct Credit {
    weight: Vec<f64>,
    seen: Vec<bool>,
    touched: Vec<ChannelId>,
    kept: Vec<(ChannelId, f64)>,
    shares: Vec<u64>,
    cents: Vec<i64>,
    apportioner: Apportioner,
}

impl Credit {
    fn new(channels: usize) -> Credit {
        Credit {
            weight: vec![0.0; channels],
            seen: vec![false; channels],
            touched: Vec::new(),
            kept: Vec::new(),
            shares: Vec::new(),
            cents: Vec::new(),
            apportioner: Apportioner::default(),
        }
    }

    pub(crate) fn add(&mut self, channel: ChannelId, weight: f64) {
        let c = channel as usize;
        if !self.seen[c] {
            self.seen[c] = true;
            self.touched.push(channel);
        }
        self.weight[c] += weight;
    }

    /// Each distinct channel of the journey gets its entry of a per-channel table, once however
    /// often it occurs.
    fn per_distinct_channel(&mut self, channels: &[ChannelId], table: &[f64]) {
        for &c in channels {
            if !self.seen[c as usize] {
                self.add(c, table[c as usize]);
            }
        }
    }

    fn any_positive(&self) -> bool {
        self.touched.iter().any(|&c| self.weight[c as usize] > 0.0)
    }

    fn clear(&mut self) {
        for &c in &self.touched {
            self.weight[c as usize] = 0.0;
            self.seen[c as usize] = false;
        }
        self.touched.clear();
    }

    /// Rounds the current weights to cents, appends one row per positive-weight channel in code
    /// order, and resets for the next journey.
    fn emit<'a>(
        &mut self,
        model: Model,
        journey: &ConvertingJourney,
        set: &'a JourneySet,
        weights: Weights,
        rows: &mut Vec<AllocationRow<'a>>,
    ) {
        // Channel ids are in code order, so this is the tie-break order rounding needs.
        self.touched.sort_unstable();
        self.kept.clear();
        self.kept.extend(
            self.touched
                .iter()
                .map(|&c| (c, self.weight[c as usize]))
                .filter(|&(_, w)| w > 0.0),
        );
        self.clear();
        debug_assert!(!self.kept.is_empty(), "every model credits some channel");

        let total: f64 = self.kept.iter().map(|&(_, w)| w).sum();
        let max = self.kept.iter().map(|&(_, w)| w).fold(0.0, f64::max);
        self.shares.clear();
        self.shares
            .extend(self.kept.iter().map(|&(_, w)| match weights {
                Weights::Integer => w as u64,
                Weights::Real => quantize(w, max),
            }));
        self.cents.clear();
        self.cents.resize(self.kept.len(), 0);
        self.apportioner
            .apportion(journey.revenue_cents, &self.shares, &mut self.cents);

        rows.extend(
            self.kept
                .iter()
                .zip(&self.cents)
                .map(|(&(c, w), &cents)| AllocationRow {
                    model,
                    conversion_id: journey.conversion_id,
                    channel: set.code(c),
                    allocated_cents: cents,
                    weight: w / total,
                }),
        );
    }
}
