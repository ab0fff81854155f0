//! Hand-built windows checked against `fixtures/reference.json`, which `fixtures/reference.py`
//! computes independently in exact rational arithmetic (and cross-checks against
//! marketing-attribution-models when it is installed). Cents must match exactly, weights and
//! removal effects to 1e-9.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta};
use serde::Deserialize;
use tally_attribution::{
    Conversion, HalfLife, MarkovOrder, Model, ModelConfig, Touch, attribute, build_journeys,
    removal_effects, shapley_values,
};
use uuid::Uuid;

#[derive(Deserialize)]
struct Case {
    name: String,
    lookback_hours: i64,
    half_life_hours: f64,
    touches: Vec<FixtureTouch>,
    conversions: Vec<FixtureConversion>,
    expected: Expected,
}

#[derive(Deserialize)]
struct FixtureTouch {
    event_id: Uuid,
    identity: String,
    at: i64,
    channel: String,
}

#[derive(Deserialize)]
struct FixtureConversion {
    event_id: Uuid,
    identity: String,
    at: i64,
    revenue_cents: i64,
}

#[derive(Deserialize)]
struct Expected {
    journeys: Vec<ExpectedJourney>,
    non_converting: Vec<Vec<String>>,
    rows: Vec<ExpectedRow>,
    removal_effects: BTreeMap<String, BTreeMap<String, f64>>,
    shapley_values: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct ExpectedJourney {
    conversion_id: Uuid,
    channels: Vec<String>,
    hours_before: Vec<f64>,
}

#[derive(Deserialize)]
struct ExpectedRow {
    model: Model,
    conversion_id: Uuid,
    channel: String,
    cents: i64,
    weight: f64,
}

const TOLERANCE: f64 = 1e-9;

fn cases() -> Vec<Case> {
    let json = include_str!("fixtures/reference.json");
    serde_json::from_str(json).expect("reference.json parses")
}

fn input(case: &Case) -> (Vec<Touch>, Vec<Conversion>) {
    let at = |s| DateTime::from_timestamp(s, 0).expect("fixture time in range");
    let touches = case
        .touches
        .iter()
        .map(|t| Touch {
            event_id: t.event_id,
            identity: t.identity.clone(),
            occurred_at: at(t.at),
            channel: t.channel.clone(),
        })
        .collect();
    let conversions = case
        .conversions
        .iter()
        .map(|c| Conversion {
            event_id: c.event_id,
            identity: c.identity.clone(),
            occurred_at: at(c.at),
            revenue_cents: c.revenue_cents,
        })
        .collect();
    (touches, conversions)
}

fn configs(case: &Case) -> Vec<ModelConfig> {
    Model::ALL
        .into_iter()
        .map(|m| match m {
            Model::TimeDecay => ModelConfig::TimeDecay {
                half_life: HalfLife::from_hours(case.half_life_hours).unwrap(),
            },
            other => ModelConfig::from(other),
        })
        .collect()
}

fn assert_close(what: &str, actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= TOLERANCE,
        "{what}: got {actual}, expected {expected}"
    );
}

#[test]
fn fixture_covers_every_model_and_order() {
    let cases = cases();
    assert!(cases.len() >= 5);
    for case in &cases {
        for m in Model::ALL {
            assert!(
                case.expected.rows.iter().any(|r| r.model == m),
                "{}: no rows for {m}",
                case.name
            );
        }
        let orders: Vec<_> = case.expected.removal_effects.keys().collect();
        assert_eq!(orders, ["1", "2", "3"], "{}", case.name);
    }
}

#[test]
fn journeys_match_the_reference() {
    for case in cases() {
        let (touches, conversions) = input(&case);
        let lookback = TimeDelta::hours(case.lookback_hours);
        let set = build_journeys(&touches, &conversions, lookback).unwrap();
        let got: Vec<_> = set.conversions().collect();
        assert_eq!(got.len(), case.expected.journeys.len(), "{}", case.name);
        for (j, want) in got.iter().zip(&case.expected.journeys) {
            assert_eq!(j.conversion_id, want.conversion_id, "{}", case.name);
            let codes: Vec<_> = j.channel_codes().collect();
            assert_eq!(
                codes, want.channels,
                "{}: {}",
                case.name, want.conversion_id
            );
            for (h, w) in j.hours_before().iter().zip(&want.hours_before) {
                assert_close(&case.name, *h, *w);
            }
        }
        let paths: Vec<Vec<&str>> = set.non_converting().collect();
        assert_eq!(paths, case.expected.non_converting, "{}", case.name);
    }
}

#[test]
fn allocations_match_the_reference() {
    for case in cases() {
        let (touches, conversions) = input(&case);
        let set = build_journeys(
            &touches,
            &conversions,
            TimeDelta::hours(case.lookback_hours),
        )
        .unwrap();
        let rows = attribute(&configs(&case), &set);
        assert_eq!(
            rows.len(),
            case.expected.rows.len(),
            "{}: row count",
            case.name
        );
        for (got, want) in rows.iter().zip(&case.expected.rows) {
            let at = format!(
                "{} {} {} {}",
                case.name, want.model, want.conversion_id, want.channel
            );
            assert_eq!(
                (got.model, got.conversion_id, got.channel),
                (want.model, want.conversion_id, want.channel.as_str()),
                "{at}: row order"
            );
            assert_eq!(got.allocated_cents, want.cents, "{at}: cents");
            assert_close(&at, got.weight, want.weight);
        }
    }
}

#[test]
fn markov_removal_effects_are_exact_at_every_order() {
    for case in cases() {
        let (touches, conversions) = input(&case);
        let set = build_journeys(
            &touches,
            &conversions,
            TimeDelta::hours(case.lookback_hours),
        )
        .unwrap();
        for (order, want) in &case.expected.removal_effects {
            let order = MarkovOrder::new(order.parse().unwrap()).unwrap();
            let got = removal_effects(&set, order);
            let got_channels: Vec<_> = got.iter().map(|(c, _)| *c).collect();
            let want_channels: Vec<_> = want.keys().map(String::as_str).collect();
            assert_eq!(got_channels, want_channels, "{} order {order:?}", case.name);
            for ((channel, effect), expected) in got.iter().zip(want.values()) {
                assert_close(
                    &format!("{} order {} {channel}", case.name, order.get()),
                    *effect,
                    *expected,
                );
            }
        }
    }
}

#[test]
fn shapley_values_match_the_subset_formula() {
    for case in cases() {
        let (touches, conversions) = input(&case);
        let set = build_journeys(
            &touches,
            &conversions,
            TimeDelta::hours(case.lookback_hours),
        )
        .unwrap();
        let got = shapley_values(&set);
        assert_eq!(
            got.len(),
            case.expected.shapley_values.len(),
            "{}",
            case.name
        );
        for ((channel, phi), (want_channel, want)) in got.iter().zip(&case.expected.shapley_values)
        {
            assert_eq!(channel, want_channel, "{}", case.name);
            assert_close(&format!("{} {channel}", case.name), *phi, *want);
        }
    }
}
