//! Journeys: which touches count towards which conversion.
//!
//! Rules (the worker relies on these, the tests pin them):
//!
//! - Identity is whatever string the caller picked (user id, else anonymous id, else session id);
//!   touches and conversions match only on equal strings.
//! - A conversion at time `t` gets every touch of its identity with `occurred_at` in
//!   `[t - lookback, t]`, both ends inclusive: a touch recorded in the same microsecond as the
//!   purchase counts, and so does one exactly `lookback` earlier. Windows of two conversions may
//!   overlap; a touch then counts for both, as each conversion is credited on its own.
//! - Touches are ordered by time, then event id, then channel code, so equal timestamps still give
//!   one order whatever order the input came in.
//! - A conversion with no touch in its window gets one synthetic [`DIRECT`] touch at the moment of
//!   conversion, so every model (and the Markov chain) sees it as a direct visit.
//! - Non-converting paths, which only the Markov model uses, are the maximal runs of an identity's
//!   touches that are in no conversion's window and not separated by a conversion of that identity.
//!   They have no lookback: the caller decides how much history to pass.
//!
//! Times are `DateTime<Utc>` at the API and whole microseconds inside (PostgreSQL's `timestamptz`
//! resolution), so nothing is lost and comparisons are plain integer compares.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

/// The channel code a touchless conversion is credited to.
pub const DIRECT: &str = "direct";

/// Channel ids are indices into the code-sorted channel table; u16 keeps journeys compact.
pub(crate) type ChannelId = u16;

const MICROS_PER_HOUR: f64 = 3_600_000_000.0;

/// A marketing touch: one visit attributed to one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touch {
    pub event_id: Uuid,
    pub identity: String,
    pub occurred_at: DateTime<Utc>,
    /// A channel taxonomy code such as `paid_search_google`.
    pub channel: String,
}

/// A conversion whose revenue is to be attributed. The conversion event's own channel, if it has
/// one, is not a touch by itself: a caller that wants it to count passes it as a [`Touch`] at the
/// same instant (the window is inclusive, so it will be the last touch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversion {
    pub event_id: Uuid,
    pub identity: String,
    pub occurred_at: DateTime<Utc>,
    /// Minor units of the tenant's currency, never negative.
    pub revenue_cents: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JourneyError {
    #[error("conversion {event_id} has negative revenue {revenue_cents}")]
    NegativeRevenue { event_id: Uuid, revenue_cents: i64 },
    #[error("the lookback window must not be negative")]
    NegativeLookback,
    #[error("{0} distinct channels; at most 65536 are supported")]
    TooManyChannels(usize),
}

/// Every converting journey and non-converting path of one attribution window, in a canonical
/// order that does not depend on input order, with channels interned to small integers.
///
/// Storage is flat (one vector of touches, journeys as ranges into it) so the models walk memory
/// linearly and allocate nothing per journey.
#[derive(Clone, Debug)]
pub struct JourneySet {
    /// Sorted ascending, so channel-id order is code order and tie-breaks by id are by code.
    channels: Vec<String>,
    direct: ChannelId,
    conversions: Vec<ConversionEntry>,
    touch_channels: Vec<ChannelId>,
    /// Hours between each touch and its conversion, parallel to `touch_channels`.
    touch_hours: Vec<f64>,
    path_ends: Vec<u32>,
    path_channels: Vec<ChannelId>,
}

#[derive(Clone, Debug)]
struct ConversionEntry {
    id: Uuid,
    revenue_cents: i64,
    touches_start: u32,
    touches_end: u32,
}

/// One conversion and the touches credited for it, oldest first.
#[derive(Clone, Copy, Debug)]
pub struct ConvertingJourney<'a> {
    pub conversion_id: Uuid,
    pub revenue_cents: i64,
    pub(crate) channels: &'a [ChannelId],
    pub(crate) hours_before: &'a [f64],
    codes: &'a [String],
}

impl<'a> ConvertingJourney<'a> {
    /// The channel code of each touch, oldest first (never empty: see [`DIRECT`]).
    pub fn channel_codes(&self) -> impl ExactSizeIterator<Item = &'a str> + use<'a> {
        let codes = self.codes;
        self.channels
            .iter()
            .map(move |&c| codes[c as usize].as_str())
    }

