//! Fuzz harnesses for the four vendor parsers, bounded and deterministic so that they run on
//! stable in the normal suite: each starts from a real vendor-shaped delivery and replaces one
//! member anywhere in it with arbitrary JSON (or sends arbitrary bytes), then parses it as the
//! server would after verification. A parser may refuse anything, but it must never panic, and
//! whatever it accepts must be storable: bounded amounts, no U+0000, ids the ledger can hold.

use crate::fixtures::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use tally_core::money::MAX_AMOUNT_MINOR;
use tally_payments::{MAX_ID_CHARS, Outcome, Source, parse};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!("92233720368547758.07")),
        Just(json!("-0.001")),
        Just(json!("\u{0}")),
        "[0-9.,-]{0,24}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec(("[a-z_]{1,12}", inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Replaces the member reached by walking `path` (each step picks a child by index, modulo
/// the container's size) with `replacement`.
fn replace_somewhere(value: &mut Value, path: &[usize], replacement: Value) {
    let child = match value {
        Value::Object(members) if !members.is_empty() && !path.is_empty() => {
            let key = members.keys().nth(path[0] % members.len()).cloned();
            key.and_then(|k| members.get_mut(&k))
        }
        Value::Array(items) if !items.is_empty() && !path.is_empty() => {
            let n = items.len();
            items.get_mut(path[0] % n)
        }
        _ => None,
    };
    match child {
        Some(child) if path.len() > 1 => replace_somewhere(child, &path[1..], replacement),
        Some(child) => *child = replacement,
        None => *value = replacement,
    }
}

/// One delivery of each vendor, as its topic and body.
fn deliveries() -> Vec<(Source, &'static str, Vec<u8>)> {
    vec![
        (
            Source::Shopify,
            "orders/paid",
            shopify_order(1001, "59.99", "EUR", "paid"),
        ),
        (
            Source::Stripe,
            "",
            stripe_event(
                "evt_1",
                "payment_intent.succeeded",
                stripe_payment_intent("pi_1", 5999, "eur", "order-1"),
                None,
            ),
        ),
        (
            Source::PayPal,
            "",
            paypal_event(
                "WH-1",
                "PAYMENT.CAPTURE.COMPLETED",
                paypal_resource("CAP-1", "59.99", "EUR", Some("order-1")),
            ),
        ),
        (
            Source::WooCommerce,
            "order.updated",
            woo_order(
                727,
                "completed",
                "59.99",
                "EUR",
                "2026-11-20T11:00:00",
                &[(1, "5.00")],
            ),
        ),
    ]
}

fn assert_storable(source: Source, body: &[u8], topic: &str) -> Result<(), TestCaseError> {
    let request = signed(source, topic, "delivery-1", body.to_vec());
    let Ok(delivery) = parse(source, &request.headers, &request.body) else {
        return Ok(());
    };
    prop_assert!(!delivery.delivery_key.contains('\0'));
    if let Outcome::Post(postings) = &delivery.outcome {
        for p in postings {
            prop_assert!(p.amount_minor.unsigned_abs() <= MAX_AMOUNT_MINOR.unsigned_abs());
            for id in [
                Some(&p.external_id),
                p.order_id.as_ref(),
                p.payment_ref.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                prop_assert!(!id.contains('\0'), "{id:?}");
                prop_assert!(id.chars().count() <= MAX_ID_CHARS, "{id:?}");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn parsers_survive_any_member_replaced(
        vendor in 0usize..4,
        path in prop::collection::vec(any::<usize>(), 1..6),
        replacement in any_json(),
    ) {
        let (source, topic, body) = deliveries().swap_remove(vendor);
        let mut doc: Value = serde_json::from_slice(&body).unwrap();
        replace_somewhere(&mut doc, &path, replacement);
        assert_storable(source, &serde_json::to_vec(&doc).unwrap(), topic)?;
    }

    #[test]
    fn parsers_survive_arbitrary_bytes(
        vendor in 0usize..4,
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let (source, topic, _) = deliveries().swap_remove(vendor);
        assert_storable(source, &body, topic)?;
    }
}
