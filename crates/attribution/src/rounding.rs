//! Turning fractional credit into whole cents that add up exactly.
//!
//! Largest remainder (Hamilton): every channel gets the floor of its exact quota, then the cents
//! still missing go one each to the largest remainders. Ties go to the earlier weight; callers pass
//! weights in channel-code order (channel ids are assigned in code order, see
//! [`crate::journey::JourneySet`]), so ties go to the smaller code and reruns are identical.
//!
//! The arithmetic is on integers. Weights that are exact integers (counts, position points) are
//! used as they are; real-valued weights are first quantised to integer shares of
//! [`SHARE_SCALE`] relative to the largest one. That loses nothing that matters (2^-40 of the top
//! weight) and makes quotas and remainders exact, so a tie is a tie on every machine, and near-ties
//! that differ only by floating-point noise from summation order usually still land on the same
//! share.

/// Resolution for quantising real-valued weights: the largest weight becomes `2^40` shares.
pub const SHARE_SCALE: u64 = 1 << 40;

/// Weights that cannot be apportioned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoundingError {
    #[error("weights must be finite and non-negative")]
    InvalidWeight,
    #[error("there is no positive weight to allocate to")]
    NoPositiveWeight,
}

/// Splits `total_cents` in proportion to `weights`; the result has one entry per weight and sums
/// to `total_cents` exactly. Ties in the remainder go to the earlier index. A negative total (a
/// refund) is split like its absolute value and negated, so a refund mirrors its sale.
pub fn largest_remainder(total_cents: i64, weights: &[f64]) -> Result<Vec<i64>, RoundingError> {
    if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
        return Err(RoundingError::InvalidWeight);
    }
    let max = weights.iter().copied().fold(0.0, f64::max);
    if max == 0.0 {
        return Err(RoundingError::NoPositiveWeight);
    }
    let shares: Vec<u64> = weights.iter().map(|&w| quantize(w, max)).collect();
    let mut out = vec![0; shares.len()];
    Apportioner::default().apportion(total_cents, &shares, &mut out);
    Ok(out)
}

/// Re-splits `total_cents` in the proportions of an existing integer split (`shares`, e.g. one
/// conversion's allocated cents per channel): how an order's verified net is spread over the
/// channels that earned its tracked revenue. Integer shares are used exactly, without
/// quantising. `None` when no share is positive (a zero-revenue conversion: the caller falls back
/// to the model's weights through [`largest_remainder`]).
pub fn resplit(total_cents: i64, shares: &[i64]) -> Option<Vec<i64>> {
    if shares.iter().all(|&s| s <= 0) {
        return None;
    }
    let shares: Vec<u64> = shares.iter().map(|&s| s.max(0).unsigned_abs()).collect();
    let mut out = vec![0; shares.len()];
    Apportioner::default().apportion(total_cents, &shares, &mut out);
    Some(out)
}

/// `weight` as integer shares, the largest weight `max` being [`SHARE_SCALE`].
pub(crate) fn quantize(weight: f64, max: f64) -> u64 {
    // The cast saturates and `weight <= max`, so the result is in 0..=SHARE_SCALE.
    ((weight / max) * SHARE_SCALE as f64).round() as u64
}

/// Reusable scratch space, so the per-conversion hot loop does not allocate.
#[derive(Default)]
pub(crate) struct Apportioner {
    remainders: Vec<u128>,
    order: Vec<u32>,
}

impl Apportioner {
    /// Writes into `out` (same length as `shares`) the largest-remainder split of `total`.
    /// `shares` must have a positive sum.
    pub(crate) fn apportion(&mut self, total: i64, shares: &[u64], out: &mut [i64]) {
        debug_assert_eq!(shares.len(), out.len());
        let t = total.unsigned_abs();
        let sum: u128 = shares.iter().map(|&s| u128::from(s)).sum();
        debug_assert!(sum > 0, "apportion needs a positive share");
        let max = shares.iter().copied().max().unwrap_or(0);
        // u128 division is several times slower than u64; typical revenues times 2^40 fit in u64.
        let narrow = sum <= u128::from(u64::MAX) && t.checked_mul(max).is_some();

        self.remainders.clear();
        let mut handed_out: u64 = 0;
        for (&share, slot) in shares.iter().zip(out.iter_mut()) {
            let (quota, remainder) = if narrow {
                let product = t * share;
                let sum = sum as u64;
                (product / sum, u128::from(product % sum))
            } else {
                let product = u128::from(t) * u128::from(share);
                // quota <= t, so it fits in u64.
                ((product / sum) as u64, product % sum)
            };
            *slot = signed(quota, total);
            handed_out += quota;
            self.remainders.push(remainder);
        }

        // Fewer than shares.len() cents are missing: the floors lose less than one cent each.
        let missing = (t - handed_out) as usize;
        if missing == 0 {
            return;
        }
        self.order.clear();
        self.order.extend(0..shares.len() as u32);
        let remainders = &self.remainders;
        self.order.sort_unstable_by(|&a, &b| {
            remainders[b as usize]
                .cmp(&remainders[a as usize])
                .then(a.cmp(&b))
        });
        for &i in &self.order[..missing] {
            out[i as usize] += signed(1, total);
        }
    }
}

