//! `tally bench attribution`: how many journeys per second each model gets through.
//!
//! The workload is synthetic but fixed (seeded ChaCha): 1 to 8 touches per journey over 8
//! channels, about 10 % of journeys converting. A line's `journeys` counts every journey of the
//! window, converting or not, because that is the unit a recompute job is sized in; heuristic
//! models only read the converting ones, Markov reads all of them.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, TimeDelta};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use crate::engine::attribute;
use crate::journey::{Conversion, JourneySet, JourneySetBuilder, Touch, build_journeys};
use crate::model::{MarkovOrder, Model, ModelConfig};

/// The channels of the synthetic workload.
pub const CHANNELS: [&str; 8] = [
    "affiliate",
    "direct",
    "display",
    "email",
    "organic_search",
    "paid_search_google",
    "paid_social_meta",
    "referral",
];

/// Share of synthetic journeys that end in a conversion.
pub const CONVERSION_RATE: f64 = 0.10;

/// Seed of [`run`]'s workload, so numbers from different machines are comparable.
pub const SEED: u64 = 0x7a11_7a11;

#[derive(Clone, Debug, PartialEq)]
pub struct BenchLine {
    pub model: &'static str,
    pub journeys: usize,
    pub seconds: f64,
    pub journeys_per_sec: f64,
}

/// Journeys of [`run`]'s `build_journeys` line are capped: as events they take ~100 bytes a touch.
pub const MAX_EVENT_JOURNEYS: usize = 100_000;

/// Draws `n` synthetic journeys and hands each to `visit` as its index, its touches (index into
/// [`CHANNELS`], hours before the journey's end; oldest first) and its conversion, if any
/// (event id, revenue in cents). Both workload shapes below come from this one stream.
fn synthetic(
    n: usize,
    seed: u64,
    mut visit: impl FnMut(usize, &[(usize, f64)], Option<(Uuid, i64)>),
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut touches: Vec<(usize, f64)> = Vec::with_capacity(8);
    for i in 0..n {
        touches.clear();
        let len = rng.random_range(1..=8);
        // Ages within a 30-day lookback.
        touches.extend((0..len).map(|_| {
            (
                rng.random_range(0..CHANNELS.len()),
                rng.random_range(0.0..720.0),
            )
        }));
        touches.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        let conversion = rng.random_bool(CONVERSION_RATE).then(|| {
            (
                Uuid::from_u128(rng.random()),
                rng.random_range(100..=100_000),
            )
        });
        visit(i, &touches, conversion);
    }
}

/// `n` synthetic journeys; the same `seed` always gives the same set.
pub fn generate(n: usize, seed: u64) -> JourneySet {
    let mut builder = JourneySetBuilder::new(CHANNELS).expect("8 channels fit");
    let ids = CHANNELS.map(|c| builder.channel_id(c));
    synthetic(n, seed, |_, touches, conversion| match conversion {
        Some((id, revenue)) => {
            builder.push_conversion(id, revenue, touches.iter().map(|&(c, h)| (ids[c], h)))
        }
        None => builder.push_path(touches.iter().map(|&(c, _)| ids[c])),
    });
    builder.finish()
}

/// The journeys of [`generate`] as events (one identity per journey, all ending at the same
/// instant), for timing [`build_journeys`] on the same workload.
pub fn generate_events(n: usize, seed: u64) -> (Vec<Touch>, Vec<Conversion>) {
    let end = DateTime::from_timestamp(1_780_000_000, 0).expect("valid instant");
    let (mut touches, mut conversions) = (Vec::new(), Vec::new());
    synthetic(n, seed, |i, path, conversion| {
        let identity = format!("user{i:08}");
        for &(c, hours) in path {
            touches.push(Touch {
                event_id: Uuid::from_u128(touches.len() as u128),
                identity: identity.clone(),
                occurred_at: end - TimeDelta::microseconds((hours * 3.6e9) as i64),
                channel: CHANNELS[c].to_owned(),
            });
        }
        if let Some((event_id, revenue_cents)) = conversion {
            conversions.push(Conversion {
                event_id,
                identity,
                occurred_at: end,
                revenue_cents,
            });
        }
    });
    (touches, conversions)
}

