use crate::fixtures::*;
use chrono::{TimeZone, Utc};
use serde_json::json;
use tally_payments::testing::Ledger;
use tally_payments::{Delivery, EntryType, Ignored, Outcome, ParseError, Posting, Source, parse};

fn postings(delivery: &Delivery) -> &[Posting] {
    match &delivery.outcome {
        Outcome::Post(postings) => postings,
        Outcome::Ignored(reason) => panic!("expected postings, got {reason:?}"),
    }
}

fn one(delivery: &Delivery) -> &Posting {
    match postings(delivery) {
        [posting] => posting,
        more => panic!("expected one posting, got {more:?}"),
    }
}

fn ignored(delivery: &Delivery) -> &Ignored {
    match &delivery.outcome {
        Outcome::Ignored(reason) => reason,
        Outcome::Post(postings) => panic!("expected no postings, got {postings:?}"),
    }
}

fn code(result: Result<Delivery, ParseError>) -> &'static str {
    result.unwrap_err().code()
}

// --- Shopify ---

#[test]
fn shopify_paid_order_is_a_payment() {
    let request = signed(
        Source::Shopify,
        "orders/paid",
        "e-1",
        shopify_order(450_789_469, "59.99", "USD", "paid"),
    );
    let delivery = ingest(&request).unwrap();
    assert_eq!(delivery.delivery_key, "e-1");
    assert_eq!(delivery.topic, "orders/paid");
    let payment = one(&delivery);
    assert_eq!(payment.source, Source::Shopify);
    assert_eq!(payment.entry_type, EntryType::Payment);
    assert_eq!(payment.external_id, "450789469");
    assert_eq!(payment.amount_minor, 5999);
    assert_eq!(payment.currency.as_str(), "USD");
    assert_eq!(payment.order_id.as_deref(), Some("450789469"));
    assert_eq!(
        payment.occurred_at,
        Utc.with_ymd_and_hms(2026, 11, 20, 11, 58, 0).unwrap()
    );
}

#[test]
fn shopify_created_paid_and_paid_topics_post_one_payment() {
    let created = ingest(&signed(
        Source::Shopify,
        "orders/create",
        "e-1",
        shopify_order(7, "10.00", "EUR", "paid"),
    ))
    .unwrap();
    let paid = ingest(&signed(
        Source::Shopify,
        "orders/paid",
        "e-2",
        shopify_order(7, "10.00", "EUR", "paid"),
    ))
    .unwrap();
    assert_ne!(created.delivery_key, paid.delivery_key);
    assert_eq!(one(&created).key(), one(&paid).key());

    let pending = ingest(&signed(
        Source::Shopify,
        "orders/create",
        "e-3",
        shopify_order(8, "10.00", "EUR", "pending"),
    ))
    .unwrap();
    assert_eq!(
        ignored(&pending),
        &Ignored::NotPaid {
            status: "pending".into()
        }
    );
}

