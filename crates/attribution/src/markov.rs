//! Markov-chain attribution with exact removal effects.
//!
//! The chain: states `(start)`, one state per observed k-gram of channels, `(conversion)` and
//! `(null)`. Every journey in the window, converting or not, is one walk from `(start)` to
//! `(conversion)` or `(null)`; transition probabilities are the observed transition counts,
//! normalised per state. Before cutting a journey into k-grams, repeated consecutive channels
//! collapse (`a > a > b` is `a > b`), so a state never loops to itself. Order k uses sliding
//! windows `(c1..ck), (c2..ck+1), ...`; a journey shorter than k is a single state of its own
//! length. This is the state scheme of ChannelAttribution.
//!
//! The removal effect of channel c is `1 - P(conversion | c removed) / P(conversion)`, where
//! removing c sends every state containing c to `(null)`. P is the absorption probability from
//! `(start)`; ChannelAttribution estimates it by simulation, we solve for it exactly.
//!
//! The solve is Gaussian elimination on the transition counts in the GTH form (Grassmann, Taksar,
//! Heyman): eliminating a state s reroutes every `p -> s` flow along s's outgoing edges,
//! `A[p][q] += A[p][s] * A[s][q] / sum_{q' != s} A[s][q']`. Every quantity stays non-negative and
//! nothing is ever subtracted, so there is no cancellation: results are accurate to a few ulps,
//! which is what lets tests compare against exact rational arithmetic at 1e-9 (and in practice
//! 1e-15). Once all channel states are gone, `(start)` points only at the two absorbing states and
//! P is the conversion share of its flow.
//!
//! The matrix is dense: cost is cubic in the number of states and the memory square. Order 1 has
//! one state per channel and is always cheap. Higher orders can have many observed k-grams; when
//! they exceed [`MAX_STATES`] the order is lowered until the chain fits (the removal effects are
//! then those of the lower order), and if even order 1 does not fit (more than ~1000 channels,
//! which no taxonomy has) every journey falls back to linear.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::journey::{ChannelId, JourneySet};
use crate::model::MarkovOrder;

/// Largest chain solved exactly: at 1024 states one solve is ~0.4 G multiply-adds (well under a
/// second) over an 8 MiB matrix; one solve per channel plus one baseline.
pub const MAX_STATES: usize = 1024;

const START: usize = 0;
const CONVERSION: usize = 1;
const NULL: usize = 2;
const FIRST_GRAM: usize = 3;

/// Removal effect of each channel that occurs in a converting journey, in code order, from the
/// chain of the highest order up to `order` that fits in [`MAX_STATES`] (all zeros if none does).
pub fn removal_effects(journeys: &JourneySet, order: MarkovOrder) -> Vec<(&str, f64)> {
    let table = removal_effect_table(journeys, order);
    converting_channels(journeys)
        .into_iter()
        .enumerate()
        .filter(|&(_, converts)| converts)
        .map(|(c, _)| (journeys.code(c as ChannelId), table[c]))
        .collect()
}

/// Removal effect per channel id (0 for channels on no converting journey, which no conversion
/// will ask for). All zeros if no chain of order <= `order` fits in [`MAX_STATES`].
pub(crate) fn removal_effect_table(journeys: &JourneySet, order: MarkovOrder) -> Vec<f64> {
    let mut table = vec![0.0; journeys.channels().len()];
    let Some(chain) = (1..=order.get())
        .rev()
        .find_map(|k| Chain::build(journeys, usize::from(k)))
    else {
        return table;
    };
    let mut solver = Solver::new(chain.states());
    let baseline = solver.conversion_probability(&chain, |_| false);
    if baseline <= 0.0 {
        return table;
    }
    for (c, converts) in converting_channels(journeys).into_iter().enumerate() {
        if converts {
            let c = c as ChannelId;
            let removed = solver.conversion_probability(&chain, |g| chain.gram_has(g, c));
            table[c as usize] = (1.0 - removed / baseline).clamp(0.0, 1.0);
        }
    }
    table
}

fn converting_channels(journeys: &JourneySet) -> Vec<bool> {
    let mut converts = vec![false; journeys.channels().len()];
    for j in journeys.conversions() {
        for &c in j.channels {
            converts[c as usize] = true;
        }
    }
    converts
}

/// A k-gram of channel ids, padded with zeros, and its length.
#[derive(Clone, Copy)]
struct Gram {
    channels: [ChannelId; 3],
    len: u8,
}

impl Gram {
    fn key(&self) -> u64 {
        let [a, b, c] = self.channels.map(u64::from);
        u64::from(self.len) << 48 | a << 32 | b << 16 | c
    }
}

/// Observed states and transition counts of one window at one order.
struct Chain {
    grams: Vec<Gram>,
    /// (from, to, count), each pair once.
    edges: Vec<(u32, u32, f64)>,
}