    /// Hours between each touch and the conversion, parallel to [`Self::channel_codes`].
    pub fn hours_before(&self) -> &'a [f64] {
        self.hours_before
    }
}

impl JourneySet {
    /// Every channel code that occurs, plus [`DIRECT`], sorted.
    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    pub fn conversion_count(&self) -> usize {
        self.conversions.len()
    }

    pub fn non_converting_count(&self) -> usize {
        self.path_ends.len()
    }

    /// Converting journeys ordered by conversion time, then event id.
    pub fn conversions(&self) -> impl ExactSizeIterator<Item = ConvertingJourney<'_>> {
        self.conversions.iter().map(|c| {
            let range = c.touches_start as usize..c.touches_end as usize;
            ConvertingJourney {
                conversion_id: c.id,
                revenue_cents: c.revenue_cents,
                channels: &self.touch_channels[range.clone()],
                hours_before: &self.touch_hours[range],
                codes: &self.channels,
            }
        })
    }

    /// Channel codes of each non-converting path, oldest first.
    pub fn non_converting(&self) -> impl Iterator<Item = Vec<&str>> {
        self.non_converting_ids()
            .map(|p| p.iter().map(|&c| self.code(c)).collect())
    }

    pub(crate) fn non_converting_ids(&self) -> impl Iterator<Item = &[ChannelId]> {
        let starts = std::iter::once(0).chain(self.path_ends.iter().copied());
        starts
            .zip(self.path_ends.iter().copied())
            .map(|(s, e)| &self.path_channels[s as usize..e as usize])
    }

    pub(crate) fn code(&self, channel: ChannelId) -> &str {
        &self.channels[channel as usize]
    }

    pub(crate) fn direct(&self) -> ChannelId {
        self.direct
    }
}

/// Assembles a [`JourneySet`]; shared by [`build_journeys`] and the benchmark generator, which
/// skips the event-level input because it already has journeys.
pub(crate) struct JourneySetBuilder {
    set: JourneySet,
}

impl JourneySetBuilder {
    /// `codes` in any order, duplicates allowed; [`DIRECT`] is always added.
    pub(crate) fn new<'a>(codes: impl IntoIterator<Item = &'a str>) -> Result<Self, JourneyError> {
        // A set first: inputs have one code per touch but only a handful of distinct ones.
        let distinct: BTreeSet<&str> = codes.into_iter().chain([DIRECT]).collect();
        if distinct.len() > usize::from(ChannelId::MAX) + 1 {
            return Err(JourneyError::TooManyChannels(distinct.len()));
        }
        let channels: Vec<String> = distinct.into_iter().map(str::to_owned).collect();
        let direct = channel_index(&channels, DIRECT);
        Ok(JourneySetBuilder {
            set: JourneySet {
                channels,
                direct,
                conversions: Vec::new(),
                touch_channels: Vec::new(),
                touch_hours: Vec::new(),
                path_ends: Vec::new(),
                path_channels: Vec::new(),
            },
        })
    }

    /// Panics if `code` was not passed to [`Self::new`]; that is a bug in the caller.
    pub(crate) fn channel_id(&self, code: &str) -> ChannelId {
        channel_index(&self.set.channels, code)
    }

    /// `touches` are (channel, hours before the conversion), oldest first.
    pub(crate) fn push_conversion(
        &mut self,
        id: Uuid,
        revenue_cents: i64,
        touches: impl IntoIterator<Item = (ChannelId, f64)>,
    ) {
        let set = &mut self.set;
        let start = set.touch_channels.len();
        for (channel, hours) in touches {
            set.touch_channels.push(channel);
            set.touch_hours.push(hours);
        }
        if set.touch_channels.len() == start {
            set.touch_channels.push(set.direct);
            set.touch_hours.push(0.0);
        }
        set.conversions.push(ConversionEntry {
            id,
            revenue_cents,
            touches_start: offset(start),
            touches_end: offset(set.touch_channels.len()),
        });
    }

    /// Ignores empty paths: they carry no transition.
    pub(crate) fn push_path(&mut self, channels: impl IntoIterator<Item = ChannelId>) {
        let set = &mut self.set;
        let start = set.path_channels.len();
        set.path_channels.extend(channels);
        if set.path_channels.len() > start {
            set.path_ends.push(offset(set.path_channels.len()));
        }
    }

    pub(crate) fn finish(self) -> JourneySet {
        self.set
    }
}

