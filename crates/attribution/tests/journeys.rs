//! The journey rules of `tally_attribution::journey`, one rule per test.

use chrono::{DateTime, TimeDelta, Utc};
use tally_attribution::{Conversion, JourneyError, JourneySet, Touch, build_journeys};
use uuid::Uuid;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + seconds, 0).unwrap()
}

fn touch(id: u128, identity: &str, seconds: i64, channel: &str) -> Touch {
    Touch {
        event_id: Uuid::from_u128(id),
        identity: identity.into(),
        occurred_at: at(seconds),
        channel: channel.into(),
    }
}

fn conversion(id: u128, identity: &str, seconds: i64, revenue_cents: i64) -> Conversion {
    Conversion {
        event_id: Uuid::from_u128(id),
        identity: identity.into(),
        occurred_at: at(seconds),
        revenue_cents,
    }
}

/// Channel codes of each converting journey, in output order.
fn journeys(set: &JourneySet) -> Vec<Vec<&str>> {
    set.conversions()
        .map(|j| j.channel_codes().collect())
        .collect()
}

const HOUR: i64 = 3_600;

#[test]
fn lookback_includes_both_ends_and_nothing_beyond() {
    let touches = [
        touch(1, "u", -2 * HOUR - 1, "too_old"),
        touch(2, "u", -2 * HOUR, "oldest_inside"),
        touch(3, "u", 0, "same_instant"),
        touch(4, "u", 1, "after"),
    ];
    let set = build_journeys(&touches, &[conversion(9, "u", 0, 100)], TimeDelta::hours(2)).unwrap();
    assert_eq!(journeys(&set), [["oldest_inside", "same_instant"]]);
    let hours = set.conversions().next().unwrap().hours_before().to_vec();
    assert_eq!(hours, [2.0, 0.0]);
    // The touch before the window and the one after the conversion are a path each: the
    // conversion separates them.
    let paths: Vec<_> = set.non_converting().collect();
    assert_eq!(paths, [vec!["too_old"], vec!["after"]]);
}

#[test]
fn a_zero_lookback_keeps_only_touches_at_the_conversion_instant() {
    let touches = [touch(1, "u", -1, "before"), touch(2, "u", 0, "now")];
    let set = build_journeys(&touches, &[conversion(9, "u", 0, 1)], TimeDelta::zero()).unwrap();
    assert_eq!(journeys(&set), [["now"]]);
}

#[test]
fn identities_never_mix() {
    let touches = [touch(1, "alice", 0, "email"), touch(2, "bob", 1, "display")];
    let conversions = [conversion(9, "alice", 10, 5), conversion(8, "carol", 10, 7)];
    let set = build_journeys(&touches, &conversions, TimeDelta::days(30)).unwrap();
    // Same time: ordered by event id, so carol's (id 8) comes first and, touchless, is direct.
    assert_eq!(journeys(&set), [["direct"], ["email"]]);
    let paths: Vec<_> = set.non_converting().collect();
    assert_eq!(paths, [vec!["display"]]);
}

#[test]
fn equal_timestamps_are_ordered_by_event_id() {
    let touches = [
        touch(3, "u", 0, "third"),
        touch(1, "u", 0, "first"),
        touch(2, "u", 0, "second"),
    ];
    let set = build_journeys(&touches, &[conversion(9, "u", 5, 1)], TimeDelta::days(1)).unwrap();
    assert_eq!(journeys(&set), [["first", "second", "third"]]);
}

#[test]
fn overlapping_windows_credit_a_touch_to_both_conversions() {
    let touches = [
        touch(1, "u", 0, "email"),
        touch(2, "u", 2 * HOUR, "display"),
    ];
    let conversions = [
        conversion(8, "u", HOUR, 10),
        conversion(9, "u", 3 * HOUR, 20),
    ];
    let set = build_journeys(&touches, &conversions, TimeDelta::days(1)).unwrap();
    assert_eq!(journeys(&set), [vec!["email"], vec!["email", "display"]]);
    assert_eq!(set.non_converting_count(), 0);
}

#[test]
fn a_touchless_conversion_is_direct_and_converting_order_is_by_time() {
    let conversions = [conversion(1, "late", 100, 3), conversion(2, "early", 50, 4)];
    let set = build_journeys(&[], &conversions, TimeDelta::days(1)).unwrap();
    let got: Vec<_> = set
        .conversions()
        .map(|j| {
            (
                j.conversion_id,
                j.revenue_cents,
                j.channel_codes().collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (Uuid::from_u128(2), 4, vec!["direct"]),
            (Uuid::from_u128(1), 3, vec!["direct"])
        ]
    );
    assert_eq!(set.channels(), ["direct"]);
}

#[test]
fn non_converting_runs_split_at_conversions_and_windows() {
    let touches = [
        touch(1, "u", 0, "a"),
        touch(2, "u", 1, "b"),
        // converts at 10 h with a 1 h window: only "c" is in it
        touch(3, "u", 10 * HOUR - 60, "c"),
        touch(4, "u", 20 * HOUR, "d"),
        touch(5, "u", 21 * HOUR, "e"),
        touch(6, "v", 0, "f"),
    ];
    let set = build_journeys(
        &touches,
        &[conversion(9, "u", 10 * HOUR, 1)],
        TimeDelta::hours(1),
    )
    .unwrap();
    assert_eq!(journeys(&set), [["c"]]);
    let paths: Vec<_> = set.non_converting().collect();
    assert_eq!(paths, [vec!["a", "b"], vec!["d", "e"], vec!["f"]]);
}

#[test]
fn channels_are_sorted_and_include_direct() {
    let touches = [touch(1, "u", 0, "zeta"), touch(2, "u", 1, "alpha")];
    let set = build_journeys(&touches, &[], TimeDelta::days(1)).unwrap();
    assert_eq!(set.channels(), ["alpha", "direct", "zeta"]);
    assert_eq!(set.conversion_count(), 0);
    assert_eq!(set.non_converting_count(), 1);
}

#[test]
fn invalid_input_is_rejected() {
    let bad = conversion(7, "u", 0, -1);
    assert_eq!(
        build_journeys(&[], &[bad], TimeDelta::days(1)).unwrap_err(),
        JourneyError::NegativeRevenue {
            event_id: Uuid::from_u128(7),
            revenue_cents: -1
        }
    );
    assert_eq!(
        build_journeys(&[], &[], TimeDelta::seconds(-1)).unwrap_err(),
        JourneyError::NegativeLookback
    );
}
