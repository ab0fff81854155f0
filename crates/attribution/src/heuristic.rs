//! The rule-based models: each looks only at one journey.
//!
//! All but time decay give integer points (position based uses units of 1/(5(n-2)) of the revenue),
//! so their splits are exact rationals and rounding ties are real ties, broken by channel code.

use crate::engine::Credit;
use crate::journey::ChannelId;

pub(crate) fn first_touch(channels: &[ChannelId], credit: &mut Credit) {
    credit.add(channels[0], 1.0);
}

pub(crate) fn last_touch(channels: &[ChannelId], credit: &mut Credit) {
    credit.add(channels[channels.len() - 1], 1.0);
}

/// Direct visits usually mean "already decided"; this credits the last touch that was not direct,
/// and direct only when the journey has nothing else.
pub(crate) fn last_non_direct(channels: &[ChannelId], direct: ChannelId, credit: &mut Credit) {
    let last = channels.iter().rev().find(|&&c| c != direct);
    credit.add(*last.unwrap_or(&direct), 1.0);
}

/// One point per touch occurrence: `a > b > a` credits a twice.
pub(crate) fn linear(channels: &[ChannelId], credit: &mut Credit) {
    for &c in channels {
        credit.add(c, 1.0);
    }
}

/// 40 % first, 40 % last, 20 % shared by the middle touches; one touch 100 %, two 50/50.
pub(crate) fn position_based(channels: &[ChannelId], credit: &mut Credit) {
    let n = channels.len();
    if n <= 2 {
        return linear(channels, credit);
    }
    // In units of 1/(5(n-2)): the ends get 2(n-2) each, every middle touch 1.
    let end_points = 2.0 * (n - 2) as f64;
    credit.add(channels[0], end_points);
    for &c in &channels[1..n - 1] {
        credit.add(c, 1.0);
    }
    credit.add(channels[n - 1], end_points);
}

/// Weight `0.5^(hours before conversion / half-life)`, normalised later. Computed relative to the
/// most recent touch (which gets 1) so that old journeys with a short half-life do not underflow
/// to all-zero weights; normalisation makes that the same split.
pub(crate) fn time_decay(
    channels: &[ChannelId],
    hours_before: &[f64],
    half_life_hours: f64,
    credit: &mut Credit,
) {
    let newest = hours_before.iter().copied().fold(f64::INFINITY, f64::min);
    for (&c, &h) in channels.iter().zip(hours_before) {
        credit.add(c, (-(h - newest) / half_life_hours).exp2());
    }
}
