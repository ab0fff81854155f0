//! What ties a reversal to its payment (`payment_ref`), what an endpoint adds to its postings,
//! and the deliveries Tally must dead-letter rather than store: NUL characters, ids longer than
//! the ledger keeps, amounts that overflow `i64`.

use crate::fixtures::*;
use serde_json::json;
use tally_payments::{Delivery, EndpointScope, Outcome, Posting, Source};

fn postings(delivery: Delivery) -> Vec<Posting> {
    match delivery.outcome {
        Outcome::Post(postings) => postings,
        Outcome::Ignored(reason) => panic!("expected postings, got {reason:?}"),
    }
}

fn references(request: Request) -> Vec<Option<String>> {
    postings(ingest(&request).unwrap())
        .into_iter()
        .map(|p| p.payment_ref)
        .collect()
}

fn stripe(kind: &str, object: serde_json::Value) -> Request {
    signed(
        Source::Stripe,
        "",
        "",
        stripe_event("evt", kind, object, None),
    )
}

#[test]
fn every_stripe_posting_of_one_payment_names_its_payment_intent() {
    let pi = || Some("pi_7".to_string());
    let intent = stripe_payment_intent("pi_7", 5000, "usd", "o-7");
    assert_eq!(
        references(stripe("payment_intent.succeeded", intent)),
        [pi()]
    );
    let charge = stripe_charge("ch_7", "pi_7", 5000, "usd", None, &[]);
    assert_eq!(references(stripe("charge.succeeded", charge)), [pi()]);
    let refunded = stripe_charge(
        "ch_7",
        "pi_7",
        5000,
        "usd",
        None,
        &[("re_1", 100), ("re_2", 200)],
    );
    assert_eq!(
        references(stripe("charge.refunded", refunded)),
        [pi(), pi()]
    );
    let dispute = stripe_dispute("du_7", "ch_7", Some("pi_7"), 5000, "usd", None);
    assert_eq!(
        references(stripe("charge.dispute.created", dispute)),
        [pi()]
    );
}

#[test]
fn a_stripe_charge_without_payment_intent_is_its_own_reference() {
    let mut charge = stripe_charge("ch_8", "", 700, "eur", None, &[]);
    charge["payment_intent"] = json!(null);
    let payment = postings(ingest(&stripe("charge.succeeded", charge)).unwrap());
    assert_eq!(payment[0].external_id, "ch_8");
    assert_eq!(payment[0].payment_ref.as_deref(), Some("ch_8"));
    let dispute = stripe_dispute("du_8", "ch_8", None, 700, "eur", None);
    assert_eq!(
        references(stripe("charge.dispute.created", dispute)),
        [Some("ch_8".to_string())]
    );
}

#[test]
fn a_paypal_refund_names_the_capture_of_its_up_link() {
    let capture = paypal_event(
        "WH-1",
        "PAYMENT.CAPTURE.COMPLETED",
        paypal_resource("CAP-9", "10.00", "USD", Some("o-9")),
    );
    let capture = references(signed(Source::PayPal, "", "t-1", capture));
    assert_eq!(capture, [Some("CAP-9".to_string())]);
    let refund = paypal_event(
        "WH-2",
        "PAYMENT.CAPTURE.REFUNDED",
        paypal_refund("REF-9", "4.00", "USD", "CAP-9"),
    );
    let refund = postings(ingest(&signed(Source::PayPal, "", "t-2", refund)).unwrap());
    assert_eq!(refund[0].payment_ref, capture[0]);
    assert_eq!(refund[0].order_id, None);
    // Without an `up` link nothing names the capture.
    let mut unlinked = paypal_refund("REF-10", "4.00", "USD", "CAP-9");
    unlinked["links"] = json!([]);
    let unlinked = paypal_event("WH-3", "PAYMENT.CAPTURE.REFUNDED", unlinked);
    assert_eq!(
        references(signed(Source::PayPal, "", "t-3", unlinked)),
        [None]
    );
}