#[test]
fn shopify_delivery_key_falls_back_to_the_webhook_id() {
    let body = shopify_order(7, "10.00", "USD", "paid");
    let headers = vec![
        ("X-Shopify-Topic", "orders/paid"),
        (
            "X-Shopify-Webhook-Id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        ),
    ];
    let delivery = parse(Source::Shopify, &headers, &body).unwrap();
    assert_eq!(
        delivery.delivery_key,
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    );

    let both = vec![
        ("X-Shopify-Topic", "orders/paid"),
        ("X-Shopify-Webhook-Id", "w-1"),
        ("X-Shopify-Event-Id", "e-1"),
    ];
    assert_eq!(
        parse(Source::Shopify, &both, &body).unwrap().delivery_key,
        "e-1"
    );
    assert_eq!(
        parse(
            Source::Shopify,
            &vec![("X-Shopify-Topic", "orders/paid")],
            &body
        ),
        Err(ParseError::MissingHeader("X-Shopify-Event-Id"))
    );
    assert_eq!(
        parse(Source::Shopify, &vec![("X-Shopify-Event-Id", "e-1")], &body),
        Err(ParseError::MissingHeader("X-Shopify-Topic"))
    );
}

#[test]
fn shopify_refund_sums_its_successful_refund_transactions() {
    let body = shopify_refund(
        509_562_969,
        450_789_469,
        "USD",
        &[
            ("refund", "success", "10.00"),
            ("refund", "success", "2.50"),
            ("refund", "failure", "99.00"),
            ("sale", "success", "1.00"),
        ],
    );
    let delivery = ingest(&signed(Source::Shopify, "refunds/create", "e-9", body)).unwrap();
    let refund = one(&delivery);
    assert_eq!(refund.entry_type, EntryType::Refund);
    assert_eq!(refund.external_id, "509562969");
    assert_eq!(refund.amount_minor, -1250);
    assert_eq!(refund.order_id.as_deref(), Some("450789469"));

    let restock_only = shopify_refund(1, 2, "USD", &[]);
    let delivery = ingest(&signed(
        Source::Shopify,
        "refunds/create",
        "e-10",
        restock_only,
    ))
    .unwrap();
    assert_eq!(ignored(&delivery), &Ignored::NoMoneyMoved);
}

#[test]
fn partial_refunds_add_up_to_the_order_total() {
    let order = ingest(&signed(
        Source::Shopify,
        "orders/paid",
        "e-1",
        shopify_order(42, "100.00", "USD", "paid"),
    ))
    .unwrap();
    let first = ingest(&signed(
        Source::Shopify,
        "refunds/create",
        "e-2",
        shopify_refund(1, 42, "USD", &[("refund", "success", "30.01")]),
    ))
    .unwrap();
    let second = ingest(&signed(
        Source::Shopify,
        "refunds/create",
        "e-3",
        shopify_refund(2, 42, "USD", &[("refund", "success", "69.99")]),
    ))
    .unwrap();
    let mut ledger = Ledger::default();
    for delivery in [&order, &first, &second] {
        for posting in postings(delivery) {
            assert!(ledger.apply(posting.clone()));
        }
    }
    assert_eq!(ledger.net("USD"), 0);
}

#[test]
fn a_refund_before_its_payment_parses_and_nets_the_same() {
    let refund = ingest(&signed(
        Source::Shopify,
        "refunds/create",
        "e-2",
        shopify_refund(1, 42, "USD", &[("refund", "success", "5.00")]),
    ))
    .unwrap();
    let payment = ingest(&signed(
        Source::Shopify,
        "orders/paid",
        "e-1",
        shopify_order(42, "20.00", "USD", "paid"),
    ))
    .unwrap();
    let mut ledger = Ledger::default();
    for delivery in [&refund, &payment] {
        for posting in postings(delivery) {
            ledger.apply(posting.clone());
        }
    }
    assert_eq!(ledger.net("USD"), 1500);
}

#[test]
fn zero_and_three_decimal_currencies() {
    let yen = ingest(&signed(
        Source::Shopify,
        "orders/paid",
        "e-1",
        shopify_order(1, "1200", "JPY", "paid"),
    ))
    .unwrap();
    assert_eq!(one(&yen).amount_minor, 1200);
    assert_eq!(one(&yen).currency.as_str(), "JPY");

    let dinar = ingest(&signed(
        Source::Shopify,
        "orders/paid",
        "e-2",
        shopify_order(2, "12.345", "KWD", "paid"),
    ))
    .unwrap();
    assert_eq!(one(&dinar).amount_minor, 12_345);

    let fractional_yen = signed(
        Source::Shopify,
        "orders/paid",
        "e-3",
        shopify_order(3, "1200.5", "JPY", "paid"),
    );
    assert_eq!(code(ingest(&fractional_yen)), "invalid_amount");

    let paypal_yen = ingest(&signed(
        Source::PayPal,
        "",
        "t-1",
        paypal_event(
            "WH-1",
            "PAYMENT.CAPTURE.COMPLETED",
            paypal_resource("CAP-1", "1200", "JPY", None),
        ),
    ))
    .unwrap();
    assert_eq!(one(&paypal_yen).amount_minor, 1200);

    let woo_dinar = ingest(&signed(
        Source::WooCommerce,
        "order.updated",
        "",
        woo_order(9, "processing", "7.125", "KWD", "2026-11-20T10:00:05", &[]),
    ))
    .unwrap();
    assert_eq!(one(&woo_dinar).amount_minor, 7125);

    // Stripe's integers are already minor units: ¥5000 is 5000, 5.120 KWD is 5120.
    let stripe_yen = ingest(&signed(
        Source::Stripe,
        "",
        "",
        stripe_event(
            "evt_1",
            "payment_intent.succeeded",
            stripe_payment_intent("pi_1", 5000, "jpy", "o-1"),
            None,
        ),
    ))
    .unwrap();
    assert_eq!(
        (
            one(&stripe_yen).amount_minor,
            one(&stripe_yen).currency.as_str()
        ),
        (5000, "JPY")
    );
    let stripe_dinar = ingest(&signed(
        Source::Stripe,
        "",
        "",
        stripe_event(
            "evt_2",
            "payment_intent.succeeded",
            stripe_payment_intent("pi_2", 5120, "kwd", "o-2"),
            None,
        ),
    ))
    .unwrap();
    assert_eq!(one(&stripe_dinar).amount_minor, 5120);
}

// --- Stripe ---

#[test]
fn stripe_payment_intent_and_charge_post_one_payment() {
    let intent = ingest(&signed(
        Source::Stripe,
        "",
        "",
        stripe_event(
            "evt_pi",
            "payment_intent.succeeded",
            stripe_payment_intent("pi_3MtwBwLkdIwHu7ix28a3tqPa", 2000, "usd", "order-1001"),
            None,
        ),
    ))
    .unwrap();
    let charge = ingest(&signed(
        Source::Stripe,
        "",
        "",
        stripe_event(
            "evt_ch",
            "charge.succeeded",
            stripe_charge(
                "ch_1",
                "pi_3MtwBwLkdIwHu7ix28a3tqPa",
                2000,
                "usd",
                None,
                &[],
            ),
            None,
        ),
    ))
    .unwrap();
    assert_eq!(intent.delivery_key, "evt_pi");
    assert_eq!(intent.topic, "payment_intent.succeeded");
    let (a, b) = (one(&intent), one(&charge));
    assert_eq!(a.key(), b.key());
    assert_eq!(a.external_id, "pi_3MtwBwLkdIwHu7ix28a3tqPa");
    assert_eq!((a.amount_minor, b.amount_minor), (2000, 2000));
    assert_eq!(a.currency.as_str(), "USD");
    assert_eq!(a.order_id.as_deref(), Some("order-1001"));
    let mut ledger = Ledger::default();
    assert!(ledger.apply(b.clone()));
    assert!(!ledger.apply(a.clone()));
    assert_eq!(ledger.net("usd"), 2000);
}

#[test]
fn stripe_uncaptured_charge_is_not_a_payment() {
    let mut object = stripe_charge("ch_1", "pi_1", 2000, "usd", None, &[]);
    object["captured"] = json!(false);
    object["amount_captured"] = json!(0);
    let delivery = ingest(&signed(
        Source::Stripe,
        "",
        "",
        stripe_event("evt_1", "charge.succeeded", object, None),
    ))
    .unwrap();
    assert_eq!(ignored(&delivery), &Ignored::NotCaptured);
}

#[test]
fn stripe_cumulative_refund_events_post_each_refund_once() {
    let refunded = |event: &str, refunds: &[(&str, i64)]| {
        ingest(&signed(
            Source::Stripe,
            "",
            "",
            stripe_event(
                event,
                "charge.refunded",
                stripe_charge("ch_1", "pi_1", 10_000, "usd", None, refunds),
                None,
            ),
        ))
        .unwrap()
    };
    let first = refunded("evt_r1", &[("re_1", 2500)]);
    let second = refunded("evt_r2", &[("re_1", 2500), ("re_2", 7500)]);
    assert_eq!(postings(&second).len(), 2);
    let mut ledger = Ledger::default();
    // Redelivered, out of order.
    for delivery in [&second, &first, &second, &first] {
        for posting in postings(delivery) {
            ledger.apply(posting.clone());
        }
    }
    assert_eq!(ledger.net("USD"), -10_000);
    assert!(ledger.postings().all(|p| p.entry_type == EntryType::Refund));

    let mut failed = stripe_charge("ch_1", "pi_1", 10_000, "usd", None, &[("re_3", 100)]);
    failed["refunds"]["data"][0]["status"] = json!("failed");
    let delivery = ingest(&signed(
        Source::Stripe,
        "",
        "",
        stripe_event("evt_r3", "charge.refunded", failed, None),
    ))
    .unwrap();
    assert_eq!(ignored(&delivery), &Ignored::NoMoneyMoved);
}

#[test]
fn stripe_refunds_without_the_embedded_list_use_previous_attributes() {
    let event = |id: &str, before: i64, after: i64| {
        let mut charge = stripe_charge("ch_9", "pi_9", 10_000, "usd", None, &[]);
        charge.as_object_mut().unwrap().remove("refunds");
        charge["amount_refunded"] = json!(after);
        signed(
            Source::Stripe,
            "",
            "",
            stripe_event(
                id,
                "charge.refunded",
                charge,
                Some(json!({"amount_refunded": before, "refunded": false})),
            ),
        )
    };
    let first = ingest(&event("evt_1", 0, 3000)).unwrap();
    let second = ingest(&event("evt_2", 3000, 4000)).unwrap();
    assert_eq!(one(&first).external_id, "ch_9:refunded_to:3000");
    assert_eq!(one(&first).amount_minor, -3000);
    assert_eq!(one(&second).amount_minor, -1000);
    assert_ne!(one(&first).key(), one(&second).key());

    let mut charge = stripe_charge("ch_9", "pi_9", 10_000, "usd", None, &[]);
    charge.as_object_mut().unwrap().remove("refunds");
    let unknowable = signed(
        Source::Stripe,
        "",
        "",
        stripe_event("evt_3", "charge.refunded", charge, None),
    );
    assert_eq!(code(ingest(&unknowable)), "invalid_payload");
}

#[test]
fn stripe_dispute_is_a_negative_chargeback() {
    let dispute = json!({
        "id": "dp_1",
        "object": "dispute",
        "amount": 1999,
        "charge": "ch_1",
        "currency": "eur",
        "payment_intent": "pi_1",
        "reason": "fraudulent",
        "status": "needs_response",
        "created": 1_763_640_000,
        "metadata": {},
    });
    let delivery = ingest(&signed(
        Source::Stripe,
        "",
        "",
        stripe_event("evt_d", "charge.dispute.created", dispute, None),
    ))
    .unwrap();
    let chargeback = one(&delivery);
    assert_eq!(chargeback.entry_type, EntryType::Chargeback);
    assert_eq!(chargeback.external_id, "dp_1");
    assert_eq!(chargeback.amount_minor, -1999);
    assert_eq!(chargeback.currency.as_str(), "EUR");
    assert_eq!(chargeback.order_id, None);
}

// --- PayPal ---

#[test]
fn paypal_capture_and_refund() {
    let capture = ingest(&signed(
        Source::PayPal,
        "",
        "t-1",
        paypal_event(
            "WH-58D329510W468432D-8HN650336L201105X",
            "PAYMENT.CAPTURE.COMPLETED",
            paypal_resource("42311647XV020574X", "12.34", "USD", Some("order-77")),
        ),
    ))
    .unwrap();
    assert_eq!(
        capture.delivery_key,
        "WH-58D329510W468432D-8HN650336L201105X"
    );
    assert_eq!(capture.topic, "PAYMENT.CAPTURE.COMPLETED");
    let payment = one(&capture);
    assert_eq!(
        (
            payment.entry_type,
            payment.external_id.as_str(),
            payment.amount_minor
        ),
        (EntryType::Payment, "42311647XV020574X", 1234)
    );
    assert_eq!(payment.order_id.as_deref(), Some("order-77"));
    assert_eq!(
        payment.occurred_at,
        Utc.with_ymd_and_hms(2026, 11, 20, 11, 59, 55).unwrap()
    );

    let refund = ingest(&signed(
        Source::PayPal,
        "",
        "t-2",
        paypal_event(
            "WH-2",
            "PAYMENT.CAPTURE.REFUNDED",
            paypal_resource("1Y107995YT783435V", "2.34", "USD", None),
        ),
    ))
    .unwrap();
    let refund = one(&refund);
    assert_eq!(
        (
            refund.entry_type,
            refund.external_id.as_str(),
            refund.amount_minor
        ),
        (EntryType::Refund, "1Y107995YT783435V", -234)
    );
    // No custom_id: the invoice id is the merchant's reference.
    assert_eq!(refund.order_id.as_deref(), Some("INV-2026-0042"));
}

// --- WooCommerce ---

#[test]
fn woocommerce_order_snapshots() {
    let processing = woo_order(
        727,
        "processing",
        "29.35",
        "USD",
        "2026-11-20T10:00:05",
        &[],
    );
    let delivery = ingest(&signed(
        Source::WooCommerce,
        "order.created",
        "",
        processing.clone(),
    ))
    .unwrap();
    assert_eq!(
        delivery.delivery_key,
        "order:727:2026-11-20T10:00:05:processing"
    );
    assert_eq!(delivery.topic, "order.created");
    let payment = one(&delivery);
    assert_eq!(
        (
            payment.external_id.as_str(),
            payment.amount_minor,
            payment.order_id.as_deref()
        ),
        ("727", 2935, Some("727"))
    );
    assert_eq!(
        payment.occurred_at,
        Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 5).unwrap()
    );

    // The same snapshot again (another topic, or a manual resend) is the same delivery.
    let again = ingest(&signed(
        Source::WooCommerce,
        "order.updated",
        "",
        processing,
    ))
    .unwrap();
    assert_eq!(again.delivery_key, delivery.delivery_key);

    let pending = ingest(&signed(
        Source::WooCommerce,
        "order.created",
        "",
        woo_order(728, "pending", "10.00", "USD", "2026-11-20T10:00:00", &[]),
    ))
    .unwrap();
    assert_eq!(
        ignored(&pending),
        &Ignored::NotPaid {
            status: "pending".into()
        }
    );
}

