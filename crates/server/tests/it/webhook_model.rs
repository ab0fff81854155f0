//! Property: whatever the order of the deliveries, and however often each is repeated, the
//! ledger Tally builds over HTTP is the reference model's (`tally_payments::testing::Ledger`:
//! one fact per posting key, first one wins) fed the same sequence scoped to its endpoint, and the net per currency
//! never depends on the order. Seeded shuffles keep it reproducible and bounded in time.

use crate::common::TestServer;
use crate::vendors::{Hook, deliver, hook_for, ledger_for};
use chrono::{DateTime, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tally_payments::testing::Ledger;
use tally_payments::testing::payloads::{
    paypal_event, paypal_resource, shopify_order, shopify_refund, stripe_charge, stripe_event,
    stripe_payment_intent, woo_order,
};
use tally_payments::{EndpointScope, Outcome, Source, parse};

const SEEDS: u64 = 6;

/// (source, topic, vendor delivery id, body): one order's life per vendor, with the overlaps
/// vendors really send (two topics for one payment, cumulative refund events, snapshots).
fn deliveries() -> Vec<(Source, &'static str, &'static str, Vec<u8>)> {
    let refunded =
        |refunds: &[(&str, i64)]| stripe_charge("ch_A", "pi_A", 10_000, "usd", Some("A"), refunds);
    let dispute = json!({"id": "du_B", "amount": 500, "currency": "jpy", "charge": "ch_B",
                         "payment_intent": "pi_B", "created": Utc::now().timestamp(),
                         "metadata": {"order_id": "B"}});
    vec![
        (
            Source::Stripe,
            "",
            "",
            stripe_event(
                "evt_a1",
                "payment_intent.succeeded",
                stripe_payment_intent("pi_A", 10_000, "usd", "A"),
                None,
            ),
        ),
        (
            Source::Stripe,
            "",
            "",
            stripe_event("evt_a2", "charge.succeeded", refunded(&[]), None),
        ),
        (
            Source::Stripe,
            "",
            "",
            stripe_event(
                "evt_a3",
                "charge.refunded",
                refunded(&[("re_A1", 2500)]),
                None,
            ),
        ),
        (
            Source::Stripe,
            "",
            "",
            stripe_event(
                "evt_a4",
                "charge.refunded",
                refunded(&[("re_A1", 2500), ("re_A2", 7500)]),
                None,
            ),
        ),
        (
            Source::Stripe,
            "",
            "",
            stripe_event(
                "evt_b1",
                "payment_intent.succeeded",
                stripe_payment_intent("pi_B", 500, "jpy", "B"),
                None,
            ),
        ),
        (
            Source::Stripe,
            "",
            "",
            stripe_event("evt_b2", "charge.dispute.created", dispute, None),
        ),
        (
            Source::Shopify,
            "orders/create",
            "e10",
            shopify_order(10, "20.00", "EUR", "paid"),
        ),
        (
            Source::Shopify,
            "orders/paid",
            "e11",
            shopify_order(10, "20.00", "EUR", "paid"),
        ),
        (
            Source::Shopify,
            "refunds/create",
            "e12",
            shopify_refund(100, 10, "EUR", &[("refund", "success", "5.00")]),
        ),
        (
            Source::PayPal,
            "",
            "t1",
            paypal_event(
                "WH-1",
                "PAYMENT.CAPTURE.COMPLETED",
                paypal_resource("CAP-1", "12.345", "KWD", Some("P")),
            ),
        ),
        (
            Source::PayPal,
            "",
            "t2",
            paypal_event(
                "WH-2",
                "PAYMENT.CAPTURE.REFUNDED",
                paypal_resource("REF-1", "2.000", "KWD", Some("P")),
            ),
        ),
        (
            Source::WooCommerce,
            "order.created",
            "",
            woo_order(20, "processing", "30.00", "USD", "2026-11-20T10:00:05", &[]),
        ),
        (
            Source::WooCommerce,
            "order.updated",
            "",
            woo_order(
                20,
                "completed",
                "30.00",
                "USD",
                "2026-11-20T11:00:00",
                &[(201, "-10.00")],
            ),
        ),
        (
            Source::WooCommerce,
            "order.updated",
            "",
            woo_order(
                20,
                "refunded",
                "30.00",
                "USD",
                "2026-11-20T12:00:00",
                &[(201, "-10.00"), (202, "-20.00")],
            ),
        ),
    ]
}

type Fact = (
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    DateTime<Utc>,
);

fn fact_of_row(e: &Value) -> Fact {
    let text = |field: &str| e[field].as_str().unwrap().to_string();
    (
        text("source"),
        text("external_id"),
        text("entry_type"),
        e["amount_cents"].as_i64().unwrap(),
        text("currency"),
        e["order_id"].as_str().map(str::to_string),
        text("occurred_at").parse().unwrap(),
    )
}

#[tokio::test]
async fn any_interleaving_with_duplicates_yields_the_model_ledger() {
    let s = TestServer::start().await;
    let mut nets = BTreeSet::new();
    for seed in 0..SEEDS {
        let (_, key) = s.t.db.create_tenant(&format!("shop {seed}")).await.unwrap();
        let mut hooks: Vec<Hook> = Vec::new();
        for source in Source::ALL {
            hooks.push(hook_for(&s, &key.secret, source).await);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut sequence = Vec::new();
        for delivery in deliveries() {
            for _ in 0..rng.random_range(1..=3) {
                sequence.push(delivery.clone());
            }
        }
        sequence.shuffle(&mut rng);

        let mut model = Ledger::default();
        for (source, topic, id, body) in &sequence {
            let hook = hooks.iter().find(|h| h.source == *source).unwrap();
            let headers = hook.sign(topic, id, body);
            let scope = EndpointScope {
                source: *source,
                endpoint_id: &hook.id,
                order_id_prefix: None,
            };
            let delivery = parse(*source, &headers, body).and_then(|d| d.for_endpoint(scope));
            if let Outcome::Post(postings) = delivery.unwrap().outcome {
                postings.into_iter().for_each(|p| {
                    model.apply(p);
                });
            }
            deliver(&s, &hook.path, &headers, body, StatusCode::OK).await;
        }

        let ledger: BTreeSet<Fact> = ledger_for(&s, &key.secret)
            .await
            .iter()
            .map(fact_of_row)
            .collect();
        let expected: BTreeSet<Fact> = model
            .postings()
            .map(|p| {
                (
                    p.source.as_str().to_string(),
                    p.external_id.clone(),
                    p.entry_type.as_str().to_string(),
                    p.amount_minor,
                    p.currency.as_str().to_string(),
                    p.order_id.clone(),
                    p.occurred_at,
                )
            })
            .collect();
        assert_eq!(ledger, expected, "seed {seed}");
        let net: Vec<i64> = ["USD", "JPY", "EUR", "KWD"].map(|c| model.net(c)).to_vec();
        nets.insert(net);
    }
    assert_eq!(nets.len(), 1, "net revenue depended on the order: {nets:?}");
    // USD: Stripe 100.00 − 25.00 − 75.00, WooCommerce 30.00 − 10.00 − 20.00; JPY: ¥500 − ¥500
    // dispute; EUR 20.00 − 5.00; KWD 12.345 − 2.000.
    assert_eq!(nets.first().unwrap(), &vec![0, 0, 1500, 10_345]);
}