/// `magnitude` with the sign of `total`; i128 so that `i64::MIN` survives the negation.
fn signed(magnitude: u64, total: i64) -> i64 {
    let m = i128::from(magnitude);
    (if total < 0 { -m } else { m }) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn resplit_follows_the_integer_split_exactly() {
        // A 59.99 sale split 3000/2999 whose verified net is 40.00 after a partial refund.
        assert_eq!(resplit(4000, &[3000, 2999]), Some(vec![2000, 2000]));
        assert_eq!(resplit(-5999, &[3000, 2999]), Some(vec![-3000, -2999]));
        assert_eq!(resplit(7, &[0, 0]), None);
        assert_eq!(
            resplit(i64::MIN, &[1, 1]),
            Some(vec![i64::MIN / 2, i64::MIN / 2])
        );
    }

    proptest! {
        #[test]
        fn resplit_adds_up(total in any::<i64>(), shares in proptest::collection::vec(0i64..=i64::MAX, 1..9)) {
            if let Some(parts) = resplit(total, &shares) {
                prop_assert_eq!(parts.iter().map(|&p| i128::from(p)).sum::<i128>(), i128::from(total));
            }
        }
    }

    #[test]
    fn splits_with_ties_to_the_earlier_weight() {
        assert_eq!(
            largest_remainder(100, &[1.0, 1.0, 1.0]),
            Ok(vec![34, 33, 33])
        );
        assert_eq!(largest_remainder(2, &[1.0, 1.0, 1.0]), Ok(vec![1, 1, 0]));
        assert_eq!(largest_remainder(5, &[2.0, 1.0]), Ok(vec![3, 2]));
        assert_eq!(largest_remainder(10, &[0.0, 3.0, 1.0]), Ok(vec![0, 8, 2]));
        // 0.4/0.1/0.1/0.4 of 5: quotas 2, .5, .5, 2; the tie goes to index 1.
        assert_eq!(
            largest_remainder(5, &[0.4, 0.1, 0.1, 0.4]),
            Ok(vec![2, 1, 0, 2])
        );
        assert_eq!(
            largest_remainder(-100, &[1.0, 1.0, 1.0]),
            Ok(vec![-34, -33, -33])
        );
        assert_eq!(largest_remainder(0, &[1.0, 2.0]), Ok(vec![0, 0]));
    }

    #[test]
    fn rejects_weights_it_cannot_use() {
        assert_eq!(
            largest_remainder(1, &[]),
            Err(RoundingError::NoPositiveWeight)
        );
        assert_eq!(
            largest_remainder(1, &[0.0]),
            Err(RoundingError::NoPositiveWeight)
        );
        assert_eq!(
            largest_remainder(1, &[-1.0, 2.0]),
            Err(RoundingError::InvalidWeight)
        );
        assert_eq!(
            largest_remainder(1, &[f64::NAN]),
            Err(RoundingError::InvalidWeight)
        );
    }

    #[test]
    fn extreme_totals_use_the_wide_path_and_still_add_up() {
        for total in [i64::MAX, i64::MIN, i64::MAX - 1] {
            let cents = largest_remainder(total, &[1.0, 2.0, 3.0]).unwrap();
            assert_eq!(
                cents.iter().map(|&c| i128::from(c)).sum::<i128>(),
                i128::from(total)
            );
        }
    }

    proptest! {
        #[test]
        fn always_adds_up_and_stays_within_a_cent_of_the_quota(
            total in any::<i64>(),
            weights in prop::collection::vec(0.0f64..1e6, 1..12),
        ) {
            prop_assume!(weights.iter().any(|&w| w > 0.0));
            let cents = largest_remainder(total, &weights).unwrap();
            let sum: i128 = cents.iter().map(|&c| i128::from(c)).sum();
            prop_assert_eq!(sum, i128::from(total));
            let weight_sum: f64 = weights.iter().sum();
            for (c, w) in cents.iter().zip(&weights) {
                let quota = total as f64 * w / weight_sum;
                // One cent of rounding plus the quantisation error (2^-40 of the total).
                let slack = 1.0 + (total as f64).abs() * 1e-11;
                prop_assert!((*c as f64 - quota).abs() <= slack, "{c} vs {quota}");
                if *w == 0.0 {
                    prop_assert_eq!(*c, 0);
                }
            }
        }
    }
}