#[test]
fn woocommerce_refunds_come_negative_and_are_normalised() {
    let delivery = ingest(&signed(
        Source::WooCommerce,
        "order.updated",
        "",
        woo_order(
            727,
            "completed",
            "29.35",
            "USD",
            "2026-11-21T09:00:00",
            &[(731, "-4.35"), (730, "-5.00")],
        ),
    ))
    .unwrap();
    assert_eq!(
        delivery.delivery_key,
        "order:727:2026-11-21T09:00:00:completed"
    );
    let all = postings(&delivery);
    let summary: Vec<_> = all
        .iter()
        .map(|p| (p.entry_type, p.external_id.as_str(), p.amount_minor))
        .collect();
    assert_eq!(
        summary,
        [
            (EntryType::Payment, "727", 2935),
            (EntryType::Refund, "731", -435),
            (EntryType::Refund, "730", -500),
        ]
    );
    assert_eq!(
        all[1].occurred_at,
        Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
    );

    // A fully refunded order still shows the payment it reverses: WooCommerce never retries, so
    // this may be the only snapshot Tally gets.
    let refunded = ingest(&signed(
        Source::WooCommerce,
        "order.updated",
        "",
        woo_order(
            9,
            "refunded",
            "10.00",
            "USD",
            "2026-11-21T09:00:00",
            &[(10, "-10.00")],
        ),
    ))
    .unwrap();
    let mut ledger = Ledger::default();
    for posting in postings(&refunded) {
        ledger.apply(posting.clone());
    }
    assert_eq!(ledger.net("USD"), 0);
    assert_eq!(postings(&refunded).len(), 2);
}

