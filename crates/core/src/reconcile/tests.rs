use super::*;
use proptest::prelude::*;

fn at(h: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + h * 3600, 0).unwrap()
}

fn tracked(cents: i64, currency: &str) -> Option<Tracked> {
    Some(Tracked {
        conversion_id: Uuid::from_u128(1),
        occurred_at: at(0),
        revenue_cents: cents,
        currency: currency.into(),
        duplicates: 0,
    })
}

fn post(cents: i64, currency: &str, h: i64) -> Posting {
    Posting {
        amount_cents: cents,
        currency: currency.into(),
        occurred_at: at(h),
    }
}

fn status(tracked: Option<Tracked>, postings: Vec<Posting>, now_h: i64) -> Item {
    let order = Order {
        order_id: "1001".into(),
        tracked,
        postings,
    };
    classify(&order, at(now_h), TimeDelta::hours(72))
}

#[test]
fn every_status_from_its_scenario() {
    let cases = [
        (
            status(tracked(5999, "EUR"), vec![post(5999, "EUR", 1)], 2),
            Status::Matched,
        ),
        (
            status(tracked(5999, "EUR"), vec![post(5000, "EUR", 1)], 2),
            Status::AmountMismatch,
        ),
        (
            status(tracked(5999, "EUR"), vec![post(6400, "USD", 1)], 2),
            Status::CurrencyMismatch,
        ),
        (
            status(tracked(5999, "EUR"), vec![], 71),
            Status::AwaitingPayment,
        ),
        (
            status(tracked(5999, "EUR"), vec![], 72),
            Status::TrackedNotPaid,
        ),
        (
            status(None, vec![post(1200, "EUR", 1)], 2),
            Status::PaidNotTracked,
        ),
        (
            status(
                tracked(5999, "EUR"),
                vec![post(5999, "EUR", 1), post(-5999, "EUR", 3)],
                4,
            ),
            Status::Refunded,
        ),
        (
            status(
                tracked(5999, "EUR"),
                vec![post(5999, "EUR", 1), post(-999, "EUR", 3)],
                4,
            ),
            Status::PartiallyRefunded,
        ),
    ];
    for (item, want) in cases {
        assert_eq!(item.status, want, "{item:?}");
    }
}

#[test]
fn amounts_of_a_partial_refund() {
    let item = status(
        tracked(5999, "EUR"),
        vec![
            post(5999, "EUR", 1),
            post(-999, "EUR", 3),
            post(-1000, "EUR", 4),
        ],
        5,
    );
    assert_eq!(item.verified_cents, 4000);
    assert_eq!(item.paid_cents, 5999);
    assert_eq!(item.reversed_cents, 1999);
    assert_eq!(item.difference_cents, Some(-1999));
    assert_eq!(item.postings, 3);
    assert_eq!(item.first_posting_at, Some(at(1)));
}

#[test]
fn a_refund_before_its_payment_waits_then_settles() {
    let refund_only = status(tracked(5999, "EUR"), vec![post(-999, "EUR", 1)], 2);
    assert_eq!(refund_only.status, Status::AwaitingPayment);
    assert_eq!(refund_only.verified_cents, -999);
    let both = status(
        tracked(5999, "EUR"),
        vec![post(-999, "EUR", 1), post(5999, "EUR", 2)],
        3,
    );
    assert_eq!(both.status, Status::PartiallyRefunded);
    assert_eq!(both.verified_cents, 5000);
}

#[test]
fn currency_mismatch_reports_the_paid_currency_and_no_difference() {
    let item = status(tracked(5999, "EUR"), vec![post(6400, "USD", 1)], 2);
    assert_eq!(item.verified_currency.as_deref(), Some("USD"));
    assert_eq!(item.verified_cents, 6400);
    assert_eq!(item.difference_cents, None);
    let s = summarize(&[item]);
    let eur = &s.currencies[0];
    let usd = &s.currencies[1];
    assert_eq!(
        (eur.currency.as_str(), eur.claimed_cents, eur.ghost_cents),
        ("EUR", 5999, 5999)
    );
    assert_eq!(
        (
            usd.currency.as_str(),
            usd.verified_cents,
            usd.unclaimed_cents
        ),
        ("USD", 6400, 6400)
    );
}

#[test]
fn summary_counts_every_status_and_never_mixes_currencies() {
    let items = [
        status(tracked(1000, "EUR"), vec![post(1000, "EUR", 1)], 2),
        status(tracked(2000, "EUR"), vec![post(1500, "EUR", 1)], 2),
        status(tracked(3000, "EUR"), vec![], 100),
        status(None, vec![post(700, "EUR", 1)], 2),
        status(tracked(500, "JPY"), vec![post(500, "JPY", 1)], 2),
    ];
    let s = summarize(&items);
    assert_eq!(s.counts.len(), 8);
    assert_eq!(s.counts["matched"], 2);
    assert_eq!(s.counts["amount_mismatch"], 1);
    assert_eq!(s.counts["tracked_not_paid"], 1);
    assert_eq!(s.counts["paid_not_tracked"], 1);
    assert_eq!(s.counts["refunded"], 0);
    let eur = s.currencies.iter().find(|c| c.currency == "EUR").unwrap();
    assert_eq!(eur.claimed_cents, 6000);
    assert_eq!(eur.verified_cents, 1000 + 1500 + 700);
    assert_eq!(eur.ghost_cents, 500 + 3000);
    assert_eq!(eur.unclaimed_cents, 700);
    assert_eq!(eur.orders, 4);
    // |6000 − 3200| / 6000 = 46.67 % → 4667 bps.
    assert_eq!(eur.discrepancy_bps, 4667);
    let jpy = s.currencies.iter().find(|c| c.currency == "JPY").unwrap();
    assert_eq!(
        (jpy.claimed_cents, jpy.verified_cents, jpy.discrepancy_bps),
        (500, 500, 0)
    );
}

#[test]
fn discrepancy_edges() {
    assert_eq!(discrepancy_bps(0, 0), 0);
    assert_eq!(discrepancy_bps(0, 5), 10_000);
    assert_eq!(discrepancy_bps(3, 2), 3333);
    assert_eq!(discrepancy_bps(i128::from(i64::MAX) * 4, 0), 10_000);
}

proptest! {
    /// Whatever the ledger holds (amounts at i64's edges included), classification never panics
    /// or wraps, and the verified amount is the exact net in its currency when it fits.
    #[test]
    fn classify_is_total_and_exact(
        tracked_cents in 0i64..=i64::MAX,
        amounts in proptest::collection::vec(any::<i64>(), 0..6),
    ) {
        let postings: Vec<Posting> = amounts.iter().map(|&a| post(a, "EUR", 1)).collect();
        let item = status(tracked(tracked_cents, "EUR"), postings, 2);
        let net: i128 = amounts.iter().map(|&a| i128::from(a)).sum();
        if let Ok(n) = i64::try_from(net) {
            prop_assert_eq!(item.verified_cents, n);
        }
        let s = summarize(&[item.clone(), item]);
        prop_assert!(s.currencies.iter().all(|c| c.discrepancy_bps >= 0));
    }
}