/// Times, single-threaded: [`build_journeys`] on `min(n, MAX_EVENT_JOURNEYS)` journeys of
/// events, then every model on `n` journeys (`markov` is order 1, the default), Markov at orders
/// 2 and 3, and all eight defaults together (what a recompute job runs).
pub fn run(n: usize) -> Vec<BenchLine> {
    let event_journeys = n.min(MAX_EVENT_JOURNEYS);
    let (touches, conversions) = generate_events(event_journeys, SEED);
    let mut lines = vec![timed("build_journeys", event_journeys, || {
        black_box(build_journeys(&touches, &conversions, TimeDelta::days(30)).ok());
    })];
    drop((touches, conversions));

    let journeys = generate(n, SEED);
    let markov = |order| ModelConfig::Markov {
        order: MarkovOrder::new(order).expect("orders 2 and 3 are valid"),
    };
    let mut cases: Vec<(&'static str, Vec<ModelConfig>)> = Model::ALL
        .into_iter()
        .map(|m| (m.code(), vec![ModelConfig::from(m)]))
        .collect();
    cases.push(("markov_order2", vec![markov(2)]));
    cases.push(("markov_order3", vec![markov(3)]));
    cases.push(("all_defaults", ModelConfig::all_defaults()));
    lines.extend(cases.into_iter().map(|(model, configs)| {
        timed(model, n, || {
            black_box(attribute(&configs, &journeys));
        })
    }));
    lines
}

fn timed(model: &'static str, journeys: usize, work: impl FnOnce()) -> BenchLine {
    let started = Instant::now();
    work();
    let seconds = started.elapsed().as_secs_f64();
    BenchLine {
        model,
        journeys,
        seconds,
        journeys_per_sec: journeys as f64 / seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_is_deterministic_and_shaped_as_documented() {
        let a = generate(20_000, 1);
        let b = generate(20_000, 1);
        let rate = a.conversion_count() as f64 / 20_000.0;
        assert!((0.08..0.12).contains(&rate), "conversion rate {rate}");
        assert_eq!(a.conversion_count() + a.non_converting_count(), 20_000);
        let ids = |s: &JourneySet| s.conversions().map(|j| j.conversion_id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert!(
            a.conversions()
                .all(|j| (1..=8).contains(&j.channel_codes().len()))
        );
        assert_ne!(ids(&a), ids(&generate(20_000, 2)));
    }

    #[test]
    fn events_build_into_the_same_journeys() {
        let direct = generate(3_000, 5);
        let (touches, conversions) = generate_events(3_000, 5);
        let built = build_journeys(&touches, &conversions, TimeDelta::days(30)).unwrap();
        let summary = |s: &JourneySet| {
            let mut v: Vec<_> = s
                .conversions()
                .map(|j| {
                    let codes: Vec<String> = j.channel_codes().map(str::to_owned).collect();
                    (j.conversion_id, j.revenue_cents, codes)
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(summary(&built), summary(&direct));
        assert_eq!(
            built.non_converting().collect::<Vec<_>>(),
            direct.non_converting().collect::<Vec<_>>()
        );
    }

    #[test]
    fn run_reports_every_model() {
        let lines = run(2_000);
        let names: Vec<_> = lines.iter().map(|l| l.model).collect();
        assert_eq!(
            names,
            [
                "build_journeys",
                "first_touch",
                "last_touch",
                "last_non_direct",
                "linear",
                "position_based",
                "time_decay",
                "markov",
                "shapley",
                "markov_order2",
                "markov_order3",
                "all_defaults"
            ]
        );
        assert!(lines.iter().all(|l| l.journeys == 2_000 && l.seconds > 0.0));
    }
}