// --- Every vendor ---

#[test]
fn unknown_topics_are_ignored() {
    let shopify = ingest(&signed(
        Source::Shopify,
        "products/update",
        "e-1",
        br#"{"id":1}"#.to_vec(),
    ));
    let stripe = ingest(&signed(
        Source::Stripe,
        "",
        "",
        stripe_event("evt_c", "customer.created", json!({"id": "cus_1"}), None),
    ));
    let paypal = ingest(&signed(
        Source::PayPal,
        "",
        "t-1",
        paypal_event(
            "WH-9",
            "CHECKOUT.ORDER.APPROVED",
            json!({"id": "5O190127TN364715T"}),
        ),
    ));
    let woo = ingest(&signed(
        Source::WooCommerce,
        "product.updated",
        "",
        br#"{"id":31,"date_modified":"2026-11-20T10:00:00","status":"publish"}"#.to_vec(),
    ));
    for (delivery, key) in [
        (shopify, "e-1"),
        (stripe, "evt_c"),
        (paypal, "WH-9"),
        (woo, "product:31:2026-11-20T10:00:00:publish"),
    ] {
        let delivery = delivery.unwrap();
        assert_eq!(ignored(&delivery), &Ignored::UnhandledTopic);
        assert_eq!(ignored(&delivery).code(), "unhandled_topic");
        assert_eq!(delivery.delivery_key, key);
    }
}