impl Chain {
    /// None when the window has more than [`MAX_STATES`] states at this order.
    fn build(journeys: &JourneySet, order: usize) -> Option<Chain> {
        let mut state_of: FastMap<u32> = HashMap::default();
        let mut grams = Vec::new();
        let mut counts: FastMap<u64> = HashMap::default();
        let mut walk: Vec<u32> = Vec::new();

        let converting = journeys.conversions().map(|j| (j.channels, CONVERSION));
        let lost = journeys.non_converting_ids().map(|p| (p, NULL));
        for (channels, end) in converting.chain(lost) {
            walk.clear();
            for gram in grams_of(channels, order) {
                let next = FIRST_GRAM + grams.len();
                let state = *state_of.entry(gram.key()).or_insert(next as u32);
                if state as usize == next {
                    grams.push(gram);
                }
                walk.push(state);
            }
            if FIRST_GRAM + grams.len() > MAX_STATES {
                return None;
            }
            let mut from = START as u32;
            for &to in walk.iter().chain(&[end as u32]) {
                *counts
                    .entry(u64::from(from) << 32 | u64::from(to))
                    .or_insert(0) += 1;
                from = to;
            }
        }

        let mut edges: Vec<(u32, u32, f64)> = counts
            .into_iter()
            .map(|(key, n)| ((key >> 32) as u32, key as u32, n as f64))
            .collect();
        // Hash-map order is deterministic here, but sorting makes that obvious.
        edges.sort_unstable_by_key(|&(from, to, _)| (from, to));
        Some(Chain { grams, edges })
    }

    fn states(&self) -> usize {
        FIRST_GRAM + self.grams.len()
    }

    /// Whether state `state` is a k-gram containing channel `c`.
    fn gram_has(&self, state: usize, c: ChannelId) -> bool {
        let g = &self.grams[state - FIRST_GRAM];
        g.channels[..usize::from(g.len)].contains(&c)
    }
}

/// The states of one journey: collapse repeats, then slide a window of `order` channels.
fn grams_of(channels: &[ChannelId], order: usize) -> impl Iterator<Item = Gram> + '_ {
    let mut window = Gram {
        channels: [0; 3],
        len: 0,
    };
    let mut last = None;
    let mut emitted = false;
    let mut touches = channels.iter();
    std::iter::from_fn(move || {
        for &c in touches.by_ref() {
            if last == Some(c) {
                continue;
            }
            last = Some(c);
            let len = usize::from(window.len);
            if len < order {
                window.channels[len] = c;
                window.len += 1;
            } else {
                window.channels.copy_within(1..order, 0);
                window.channels[order - 1] = c;
            }
            if usize::from(window.len) == order {
                emitted = true;
                return Some(window);
            }
        }
        // A journey shorter than the order is one state, emitted once at the end.
        if !emitted && window.len > 0 {
            emitted = true;
            return Some(window);
        }
        None
    })
}

/// Dense GTH elimination with buffers reused across the per-channel solves.
struct Solver {
    n: usize,
    matrix: Vec<f64>,
    live: Vec<usize>,
    successors: Vec<(usize, f64)>,
}

impl Solver {
    fn new(n: usize) -> Solver {
        Solver {
            n,
            matrix: vec![0.0; n * n],
            live: Vec::with_capacity(n),
            successors: Vec::with_capacity(n),
        }
    }

    /// P(conversion) from `(start)` with the k-gram states for which `removed` holds sent to
    /// `(null)`.
    fn conversion_probability(&mut self, chain: &Chain, removed: impl Fn(usize) -> bool) -> f64 {
        let n = self.n;
        let a = &mut self.matrix;
        a.fill(0.0);
        let is_removed = |s: usize| s >= FIRST_GRAM && removed(s);
        for &(from, to, count) in &chain.edges {
            let (from, to) = (from as usize, to as usize);
            if !is_removed(from) {
                let to = if is_removed(to) { NULL } else { to };
                a[from * n + to] += count;
            }
        }

        self.live.clear();
        self.live.push(START);
        self.live
            .extend((FIRST_GRAM..n).filter(|&s| !is_removed(s)));
        // Eliminate grams last-seen first (any order gives the same answer; this one pops from
        // `live`, which keeps the rows still to update, `(start)` always among them).
        while self.live.len() > 1 {
            let s = self.live.pop().expect("more than one live state");
            let row = &a[s * n..(s + 1) * n];
            self.successors.clear();
            let mut out_flow = 0.0;
            for (q, &v) in row.iter().enumerate() {
                if q != s && v != 0.0 {
                    self.successors.push((q, v));
                    out_flow += v;
                }
            }
            // Every state was entered and left by some journey, and elimination preserves
            // outflow, so this is positive.
            debug_assert!(out_flow > 0.0);
            for &p in &self.live {
                let into_s = a[p * n + s];
                if into_s == 0.0 {
                    continue;
                }
                a[p * n + s] = 0.0;
                let factor = into_s / out_flow;
                let row_p = &mut a[p * n..(p + 1) * n];
                for &(q, v) in &self.successors {
                    row_p[q] += factor * v;
                }
            }
        }
        let converted = a[START * n + CONVERSION];
        let lost = a[START * n + NULL];
        converted / (converted + lost)
    }
}