fn channel_index(sorted: &[String], code: &str) -> ChannelId {
    let i = sorted
        .binary_search_by(|c| c.as_str().cmp(code))
        .expect("channel code was registered with the builder");
    i as ChannelId
}

/// Offsets are u32 to halve index memory; four billion touches in one window is far beyond a job.
fn offset(len: usize) -> u32 {
    u32::try_from(len).expect("fewer than 2^32 touches per attribution window")
}

/// Groups touches into journeys; see the module docs for the rules.
pub fn build_journeys(
    touches: &[Touch],
    conversions: &[Conversion],
    lookback: TimeDelta,
) -> Result<JourneySet, JourneyError> {
    if lookback < TimeDelta::zero() {
        return Err(JourneyError::NegativeLookback);
    }
    if let Some(c) = conversions.iter().find(|c| c.revenue_cents < 0) {
        return Err(JourneyError::NegativeRevenue {
            event_id: c.event_id,
            revenue_cents: c.revenue_cents,
        });
    }
    let lookback = lookback.num_microseconds().unwrap_or(i64::MAX);

    // Identities and channels become dense integers numbered in string order, so the sorts below
    // compare integers but order exactly as the strings would, and channel ids match the
    // builder's code-sorted table (DIRECT is ranked along, as the builder always adds it).
    let (channel_ids, codes) =
        rank_strings(touches.iter().map(|t| t.channel.as_str()).chain([DIRECT]));
    let mut builder = JourneySetBuilder::new(codes)?;
    let identities = touches.iter().map(|t| t.identity.as_str());
    let (identity_ranks, _) =
        rank_strings(identities.chain(conversions.iter().map(|c| c.identity.as_str())));
    let (touch_ranks, conv_ranks) = identity_ranks.split_at(touches.len());

    // Sorted by identity, then time, then event id (then channel code or revenue, so that even
    // duplicated event ids sort the same every run): each identity is one contiguous range.
    let mut touch_keys: Vec<(u32, i64, Uuid, ChannelId)> = touches
        .iter()
        .zip(touch_ranks)
        .zip(&channel_ids)
        .map(|((t, &identity), &channel)| {
            (
                identity,
                micros(t.occurred_at),
                t.event_id,
                channel as ChannelId,
            )
        })
        .collect();
    touch_keys.sort_unstable();
    let mut conv_keys: Vec<(u32, i64, Uuid, i64)> = conversions
        .iter()
        .zip(conv_ranks)
        .map(|(c, &identity)| (identity, micros(c.occurred_at), c.event_id, c.revenue_cents))
        .collect();
    conv_keys.sort_unstable();
    let touch_ids: Vec<ChannelId> = touch_keys.iter().map(|k| k.3).collect();
    let touch_times: Vec<i64> = touch_keys.iter().map(|k| k.1).collect();
    let conv_times: Vec<i64> = conv_keys.iter().map(|k| k.1).collect();
    let touch_identities: Vec<u32> = touch_keys.iter().map(|k| k.0).collect();
    let conv_identities: Vec<u32> = conv_keys.iter().map(|k| k.0).collect();

    // Collected first: output is ordered by conversion time across identities.
    let mut journeys: Vec<(usize, Range<usize>)> = Vec::with_capacity(conversions.len());
    for (ts, cs) in identity_groups(&touch_identities, &conv_identities) {
        let times = &touch_times[ts.clone()];
        let at = &conv_times[cs.clone()];
        let windows: Vec<Range<usize>> = windows(times, at, lookback).collect();
        for run in uncovered_runs(times, at, &windows) {
            builder.push_path(touch_ids[shift(run, ts.start)].iter().copied());
        }
        journeys.extend(cs.zip(windows).map(|(c, w)| (c, shift(w, ts.start))));
    }

    journeys.sort_unstable_by_key(|&(c, _)| {
        let (identity, at, id, revenue) = conv_keys[c];
        (at, id, revenue, identity)
    });
    for (c, range) in journeys {
        let (_, at, id, revenue) = conv_keys[c];
        let touches = range.map(|i| {
            let hours = (at - touch_times[i]) as f64 / MICROS_PER_HOUR;
            (touch_ids[i], hours)
        });
        builder.push_conversion(id, revenue, touches);
    }
    Ok(builder.finish())
}