#[test]
fn woocommerce_action_topics_fall_back_to_the_delivery_id() {
    let headers = vec![
        ("X-WC-Webhook-Topic", "action.woocommerce_add_to_cart"),
        (
            "X-WC-Webhook-Delivery-ID",
            "d41d8cd98f00b204e9800998ecf8427e",
        ),
    ];
    let delivery = parse(
        Source::WooCommerce,
        &headers,
        br#"{"action":"woocommerce_add_to_cart","arg":"x"}"#,
    )
    .unwrap();
    assert_eq!(delivery.delivery_key, "d41d8cd98f00b204e9800998ecf8427e");
}

#[test]
fn malformed_and_incomplete_payloads_are_typed_errors() {
    let broken = b"{\"id\": 1, \"total_price\": ".to_vec();
    for source in Source::ALL {
        let topic = match source {
            Source::WooCommerce => "order.updated",
            _ => "orders/paid",
        };
        let request = signed(source, topic, "x-1", broken.clone());
        assert_eq!(code(ingest(&request)), "malformed_json", "{source}");
    }

    let no_amount = signed(
        Source::Shopify,
        "orders/paid",
        "e-1",
        br#"{"id":1,"currency":"USD","created_at":"2026-11-20T10:00:00Z"}"#.to_vec(),
    );
    assert_eq!(code(ingest(&no_amount)), "invalid_payload");

    let mut intent = stripe_payment_intent("pi_1", 100, "usd", "o");
    intent.as_object_mut().unwrap().remove("amount_received");
    let no_amount = signed(
        Source::Stripe,
        "",
        "",
        stripe_event("evt_1", "payment_intent.succeeded", intent, None),
    );
    assert_eq!(code(ingest(&no_amount)), "invalid_payload");

    let float_money = signed(
        Source::PayPal,
        "",
        "t-1",
        paypal_event(
            "WH-1",
            "PAYMENT.CAPTURE.COMPLETED",
            json!({"id": "C1", "amount": {"currency_code": "USD", "value": 12.34}}),
        ),
    );
    assert_eq!(code(ingest(&float_money)), "invalid_payload");

    let too_precise = signed(
        Source::WooCommerce,
        "order.updated",
        "",
        woo_order(1, "processing", "10.001", "USD", "2026-11-20T10:00:00", &[]),
    );
    assert_eq!(code(ingest(&too_precise)), "invalid_amount");

    let unknown_currency = signed(
        Source::Shopify,
        "orders/paid",
        "e-2",
        shopify_order(1, "10.00", "XYZ", "paid"),
    );
    assert_eq!(code(ingest(&unknown_currency)), "invalid_amount");
}

#[test]
fn ignored_reasons_have_stable_codes() {
    let codes: Vec<_> = [
        Ignored::UnhandledTopic,
        Ignored::NotPaid {
            status: "pending".into(),
        },
        Ignored::NotCaptured,
        Ignored::NoMoneyMoved,
    ]
    .iter()
    .map(Ignored::code)
    .collect();
    assert_eq!(
        codes,
        [
            "unhandled_topic",
            "not_paid",
            "not_captured",
            "no_money_moved"
        ]
    );
}