/// Multiply-rotate hashing for u64 keys (the Fx hash of rustc). The default SipHash is several
/// times slower and its DoS resistance buys nothing for keys we generate ourselves.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<V> = HashMap<u64, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::generate;
    use crate::journey::JourneySetBuilder;
    use crate::model::{Model, ModelConfig};
    use crate::{attribute, splits};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use uuid::Uuid;

    /// `n` journeys of `len` uniform touches over `channels` channels; every third converts.
    fn random_set(channels: usize, n: usize, len: usize) -> JourneySet {
        let codes: Vec<String> = (0..channels).map(|i| format!("ch{i:04}")).collect();
        let mut builder = JourneySetBuilder::new(codes.iter().map(String::as_str)).unwrap();
        let ids: Vec<ChannelId> = codes.iter().map(|c| builder.channel_id(c)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for i in 0..n {
            let path: Vec<ChannelId> = (0..len)
                .map(|_| ids[rng.random_range(0..channels)])
                .collect();
            if i % 3 == 0 {
                builder.push_conversion(
                    Uuid::from_u128(i as u128),
                    1_000,
                    path.iter().map(|&c| (c, 1.0)),
                );
            } else {
                builder.push_path(path);
            }
        }
        builder.finish()
    }

    #[test]
    fn baseline_is_the_observed_conversion_rate() {
        // Flow conservation: a chain fitted from counts converts exactly as often as the data.
        let set = generate(5_000, 3);
        let rate = set.conversion_count() as f64 / 5_000.0;
        for order in 1..=3 {
            let chain = Chain::build(&set, order).unwrap();
            let p = Solver::new(chain.states()).conversion_probability(&chain, |_| false);
            assert!((p - rate).abs() < 1e-12, "order {order}: {p} vs {rate}");
        }
    }

    #[test]
    fn an_order_too_large_to_solve_falls_back_to_a_lower_one() {
        let set = random_set(16, 3_000, 6);
        assert!(
            Chain::build(&set, 3).is_none(),
            "16 channels give over 1024 trigrams"
        );
        assert!(Chain::build(&set, 2).is_some());
        let order = |k| MarkovOrder::new(k).unwrap();
        let fallback = removal_effect_table(&set, order(3));
        assert_eq!(fallback, removal_effect_table(&set, order(2)));
        // Every channel but the unused `direct` converts somewhere, so every one has an effect.
        assert_eq!(fallback.iter().filter(|&&e| e > 0.0).count(), 16);
    }

    #[test]
    fn too_many_channels_for_any_order_falls_back_to_linear() {
        let set = random_set(MAX_STATES + 100, 1_000, 8);
        assert!(Chain::build(&set, 1).is_none());
        let markov = attribute(&[ModelConfig::from(Model::Markov)], &set);
        let linear = attribute(&[ModelConfig::Linear], &set);
        assert_eq!(splits(&markov).count(), set.conversion_count());
        let strip = |rows: &[crate::AllocationRow]| {
            rows.iter()
                .map(|r| {
                    (
                        r.conversion_id,
                        r.channel.to_owned(),
                        r.allocated_cents,
                        r.weight,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&markov), strip(&linear));
    }

    fn grams(channels: &[ChannelId], order: usize) -> Vec<Vec<ChannelId>> {
        grams_of(channels, order)
            .map(|g| g.channels[..usize::from(g.len)].to_vec())
            .collect()
    }

    #[test]
    fn grams_collapse_repeats_and_slide() {
        assert_eq!(grams(&[1, 1, 2, 2, 1], 1), vec![vec![1], vec![2], vec![1]]);
        assert_eq!(
            grams(&[1, 2, 3, 4], 2),
            vec![vec![1, 2], vec![2, 3], vec![3, 4]]
        );
        assert_eq!(grams(&[1, 2, 3, 4], 3), vec![vec![1, 2, 3], vec![2, 3, 4]]);
        assert_eq!(grams(&[5, 5, 5], 3), vec![vec![5]]);
        assert_eq!(grams(&[5, 6, 6], 3), vec![vec![5, 6]]);
        assert_eq!(grams(&[5, 6, 5], 3), vec![vec![5, 6, 5]]);
        assert!(grams(&[], 2).is_empty());
    }
}