#[test]
fn woocommerce_ids_are_qualified_by_their_endpoint_and_orders_prefixed() {
    let body = woo_order(
        727,
        "completed",
        "30.00",
        "USD",
        "2026-11-20T11:00:00",
        &[(9, "-5.00")],
    );
    let delivery = ingest(&signed(Source::WooCommerce, "order.updated", "", body)).unwrap();
    let key = delivery.delivery_key.clone();
    let scope = EndpointScope {
        source: Source::WooCommerce,
        endpoint_id: "ep-b",
        order_id_prefix: Some("b-"),
    };
    let scoped = delivery.for_endpoint(scope).unwrap();
    assert_eq!(scoped.delivery_key, format!("ep-b:{key}"));
    let facts: Vec<_> = postings(scoped)
        .into_iter()
        .map(|p| (p.external_id, p.payment_ref, p.order_id))
        .collect();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        facts,
        [
            ("ep-b:727".to_string(), some("ep-b:727"), some("b-727")),
            ("ep-b:9".to_string(), some("ep-b:727"), some("b-727")),
        ]
    );

    // Globally unique ids stay as the vendor sent them; only the order id takes the prefix.
    let intent = stripe_payment_intent("pi_1", 100, "usd", "o-1");
    let delivery = ingest(&stripe("payment_intent.succeeded", intent)).unwrap();
    let scope = EndpointScope {
        source: Source::Stripe,
        endpoint_id: "ep-s",
        order_id_prefix: Some("s-"),
    };
    let scoped = delivery.for_endpoint(scope).unwrap();
    assert_eq!(scoped.delivery_key, "evt");
    let payment = &postings(scoped)[0];
    assert_eq!(
        (payment.external_id.as_str(), payment.order_id.as_deref()),
        ("pi_1", Some("s-o-1"))
    );
}

#[test]
fn a_nul_escape_anywhere_is_refused() {
    for body in [
        br#"{"id": 5, "status": "processing", "note": "a\u0000b"}"#.to_vec(),
        br#"{"id": 5, "meta_data": [{"key\u0000": 1}]}"#.to_vec(),
    ] {
        let request = signed(Source::WooCommerce, "order.updated", "", body);
        assert_eq!(ingest(&request).unwrap_err().code(), "nul_character");
    }
}

#[test]
fn ids_longer_than_the_ledger_keeps_are_refused_counting_characters() {
    let fits = "é".repeat(255);
    let intent = stripe_payment_intent("pi_1", 100, "usd", &fits);
    assert!(ingest(&stripe("payment_intent.succeeded", intent)).is_ok());
    let intent = stripe_payment_intent("pi_1", 100, "usd", &"x".repeat(256));
    let err = ingest(&stripe("payment_intent.succeeded", intent)).unwrap_err();
    assert_eq!(err.code(), "invalid_field");
    assert!(
        err.to_string().starts_with("order_id: 256 characters"),
        "{err}"
    );

    // An order id prefix can push an id that fitted over the limit.
    let intent = stripe_payment_intent("pi_1", 100, "usd", &fits);
    let delivery = ingest(&stripe("payment_intent.succeeded", intent)).unwrap();
    let scope = EndpointScope {
        source: Source::Stripe,
        endpoint_id: "ep",
        order_id_prefix: Some("p-"),
    };
    assert_eq!(
        delivery.for_endpoint(scope).unwrap_err().code(),
        "invalid_field"
    );
}

#[test]
fn amounts_beyond_i64_are_refused_not_clamped() {
    // Two refund transactions of i64::MAX cents each: their sum has no i64.
    let max = "92233720368547758.07";
    let refund = shopify_refund(
        5,
        6,
        "USD",
        &[("refund", "success", max), ("refund", "success", max)],
    );
    let request = signed(Source::Shopify, "refunds/create", "e-1", refund);
    assert_eq!(ingest(&request).unwrap_err().code(), "invalid_amount");

    // i64::MIN has no magnitude in i64.
    let intent = stripe_payment_intent("pi_1", i64::MIN, "usd", "o");
    let err = ingest(&stripe("payment_intent.succeeded", intent)).unwrap_err();
    assert_eq!(err.code(), "invalid_amount");

    // A running refund total below the previous one would underflow.
    let mut charge = stripe_charge("ch_1", "pi_1", 100, "usd", None, &[]);
    charge["refunds"] = json!(null);
    charge["amount_refunded"] = json!(i64::MIN);
    let request = signed(
        Source::Stripe,
        "",
        "",
        stripe_event(
            "evt",
            "charge.refunded",
            charge,
            Some(json!({"amount_refunded": 1})),
        ),
    );
    assert_eq!(ingest(&request).unwrap_err().code(), "invalid_amount");
}
