//! Properties every model must keep on every input: cents add up, input order is irrelevant,
//! a journey with one channel gives it everything.

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tally_attribution::{
    AllocationRow, Conversion, HalfLife, MarkovOrder, ModelConfig, Touch, attribute,
    build_journeys, splits,
};
use uuid::Uuid;

const CHANNELS: [&str; 6] = [
    "direct",
    "display",
    "email",
    "organic_search",
    "paid_search_google",
    "referral",
];

/// Every model, Markov at every order, time decay at a random half-life.
fn all_configs(half_life_hours: f64) -> Vec<ModelConfig> {
    let mut configs = ModelConfig::all_defaults();
    configs.push(ModelConfig::TimeDecay {
        half_life: HalfLife::from_hours(half_life_hours).unwrap(),
    });
    for order in [2, 3] {
        configs.push(ModelConfig::Markov {
            order: MarkovOrder::new(order).unwrap(),
        });
    }
    configs
}

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + minutes * 60, 0).unwrap()
}

fn revenue() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), 1i64..1_000, 0i64..=i64::MAX, Just(i64::MAX)]
}

/// A small window with few identities, channels and distinct minutes, so equal timestamps,
/// repeated channels and overlapping windows are common.
fn window() -> impl Strategy<Value = (Vec<Touch>, Vec<Conversion>, i64)> {
    let touch = (0..4usize, 0i64..600, 0..CHANNELS.len());
    let conversion = (0..5usize, 0i64..600, revenue());
    (
        prop::collection::vec(touch, 0..40),
        prop::collection::vec(conversion, 1..8),
        0i64..400,
    )
        .prop_map(|(touches, conversions, lookback_minutes)| {
            let touches = touches
                .into_iter()
                .enumerate()
                .map(|(i, (who, minute, channel))| Touch {
                    event_id: Uuid::from_u128(i as u128 + 1),
                    identity: format!("id{who}"),
                    occurred_at: at(minute),
                    channel: CHANNELS[channel].to_owned(),
                })
                .collect();
            let conversions = conversions
                .into_iter()
                .enumerate()
                .map(|(i, (who, minute, revenue_cents))| Conversion {
                    event_id: Uuid::from_u128(1_000 + i as u128),
                    identity: format!("id{who}"),
                    occurred_at: at(minute),
                    revenue_cents,
                })
                .collect();
            (touches, conversions, lookback_minutes)
        })
}

fn run(
    touches: &[Touch],
    conversions: &[Conversion],
    lookback_minutes: i64,
    half_life_hours: f64,
) -> Vec<(String, Uuid, String, i64, u64)> {
    let set = build_journeys(touches, conversions, TimeDelta::minutes(lookback_minutes)).unwrap();
    // Owned, with weights as bits, so two runs compare exactly.
    attribute(&all_configs(half_life_hours), &set)
        .iter()
        .map(|r| {
            (
                r.model.code().to_owned(),
                r.conversion_id,
                r.channel.to_owned(),
                r.allocated_cents,
                r.weight.to_bits(),
            )
        })
        .collect()
}

fn check_split(split: &[AllocationRow], revenue: i64) -> Result<(), TestCaseError> {
    let cents: i128 = split.iter().map(|r| i128::from(r.allocated_cents)).sum();
    prop_assert_eq!(cents, i128::from(revenue), "{:?}", split);
    let weights: f64 = split.iter().map(|r| r.weight).sum();
    prop_assert!((weights - 1.0).abs() < 1e-9, "weights sum to {}", weights);
    for row in split {
        prop_assert!(row.weight > 0.0 && row.allocated_cents >= 0);
        prop_assert!(row.allocated_cents <= revenue);
    }
    // One row per channel, in code order.
    prop_assert!(split.windows(2).all(|w| w[0].channel < w[1].channel));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_model_splits_every_conversion_exactly(
        (touches, conversions, lookback) in window(),
        half_life in 0.01f64..1_000.0,
    ) {
        let set = build_journeys(&touches, &conversions, TimeDelta::minutes(lookback)).unwrap();
        let revenue: std::collections::HashMap<Uuid, i64> =
            conversions.iter().map(|c| (c.event_id, c.revenue_cents)).collect();
        // One config at a time: Markov of two orders would share a model code.
        for config in all_configs(half_life) {
            let rows = attribute(&[config], &set);
            let groups: Vec<_> = splits(&rows).collect();
            prop_assert_eq!(groups.len(), conversions.len());
            for split in groups {
                prop_assert_eq!(split[0].model, config.model());
                check_split(split, revenue[&split[0].conversion_id])?;
            }
        }
    }

    #[test]
    fn input_order_changes_nothing(
        (touches, conversions, lookback) in window(),
        half_life in 0.01f64..1_000.0,
        seed in any::<u64>(),
    ) {
        let expected = run(&touches, &conversions, lookback, half_life);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut touches, mut conversions) = (touches, conversions);
        touches.shuffle(&mut rng);
        conversions.shuffle(&mut rng);
        prop_assert_eq!(run(&touches, &conversions, lookback, half_life), expected);
    }

    #[test]
    fn a_single_channel_journey_gets_everything(
        channel in 0..CHANNELS.len(),
        repeats in 1usize..6,
        (noise, _, _) in window(),
        revenue in revenue(),
    ) {
        // The converting identity sees only one channel; other identities add Markov noise.
        let mut touches: Vec<Touch> = (0..repeats)
            .map(|i| Touch {
                event_id: Uuid::from_u128(10_000 + i as u128),
                identity: "solo".into(),
                occurred_at: at(i as i64),
                channel: CHANNELS[channel].into(),
            })
            .collect();
        touches.extend(noise);
        let conversion = Conversion {
            event_id: Uuid::from_u128(20_000),
            identity: "solo".into(),
            occurred_at: at(10),
            revenue_cents: revenue,
        };
        let set = build_journeys(&touches, &[conversion], TimeDelta::hours(1)).unwrap();
        let rows = attribute(&all_configs(24.0), &set);
        prop_assert_eq!(rows.len(), all_configs(24.0).len());
        for row in rows {
            prop_assert_eq!(row.channel, CHANNELS[channel]);
            prop_assert_eq!(row.allocated_cents, revenue);
            prop_assert_eq!(row.weight, 1.0);
        }
    }
}