/// For each item, the rank of its string among the distinct strings (ascending); and those
/// distinct strings in order. One hash lookup per item instead of sorting all the strings.
fn rank_strings<'a>(items: impl Iterator<Item = &'a str>) -> (Vec<u32>, Vec<&'a str>) {
    let mut first_seen: HashMap<&str, u32> = HashMap::new();
    let ids: Vec<u32> = items
        .map(|item| {
            let next = u32::try_from(first_seen.len()).expect("fewer than 2^32 distinct strings");
            *first_seen.entry(item).or_insert(next)
        })
        .collect();
    let mut distinct: Vec<(&str, u32)> = first_seen.into_iter().collect();
    distinct.sort_unstable();
    let mut rank = vec![0; distinct.len()];
    for (r, &(_, id)) in distinct.iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    let ranks = ids.into_iter().map(|id| rank[id as usize]).collect();
    (ranks, distinct.into_iter().map(|(s, _)| s).collect())
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn shift(r: Range<usize>, by: usize) -> Range<usize> {
    r.start + by..r.end + by
}

/// Pairs up each identity's range of touches with its range of conversions; both lists are
/// sorted, and an identity may have none of either.
fn identity_groups(touches: &[u32], conversions: &[u32]) -> Vec<(Range<usize>, Range<usize>)> {
    let (mut t, mut c) = (0, 0);
    let mut groups = Vec::new();
    while t < touches.len() || c < conversions.len() {
        let identity = match (touches.get(t), conversions.get(c)) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => unreachable!("loop condition"),
        };
        let t_end = t + touches[t..].partition_point(|x| x == identity);
        let c_end = c + conversions[c..].partition_point(|x| x == identity);
        groups.push((t..t_end, c..c_end));
        (t, c) = (t_end, c_end);
    }
    groups
}

/// For each conversion time (ascending), the range of `touches` (ascending times) in
/// `[at - lookback, at]`. Both ends only move forward, so this is linear.
fn windows<'a>(
    touches: &'a [i64],
    conversions: &'a [i64],
    lookback: i64,
) -> impl Iterator<Item = Range<usize>> + 'a {
    let (mut lo, mut hi) = (0, 0);
    conversions.iter().map(move |&at| {
        hi += touches[hi..].partition_point(|&t| t <= at);
        lo += touches[lo..hi].partition_point(|&t| t < at.saturating_sub(lookback));
        lo..hi
    })
}

/// Maximal runs of touches that lie in no window and have no conversion between them.
fn uncovered_runs(
    touches: &[i64],
    conversions: &[i64],
    windows: &[Range<usize>],
) -> Vec<Range<usize>> {
    let mut covered = vec![false; touches.len()];
    let mut marked = 0;
    for w in windows {
        // Window ends never decrease, so each touch is marked at most once.
        covered[w.start.max(marked)..w.end].fill(true);
        marked = w.end;
    }
    let mut runs = Vec::new();
    let (mut run_start, mut next_conv) = (None, 0);
    for (i, &t) in touches.iter().enumerate() {
        let crossed = conversions[next_conv..].partition_point(|&at| at < t);
        next_conv += crossed;
        if let Some(start) = run_start
            && (crossed > 0 || covered[i])
        {
            runs.push(start..i);
            run_start = None;
        }
        if run_start.is_none() && !covered[i] {
            run_start = Some(i);
        }
    }
    runs.extend(run_start.map(|start| start..touches.len()));
    runs
}
