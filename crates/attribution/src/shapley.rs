//! Shapley-value attribution, exact, for any number of channels.
//!
//! The game: the value of a coalition S of channels is the number of converting journeys whose
//! channel set lies within S. Each conversion's revenue is then split over its own channels in
//! proportion to their global Shapley values. (marketing-attribution-models instead solves a
//! small game per journey over that journey's subsets; the global game credits a channel for all
//! the journeys it took part in, which is the definition Tally documents.)
//!
//! Why no 2^n subset sum: this value function is a sum of unanimity games, one per converting
//! journey with channel set T (worth 1 exactly when T is within S). Shapley values are linear and
//! the unanimity game on T gives each of its |T| members 1/|T|, so
//!
//! ```text
//! phi(c) = sum over converting journeys j with c in T_j of 1 / |T_j|
//! ```
//!
//! exactly, in one pass over the journeys: no cap on channels, no sampling. The tests check this
//! against the subset formula (every coalition, factorial weights) with rational arithmetic.

use crate::journey::{ChannelId, JourneySet};

/// Shapley value of each channel that occurs in a converting journey, in code order. They add up
/// to the number of conversions (efficiency).
pub fn shapley_values(journeys: &JourneySet) -> Vec<(&str, f64)> {
    shapley_table(journeys)
        .into_iter()
        .enumerate()
        .filter(|&(_, phi)| phi > 0.0)
        .map(|(c, phi)| (journeys.code(c as ChannelId), phi))
        .collect()
}

/// Shapley value per channel id.
pub(crate) fn shapley_table(journeys: &JourneySet) -> Vec<f64> {
    let channels = journeys.channels().len();
    // (channel, size of the journey's channel set) per distinct channel of each conversion.
    // Summing 1/size grouped by channel in ascending size makes two channels with the same
    // history get bit-identical values, so their rounding ties are real ties.
    let mut memberships: Vec<u64> = Vec::new();
    let mut seen = vec![false; channels];
    let mut distinct: Vec<ChannelId> = Vec::new();
    for journey in journeys.conversions() {
        distinct.clear();
        for &c in journey.channels {
            if !seen[c as usize] {
                seen[c as usize] = true;
                distinct.push(c);
            }
        }
        let size = distinct.len() as u64;
        for &c in &distinct {
            seen[c as usize] = false;
            memberships.push(u64::from(c) << 32 | size);
        }
    }
    memberships.sort_unstable();

    let mut phi = vec![0.0; channels];
    for group in memberships.chunk_by(|a, b| a == b) {
        let (channel, size) = (group[0] >> 32, group[0] & u64::from(u32::MAX));
        phi[channel as usize] += group.len() as f64 / size as f64;
    }
    phi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::JourneySetBuilder;
    use proptest::prelude::*;
    use uuid::Uuid;

    /// The textbook definition: average marginal contribution over all coalitions, weighted
    /// |S|! (n - |S| - 1)! / n!, with v(S) = converting journeys whose channel set is within S.
    fn subset_formula(sets: &[u32], players: u32) -> Vec<f64> {
        let n = players.count_ones() as usize;
        let factorial = |k: usize| (1..=k).product::<usize>() as f64;
        let value = |s: u32| sets.iter().filter(|&&t| t & !s == 0).count() as f64;
        let mut phi = vec![0.0; 32];
        for p in (0..32).filter(|p| players >> p & 1 == 1) {
            let others = players & !(1 << p);
            // Every subset of `others`, by the standard submask walk.
            let mut s = others;
            loop {
                let size = s.count_ones() as usize;
                let weight = factorial(size) * factorial(n - size - 1) / factorial(n);
                phi[p] += weight * (value(s | 1 << p) - value(s));
                if s == 0 {
                    break;
                }
                s = (s - 1) & others;
            }
        }
        phi
    }

    proptest! {
        #[test]
        fn closed_form_equals_the_subset_formula(
            journeys in prop::collection::vec(prop::collection::vec(0u16..7, 1..6), 1..25),
        ) {
            let codes: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
            let mut builder = JourneySetBuilder::new(codes.iter().map(String::as_str)).unwrap();
            let ids: Vec<ChannelId> = codes.iter().map(|c| builder.channel_id(c)).collect();
            let mut sets = Vec::new();
            for (i, path) in journeys.iter().enumerate() {
                builder.push_conversion(
                    Uuid::from_u128(i as u128),
                    1,
                    path.iter().map(|&c| (ids[c as usize], 0.0)),
                );
                sets.push(path.iter().fold(0u32, |m, &c| m | 1 << c));
            }
            let set = builder.finish();
            let players = sets.iter().fold(0, |m, s| m | s);
            let expected = subset_formula(&sets, players);
            let table = shapley_table(&set);
            for (c, &id) in ids.iter().enumerate() {
                prop_assert!((table[id as usize] - expected[c]).abs() < 1e-9);
            }
            let total: f64 = table.iter().sum();
            prop_assert!((total - journeys.len() as f64).abs() < 1e-9, "efficiency");
        }
    }
}
